"""Deterministic fallbacks: a profile's ``[fallback]`` section, what a fallback workflow gets
(``FallbackInput``) and returns (``FallbackResult``), and the ``FallbackRecord`` a run's result
and status carry (docs/architecture.md, "Fallbacks"); the workflow's input and result are in
:mod:`keel.contracts.fallback_run`.

A run that halts or fails for one of the failure classes in ``on`` starts the fallback
workflow as a child workflow with everything the run collected; the shipped one,
``keel.fallback.ticket``, opens a ticket for a person and notifies.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from keel.contracts._base import Strict
from keel.contracts.failure_classes import RUN_FAILURE_CLASSES

FALLBACK_TICKET: Literal["keel.fallback.ticket"] = "keel.fallback.ticket"

# What triggers a fallback unless the profile says otherwise: the run was stopped by a bound
# (limits, no progress, the history budget), nobody answered in time, or a dependency is down.
# Not a human's decision (``lost_result_aborted``), not a run refused as a mistake. A
# pipeline's decision no model could answer (``decision_invalid``) goes to a person too.
DEFAULT_TRIGGERS = (
    "step_limit",
    "tool_call_limit",
    "token_budget",
    "cost_budget",
    "wall_clock",
    "history_limit",
    "no_progress",
    "approval_timeout",
    "lost_result_timeout",
    "upstream_unavailable",
    "model_error",
    "decision_invalid",
)

Priority = Literal["low", "normal", "high", "urgent"]
FallbackStatus = Literal["running", "completed", "failed"]


class FallbackSettings(Strict):
    """A profile's ``[fallback]``: which workflow takes over a run that halted or failed."""

    workflow: str = Field(
        default=FALLBACK_TICKET,
        pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$",
        description="the fallback workflow type, registered on the worker",
    )
    on: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TRIGGERS),
        min_length=1,
        description="failure classes that start the fallback",
    )
    notify: str | None = Field(
        default=None, description="webhook URL (or env:NAME) told about the fallback"
    )
    timeout_seconds: float = Field(
        default=600, gt=0, le=7 * 86400, description="bound on the fallback workflow's run"
    )
    server: str = Field(
        default="support_desk",
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="the profile's MCP server the ticket is opened on",
    )
    priority: Priority = Field(default="high", description="priority of the ticket")

    @field_validator("on")
    @classmethod
    def _known_classes(cls, classes: list[str]) -> list[str]:
        unknown = [c for c in classes if c not in RUN_FAILURE_CLASSES]
        if unknown:
            raise ValueError(
                f"unknown failure class {', '.join(repr(c) for c in unknown)}"
                f" (known: {', '.join(RUN_FAILURE_CLASSES)})"
            )
        return list(dict.fromkeys(classes))


class FallbackRecord(BaseModel):
    """What a run's result and status say about its fallback."""

    workflow: str = Field(description="the fallback workflow type")
    workflow_id: str = Field(description="the child workflow's id: <run's workflow id>-fallback")
    status: FallbackStatus
    ticket_id: str | None = None
    detail: str = ""
