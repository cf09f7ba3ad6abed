"""The ``resolve`` handlers of ``AgentWorkflow``: a human's word on a lost write answer.

A mixin, so workflow.py stays one screenful of the run: Temporal registers the decorated
methods of the workflow class, inherited ones included. The state lives in the run's
``LostAnswers`` (workflows/tools/lost.py); this class only exposes it and keeps ``KeelState``
at ``awaiting_guidance`` while a call is unresolved.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.contracts import Profile, Resolution, ResolveOutcome, RunState, UnresolvedCall, names
    from workflows.agent.state import AgentState


class ResolveHandlers:
    """``unresolved_calls`` query, ``resolve`` signal and update (validated)."""

    _state: AgentState

    def _set_state(self, phase: RunState) -> None:  # pragma: no cover - the workflow's
        raise NotImplementedError

    def _on_pending_change(self) -> None:  # pragma: no cover - the workflow's
        raise NotImplementedError

    @workflow.query(name=names.QUERY_UNRESOLVED_CALLS)
    def unresolved_calls(self) -> list[UnresolvedCall]:
        """Writes whose answer was lost, waiting for a human's ``resolve``, oldest first."""
        return self._state.lost.unresolved()

    @workflow.signal(name=names.SIGNAL_RESOLVE)
    def resolve(self, payload: Any) -> None:
        """A human's word on a lost answer, fire and forget (``Resolution`` as JSON)."""
        self._state.lost.signal(payload)

    @workflow.update(name=names.UPDATE_RESOLVE)
    def resolve_update(self, resolution: Resolution) -> ResolveOutcome:
        """A human's word on a lost answer that answers which call it resolved."""
        return self._state.lost.accept(resolution)

    @resolve_update.validator
    def _validate_resolution(self, resolution: Resolution) -> None:
        self._state.lost.check(resolution)

    def _lost_answers_for(self, profile: Profile) -> None:
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
