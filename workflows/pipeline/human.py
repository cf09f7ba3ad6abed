"""A decision a human settles, through the run's approval desk.

The request is an ordinary approval request (``keel approvals``, ``keel approve|edit|reject``,
the ``decide`` signal and update, signed decisions when the profile requires them, the
timeout and its escalation webhook), whose ``server`` is ``keel.decision`` and whose ``tool``
is ``decision.<node>``: no MCP server is called. Its ``arguments`` are the model's proposed
answer with its confidence (empty when no model answered validly). Approve accepts that
answer, edit replaces it with the decider's (validated against the answer's model: refused,
the request stays open, as an edit of a tool call whose arguments the checks refuse), reject
declines the decision: the pipeline decides what a declined decision means.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ValidationError

    from keel.contracts import DECISION_SERVER, ApprovalRequest, Decision, approval_digest
    from keel.contracts.errors import describe_validation_error
    from workflows.agent.state import RunContext, Stop
    from workflows.approvals.wait import close_request, wait_accepted


@dataclass
class Verdict:
    """What the human decided: the answer (None: declined or nobody answered)."""

    approval_id: str
    outcome: str
    answer: dict[str, Any] | None = None
    rejected: bool = False
    stop: Stop | None = None  # nobody answered, even after escalation


def decision_tool(node: str) -> str:
    return f"decision.{node}"


async def ask_human(
    ctx: RunContext,
    node: str,
    proposal: dict[str, Any],
    facts: dict[str, Any],
    why: str,
    answer_model: type[BaseModel],
) -> Verdict:
    request = _open(ctx, node, proposal, facts, why)
    while True:
        decision = await wait_accepted(ctx, request)
        now = workflow.now()
        ctx.reporter.approval_decided(request, decision, now)
        if decision is None:
            return _timed_out(ctx, request, now)
        by = decision.by or "a human"
        if decision.decision == "reject":
            close_request(ctx, request, "reject", decision, now, "declined")
            return Verdict(request.approval_id, f"declined by {by}", rejected=True)
        answer = {k: v for k, v in proposal.items() if k != "confidence"}
        if decision.decision == "edit":
            edited = _edited(ctx, request, decision, answer_model, now)
            if edited is None:
                continue  # refused; the request stays open
            answer = edited
        elif not answer:
            why_not = "there is no proposed answer to approve: edit it with the answer"
            ctx.desk.refuse_edit(request, decision, why_not, now)
            ctx.reporter.decision_refused(decision, why_not, request)
            ctx.on_pending_change()
            continue
        how = "accepted" if decision.decision == "approve" else "edited"
        close_request(ctx, request, decision.decision, decision, now, how, answer)
        return Verdict(request.approval_id, f"{how} by {by}", answer=answer)


def _open(
    ctx: RunContext, node: str, proposal: dict[str, Any], facts: dict[str, Any], why: str
) -> ApprovalRequest:
    now = workflow.now()
    tool = decision_tool(node)
    request = ApprovalRequest(
        approval_id=f"apr-{workflow.uuid4().hex[:20]}",
        workflow_id=ctx.workflow_id,
        step=ctx.ledger.model_calls,
        tool_call_id=f"{tool}-{len(ctx.state.decisions) + 1}",
        tool=tool,
        server=DECISION_SERVER,
        arguments=proposal,
        principal=ctx.principal,
        reversibility="reversible",
        reason=why,
        context=facts,
        approver_roles=list(ctx.approvals.approver_roles),
        created_at=now,
        expires_at=now + timedelta(seconds=ctx.approvals.timeout_seconds),
        digest=approval_digest(DECISION_SERVER, tool, proposal),
        identity_required=ctx.desk.identity_required,
    )
    ctx.desk.open(request)
    ctx.on_pending_change()
    ctx.reporter.approval_requested(request)
    return request


def _edited(
    ctx: RunContext,
    request: ApprovalRequest,
    decision: Decision,
    answer_model: type[BaseModel],
    now: Any,
) -> dict[str, Any] | None:
    arguments = {k: v for k, v in (decision.arguments or {}).items() if k != "confidence"}
    try:
        return answer_model.model_validate(arguments).model_dump(mode="json")
    except ValidationError as exc:
        why = "edit refused: " + describe_validation_error(exc, "answer").replace("\n", "; ")
    ctx.desk.refuse_edit(request, decision, why, now)
    ctx.reporter.decision_refused(decision, why, request)
    ctx.on_pending_change()
    return None


def _timed_out(ctx: RunContext, request: ApprovalRequest, now: Any) -> Verdict:
    close_request(ctx, request, "timeout", None, now, "nobody decided in time")
    if request.escalated:
        message = f"no decision on {request.tool} ({request.approval_id}) after escalation"
        stop = Stop("approval_timeout", "approval_timeout", message)
        return Verdict(request.approval_id, "timed out after escalation", stop=stop)
    return Verdict(request.approval_id, "timed out: nobody decided, so it was declined")
