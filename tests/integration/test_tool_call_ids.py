"""Tool-call ids a server gets wrong, on the real stack: one id repeated for two refunds of a
turn, another omitted. Each call keeps its own identity — its own lookup, approval request,
decision and idempotency key — and the conversation stays well formed (the simulator, like
OpenAI, refuses tool messages that do not answer the assistant message's calls).

ORD-1040 and ORD-1053 are refunded by no other test of the session stack.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import Any

from temporalio.client import Client, WorkflowHandle

from keel.contracts import ApprovalRequest, Decision, DecisionOutcome
from keel.stack import Stack
from tests.helpers import start


def refunds(stack: Stack) -> list[Any]:
    with sqlite3.connect(stack.config.support_desk_db) as db:
        return db.execute("SELECT order_id, amount_cents FROM refunds ORDER BY rowid").fetchall()


async def two_pending(handle: WorkflowHandle[Any, Any]) -> list[ApprovalRequest]:
    requests: list[ApprovalRequest] = []
    for _ in range(300):
        requests = await handle.query("pending_approvals", result_type=list[ApprovalRequest])
        if len(requests) >= 2:
            return requests
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected two approval requests, got {requests}")


async def decide(handle: WorkflowHandle[Any, Any], request: ApprovalRequest, **fields: Any) -> str:
    decision = Decision(approval_id=request.approval_id, digest=request.digest, by="alice",
                        roles=["supervisor"], **fields)  # fmt: skip
    outcome = await handle.execute_update("decide", decision, result_type=DecisionOutcome)
    return outcome.status


async def test_repeated_and_omitted_ids_keep_every_call_apart(client: Client, stack: Stack) -> None:
    before = refunds(stack)
    handle = await start(client, "duplicate_ids", task="Two damaged orders.")
    requests = await two_pending(handle)
    by_order = {r.arguments["order_id"]: r for r in requests}
    assert sorted(by_order) == ["ORD-1040", "ORD-1053"]
    small, large = by_order["ORD-1040"], by_order["ORD-1053"]
    assert (small.arguments["amount"], large.arguments["amount"]) == (5.0, 50.0)
    # Each request shows the lookup of its own order (50.00 passed only against ORD-1053's).
    assert small.context["order"]["order_id"] == "ORD-1040"
    assert large.context["order"]["order_id"] == "ORD-1053"
    # The first call keeps the model's id; the repeat is renamed by step and position.
    assert (small.tool_call_id, large.tool_call_id) == ("call_dup", "keel-1-1")
    assert small.approval_id != large.approval_id

    assert await decide(handle, large, decision="approve") == "executed"
    assert await decide(handle, small, decision="reject", reason="not covered") == ("rejected")
    result = await handle.result()

    assert result.status == "completed"  # the next model call accepted the conversation
    assert refunds(stack)[len(before) :] == [("ORD-1053", 5000)]  # exactly the approved one
    tools = [s for s in result.steps if s.kind == "tool"]
    assert [(s.name, s.tool_call_id, s.model_tool_call_id, s.outcome) for s in tools] == [
        ("refund_order", "call_dup", None, "rejected"),
        ("refund_order", "keel-1-1", "call_dup", "ok"),
        ("get_order", "keel-1-2", "", "ok"),
    ]
    assert tools[1].idempotency_key == f"{handle.id}:1:keel-1-1"
    assert "approved by alice" in (tools[1].validation or "")
    renamed = [
        (line["position"], line["model_tool_call_id"], line["tool_call_id"])
        for text in stack.log_path("worker").read_text().splitlines()
        if text.startswith("{")
        and (line := json.loads(text)).get("event") == "tool.call_renamed"
        and line.get("workflow_id") == handle.id
    ]
    assert renamed == [(1, "call_dup", "keel-1-1"), (2, "", "keel-1-2")]
