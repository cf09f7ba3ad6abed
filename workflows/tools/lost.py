"""Lost answers: a one-attempt write whose answer never came waits for a human.

A write to a server that does not deduplicate (workflows/tools/trust.py) gets one attempt;
if that attempt times out or its connection breaks, the write may or may not have happened.
Instead of failing the run, the call waits — ``KeelState = awaiting_guidance``, listed by the
``unresolved_calls`` query and in ``status`` — for a ``resolve`` signal or update
(keel/contracts/resolution.py): ``confirm`` (it took effect; the model sees the stated
result), ``retry`` (once more, one attempt, same idempotency key) or ``abort`` (the run ends
halted, ``lost_result_aborted``). Nobody answering within ``escalation.resolve_timeout_seconds``
ends it halted too (``lost_result_timeout``). The turn's other calls keep their results.

``LostAnswers`` is the run's desk of such calls (pure state, in ``AgentState``); the waiting
itself is workflow code (``wait``), the carrying out is in workflows/tools/execute.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from keel.contracts import Resolution, ResolveOutcome, UnresolvedCall
    from workflows.failures import RunHalted
    from workflows.report.events import emit


class ResolutionError(ValueError):
    """A ``resolve`` that cannot be accepted; the message says why (shown to the human)."""


def _unchanged() -> None:
    return None


@dataclass
class LostAnswers:
    """The run's calls whose answer was lost, and the resolutions that arrived for them."""

    pending: dict[str, UnresolvedCall] = field(default_factory=dict)  # by idempotency key
    resolutions: dict[str, Resolution] = field(default_factory=dict)
    timeout_seconds: float = 3600.0  # the profile's escalation.resolve_timeout_seconds
    on_change: Callable[[], None] = _unchanged  # the workflow updates KeelState

    def unresolved(self) -> list[UnresolvedCall]:
        """The calls waiting for a human, oldest first."""
        return sorted(self.pending.values(), key=lambda c: c.since)

    def check(self, resolution: Resolution) -> str:
        """The idempotency key of the call ``resolution`` resolves, or ``ResolutionError``."""
        waiting = [k for k in self.pending if k not in self.resolutions]
        key = resolution.idempotency_key
        if key is None:
            if len(waiting) == 1:
                return waiting[0]
            if not waiting:
                raise ResolutionError("no call of this run is waiting for resolve")
            raise ResolutionError(
                f"{len(waiting)} calls are unresolved: name one with its idempotency key"
                f" ({', '.join(sorted(waiting))})"
            )
        if key not in waiting:
            known = ", ".join(sorted(waiting)) or "none"
            why = "is already resolved" if key in self.resolutions else "is not unresolved"
            raise ResolutionError(f"call {key!r} {why} (unresolved: {known})")
        return key

    def accept(self, resolution: Resolution) -> ResolveOutcome:
        """Record a resolution (checked); the waiting call goes on with it."""
        key = self.check(resolution)
        self.resolutions[key] = resolution
        call = self.pending[key]
        return ResolveOutcome(idempotency_key=key, action=resolution.action, tool=call.tool)

    def signal(self, payload: Any) -> None:
        """The ``resolve`` signal (fire and forget): one that cannot be accepted is logged."""
        try:
            self.accept(Resolution.model_validate(payload))
        except (ValidationError, ResolutionError) as exc:
            emit("resolve.signal_ignored", level=logging.WARNING, error=str(exc)[:500])

    async def wait(self, call: UnresolvedCall) -> Resolution:
        """Wait (bounded) for the human's word on ``call``; ``RunHalted`` on timeout."""
        key = call.idempotency_key
        self.pending[key] = call
        self.on_change()
        try:
            await workflow.wait_condition(
                lambda: key in self.resolutions, timeout=timedelta(seconds=self.timeout_seconds)
            )
        except TimeoutError:
            raise RunHalted(
                "lost_result_timeout",
                f"the answer of {call.tool} (idempotency key {key}) was lost and nobody"
                f" resolved it within {self.timeout_seconds:g}s: {call.error}",
            ) from None
        finally:
            del self.pending[key]
            self.on_change()
        return self.resolutions.pop(key)
