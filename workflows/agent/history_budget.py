"""The history budget of one run: when to continue as new, and when to halt (``history_limit``).

Workflow code (deterministic: the history length and size come with each workflow task, so a
replay reads the same numbers). The profile's ``[history]`` section sets the thresholds
(keel/contracts/history.py):

- ``continue_due`` — at a safe point after a tool turn: Temporal suggests continuing
  (``is_continue_as_new_suggested``) or the history reached ``continue_after_events`` /
  ``continue_after_bytes``, and ``continue_as_new`` is on;
- ``before_model_call`` — the history plus the largest step seen so far would pass
  ``max_events`` / ``max_bytes``: the run halts before the call;
- ``over`` — the watchdog's predicate while the run waits (an approval, guidance, a lost
  answer): the history reached ``max_events`` / ``max_bytes``.

Each decision that changes what the workflow does goes through ``workflow.patched`` (id
``keel-continue-as-new``), so a run recorded before continue-as-new existed replays as it ran.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.contracts import HistorySettings, names
    from keel.contracts.continued import HistoryState
    from workflows.agent.state import Stop


class HistoryBudget:
    """The thresholds of one run's history and what it has learnt about its steps."""

    def __init__(self, settings: HistorySettings, state: HistoryState | None = None) -> None:
        self.settings = settings
        self.state = state.model_copy() if state is not None else HistoryState()
        self._last: tuple[int, int] | None = None  # (events, bytes) at the last model call

    @staticmethod
    def now() -> tuple[int, int]:
        """This run's history so far: (events, bytes)."""
        info = workflow.info()
        return info.get_current_history_length(), info.get_current_history_size()

    def continue_due(self) -> bool:
        """Whether this safe point should continue as new (records the patch marker)."""
        if not self.settings.continue_as_new:
            return False
        events, size = self.now()
        due = (
            workflow.info().is_continue_as_new_suggested()
            or events >= self.settings.continue_after_events
            or size >= self.settings.continue_after_bytes
        )
        return due and workflow.patched(names.PATCH_CONTINUE_AS_NEW)

    def before_model_call(self) -> Stop | None:
        """``history_limit`` when the next step could pass the budget, else None."""
        events, size = self.now()
        if self._last is not None:
            state = self.state
            state.largest_step_events = max(state.largest_step_events, events - self._last[0])
            state.largest_step_bytes = max(state.largest_step_bytes, size - self._last[1])
        self._last = (events, size)
        projected = (events + self.state.largest_step_events, size + self.state.largest_step_bytes)
        if not self._passes(*projected) or not workflow.patched(names.PATCH_CONTINUE_AS_NEW):
            return None
        return self.stop(events, size, "the next step would pass")

    def over(self) -> bool:
        """The watchdog's predicate (no command: safe inside ``wait_condition``)."""
        return self._passes(*self.now())

    async def watchdog(self) -> None:
        """Return once the history reached its budget (the run then halts); never, in a
        history recorded before the budget existed."""
        await workflow.wait_condition(self.over)
        if not workflow.patched(names.PATCH_CONTINUE_AS_NEW):
            await workflow.wait_condition(lambda: False)

    def stop(self, events: int, size: int, why: str = "it reached") -> Stop:
        settings = self.settings
        how = (
            "continue_as_new is off"
            if not settings.continue_as_new
            else "no safe point to continue as new came first"
        )
        message = (
            f"history limit: {events:,} events, {size:,} bytes; {why} history.max_events="
            f"{settings.max_events:,} or history.max_bytes={settings.max_bytes:,} ({how})"
        )
        return Stop("history_limit", "history_limit", message)

    def _passes(self, events: int, size: int) -> bool:
        return events >= self.settings.max_events or size >= self.settings.max_bytes
