"""Continue-as-new: what a run hands to the next run of its workflow id, and taking it back.

Workflow code (deterministic). At a safe point — after a tool turn, before the next model
call, nothing pending for a human, no activity in flight — and when its history budget says
so (workflows/agent/history_budget.py), a run hands everything it needs to go on to a
``ContinuedRun`` (keel/contracts/continued.py) and continues as new through the workflow
stream's helper, which detaches the stream's pollers (watchers follow to the next run) and
waits for every handler to finish. The next run restores its state from it in
``AgentWorkflow.__init__``, before any signal, update or query is handled.

The stream keeps its last ``STREAM_EVENTS_KEPT`` progress events across the boundary (older
ones are dropped, so the carried input stays bounded); a watcher that attaches later reads
those, then everything since.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.contrib.workflow_streams import WorkflowStream, WorkflowStreamState

with workflow.unsafe.imports_passed_through():
    from pydantic import TypeAdapter, ValidationError

    from activities.payloads import SAFE_PAYLOAD_BYTES
    from keel.contracts import ContinuedRun, Profile, ToolSpec, is_continued
    from keel.contracts.continued import (
        DeskState,
        GuidanceState,
        LedgerState,
        StreamState,
        TrackerState,
    )
    from workflows.agent.history_budget import HistoryBudget
    from workflows.agent.model_step import STORED_PAYLOAD_BYTES
    from workflows.agent.no_progress import ProgressTracker
    from workflows.agent.state import AgentState, Ledger, RunContext
    from workflows.agent.transcript import Transcript
    from workflows.approvals.desk import ApprovalDesk
    from workflows.report.events import emit
    from workflows.report.reporter import Reporter
    from workflows.tools.lost import LostAnswers

STREAM_EVENTS_KEPT = 256
_STREAM = TypeAdapter(WorkflowStreamState)


@dataclass
class Lineage:
    """What a run knows of itself beyond its state: which generation it is, when the first
    one started, the resolved profile and every tool listed (the check pipeline's)."""

    generation: int
    started_at: datetime
    profile: Profile
    catalog_all: list[ToolSpec]


# ---------------------------------------------------------------------------- taking it back


def continued_input(raw: Any) -> ContinuedRun | None:
    """The ``ContinuedRun`` a run was started with, else None (never raises: ``__init__``
    must not fail a workflow task; ``parse_input`` reports a bad input)."""
    if isinstance(raw, ContinuedRun):
        return raw
    if not is_continued(raw):
        return None
    try:
        return ContinuedRun.model_validate(raw)
    except ValidationError:
        return None


def restored_state(carried: ContinuedRun) -> AgentState:
    """The run's state as the previous run left it."""
    ledger, guidance = carried.ledger.model_copy(deep=True), carried.guidance
    return AgentState(
        profile=carried.profile,
        model=carried.resolved.model.name,
        last_event=f"continued as new (run {carried.generation + 1} of this workflow id)",
        transcript=Transcript(carried.conversation.model_copy(deep=True)),
        ledger=Ledger(**{key: getattr(ledger, key) for key in LedgerState.model_fields}),
        desk=_restored_desk(carried.desk),
        guidance=list(guidance.pending),
        escalated=guidance.escalated,
        guidance_used=guidance.used,
        tool_images={key: list(images) for key, images in carried.tool_images.items()},
        lost=LostAnswers(resolutions=dict(carried.resolutions)),
        routing=carried.routing.model_copy() if carried.routing is not None else None,
    )


def _restored_desk(desk: DeskState) -> ApprovalDesk:
    fields = [key for key in DeskState.model_fields if key != "reloaded_kids"]
    restored = ApprovalDesk(**{key: getattr(desk, key) for key in fields})
    restored.reloaded_kids = set(desk.reloaded_kids)
    return restored


def restored_tracker(carried: ContinuedRun) -> ProgressTracker:
    tracker, limits = carried.tracker, carried.limits
    return ProgressTracker(
        limits.max_repeated_calls, limits.max_idle_steps, call_counts=dict(tracker.call_counts),
        seen_results=set(tracker.seen_results), idle_steps=tracker.idle_steps,
        reason=tracker.reason, idle=list(tracker.idle),
    )  # fmt: skip


def stream_state(carried: ContinuedRun | None) -> WorkflowStreamState | None:
    """The workflow stream's prior state (``WorkflowStream(prior_state)``), if carried."""
    if carried is None or carried.stream is None:
        return None
    return _STREAM.validate_python(carried.stream.model_dump())


# ---------------------------------------------------------------------------- handing it on


def carried_stream(state: WorkflowStreamState) -> StreamState:
    """The stream's state with only its last ``STREAM_EVENTS_KEPT`` events."""
    carried = StreamState.model_validate(_STREAM.dump_python(state))
    dropped = max(0, len(carried.log) - STREAM_EVENTS_KEPT)
    carried.log = carried.log[dropped:]
    carried.base_offset += dropped
    return carried


def carried_run(
    state: AgentState, ctx: RunContext, lineage: Lineage, budget: HistoryBudget,
    stream: StreamState | None,
) -> ContinuedRun:  # fmt: skip
    """Everything the next run needs to go on (the task text is in the conversation)."""
    ledger, desk, tracker = state.ledger, state.desk, ctx.tracker
    events, size = budget.now()
    history = budget.state.model_copy(update={
        "earlier_events": budget.state.earlier_events + events,
        "earlier_bytes": budget.state.earlier_bytes + size,
    })  # fmt: skip
    desk_fields = {key: getattr(desk, key) for key in DeskState.model_fields}
    desk_fields["reloaded_kids"] = sorted(desk.reloaded_kids)
    return ContinuedRun(
        generation=lineage.generation + 1, started_at=lineage.started_at,
        principal=ctx.principal, profile=state.profile, resolved=lineage.profile,
        limits=ctx.limits,
        ledger=LedgerState.model_validate(
            {key: getattr(ledger, key) for key in LedgerState.model_fields}
        ),
        desk=DeskState.model_validate(desk_fields),
        guidance=GuidanceState(pending=state.guidance, used=state.guidance_used,
                               escalated=state.escalated),
        tracker=TrackerState(
            call_counts=tracker.call_counts, seen_results=sorted(tracker.seen_results),
            idle_steps=tracker.idle_steps, reason=tracker.reason, idle=tracker.idle,
        ),
        catalog=ctx.catalog, catalog_all=lineage.catalog_all,
        conversation=state.transcript.state, resolutions=state.lost.resolutions,
        tool_images=state.tool_images, stream=stream, history=history, routing=state.routing,
    )  # fmt: skip


class Continuation:
    """Continue-as-new for one run: its lineage, history budget and stream."""

    def __init__(
        self, lineage: Lineage, budget: HistoryBudget, stream: WorkflowStream, reporter: Reporter
    ) -> None:
        self.lineage = lineage
        self.budget = budget
        self._stream = stream
        self._reporter = reporter
        self._too_large = False  # the carried input outgrew one payload: never try again

    async def at_safe_point(self, state: AgentState, ctx: RunContext, handlers_idle: bool) -> None:
        """After a tool turn: continue as new (never returns) when the budget says so and
        nothing waits for a human or is in flight; else return and go on in this run."""
        nothing_pending = not state.desk.pending and not state.lost.pending and handlers_idle
        if self._too_large or not nothing_pending or not self.budget.continue_due():
            return
        lineage, budget = self.lineage, self.budget
        if not fits(carried_run(state, ctx, lineage, budget, self._carried_stream())):
            self._too_large = True
            return
        events, size = budget.now()
        step = state.ledger.model_calls
        self._reporter.continued(step, lineage.generation + 1, events, size)
        state.last_event = f"continued as new after step {step}"
        await self._stream.continue_as_new(
            lambda stream: [carried_run(state, ctx, lineage, budget, carried_stream(stream))]
        )

    def _carried_stream(self) -> StreamState:
        return carried_stream(self._stream.get_state())


def fits(carried: ContinuedRun) -> bool:
    """Whether the carried input fits in one payload. A run whose conversation is held
    inline (no content store on the worker) can outgrow it: it then goes on in this run, and
    its history budget ends it in time; a warning says why."""
    size = len(carried.model_dump_json().encode())
    # A worker with a payload store keeps a large input in it (Profile.payload_store).
    limit = STORED_PAYLOAD_BYTES if carried.resolved.payload_store else SAFE_PAYLOAD_BYTES
    if size <= limit:
        return True
    why = "the carried run is too large for one payload (configure a content store)"
    emit("run.continue_skipped", level=logging.WARNING, generation=carried.generation,
         bytes=size, limit=limit, message=why)  # fmt: skip
    return False
