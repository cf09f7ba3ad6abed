"""Live progress: the events a run publishes on its workflow stream (topic ``progress``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

PROGRESS_KINDS = (
    "run.started",
    "model.started",
    "model.finished",
    "tool.started",
    "tool.finished",
    "tool.refused",
    "approval.requested",
    "approval.escalated",
    "approval.decided",
    "guidance.requested",
    "guidance.received",
    "run.stop",
    "run.continued",
    "context.trimmed",
    "context.summarized",
    "run.finished",
    "decision.invalid",
    "decision.escalated",
    "decision.made",
    "routing.escalated",
    "routing.deescalated",
    "routing.final_answer",
)


class ProgressEvent(BaseModel):
    """One entry of a run's live progress, published by the workflow after the fact.

    ``kind`` is one of ``PROGRESS_KINDS`` (a plain string, so a newer worker's kinds do not
    break an older client); ``message`` is the line a person reads; ``data`` holds a few
    structured values that differ per kind (see docs/operations.md).
    """

    kind: str
    message: str
    at: datetime
    step: int | None = None
    tool: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
