"""What a fallback workflow gets (``FallbackInput``) and returns (``FallbackResult``)
(docs/architecture.md, "Fallbacks"); the profile's settings are in
:mod:`keel.contracts.fallback`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from keel.contracts.fallback import Priority
from keel.contracts.profile import ServerSettings
from keel.contracts.run import Principal


class Fact(BaseModel):
    """One tool call the run made, as its step record tells it."""

    step: int
    tool: str
    server: str | None = None
    outcome: str
    detail: str = ""


class FallbackInput(BaseModel):
    """Input of a fallback workflow: everything the run collected, and where to hand it on."""

    parent_workflow_id: str
    profile: str
    task: str = Field(default="", description="empty for a run that continued as new")
    principal: Principal
    status: str
    stop_reason: str | None = None
    failure_class: str | None = None
    error: str | None = None
    final_answer: str | None = None
    model_calls: int = 0
    tool_calls: int = 0
    cost_usd: float = 0.0
    facts: list[Fact] = Field(default_factory=list, description="the last tool calls")
    customer_id: str | None = Field(default=None, description="the first customer id seen")
    order_ids: list[str] = Field(default_factory=list, description="order ids seen")
    server: ServerSettings | None = Field(
        default=None, description="the profile's settings of the ticket server (None: absent)"
    )
    notify: str | None = None
    priority: Priority = "high"


class FallbackStep(BaseModel):
    """One step of a fallback workflow (a tool call, a notification)."""

    name: str
    kind: Literal["tool", "notify"]
    started_at: datetime
    outcome: Literal["ok", "tool_error", "failed", "skipped"] = "ok"
    detail: str = ""
    idempotency_key: str | None = None


class FallbackResult(BaseModel):
    """Result of a fallback workflow: its own record, kept in its own history."""

    status: Literal["completed", "failed"]
    parent_workflow_id: str
    ticket_id: str | None = None
    notified: bool = False
    detail: str = ""
    steps: list[FallbackStep] = Field(default_factory=list)
