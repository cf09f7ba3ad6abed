"""Waiting for a human decision on one tool call, and carrying the decision out.

Approve runs the call as proposed; edit validates the new arguments through all three layers
again and runs them — arguments the checks refuse are audited and the request stays open for
another decision; reject tells the model who rejected it and why. A request nobody decides
in time is auto-rejected, or — if the profile says ``escalate`` — announced to a webhook (an
activity) and given a second, longer wait, after which the run halts (``approval_timeout``).

A request's id is random (``workflow.uuid4``, the same on replay) and it carries the digest of
exactly what would run; runs recorded before that keep ``apr-<step>-<call id>`` and no digest
(workflows/approvals/versions.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.notify import Notification, NotifyActivities
    from keel.contracts import (
        ApprovalRequest,
        Decision,
        DecisionRecord,
        Reversibility,
        StepRecord,
        ToolCall,
        approval_digest,
    )
    from workflows.agent.state import RunContext, Stop
    from workflows.approvals.desk import DecisionError
    from workflows.approvals.policy import approval_id
    from workflows.approvals.versions import bound, carries_grants
    from workflows.report.events import emit
    from workflows.tools.execute import ToolCallFailed, execute_call, tool_record
    from workflows.tools.validation import PreparedCall, Rejection

NOTIFY_TIMEOUT = timedelta(seconds=15)


@dataclass
class Decided:
    """What became of a call that waited for approval."""

    content: str  # the tool message the model sees
    record: StepRecord
    result: str | None = None  # tool result text when the call ran
    stop: Stop | None = None  # approval_timeout after an escalation nobody answered


def open_request(
    ctx: RunContext, step: int, prepared: PreparedCall, kind: Reversibility,
    roles: list[str], reason: str | None, context: dict[str, Any],
) -> ApprovalRequest:  # fmt: skip
    """Create the request (with its digest), and show the new state."""
    now = workflow.now()
    tool, arguments = prepared.tool, prepared.arguments
    digested = bound(ctx.desk)
    aid = f"apr-{workflow.uuid4().hex[:20]}" if digested else approval_id(step, prepared.call.id)
    request = ApprovalRequest(
        approval_id=aid, workflow_id=ctx.workflow_id, step=step, tool_call_id=prepared.call.id,
        tool=tool.name,
        server=tool.server, arguments=arguments, principal=ctx.principal, reversibility=kind,
        reason=reason, context=context, approver_roles=roles, created_at=now,
        expires_at=now + timedelta(seconds=ctx.approvals.timeout_seconds),
        digest=approval_digest(tool.server, tool.name, arguments) if digested else None,
        identity_required=ctx.desk.identity_required,
    )  # fmt: skip
    ctx.desk.open(request)
    _warn_if_unsigned(ctx, request)
    if not digested:
        _apply_early(ctx, request, now)
    ctx.on_pending_change()
    ctx.reporter.approval_requested(request)
    return request


def _warn_if_unsigned(ctx: RunContext, request: ApprovalRequest) -> None:
    """A run whose decisions need no identity token warns once, at its first request: who
    can send ``decide`` can claim any name and role (docs/security.md)."""
    if ctx.desk.identity_required or ctx.desk.warned_unsigned:
        return
    ctx.desk.warned_unsigned = True
    emit(
        "approval.identity_not_required",
        level=logging.WARNING,
        approval_id=request.approval_id,
        tool=request.tool,
        message="this run accepts unsigned decisions: anyone who can send decide can claim"
        " any name and role; set approvals.require_identity = true in the profile",
    )


def _apply_early(ctx: RunContext, request: ApprovalRequest, now: Any) -> None:
    """Runs recorded before digests: a decision that arrived before its request applies."""
    early = ctx.desk.early.pop(request.approval_id, None)
    if early is not None:
        try:
            ctx.desk.check(early, now)
            ctx.desk.accept(early)
        except DecisionError as exc:
            ctx.desk.refuse(early, str(exc), now, request)
            ctx.reporter.decision_refused(early, str(exc), request)


async def await_decision(
    ctx: RunContext, request: ApprovalRequest, prepared: PreparedCall
) -> Decided:
    """Wait for the decision and carry it out; a refused edit waits for another decision."""
    while True:
        decision = await wait_accepted(ctx, request)
        now = workflow.now()
        ctx.reporter.approval_decided(request, decision, now)
        if decision is None:
            return _timed_out(ctx, request, prepared.call, now)
        if decision.decision == "reject":
            by = decision.by or "a human"
            message = f"{request.tool} was not called: {by} rejected it: {decision.reason}"
            decided = _refused(request.step, prepared.call, "rejected_by_human", message,
                               "rejected")  # fmt: skip
            close_request(ctx, request, "reject", decision, now, "rejected")
            return decided
        arguments: dict[str, Any] | Decided | None = prepared.arguments
        if decision.decision == "edit":
            arguments = await _edited(ctx, request, prepared, decision, now)
        if arguments is None:
            continue  # the edit was refused; the request is still open
        if isinstance(arguments, Decided):
            return arguments
        return await _carry_out(ctx, request, prepared, decision, arguments, now)


def _timed_out(ctx: RunContext, request: ApprovalRequest, call: ToolCall, now: Any) -> Decided:
    if request.escalated:
        message = (
            f"no decision on {request.tool} ({request.approval_id}) after escalation;"
            f" the run stops for a human to pick it up"
        )
        decided = _refused(request.step, call, "approval_timeout", message, "timeout")
        decided.stop = Stop("approval_timeout", "approval_timeout", message)
    else:
        message = (
            f"{request.tool} was not called: nobody approved it within"
            f" {ctx.approvals.timeout_seconds:g}s, so it was rejected automatically"
        )
        decided = _refused(request.step, call, "approval_timeout", message, "timeout")
    close_request(ctx, request, "timeout", None, now, decided.record.detail)
    return decided


async def _edited(
    ctx: RunContext, request: ApprovalRequest, prepared: PreparedCall, decision: Decision,
    now: Any,
) -> dict[str, Any] | Decided | None:  # fmt: skip
    """The edited arguments once all three layers passed them. Refused: None, the refusal
    audited and the request left open — or, in runs recorded before digests, the request
    closed and the model told (a ``Decided``)."""
    assert decision.arguments is not None
    step, call = request.step, prepared.call
    edited = await _revalidate(ctx, prepared, decision.arguments)
    if not isinstance(edited, Rejection):
        ctx.reporter.validated(step, call.name, call.id, edit=True)
        return edited.arguments
    ctx.reporter.validated(step, call.name, call.id, layer=edited.layer, reason=edited.message,
                           edit=True)  # fmt: skip
    why = f"edit refused: {edited.message}"
    if ctx.desk.bound:
        ctx.desk.refuse_edit(request, decision, why, now)
        ctx.reporter.decision_refused(decision, why, request)
        ctx.on_pending_change()
        return None
    record = tool_record(
        step, call, now, outcome="invalid", validation=f"edit: {edited.layer}: {edited.message}",
        detail=f"edited arguments refused: {edited.message}",
    )  # fmt: skip
    close_request(ctx, request, "edit", decision, now, why)
    return Decided(edited.as_tool_content(), record)


async def _carry_out(
    ctx: RunContext, request: ApprovalRequest, prepared: PreparedCall, decision: Decision,
    arguments: dict[str, Any], now: Any,
) -> Decided:  # fmt: skip
    """Run the approved (or edited) call and close the request with what came of it."""
    approved = decision.decision == "approve"
    by = f"{'approved' if approved else 'edited'} by {decision.by or 'a human'}"
    mark = approval_mark(request, decision, arguments) if carries_grants() else None
    try:
        text, record = await execute_call(
            ctx, request.step, prepared.call, prepared.tool, arguments, validation=f"passed; {by}",
            approval=mark,
        )  # fmt: skip
    except ToolCallFailed as failed:  # the audit says it was sent: it may have taken effect
        if ctx.desk.bound:
            outcome = f"sent, then failed: {failed.failure.message}"
            close_request(ctx, request, decision.decision, decision, now, outcome, arguments)
        raise
    outcome = "executed" if approved else "executed with edited arguments"
    if record.outcome == "tool_error" and ctx.desk.bound:
        first = next((line for line in text.splitlines() if line.strip()), "")
        outcome = f"tool error: {first.strip()[:300]}"
    close_request(ctx, request, decision.decision, decision, now, outcome, arguments)
    return Decided(text, record, result=text)


def approval_mark(
    request: ApprovalRequest, decision: Decision, arguments: dict[str, Any]
) -> dict[str, Any]:
    """What an approved call tells the worker (``io.keel/approval``): the decision, who took
    it, and the digest it approves — the request's, which the approver decided on, or after
    an edit that of the edited arguments as checked. The worker mints a grant only if the
    arguments it sends have that digest (activities/grants.py)."""
    if decision.decision == "approve" and request.digest is not None:
        digest = request.digest
    else:
        digest = approval_digest(request.server, request.tool, arguments)
    return {"id": request.approval_id, "digest": digest, "by": decision.by}


async def wait_accepted(ctx: RunContext, request: ApprovalRequest) -> Decision | None:
    """The accepted decision, or None when every wait timed out."""
    aid = request.approval_id
    for attempt in (2,) if request.escalated else (1, 2):
        remaining = (request.expires_at - workflow.now()).total_seconds()
        try:
            await workflow.wait_condition(
                lambda: aid in ctx.desk.accepted, timeout=max(remaining, 0.001)
            )
            return ctx.desk.accepted[aid]
        except TimeoutError:
            if attempt == 2 or ctx.approvals.on_timeout != "escalate":
                return None
        request.escalated = True
        request.expires_at = workflow.now() + timedelta(
            seconds=ctx.approvals.escalation_timeout_seconds
        )
        ctx.on_pending_change()
        ctx.reporter.approval_escalated(request)
        await _notify(ctx, request)
    return None


async def _notify(ctx: RunContext, request: ApprovalRequest) -> None:
    """Announce an escalated approval; a notification that cannot be sent does not stop the
    second wait (it is logged, and visible in history)."""
    url = ctx.approvals.escalation_webhook
    if not url:
        return
    try:
        notice = Notification(
            url=url,
            payload={"event": "approval_escalated", "request": request.model_dump(mode="json")},
        )
        await workflow.execute_activity_method(
            NotifyActivities.webhook,
            notice,
            start_to_close_timeout=NOTIFY_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=3),
            summary=f"notify {request.approval_id}",
        )
    except ActivityError as exc:
        emit(
            "approval.escalation_failed",
            level=logging.WARNING,
            step=request.step,
            approval_id=request.approval_id,
            error=str(exc.cause or exc)[:500],
        )


async def _revalidate(
    ctx: RunContext, prepared: PreparedCall, arguments: dict[str, Any]
) -> PreparedCall | Rejection:
    """Edited arguments pass the same three layers as the model's own call."""
    call = ToolCall(id=prepared.call.id, name=prepared.call.name, arguments=json.dumps(arguments))
    checked = await ctx.checks.check(call)
    return checked if isinstance(checked, Rejection) else checked.prepared


def _refused(step: int, call: ToolCall, error: str, message: str, outcome: str) -> Decided:
    fix = "do not repeat this call unchanged; a new call needs a new approval"
    content = json.dumps({"error": error, "message": message, "fix": fix})
    record = tool_record(step, call, workflow.now(), outcome="rejected", detail=message,
                         validation=f"approval: {outcome}")  # fmt: skip
    return Decided(content, record)


def close_request(
    ctx: RunContext, request: ApprovalRequest, kind: Any, decision: Decision | None,
    now: Any, outcome: str, arguments: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    record = DecisionRecord(
        approval_id=request.approval_id, tool=request.tool, decision=kind,
        by=decision.by if decision else None, at=now,
        reason=decision.reason if decision else None,
        arguments=arguments if arguments is not None else request.arguments,
        outcome=outcome, requested_at=request.created_at, step=request.step,
        digest=decision.digest if decision else None,
    )  # fmt: skip
    ctx.desk.close(request, record)
    ctx.on_pending_change()
    ctx.reporter.approval_closed(record)
