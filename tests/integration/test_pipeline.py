"""The refund triage pipeline (keel.pipeline.refund_triage) end to end on the real stack: the
Temporal dev server, the support desk over HTTP, the simulator's scripted decision models.

Refunds of this module draw on ORD-1057 (60.50 USD paid, delivered) and ORD-1058 (69.99 USD
paid, delivered), Omar Haddad's, seeded for these tests: no other test refunds them. The
rejected refund proposes what is left of ORD-1041 (others refund 5.00 of it at a time).
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError

from keel.contracts import AgentInput, Principal, RunResult
from keel.stack import Stack
from tests.integration.test_approvals import decide, pending, refusal
from workflows.triage.workflow import WORKFLOW_TYPE

DAMAGED = (
    "Hello, order {order} arrived yesterday and the sole of one shoe is torn (photo attached)."
    " Refund please."
)


async def start_triage(client: Client, profile: str, task: str) -> WorkflowHandle[Any, RunResult]:
    return await client.start_workflow(
        WORKFLOW_TYPE,
        AgentInput(profile=profile, task=task, principal=Principal(id="tester", roles=["agent"])),
        id=f"test-triage-{uuid.uuid4().hex[:10]}",
        task_queue="agents",
        result_type=RunResult,
    )


def refunds_of(stack: Stack, order: str) -> list[tuple[int, str]]:
    with sqlite3.connect(stack.config.support_desk_db) as db:
        return db.execute(
            "SELECT amount_cents, reason FROM refunds WHERE order_id = ? ORDER BY rowid", (order,)
        ).fetchall()


async def approve_all(handle: WorkflowHandle[Any, RunResult], tools: list[str]) -> None:
    """Approve the run's requests one by one, in the order ``tools`` names them."""
    for tool in tools:
        (request,) = await pending(handle)
        assert request.tool == tool
        outcome = await decide(handle, request, decision="approve")
        assert outcome.accepted, outcome


async def test_invalid_decision_is_retried_then_the_refund_waits_for_approval(
    client: Client, stack: Stack
) -> None:
    before = refunds_of(stack, "ORD-1057")
    handle = await start_triage(client, "triage_invalid", DAMAGED.format(order="ORD-1057"))
    await approve_all(handle, ["refund_order", "send_email"])
    result = await handle.result()

    assert result.status == "completed", result
    (claim,) = result.decisions
    assert claim.node == "claim"
    assert [a.valid for a in claim.attempts] == [False, True]
    assert "category" in (claim.attempts[0].problem or "")
    assert (claim.decided_by, claim.answer, claim.confidence) == (
        "model", {"category": "damaged", "summary": "The sole of the shoe came apart on arrival."},
        0.92,
    )  # fmt: skip
    assert result.model_calls == 2
    # the policy's amount: everything still refundable on the order, for the claim's reason
    assert refunds_of(stack, "ORD-1057") == [*before, (6050, "damaged")]
    tools = [(s.name, s.outcome) for s in result.steps if s.kind == "tool"]
    assert tools == [("get_order", "ok"), ("get_customer", "ok"), ("refund_order", "ok"),
                     ("send_email", "ok")]  # fmt: skip
    assert [a.tool for a in result.approvals] == ["refund_order", "send_email"]
    assert "Refunded 60.50 USD on order ORD-1057" in (result.final_answer or "")


async def test_low_confidence_escalates_to_a_human_who_edits_the_answer(
    client: Client, stack: Stack
) -> None:
    before = refunds_of(stack, "ORD-1058")
    handle = await start_triage(client, "triage_unsure", DAMAGED.format(order="ORD-1058"))
    (request,) = await pending(handle)
    assert (request.server, request.tool) == ("keel.decision", "decision.claim")
    assert request.arguments == {"category": "other", "confidence": 0.35,
                                 "summary": "The customer is unhappy with the order."}  # fmt: skip
    assert "below 0.70" in (request.reason or "")
    assert request.context["order"]["order_id"] == "ORD-1058"

    # an edit outside the schema is refused, and the request stays open
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await decide(handle, request, decision="edit", arguments={"category": "broken"})
    assert "edit refused: answer: category" in refusal(info).message
    (still,) = await pending(handle)
    assert still.approval_id == request.approval_id
    edited = {"category": "damaged", "summary": "The box arrived crushed."}
    assert (await decide(handle, request, decision="edit", arguments=edited)).accepted
    await approve_all(handle, ["refund_order", "send_email"])
    result = await handle.result()

    assert result.status == "completed", result
    (claim,) = result.decisions
    assert claim.escalations == ["strong", "human"]
    assert [(a.model, a.confidence) for a in claim.attempts] == [
        ("sim/triage_unsure", 0.35), ("sim/triage_unsure", 0.35)
    ]  # fmt: skip
    assert (claim.decided_by, claim.answer, claim.model) == ("human", edited, None)
    assert claim.approval_id == request.approval_id
    assert claim.outcome == "edited by alice"
    assert refunds_of(stack, "ORD-1058") == [*before, (6999, "damaged")]
    audit = [(a.tool, a.decision) for a in result.approvals]
    assert audit == [
        ("decision.claim", "refused"),  # the edit outside the schema, audited
        ("decision.claim", "edit"),
        ("refund_order", "approve"),
        ("send_email", "approve"),
    ]


async def test_a_sure_stronger_tier_settles_the_decision_and_a_rejected_refund_is_not_made(
    client: Client, stack: Stack
) -> None:
    before = refunds_of(stack, "ORD-1041")
    handle = await start_triage(client, "triage_tier", DAMAGED.format(order="ORD-1041"))
    (request,) = await pending(handle)
    assert request.tool == "refund_order"
    assert (await decide(handle, request, decision="reject", reason="photo first")).accepted
    result = await handle.result()

    (claim,) = result.decisions
    assert claim.escalations == ["strong"]
    assert (claim.decided_by, claim.model, claim.confidence) == ("model", "sim/triage_sure", 0.95)
    # the dearer tier's price is charged for its call
    assert [s.name for s in result.steps if s.kind == "model"] == [
        "sim/triage_unsure", "sim/triage_sure"
    ]  # fmt: skip
    assert refunds_of(stack, "ORD-1041") == before
    assert result.status == "completed"
    assert "could not approve a refund on order ORD-1041" in (result.final_answer or "")


async def test_a_message_without_an_order_id_is_answered_without_any_call(
    client: Client,
) -> None:
    handle = await start_triage(client, "triage_invalid", "My shoes broke, refund me!")
    result = await handle.result()
    assert result.status == "completed"
    assert "order number" in (result.final_answer or "")
    assert (result.model_calls, result.tool_calls, result.decisions) == (0, 0, [])


async def test_an_unknown_order_is_not_classified(client: Client) -> None:
    handle = await start_triage(client, "triage_invalid", DAMAGED.format(order="ORD-9999"))
    result = await handle.result()
    assert result.status == "completed"
    assert "could not find order ORD-9999" in (result.final_answer or "")
    assert result.model_calls == 0
    assert [(s.name, s.outcome) for s in result.steps] == [("get_order", "tool_error")]


async def test_a_decision_nobody_settles_in_time_is_declined_by_no_one(client: Client) -> None:
    handle = await start_triage(client, "triage_timeout", DAMAGED.format(order="ORD-1041"))
    result = await handle.result()
    assert result.status == "completed"
    (claim,) = result.decisions
    assert (claim.decided_by, claim.answer, claim.escalations) == ("none", None, ["human"])
    assert claim.outcome == "timed out: nobody decided, so it was declined"
    assert [(a.tool, a.decision) for a in result.approvals] == [("decision.claim", "timeout")]
    assert "A colleague will look at your request about order ORD-1041" in (
        result.final_answer or ""
    )
    assert result.tool_calls == 2  # the lookups: nothing refunded
