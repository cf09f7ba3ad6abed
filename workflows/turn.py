"""One tool turn: budget, validate (schema → semantic → authorization), then run concurrently.

Workflow-side code. Every call of the turn gets a tool message back in the model's call
order — a result, or a structured refusal — so the conversation stays well formed. A call
refused by any check never reaches its MCP server.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from keel.models import (
        ChatMessage,
        Limits,
        Principal,
        ServerSettings,
        StepRecord,
        ToolCall,
        ToolPolicy,
        ToolSpec,
        Usage,
    )
    from workflows.failures import FailureClass, classify
    from workflows.mcp_calls import RunFailed, activity_meta, call_tool, run_lookups
    from workflows.progress import ProgressTracker
    from workflows.tools import result_text
    from workflows.validation import (
        PolicyError,
        PreparedCall,
        Rejection,
        Validator,
        check_authorization,
        check_semantics,
        plan_lookups,
    )


@dataclass
class Ledger:
    """What the run has spent and done so far (lives in workflow state)."""

    steps: list[StepRecord] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    model_calls: int = 0
    tool_calls: int = 0


@dataclass(frozen=True)
class Stop:
    """A stop condition that tripped: the stop reason and the failure class it implies."""

    reason: str
    failure_class: FailureClass
    message: str


@dataclass
class TurnContext:
    """Everything a tool turn needs from the run."""

    workflow_id: str
    principal: Principal
    limits: Limits
    servers: dict[str, ServerSettings]
    policies: dict[str, ToolPolicy]
    catalog_all: list[ToolSpec]
    validator: Validator
    tracker: ProgressTracker
    ledger: Ledger


@dataclass
class _Slot:
    """One call of the turn on its way through the checks."""

    call: ToolCall
    prepared: PreparedCall | None = None
    refusal: str | None = None  # tool-message content when the call is not run
    record: StepRecord | None = None
    result: str | None = None


def _record(step: int, call: ToolCall, now: datetime, **fields: Any) -> StepRecord:
    fields.setdefault("latency_ms", 0.0)
    return StepRecord(
        step=step, kind="tool", name=call.name, tool_call_id=call.id, started_at=now, **fields
    )


async def run_tool_turn(
    ctx: TurnContext, calls: list[ToolCall]
) -> tuple[list[ChatMessage], Stop | None]:
    """Process one turn's calls; return the tool messages and a stop condition, if one tripped."""
    step = ctx.ledger.model_calls
    now = workflow.now()
    slots = [_Slot(call) for call in calls]
    stop: Stop | None = None
    last_rejection: Rejection | None = None

    def refuse(slot: _Slot, content: str, outcome: Any, validation: str) -> None:
        slot.refusal = content
        slot.record = _record(step, slot.call, now, outcome=outcome, detail=validation,
                              validation=validation)  # fmt: skip

    # 1. Tool-call budget and schema, in call order.
    for slot in slots:
        if ctx.ledger.tool_calls >= ctx.limits.max_tool_calls:
            message = f"tool-call limit reached (max_tool_calls={ctx.limits.max_tool_calls})"
            refuse(slot, _limit_content(message), "refused", f"limit: {message}")
            stop = stop or Stop("tool_call_limit", "tool_call_limit", message)
            continue
        ctx.ledger.tool_calls += 1
        outcome = ctx.validator.check_schema(slot.call)
        if isinstance(outcome, Rejection):
            last_rejection = outcome
            ctx.tracker.record_call(slot.call.name, slot.call.arguments)
            refuse(
                slot, outcome.as_tool_content(), "invalid", f"{outcome.layer}: {outcome.message}"
            )
            continue
        count = ctx.tracker.record_call(slot.call.name, outcome.arguments)
        if count >= ctx.limits.max_repeated_calls:
            message = ctx.tracker.reason or "repeated call"
            refuse(slot, _limit_content(message), "refused", f"no_progress: {message}")
            stop = stop or Stop("no_progress", "no_progress", message)
            continue
        slot.prepared = outcome

    # 2. Semantic lookups for every call that passed the schema, concurrently.
    pending = [s for s in slots if s.prepared is not None]
    plans = {}
    for slot in pending:
        assert slot.prepared is not None
        policy = ctx.policies.get(slot.call.name)
        if policy is None or not policy.checks:
            continue
        try:
            plan = plan_lookups(slot.prepared, policy, ctx.catalog_all)
        except PolicyError as exc:
            raise RunFailed(
                "config_error", f"profile policy for {slot.call.name!r}: {exc}"
            ) from None
        if isinstance(plan, Rejection):
            last_rejection = plan
            refuse(slot, plan.as_tool_content(), "invalid", f"{plan.layer}: {plan.message}")
            slot.prepared = None
        else:
            plans[slot.call.id] = plan
    looked_up = await asyncio.gather(*(run_lookups(p, ctx.servers) for p in plans.values()))
    lookups = dict(zip(plans.keys(), looked_up, strict=True))

    # 3. Semantic checks, then authorization.
    for slot in slots:
        if slot.prepared is None:
            continue
        policy = ctx.policies.get(slot.call.name)
        rejection: Rejection | None = None
        if policy is not None and policy.checks:
            try:
                rejection = check_semantics(
                    slot.prepared, policy, lookups.get(slot.call.id, {}), workflow.now()
                )
            except PolicyError as exc:
                message = f"profile policy for {slot.call.name!r}: {exc}"
                raise RunFailed("config_error", message) from None
        if rejection is None:
            rejection = check_authorization(slot.prepared, policy, ctx.principal)
        if rejection is not None:
            last_rejection = rejection
            refuse(slot, rejection.as_tool_content(), "invalid",
                   f"{rejection.layer}: {rejection.message}")  # fmt: skip
            slot.prepared = None

    # 4. Run what passed, concurrently.
    runnable = [s for s in slots if s.prepared is not None]
    executed = await asyncio.gather(
        *(_execute(ctx, step, s) for s in runnable), return_exceptions=True
    )
    failure: RunFailed | None = None
    for error in executed:
        if isinstance(error, RunFailed):
            failure = failure or error
        elif isinstance(error, BaseException):
            raise error
    for slot in slots:
        if slot.record is not None:
            ctx.ledger.steps.append(slot.record)
    if failure is not None:
        raise failure

    ctx.tracker.record_step([s.result for s in runnable if s.result is not None], not runnable)
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


async def _execute(ctx: TurnContext, step: int, slot: _Slot) -> None:
    assert slot.prepared is not None
    tool = slot.prepared.tool
    key = f"{ctx.workflow_id}:{step}:{slot.call.id}"
    started = workflow.now()
    try:
        result = await call_tool(ctx.servers[tool.server], tool.name, slot.prepared.arguments, key)
    except ActivityError as exc:
        failure, message = classify(exc, f"tool {tool.name!r} on {tool.server!r}")
        slot.record = _record(step, slot.call, started, server=tool.server, outcome="failed",
                              detail=message, idempotency_key=key, validation="passed",
                              latency_ms=_elapsed(started))  # fmt: skip
        raise RunFailed(failure, message) from None
    text = result_text(result)
    attempts, latency = activity_meta(result)
    slot.result = text
    slot.record = _record(step, slot.call, started, server=tool.server,
                          latency_ms=latency if latency is not None else _elapsed(started),
                          attempts=attempts, outcome="tool_error" if result.is_error else "ok",
                          detail=text[:200], idempotency_key=key,
                          validation="passed")  # fmt: skip


def _elapsed(started: datetime) -> float:
    return (workflow.now() - started).total_seconds() * 1000


def _limit_content(message: str) -> str:
    return json.dumps({"error": "refused_by_limit", "message": message})
