"""The human side of lost write answers: what the ``unresolved_calls`` query and the
``resolve`` signal and update do.

``AgentWorkflow`` declares the handlers (Temporal registers the methods of the workflow class)
and delegates each to a ``ResolveHandlers`` it owns, as it does for approvals. The state lives
in the run's ``LostAnswers`` (workflows/tools/lost.py); this class exposes it and keeps
``KeelState`` at ``awaiting_guidance`` while a call is unresolved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from keel.contracts import (
        Profile,
        Resolution,
        ResolveOutcome,
        RunState,
        UnresolvedCall,
        names,
    )
    from workflows.agent.state import AgentState
    from workflows.tools.lost import ResolutionError


class ResolveHandlers:
    """``unresolved_calls`` query, ``resolve`` signal and update (validated), for one run."""

    def __init__(
        self,
        state: AgentState,
        set_state: Callable[[RunState], None],
        on_pending_change: Callable[[], None],
    ) -> None:
        self._state = state
        self._set_state = set_state
        self._on_pending_change = on_pending_change

    def unresolved(self) -> list[UnresolvedCall]:
        """Writes whose answer was lost, waiting for a human's ``resolve``, oldest first."""
        return self._state.lost.unresolved()

    def signal(self, payload: Any) -> None:
        """A human's word on a lost answer, fire and forget (``Resolution`` as JSON)."""
        self._state.lost.signal(payload)

    def update(self, resolution: Resolution) -> ResolveOutcome:
        """A human's word on a lost answer that answers which call it resolved."""
        return self._state.lost.accept(resolution)

    def validate(self, resolution: Resolution) -> None:
        """Refuse before accepting (unknown or resolved key, none named among several): a
        typed, non-retryable failure in one line, as a refused decision is."""
        try:
            self._state.lost.check(resolution)
        except ResolutionError as exc:
            raise ApplicationError(
                str(exc), type=names.ERROR_RESOLVE_REFUSED, non_retryable=True
            ) from None

    def wire(self, profile: Profile) -> None:
        """Wire the run's lost-answer desk: the profile's timeout, the KeelState updates."""
        self._state.lost.timeout_seconds = profile.escalation.resolve_timeout_seconds
        self._state.lost.on_change = self._on_lost_change

    def _on_lost_change(self) -> None:
        state = self._state
        waiting = state.lost.unresolved()
        if waiting:
            self._set_state("awaiting_guidance")
            tools = ", ".join(f"{c.tool} ({c.idempotency_key})" for c in waiting)
            state.last_event = f"answer lost, waiting for resolve: {tools}"
        elif state.phase == "awaiting_guidance":
            self._set_state("running")
            self._on_pending_change()
