"""A run's input and the names of its states: ``AgentInput``, ``Principal``, limit overrides."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from keel.contracts._base import Strict

RunState = Literal[
    "running", "awaiting_approval", "awaiting_guidance", "halted", "completed", "failed"
]
# What `keel status` shows for a run Temporal closed without a result (an operator's
# terminate, a server limit, a run timeout, a cancellation): KeelState cannot say it.
ClosedState = Literal["terminated", "timed_out", "cancelled"]
RunOutcome = Literal["completed", "halted", "rejected", "failed"]
StepKind = Literal["model", "tool"]
StepOutcome = Literal["ok", "tool_error", "invalid", "refused", "rejected", "failed"]


class Principal(Strict):
    """Who the run acts for; authorization (a later layer) checks these roles."""

    id: str = Field(min_length=1, max_length=200)
    roles: list[str] = Field(default_factory=list)


class LimitOverrides(Strict):
    """Per-run limits; each must be at or below the profile's ceiling."""

    max_steps: int | None = Field(default=None, ge=1)
    max_tool_calls: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, gt=0)
    max_wall_clock_seconds: float | None = Field(default=None, gt=0)
    max_repeated_calls: int | None = Field(default=None, ge=1)
    max_idle_steps: int | None = Field(default=None, ge=1)


# A task this long is still a task (a document to work on): over KEEL_PAYLOAD_THRESHOLD the
# input is kept in the content store and history holds a reference (docs/operations.md).
MAX_TASK_CHARS = 50_000_000


class AgentInput(Strict):
    """Input of ``AgentWorkflow``."""

    profile: str = Field(min_length=1, max_length=64)
    task: str = Field(
        min_length=1,
        max_length=MAX_TASK_CHARS,
        description="a task of any size up to 50 M characters: the model reads at most"
        " model.max_message_bytes of it (the whole task is in the content store)",
    )
    principal: Principal = Field(default_factory=lambda: Principal(id="anonymous"))
    limits: LimitOverrides | None = None


class Guidance(BaseModel):
    """Payload of the ``guide`` signal: a human's instruction to an escalated run."""

    instruction: str = Field(min_length=1, max_length=20_000)
    extend: LimitOverrides | None = None
    by: str | None = None
