"""One tool turn: budget, validate (schema → semantic → authorization), approvals, then run.

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
    from keel.contracts import ApprovalRule, ChatMessage, StepRecord, ToolCall
    from workflows.agent.state import Stop, TurnContext
    from workflows.approvals.policy import approver_roles, needs_approval, reversibility
    from workflows.approvals.wait import Decided, await_decision, open_request
    from workflows.failures import FailureClass
    from workflows.tools.execute import ToolCallFailed, execute_call, tool_record
    from workflows.tools.mcp_calls import RunFailed, run_lookups
    from workflows.tools.semantics import LookupResult
    from workflows.tools.validation import (
        PolicyError,
        PreparedCall,
        Rejection,
        check_authorization,
        check_semantics,
        plan_lookups,
    )


@dataclass
class _Slot:
    """One call of the turn on its way through the checks."""

    call: ToolCall
    prepared: PreparedCall | None = None
    refusal: str | None = None  # tool-message content when the call is not run
    record: StepRecord | None = None
    result: str | None = None


async def run_tool_turn(
    ctx: TurnContext, calls: list[ToolCall], reason: str | None = None
) -> tuple[list[ChatMessage], Stop | None]:
    """Process one turn's calls; return the tool messages and a stop condition, if one tripped.

    ``reason`` is what the model said alongside its calls: shown to approvers.
    """
    step = ctx.ledger.model_calls
    now = workflow.now()
    slots = [_Slot(call) for call in calls]
    stop: Stop | None = None
    last_rejection: Rejection | None = None

    def refuse(slot: _Slot, content: str, outcome: Any, layer: str, reason: str) -> None:
        validation = f"{layer}: {reason}"
        slot.refusal = content
        slot.prepared = None
        slot.record = tool_record(step, slot.call, now, outcome=outcome, detail=validation,
                                  validation=validation)  # fmt: skip
        ctx.reporter.validated(step, slot.call.name, slot.call.id, layer=layer, reason=reason)

    # 1. Tool-call budget, schema and repeats, in call order.
    for slot in slots:
        if ctx.ledger.tool_calls >= ctx.limits.max_tool_calls:
            message = f"tool-call limit reached (max_tool_calls={ctx.limits.max_tool_calls})"
            refuse(slot, _limit_content(message), "refused", "limit", message)
            stop = stop or Stop("tool_call_limit", "tool_call_limit", message)
            continue
        ctx.ledger.tool_calls += 1
        outcome = ctx.validator.check_schema(slot.call)
        if isinstance(outcome, Rejection):
            last_rejection = outcome
            ctx.tracker.record_call(slot.call.name, slot.call.arguments)
            refuse(slot, outcome.as_tool_content(), "invalid", outcome.layer, outcome.message)
            continue
        count = ctx.tracker.record_call(slot.call.name, outcome.arguments)
        if count >= ctx.limits.max_repeated_calls:
            message = ctx.tracker.reason or "repeated call"
            refuse(slot, _limit_content(message), "refused", "no_progress", message)
            stop = stop or Stop("no_progress", "no_progress", message)
            continue
        slot.prepared = outcome

    # 2. Semantic lookups of every call that passed the schema, concurrently.
    lookups = await _lookups(ctx, slots, refuse)

    # 3. Semantic checks, then authorization.
    for slot in slots:
        if slot.prepared is None:
            continue
        rejection = _check(ctx, slot.prepared, lookups.get(slot.call.id, {}))
        if rejection is not None:
            last_rejection = rejection
            refuse(slot, rejection.as_tool_content(), "invalid", rejection.layer, rejection.message)
        else:
            ctx.reporter.validated(step, slot.call.name, slot.call.id)

    # 4. Run what passed — now, or after a human decision — concurrently.
    runnable = [s for s in slots if s.prepared is not None]
    done = await asyncio.gather(
        *(_run(ctx, step, s, reason, lookups.get(s.call.id, {})) for s in runnable),
        return_exceptions=True,
    )
    failure: RunFailed | None = None
    for slot, finished in zip(runnable, done, strict=True):
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
            stop = stop or finished.stop
    ctx.ledger.steps.extend(s.record for s in slots if s.record is not None)
    if failure is not None:
        raise failure

    ran = [s.result for s in runnable if s.result is not None]
    ctx.tracker.record_step(ran, not runnable)
    if stop is None and ctx.tracker.stalled:
        failure_class: FailureClass = "no_progress"
        if not runnable and last_rejection is not None:
            failure_class = last_rejection.failure_class
        stop = Stop("no_progress", failure_class, ctx.tracker.reason or "no progress")
    messages = [
        ChatMessage(role="tool", tool_call_id=s.call.id, content=s.refusal or s.result or "")
        for s in slots
    ]
    return messages, stop


async def _lookups(
    ctx: TurnContext, slots: list[_Slot], refuse: Any
) -> dict[str, dict[str, LookupResult]]:
    plans = {}
    for slot in slots:
        policy = ctx.policies.get(slot.call.name)
        if slot.prepared is None or policy is None or not policy.checks:
            continue
        try:
            plan = plan_lookups(slot.prepared, policy, ctx.catalog_all)
        except PolicyError as exc:
            raise RunFailed(
                "config_error", f"profile policy for {slot.call.name!r}: {exc}"
            ) from None
        if isinstance(plan, Rejection):
            refuse(slot, plan.as_tool_content(), "invalid", plan.layer, plan.message)
        else:
            plans[slot.call.id] = plan
    results = await asyncio.gather(
        *(run_lookups(p, ctx.servers, ctx.policies) for p in plans.values())
    )
    return dict(zip(plans.keys(), results, strict=True))


def _check(
    ctx: TurnContext, prepared: PreparedCall, lookups: dict[str, LookupResult]
) -> Rejection | None:
    policy = ctx.policies.get(prepared.call.name)
    if policy is not None and policy.checks:
        try:
            rejection = check_semantics(prepared, policy, lookups, workflow.now())
        except PolicyError as exc:
            message = f"profile policy for {prepared.call.name!r}: {exc}"
            raise RunFailed("config_error", message) from None
        if rejection is not None:
            return rejection
    return check_authorization(prepared, policy, ctx.principal)


async def _run(
    ctx: TurnContext, step: int, slot: _Slot, reason: str | None,
    lookups: dict[str, LookupResult],
) -> Decided:  # fmt: skip
    """Run a validated call at once, or open an approval request and wait for the decision."""
    prepared = slot.prepared
    assert prepared is not None
    policy = ctx.policies.get(prepared.call.name)
    kind = reversibility(prepared.tool, ctx.servers[prepared.tool.server], policy)
    rule = policy.approval if policy is not None else ApprovalRule()
    if not needs_approval(kind, rule, prepared.arguments):
        text, record = await execute_call(
            ctx, step, prepared.call, prepared.tool, prepared.arguments
        )
        return Decided(text, record, result=text)
    context = {name: r.data for name, r in lookups.items() if r.ok and r.data is not None}
    request = open_request(ctx, step, prepared, kind, approver_roles(policy, ctx.approvals),
                           reason, context)  # fmt: skip
    return await await_decision(ctx, request, prepared)


def _limit_content(message: str) -> str:
    return json.dumps({"error": "refused_by_limit", "message": message})
