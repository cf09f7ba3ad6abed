"""Spend across runs: a profile's budgets per day and month (``[spend]``), and the tag a
model call carries so the worker records its cost in the spend ledger (keel/runtime/spend)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from keel.contracts._base import Strict

ALERT_THRESHOLDS = (0.5, 0.8, 1.0)


class SpendSettings(Strict):
    """Budgets in USD across runs (``None``: no budget). The profile budgets count every run
    of the profile; the principal budgets count every run of a principal under any profile
    that sets them. An exhausted budget refuses new runs and halts running ones
    (``spend_limit``); ``alerts`` are the fractions at which it warns, once each per period."""

    profile_day_usd: float | None = Field(default=None, gt=0)
    profile_month_usd: float | None = Field(default=None, gt=0)
    principal_day_usd: float | None = Field(default=None, gt=0)
    principal_month_usd: float | None = Field(default=None, gt=0)
    alerts: list[float] = Field(default_factory=lambda: list(ALERT_THRESHOLDS))
    webhook: str = Field(default="", description="URL notified (POST JSON) at each alert")


class SpendTag(BaseModel):
    """Whose spend a model call is, and what it counts against."""

    run_id: str
    profile: str
    principal: str
    budgets: SpendSettings | None = None
