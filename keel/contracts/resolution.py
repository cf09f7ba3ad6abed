"""Lost answers: a write sent once (its server does not deduplicate) whose answer never came.

The write may or may not have taken effect, so the run does not guess: it waits
(``KeelState = awaiting_guidance``) for a human's ``resolve`` — ``confirm`` (it took effect;
the model sees ``result``), ``retry`` (send it once more, same idempotency key) or ``abort``
(the run ends halted, failure class ``lost_result_aborted``) — for at most the profile's
``escalation.resolve_timeout_seconds`` (then ``lost_result_timeout``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from keel.contracts._base import Strict

ResolveAction = Literal["confirm", "retry", "abort"]


class UnresolvedCall(BaseModel):
    """A tool call whose answer was lost, waiting for a human (the ``unresolved_calls``
    query and ``status``)."""

    idempotency_key: str
    step: int
    tool_call_id: str
    tool: str
    server: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    error: str
    since: datetime
    retries: int = 0


class Resolution(Strict):
    """Payload of the ``resolve`` signal and update: a human's word on a lost answer.

    ``idempotency_key`` names the call (``unresolved_calls`` lists them); it may be left out
    when exactly one call is unresolved. ``result`` is required for ``confirm``: what the
    model is told the call returned.
    """

    action: ResolveAction
    idempotency_key: str | None = None
    result: str | None = Field(default=None, max_length=100_000)
    by: str = ""
    reason: str = ""

    @model_validator(mode="after")
    def _confirm_states_a_result(self) -> Resolution:
        if self.action == "confirm" and not (self.result or "").strip():
            raise ValueError("confirm needs the result the call had (what the model is told)")
        return self


class ResolveOutcome(BaseModel):
    """Answer of the ``resolve`` update."""

    idempotency_key: str
    action: ResolveAction
    tool: str
