"""Bounded runs on the real stack: every stop condition trips exactly at its value, and no
refused call reaches a server (the support-desk database shows no side effect)."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from keel.contracts import (
    ApprovalRequest,
    Decision,
    DecisionOutcome,
    LimitOverrides,
    RunResult,
    RunStatus,
)
from keel.stack import Stack
from tests.helpers import run, sim_turns, start


def side_effects(stack: Stack) -> dict[str, Any]:
    """Every table a write tool can touch, so 'no side effect' is checked, not assumed."""
    with sqlite3.connect(stack.config.support_desk_db) as db:
        return {
            table: db.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("refunds", "emails", "orders", "tickets", "ticket_notes")
        }


def tools_run(result: RunResult) -> list[str]:
    return [s.name for s in result.steps if s.kind == "tool" and s.outcome in ("ok", "tool_error")]


# ------------------------------------------------------------------------- steps and tool calls


@pytest.mark.parametrize(("max_steps", "status"), [(2, "halted"), (3, "completed")])
async def test_step_limit_trips_exactly_at_its_value(
    client: Client, max_steps: int, status: str
) -> None:
    # The demo needs exactly 3 model calls.
    result = await run(client, "budget", limits=LimitOverrides(max_steps=max_steps))
    assert result.status == status
    assert result.model_calls == min(max_steps, 3)
    if status == "halted":
        assert result.stop_reason == result.failure_class == "step_limit"


@pytest.mark.parametrize(
    ("max_tool_calls", "executed", "status"),
    [(2, 2, "halted"), (3, 3, "halted"), (4, 4, "completed")],
)
async def test_tool_call_limit_trips_exactly_at_its_value(
    client: Client, max_tool_calls: int, executed: int, status: str
) -> None:
    # The demo makes 3 tool calls in its first turn and 1 in its second.
    result = await run(client, "budget", limits=LimitOverrides(max_tool_calls=max_tool_calls))
    assert result.status == status
    assert len(tools_run(result)) == executed
    assert result.tool_calls == executed
    refused = [s for s in result.steps if s.outcome == "refused"]
    if status == "halted":
        assert result.stop_reason == result.failure_class == "tool_call_limit"
        assert len(refused) == 1  # the first call past the limit, never sent
    else:
        assert refused == []


# ------------------------------------------------------------------------- tokens and cost


async def test_token_budget_is_never_crossed_and_refuses_the_call_before_it_is_made(
    client: Client, stack: Stack
) -> None:
    full = await run(client, "budget")
    assert full.status == "completed"
    first_two = sum(
        s.usage.total_tokens for s in full.steps if s.kind == "model" and s.step <= 2 and s.usage
    )
    # Room for the first two calls, not for the third: the third must be refused, unsent.
    budget = first_two + 1000
    handle = await start(client, "budget", limits=LimitOverrides(max_tokens=budget))
    result = await handle.result()
    assert result.status == "halted"
    assert result.stop_reason == result.failure_class == "token_budget"
    assert result.usage.total_tokens <= budget
    assert result.model_calls == 2
    assert 2 not in sim_turns(stack, handle.id)  # the third turn was never requested


async def test_cost_cap_of_one_cent_is_never_exceeded(client: Client, stack: Stack) -> None:
    handle = await start(client, "expensive")
    result = await handle.result()

    assert result.status == "halted"
    assert result.stop_reason == result.failure_class == "cost_budget"
    assert result.cost_usd <= 0.01
    assert result.model_calls >= 1
    # The call that would have crossed the cap was refused before it was made.
    turns = sim_turns(stack, handle.id)
    assert max(turns) == result.model_calls - 1
    assert "cost" in (result.error or "")
    per_step = sum(s.cost_usd or 0 for s in result.steps if s.kind == "model")
    assert abs(per_step - result.cost_usd) < 1e-9


# ------------------------------------------------------------------------- no progress


async def test_looping_model_halts_with_no_progress_at_the_repeated_call(client: Client) -> None:
    result = await run(client, "loop")  # max_repeated_calls = 3
    assert result.status == "halted"
    assert result.stop_reason == result.failure_class == "no_progress"
    assert tools_run(result) == ["get_order", "get_order"]  # the 3rd identical call is refused
    assert result.model_calls == 3


async def test_steps_without_new_information_halt_after_k(client: Client) -> None:
    result = await run(client, "idle")  # max_idle_steps = 3, different args, same results
    assert result.status == "halted"
    assert result.stop_reason == "no_progress"
    assert result.model_calls == 4  # one informative step, then three idle ones
    assert "no new information" in (result.error or "")


async def test_repeated_hallucinated_tool_halts_with_its_failure_class(client: Client) -> None:
    result = await run(client, "loop_hallucinate")  # max_idle_steps = 3
    assert result.status == "halted"
    assert result.stop_reason == "no_progress"
    assert result.failure_class == "tool_hallucination"
    # The first refusal is news (the model may correct itself); the same refusal again is not.
    assert result.model_calls == 4
    assert all(s.outcome == "invalid" for s in result.steps if s.kind == "tool")
    assert "steps 2, 3, 4: check_refund_status answered only" in (result.error or "")


async def test_a_refusal_and_a_rejection_are_news_the_model_may_answer(
    client: Client, stack: Stack
) -> None:
    """max_idle_steps = 1: a step without news would halt the run at once. The invented id's
    refusal and the human's rejection are news, so the model corrects itself, then answers."""
    before = side_effects(stack)
    handle = await start(client, "idle_rejection")
    for _ in range(300):
        status = await handle.query("status", result_type=RunStatus)
        if status.pending_approvals or status.state not in ("running", "awaiting_approval"):
            break
        await asyncio.sleep(0.05)
    assert status.pending_approvals == 1, status.last_event  # not halted by the refusal
    [request] = await handle.query("pending_approvals", result_type=list[ApprovalRequest])
    assert request.arguments["order_id"] == "ORD-1042"
    decision = Decision(approval_id=request.approval_id, digest=request.digest,
                        decision="reject", by="alice", roles=["supervisor"],
                        reason="not covered by the policy")  # fmt: skip
    await handle.execute_update("decide", decision, result_type=DecisionOutcome)
    result = await handle.result()
    assert (result.status, result.failure_class, result.error) == ("completed", None, None)
    assert result.model_calls == 3
    assert result.final_answer and "rejected by a supervisor" in result.final_answer
    assert [(s.name, s.outcome) for s in result.steps if s.kind == "tool"] == [
        ("refund_order", "invalid"),
        ("refund_order", "rejected"),
    ]
    assert side_effects(stack) == before


# ------------------------------------------------------------------------- wall clock


async def test_wall_clock_cancels_the_call_in_flight_and_ends_cleanly(
    client: Client, stack: Stack
) -> None:
    handle = await start(client, "wallclock")  # 5 s limit; each model turn takes 3 s
    result = await asyncio.wait_for(handle.result(), timeout=60)

    assert result.status == "halted"
    assert result.stop_reason == result.failure_class == "wall_clock"
    assert result.model_calls == 2  # the second call was in flight when the timer fired
    cancel_requested = [
        e
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED
    ]
    assert len(cancel_requested) == 1
    status = await handle.query("status", result_type=RunStatus)
    assert status.state == "halted"


# ------------------------------------------------------------------------- validation


async def test_wrong_types_and_malformed_json_never_reach_the_server(
    client: Client, stack: Stack
) -> None:
    result = await run(client, "wrong_types")
    assert result.status == "completed"
    invalid = [s for s in result.steps if s.outcome == "invalid"]
    assert [s.name for s in invalid] == ["get_order", "list_orders", "search_customers"]
    assert all(s.validation and s.validation.startswith("schema: ") for s in invalid)
    assert "not valid JSON" in (invalid[2].validation or "")
    assert tools_run(result) == ["get_order"]


async def test_invented_order_and_over_refund_are_refused_without_side_effect(
    client: Client, stack: Stack
) -> None:
    before = side_effects(stack)
    result = await run(client, "guarded")
    assert result.status == "completed"
    refusals = [s for s in result.steps if s.kind == "tool" and s.outcome == "invalid"]
    assert [(s.validation or "").split(":")[0] for s in refusals] == [
        "semantic",
        "semantic",
        "schema",
    ]
    assert "ORD-9999" in (refusals[0].validation or "")
    assert "refundable" in (refusals[1].validation or "")
    assert "multiple of 0.01" in (refusals[2].validation or "")
    assert side_effects(stack) == before


async def test_refund_without_the_role_is_unauthorized_and_has_no_side_effect(
    client: Client, stack: Stack
) -> None:
    before = side_effects(stack)
    handle = await client.start_workflow(
        "AgentWorkflow",
        {
            "profile": "unauthorized",
            "task": "Refund ORD-1042",
            "principal": {"id": "bob", "roles": ["agent"]},
        },
        id="test-unauthorized-refund",
        task_queue="agents",
        result_type=RunResult,
    )
    result = await handle.result()
    refused = [s for s in result.steps if s.outcome == "invalid"]
    assert len(refused) == 1
    assert (refused[0].validation or "").startswith("authorization: ")
    assert "supervisor" in (refused[0].validation or "")
    assert side_effects(stack) == before
    # Authorization comes before the semantic lookups: no get_order ran for bob, so nothing of
    # the order reached him (the scenario's only call is the refused refund).
    scheduled = [
        event.activity_task_scheduled_event_attributes.activity_type.name
        async for event in handle.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert not [name for name in scheduled if name.endswith(".call-tool")], scheduled


async def test_failure_class_is_searchable(client: Client) -> None:
    handle = await start(client, "loop")
    await handle.result()
    # Visibility is eventually consistent: poll briefly for the run to appear.
    for _ in range(50):
        found = [
            w.id
            async for w in client.list_workflows(
                f"KeelFailureClass = 'no_progress' AND WorkflowId = '{handle.id}'"
            )
        ]
        if found:
            break
        await asyncio.sleep(0.2)
    assert found == [handle.id]


async def test_escalation_waits_for_guidance_and_extends_once(client: Client) -> None:
    handle = await start(client, "escalate")  # loop: trips no_progress at the 3rd call
    for _ in range(200):
        status = await handle.query("status", result_type=RunStatus)
        if status.state == "awaiting_guidance":
            break
        await asyncio.sleep(0.1)
    assert status.state == "awaiting_guidance"
    await handle.signal(
        "guide",
        {
            "instruction": "Stop re-reading the order.",
            "extend": {"max_repeated_calls": 5},
            "by": "lead",
        },
    )
    result = await handle.result()
    assert result.status == "halted"  # it looped again; a second escalation is not offered
    assert result.stop_reason == "no_progress"
    assert tools_run(result).count("get_order") == 2 + 4
    assert result.model_calls == 8
