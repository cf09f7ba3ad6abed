"""Model routing (``[routing]``): which tier serves which kind of step, and when a run moves
to a stronger tier and back (workflows/agent/routing.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from keel.contracts._base import Strict

EscalationTrigger = Literal["validation_refusal", "tool_error", "low_confidence"]


def _all_triggers() -> list[EscalationTrigger]:
    return ["validation_refusal", "tool_error", "low_confidence"]


class RoutingSettings(Strict):
    """Tier names are the profile's ``[tiers.<name>]``; unset kinds are served by ``[model]``."""

    first: str | None = Field(default=None, description="tier of the run's first (planning) step")
    tools: str | None = Field(default=None, description="tier of a step that follows a tool turn")
    final: str | None = Field(
        default=None, description="tier that writes the final answer the caller sees"
    )
    summary: str | None = Field(
        default=None, description="tier that summarizes older turns (context budgets)"
    )
    ladder: list[str] = Field(
        default_factory=list, description="tiers from weakest to strongest, for escalation"
    )
    escalate_on: list[EscalationTrigger] = Field(default_factory=_all_triggers)
    min_confidence: float = Field(
        default=0.5, ge=0, le=1, description="a self-reported confidence below it escalates"
    )
    deescalate_after: int = Field(
        default=1, ge=1, le=100, description="clean steps on an escalated tier before stepping down"
    )
