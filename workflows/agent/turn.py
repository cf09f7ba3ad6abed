"""One tool turn: budget, validate (schema → authorization → semantic), approvals, then run.

Workflow-side code. Every call of the turn gets a tool message back in the model's call
order — a result, or a structured refusal — so the conversation stays well formed. A call
refused by any check never reaches its MCP server. Calls that need a human decision wait for
it while the turn's other calls run.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from keel.contracts import ChatMessage, StepRecord, ToolCall
    from workflows.agent.call_ids import Renamed
    from workflows.agent.state import RunContext, Stop
    from workflows.approvals.policy import approver_roles, call_needs_approval
    from workflows.approvals.wait import Decided, await_decision, open_request
    from workflows.failures import FailureClass, RunFailed
    from workflows.tools.check import CheckedCall
    from workflows.tools.execute import ToolCallFailed, execute_call, tool_record
    from workflows.tools.validation import PreparedCall, Rejection

# No-progress detection counts refusals and rejections as tool messages (news when unseen).
REFUSALS_ARE_NEWS_PATCH = "no-progress-counts-refusals"


@dataclass
class _Slot:
    """One call of the turn on its way through the checks."""

    call: ToolCall
    model_id: str | None = None  # the model's id for the call, when it had to be renamed
    prepared: PreparedCall | None = None
    checked: CheckedCall | None = None
    refusal: str | None = None  # tool-message content when the call is not run
    record: StepRecord | None = None
    result: str | None = None


async def run_tool_turn(
    ctx: RunContext,
    calls: list[ToolCall],
    reason: str | None = None,
    renamed: list[Renamed] | None = None,
) -> tuple[list[ChatMessage], Stop | None]:
    """Process one turn's calls; return the tool messages and a stop condition, if one tripped.

    Calls are kept by their position in the turn, and their ids are unique
    (workflows/agent/call_ids.py); ``renamed`` says which ids the run gave in place of the
    model's. ``reason`` is what the model said alongside its calls: shown to approvers.
    """
    slots = [_Slot(call) for call in calls]
    for change in renamed or []:
        slots[change.position].model_id = change.original
        ctx.reporter.call_renamed(ctx.ledger.model_calls, calls[change.position].name,
                                  change.position, change.original, change.id)  # fmt: skip
    turn = _Turn(ctx, slots)
    turn.admit()
    await turn.check()
    await turn.run(reason)
    return turn.messages(), turn.final_stop()


class _Turn:
    """One turn's calls on their way through budget, checks, approvals and execution."""

    def __init__(self, ctx: RunContext, slots: list[_Slot]) -> None:
        self.ctx = ctx
        self.slots = slots
        self.step = ctx.ledger.model_calls
        self.now = workflow.now()
        self.stop: Stop | None = None
        self.last_rejection: Rejection | None = None
        self.runnable: list[_Slot] = []

    def refuse(self, slot: _Slot, content: str, outcome: Any, layer: str, reason: str) -> None:
        validation = f"{layer}: {reason}"
        slot.refusal = content
        slot.prepared = None
        slot.record = tool_record(self.step, slot.call, self.now, outcome=outcome,
                                  detail=validation, validation=validation)  # fmt: skip
        self.ctx.reporter.validated(self.step, slot.call.name, slot.call.id, layer=layer,
                                    reason=reason)  # fmt: skip

    def reject(self, slot: _Slot, rejection: Rejection) -> None:
        self.last_rejection = rejection
        self.refuse(slot, rejection.as_tool_content(), "invalid", rejection.layer,
                    rejection.message)  # fmt: skip

    def limit(self, slot: _Slot, layer: str, stop: Stop) -> None:
        self.refuse(slot, _limit_content(stop.message), "refused", layer, stop.message)
        self.stop = self.stop or stop

    def admit(self) -> None:
        """Tool-call budget, the schema layer and the repeat counter, in call order."""
        ctx = self.ctx
        for slot in self.slots:
            if ctx.ledger.tool_calls >= ctx.limits.max_tool_calls:
                message = f"tool-call limit reached (max_tool_calls={ctx.limits.max_tool_calls})"
                self.limit(slot, "limit", Stop("tool_call_limit", "tool_call_limit", message))
                continue
            ctx.ledger.tool_calls += 1
            outcome = ctx.checks.schema(slot.call)
            if isinstance(outcome, Rejection):
                ctx.tracker.record_call(slot.call.name, slot.call.arguments)
                self.reject(slot, outcome)
                continue
            count = ctx.tracker.record_call(slot.call.name, outcome.arguments)
            if count >= ctx.limits.max_repeated_calls:
                message = ctx.tracker.reason or "repeated call"
                self.limit(slot, "no_progress", Stop("no_progress", "no_progress", message))
                continue
            slot.prepared = outcome

    async def check(self) -> None:
        """Semantic lookups and checks, then authorization, of every admitted call:
        concurrently, so a turn's lookups run side by side."""
        admitted = [(s, s.prepared) for s in self.slots if s.prepared is not None]
        outcomes = await asyncio.gather(*(self.ctx.checks.complete(p) for _, p in admitted))
        for (slot, _), outcome in zip(admitted, outcomes, strict=True):
            if isinstance(outcome, Rejection):
                self.reject(slot, outcome)
            else:
                slot.checked = outcome
                self.ctx.reporter.validated(self.step, slot.call.name, slot.call.id)

    async def run(self, reason: str | None) -> None:
        """Run what passed — now, or after a human decision — concurrently."""
        checked = [(s, s.checked) for s in self.slots if s.checked is not None]
        self.runnable = [s for s, _ in checked]
        done = await asyncio.gather(
            *(_run(self.ctx, self.step, c, reason) for _, c in checked), return_exceptions=True
        )
        failure: RunFailed | None = None
        for slot, finished in zip(self.runnable, done, strict=True):
            if isinstance(finished, ToolCallFailed):
                slot.record = finished.record
                failure = failure or finished.failure
            elif isinstance(finished, RunFailed):
                failure = failure or finished
            elif isinstance(finished, BaseException):
                raise finished
            else:
                slot.record, slot.result = finished.record, finished.result
                slot.refusal = None if finished.result is not None else finished.content
                self.stop = self.stop or finished.stop
        for slot in self.slots:
            if slot.record is not None and slot.model_id is not None:
                slot.record = slot.record.model_copy(update={"model_tool_call_id": slot.model_id})
        self.ctx.ledger.steps.extend(s.record for s in self.slots if s.record is not None)
        if failure is not None:
            raise failure

    def final_stop(self) -> Stop | None:
        """The turn's stop condition: one that tripped, else no progress if the run stalled.

        Every tool message counts — a refusal or a rejection the model has not seen is news."""
        tracker = self.ctx.tracker
        if workflow.patched(REFUSALS_ARE_NEWS_PATCH):
            tracker.record_turn(self.step, [(s.call.name, s.refusal or s.result or "")
                                            for s in self.slots])  # fmt: skip
        else:  # a history recorded when only results counted
            tracker.record_step([s.result for s in self.runnable if s.result is not None],
                                not self.runnable)  # fmt: skip
        if self.stop is None and tracker.stalled:
            failure_class: FailureClass = "no_progress"
            if not self.runnable and self.last_rejection is not None:
                failure_class = self.last_rejection.failure_class
            return Stop("no_progress", failure_class, tracker.reason or "no progress")
        return self.stop

    def messages(self) -> list[ChatMessage]:
        """One tool message per call, in the model's call order."""
        images = self.ctx.state.tool_images
        return [
            ChatMessage(
                role="tool",
                tool_call_id=s.call.id,
                content=s.refusal or s.result or "",
                images=images.pop(s.call.id, []),
            )
            for s in self.slots
        ]


async def _run(ctx: RunContext, step: int, checked: CheckedCall, reason: str | None) -> Decided:
    """Run a checked call at once, or open an approval request and wait for the decision."""
    prepared = checked.prepared
    policy = ctx.policies.get(prepared.call.name)
    server = ctx.servers[prepared.tool.server]
    kind, waits = call_needs_approval(prepared.tool, server, policy, prepared.arguments)
    if not waits:
        text, record = await execute_call(
            ctx, step, prepared.call, prepared.tool, prepared.arguments
        )
        return Decided(text, record, result=text)
    roles = approver_roles(policy, ctx.approvals)
    request = open_request(ctx, step, prepared, kind, roles, reason, checked.context())
    return await await_decision(ctx, request, prepared)


def _limit_content(message: str) -> str:
    return json.dumps({"error": "refused_by_limit", "message": message})
