"""Irreversible actions wait for a human, on the real stack.

After each scenario the support-desk database holds exactly the effects that were approved:
tests run one at a time against one database, so the rows a test adds are its own.
The approved refunds of this module and tests/integration/test_cli_approvals.py all draw on ORD-1050
(129.99 refundable, 116.00 used): a new approving test should use another order (the tool-error
and failing-call tests propose refunds of ORD-1047, which the desk refuses: it is refunded in full).

A decision names its request by id and digest (``decide`` below fills both in from the request).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from keel.contracts import (
    AgentInput,
    ApprovalRequest,
    Decision,
    DecisionOutcome,
    Principal,
    RunResult,
    RunStatus,
)
from keel.stack import Stack
from tests.helpers import (
    DEMO_TASK,
    desk_server,
    plain_events,
    private_worker,
    start,
)

SUPERVISOR = ["supervisor"]


def rows(stack: Stack) -> dict[str, list[Any]]:
    with sqlite3.connect(stack.config.support_desk_db) as db:
        return {
            "refunds": db.execute(
                "SELECT order_id, amount_cents FROM refunds ORDER BY rowid"
            ).fetchall(),
            "emails": db.execute(
                "SELECT customer_id, subject FROM emails ORDER BY rowid"
            ).fetchall(),
        }


def added(before: dict[str, list[Any]], after: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {table: after[table][len(before[table]) :] for table in before}


async def pending(handle: WorkflowHandle[Any, Any], count: int = 1) -> list[ApprovalRequest]:
    for _ in range(300):
        requests = await handle.query("pending_approvals", result_type=list[ApprovalRequest])
        if len(requests) >= count:
            return requests
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} approval(s) never became pending")


async def completed_tool_calls(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """Activity types of the MCP tool calls that have completed so far."""
    scheduled: dict[int, str] = {}
    completed: list[str] = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attrs.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            kind = scheduled[event.activity_task_completed_event_attributes.scheduled_event_id]
            if kind.endswith(".call-tool"):
                completed.append(kind)
    return completed


def digest_of(server: str, tool: str, arguments: dict[str, Any]) -> str:
    """The documented digest (docs/operations.md), computed here independently of Keel."""
    canonical = json.dumps({"server": server, "tool": tool, "arguments": arguments},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)  # fmt: skip
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


async def decide(
    handle: WorkflowHandle[Any, Any], request: ApprovalRequest, **fields: Any
) -> DecisionOutcome:
    """Decide ``request`` (its id and digest unless ``fields`` say otherwise) by update."""
    fields.setdefault("approval_id", request.approval_id)
    if getattr(request, "digest", None) is not None:  # (so this module runs on older Keels)
        fields.setdefault("digest", request.digest)
    fields.setdefault("by", "alice")
    fields.setdefault("roles", SUPERVISOR)
    return await handle.execute_update("decide", Decision(**fields), result_type=DecisionOutcome)


def refusal(info: pytest.ExceptionInfo[WorkflowUpdateFailedError]) -> ApplicationError:
    """The typed, non-retryable failure a refused ``decide`` update carries."""
    cause = info.value.cause
    assert isinstance(cause, ApplicationError), cause
    assert (cause.type, cause.non_retryable) == ("DecisionRefused", True)
    assert "\n" not in cause.message
    return cause


async def test_approve_runs_the_call_exactly_once(client: Client, stack: Stack) -> None:
    before = rows(stack)
    handle = await start(client, "approvals", task="James: my watch strap broke.")
    [request] = await pending(handle)

    assert request.tool == "refund_order"
    assert request.arguments["amount"] == 20.0
    assert request.reversibility == "irreversible"
    assert request.principal.id == "tester"
    assert request.reason and "partial refund of 20.00" in request.reason
    assert request.context["order"]["order_id"] == "ORD-1050"  # what the refund acts on
    assert request.approver_roles == SUPERVISOR
    assert request.expires_at > request.created_at
    status = await handle.query("status", result_type=RunStatus)
    assert (status.state, status.pending_approvals) == ("awaiting_approval", 1)
    # The turn's read-only get_order runs without waiting for the human: while the refund is
    # pending, two get_order calls complete (the model's own and the refund's semantic lookup).
    for _ in range(100):
        completed = await completed_tool_calls(handle)
        if len(completed) == 2:
            break
        await asyncio.sleep(0.1)
    assert len(completed) == 2
    assert (await handle.query("status", result_type=RunStatus)).pending_approvals == 1

    outcome = await decide(handle, request, decision="approve")
    assert outcome.accepted and outcome.status == "executed"
    result = await handle.result()

    assert result.status == "completed"
    assert added(before, rows(stack)) == {"refunds": [("ORD-1050", 2000)], "emails": []}
    [record] = result.approvals
    assert (record.decision, record.by, record.outcome) == ("approve", "alice", "executed")
    refund_step = next(s for s in result.steps if s.name == "refund_order")
    assert refund_step.outcome == "ok" and "approved by alice" in (refund_step.validation or "")


async def test_edit_runs_the_edited_arguments(client: Client, stack: Stack) -> None:
    before = rows(stack)
    handle = await start(client, "approvals")
    [request] = await pending(handle)
    edited = {**request.arguments, "amount": 15.0}
    outcome = await decide(handle, request, decision="edit", arguments=edited)
    assert outcome.status == "executed with edited arguments"
    result = await handle.result()
    assert added(before, rows(stack))["refunds"] == [("ORD-1050", 1500)]
    assert result.approvals[0].arguments == edited


async def test_invalid_edits_are_refused_and_nothing_happens(client: Client, stack: Stack) -> None:
    before = rows(stack)
    handle = await start(client, "approvals")
    [request] = await pending(handle)
    # Schema-invalid: refused by the update's validator, the request stays pending.
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await decide(handle, request, decision="edit",
                     arguments={**request.arguments, "amount": "lots"})  # fmt: skip
    assert "edited arguments are invalid" in refusal(info).message
    assert len(await pending(handle)) == 1
    # Semantically invalid (more than the order's refundable amount): accepted as a decision,
    # re-validated with a fresh lookup, refused — and the request stays open for another one.
    too_much = {**request.arguments, "amount": 5000.0}
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await decide(handle, request, decision="edit", arguments=too_much, by="bob")
    message = refusal(info).message
    assert message.startswith("edit refused") and "refundable" in message
    assert [r.approval_id for r in await pending(handle)] == [request.approval_id]
    assert (await handle.query("status", result_type=RunStatus)).state == "awaiting_approval"
    outcome = await decide(handle, request, decision="reject", reason="no refund after all")
    assert outcome.status == "rejected"
    result = await handle.result()
    assert result.status == "completed"
    assert added(before, rows(stack)) == {"refunds": [], "emails": []}
    refused, rejected = result.approvals
    assert (refused.decision, refused.by, refused.arguments) == ("refused", "bob", too_much)
    assert refused.outcome.startswith("edit refused") and refused.tool == "refund_order"
    assert (rejected.decision, rejected.outcome) == ("reject", "rejected")
    step = next(s for s in result.steps if s.name == "refund_order")
    assert step.outcome == "rejected"  # the model hears of the final decision only


async def test_reject_tells_the_model_and_changes_nothing(client: Client, stack: Stack) -> None:
    before = rows(stack)
    handle = await start(client, "approvals")
    [request] = await pending(handle)
    outcome = await decide(handle, request, decision="reject", reason="the strap is not covered")
    assert outcome.status == "rejected"
    result = await handle.result()
    assert result.status == "completed"
    assert added(before, rows(stack)) == {"refunds": [], "emails": []}
    step = next(s for s in result.steps if s.name == "refund_order")
    assert step.outcome == "rejected" and "the strap is not covered" in step.detail
    assert result.approvals[0].decision == "reject"


async def test_a_decision_sent_before_the_request_is_refused(client: Client, stack: Stack) -> None:
    """No blind pre-approval: a decision started with the run (signal-with-start) for the id
    the request would once have had is refused and audited; the request waits for a human."""
    before = rows(stack)
    blind = {"approval_id": "apr-1-call_0_1", "decision": "approve", "by": "early",
             "roles": SUPERVISOR}  # fmt: skip
    handle = await client.start_workflow(
        "AgentWorkflow",
        AgentInput(profile="approvals", task=DEMO_TASK,
                   principal=Principal(id="tester", roles=["agent"])),
        id=f"test-blind-{uuid.uuid4().hex[:10]}", task_queue="agents", result_type=RunResult,
        start_signal="decide", start_signal_args=[blind],
    )  # fmt: skip
    [request] = await pending(handle)
    assert request.approval_id != "apr-1-call_0_1"
    assert re.fullmatch(r"apr-[0-9a-f]{20}", request.approval_id)
    assert request.digest == digest_of(request.server, request.tool, request.arguments)
    await decide(handle, request, decision="reject", reason="not without a look")
    result = await handle.result()
    assert added(before, rows(stack)) == {"refunds": [], "emails": []}
    refused, rejected = result.approvals
    assert (refused.approval_id, refused.decision, refused.by) == ("apr-1-call_0_1", "refused",
                                                                    "early")  # fmt: skip
    assert "is not pending in this run" in refused.outcome
    assert (rejected.decision, rejected.digest) == ("reject", request.digest)


async def test_a_decision_must_name_the_request_digest(client: Client, stack: Stack) -> None:
    before = rows(stack)
    handle = await start(client, "approvals")
    [request] = await pending(handle)
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await decide(handle, request, decision="approve", digest=None)
    assert "must name the digest" in refusal(info).message
    other = digest_of(request.server, request.tool, {**request.arguments, "amount": 99.0})
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await decide(handle, request, decision="approve", digest=other)
    assert "does not match" in refusal(info).message
    # By signal: refused and written to the audit trail.
    forged = Decision(approval_id=request.approval_id, digest=other, decision="approve",
                      by="mallory", roles=SUPERVISOR)  # fmt: skip
    await handle.signal("decide", forged)
    assert len(await pending(handle)) == 1
    await decide(handle, request, decision="reject", reason="test over")
    result = await handle.result()
    assert added(before, rows(stack)) == {"refunds": [], "emails": []}
    refused, rejected = result.approvals
    assert (refused.decision, refused.by, refused.digest) == ("refused", "mallory", other)
    assert "does not match" in refused.outcome and refused.tool == "refund_order"
    assert rejected.decision == "reject"


async def test_an_approved_call_that_returns_a_tool_error_is_audited_as_one(
    client: Client, stack: Stack
) -> None:
    before = rows(stack)
    handle = await start(client, "approvals_tool_error")
    [request] = await pending(handle)
    assert request.arguments["order_id"] == "ORD-1047"
    outcome = await decide(handle, request, decision="approve")
    assert outcome.status.startswith("tool error: ") and "fully refunded" in outcome.status
    result = await handle.result()
    assert result.status == "completed"
    assert added(before, rows(stack)) == {"refunds": [], "emails": []}
    [record] = result.approvals
    assert (record.decision, record.outcome) == ("approve", outcome.status)
    assert next(s for s in result.steps if s.name == "refund_order").outcome == "tool_error"


@contextlib.asynccontextmanager
async def worker_with_slow_desk(stack: Stack, tmp: Path) -> AsyncIterator[str]:
    """An in-process worker on a private task queue whose ``support_desk`` is a private
    support-desk server taking 3 s per tool call; yields the task queue."""
    # The stack's keys: the desk verifies the approval grant the worker signs with them.
    desk_env = {**stack.config.server_env(), "SUPPORT_DESK_LATENCY_MS": "3000"}
    with desk_server(tmp, env=desk_env) as url:
        async with private_worker(stack, "slow-desk", {"KEEL_MCP_SUPPORT_DESK": url}) as queue:
            yield queue


async def test_the_update_is_answered_when_the_approved_call_fails_the_run(
    client: Client, stack: Stack, tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    """The approved refund cannot be delivered (1 s, one attempt, against a 3 s tool), which
    fails the run: the approver's update answers what became of the decision (sent, then
    failed) instead of being dropped, and the audit says the call was sent."""
    async with worker_with_slow_desk(stack, tmp_path) as queue:
        handle = await client.start_workflow(
            "AgentWorkflow",
            AgentInput(profile="approvals_call_fails", task=DEMO_TASK,
                       principal=Principal(id="tester", roles=["agent"])),
            id=f"test-call-fails-{uuid.uuid4().hex[:10]}", task_queue=queue,
            result_type=RunResult,
        )  # fmt: skip
        [request] = await pending(handle)
        outcome = await decide(handle, request, decision="approve")
        result = await handle.result()
    assert outcome.accepted
    assert outcome.status.startswith("sent, then failed: tool 'refund_order'")
    assert (result.status, result.failure_class) == ("failed", "upstream_unavailable")
    [record] = result.approvals
    assert record.decision == "approve"
    assert record.outcome == outcome.status  # it may have taken effect: the audit says so
    # The in-process worker's SDK warns (TMPRL1102) when a run ends with an update unanswered.
    assert not [w for w in recwarn if "TMPRL1102" in str(w.message)]


async def test_a_repeated_decision_is_idempotent(client: Client, stack: Stack) -> None:
    before = rows(stack)
    handle = await start(client, "approvals_two")  # the pending email keeps the run waiting
    refund, email = await pending(handle, 2)
    first = await decide(handle, refund, decision="approve")
    again = await decide(handle, refund, decision="approve")
    repeat = Decision(approval_id=refund.approval_id, digest=refund.digest, decision="approve",
                      by="alice", roles=SUPERVISOR)  # fmt: skip
    await handle.signal("decide", repeat)
    await handle.signal("decide", {"approve": "everything"})  # not a decision: logged, ignored
    with pytest.raises(WorkflowUpdateFailedError) as info:  # a different decision is refused
        await decide(handle, refund, decision="reject", reason="no")
    assert "already decided" in refusal(info).message
    await decide(handle, email, decision="reject", reason="not needed")
    result = await handle.result()
    assert first == again
    assert added(before, rows(stack)) == {"refunds": [("ORD-1050", 1000)], "emails": []}
    assert [r.decision for r in result.approvals] == ["approve", "reject"]
    ignored = [
        line
        for text in stack.log_path("worker").read_text().splitlines()
        if text.startswith("{")
        and (line := json.loads(text)).get("event") == "approval.signal_ignored"
        and line["workflow_id"] == handle.id
    ]
    assert len(ignored) == 1 and "approval_id" in ignored[0]["error"]


async def test_two_approvals_in_one_turn_decided_in_reverse_order(
    client: Client, stack: Stack
) -> None:
    before = rows(stack)
    handle = await start(client, "approvals_two")
    refund, email = await pending(handle, 2)
    assert (refund.tool, email.tool) == ("refund_order", "send_email")
    assert (await decide(handle, email, decision="approve")).status == "executed"
    assert len(await pending(handle)) == 1  # the refund still waits
    assert (await decide(handle, refund, decision="approve")).status == "executed"
    result = await handle.result()
    assert result.status == "completed"
    assert added(before, rows(stack)) == {
        "refunds": [("ORD-1050", 1000)],
        "emails": [("CUS-1002", "Your refund for ORD-1050")],
    }
    assert [r.tool for r in result.approvals] == ["send_email", "refund_order"]


async def test_worker_killed_while_waiting_then_decision_applies(
    client: Client, stack: Stack
) -> None:
    before = rows(stack)
    handle = await start(client, "approvals")
    [request] = await pending(handle)
    stack.kill("worker")
    stack.start("worker")
    outcome = await decide(handle, request, decision="approve")
    assert outcome.status == "executed"
    result = await handle.result()
    assert result.status == "completed"
    assert added(before, rows(stack))["refunds"] == [("ORD-1050", 2000)]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"approval_id": "apr-9-nope", "decision": "approve"}, "is not pending in this run"),
        ({"decision": "approve", "digest": "sha256:" + "0" * 64}, "does not match"),
        ({"decision": "approve", "roles": ["agent"], "by": "bob"}, "may not decide refund_order"),
        ({"decision": "reject"}, "needs a 'reason'"),
    ],
)
async def test_update_refuses_bad_decisions(
    client: Client, stack: Stack, fields: dict[str, Any], expected: str
) -> None:
    before = rows(stack)
    handle = await start(client, "approvals")
    [request] = await pending(handle)
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await decide(handle, request, **fields)
    assert expected in refusal(info).message
    assert len(await pending(handle)) == 1  # nothing was decided
    await decide(handle, request, decision="reject", reason="test over")
    result: RunResult = await handle.result()
    assert result.status == "completed"
    assert added(before, rows(stack)) == {"refunds": [], "emails": []}


async def test_untrusted_server_write_gets_one_attempt_reads_are_retried(
    client: Client, stack: Stack
) -> None:
    """A third-party server cannot be trusted to deduplicate: its side-effecting tool gets a
    single attempt, its read-only tools the normal retries (and per-tool timeouts apply)."""
    before = rows(stack)
    handle = await start(client, "approvals_untrusted")
    [request] = await pending(handle)
    edited = {**request.arguments, "amount": 1.0}
    await decide(handle, request, decision="edit", arguments=edited)
    result = await handle.result()
    assert result.status == "completed"
    assert added(before, rows(stack))["refunds"] == [("ORD-1050", 100)]
    policies: dict[str, tuple[int, float]] = {}
    for event in await plain_events(client, handle):  # the summaries are encrypted
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name.endswith(".call-tool"):
                tool = json.loads(event.user_metadata.summary.data).split(" ")[0]
                policies[tool] = (
                    attrs.retry_policy.maximum_attempts,
                    attrs.start_to_close_timeout.ToTimedelta().total_seconds(),
                )
                heartbeat = attrs.heartbeat_timeout.ToTimedelta().total_seconds()
                assert 0 < heartbeat <= 10  # capped at the start-to-close timeout
    assert policies["refund_order"][0] == 1
    assert policies["get_order"] == (3, 7.0)  # the server's attempts, the tool's own timeout
