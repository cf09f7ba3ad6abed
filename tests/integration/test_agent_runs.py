"""AgentWorkflow end to end on the real stack: dev server, simulator, MCP servers, worker."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from keel.contracts import LimitOverrides, RunResult, RunStatus
from keel.stack import Stack
from tests.helpers import activity_intervals, run, sim_turns, start


async def test_demo_scenario_completes_with_expected_tools(client: Client, stack: Stack) -> None:
    handle = await start(client, "support_scripted")
    result = await handle.result()

    assert result.status == "completed", result.error
    assert result.failure_class is None
    tools = [(s.server, s.name) for s in result.steps if s.kind == "tool"]
    assert tools == [
        ("support_desk", "search_customers"),
        ("support_desk", "get_order"),
        ("knowledge", "search_knowledge"),
        ("knowledge", "get_article"),
    ]
    assert all(s.outcome == "ok" for s in result.steps), [s.detail for s in result.steps]
    assert result.model_calls == 3
    assert result.tool_calls == 4
    assert result.final_answer and "ORD-1042" in result.final_answer
    assert "refund-policy" in result.final_answer
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    # Tool results really came from the MCP servers' data: the order lookup saw 42.00 paid.
    order_step = next(s for s in result.steps if s.name == "get_order")
    assert "42" in order_step.detail
    # Each tool call carries the documented idempotency key.
    keys = [s.idempotency_key for s in result.steps if s.kind == "tool"]
    assert all(k and k.startswith(f"{handle.id}:") for k in keys)
    assert len(set(keys)) == len(keys)

    status = await handle.query("status", result_type=RunStatus)
    assert status.state == "completed"
    assert status.step == 3


async def test_three_tool_calls_of_one_turn_run_concurrently(client: Client) -> None:
    handle = await start(client, "support_scripted")
    result = await handle.result()
    assert result.status == "completed"

    intervals = await activity_intervals(handle, ".call-tool")
    first_turn = sorted(intervals)[:3]
    assert len(first_turn) == 3
    # Every call of the turn started before any of them finished: their runs overlap.
    assert max(start for start, _ in first_turn) < min(end for _, end in first_turn)


async def test_429_twice_then_success_records_attempts(client: Client, stack: Stack) -> None:
    handle = await start(client, "retry429")
    result = await handle.result()

    assert result.status == "completed", result.error
    first_model_step = next(s for s in result.steps if s.kind == "model")
    assert first_model_step.attempts == 3
    turns = sim_turns(stack, handle.id)
    assert turns[0] == {"requests": 3, "completed": 1}


async def test_hanging_model_call_times_out_and_is_retried(client: Client, stack: Stack) -> None:
    handle = await start(client, "hang")
    result = await handle.result()

    assert result.status == "completed", result.error
    assert result.steps[0].attempts == 2
    assert sim_turns(stack, handle.id)[0]["requests"] == 2


async def test_mcp_server_down_fails_run_with_typed_error(client: Client) -> None:
    result = await asyncio.wait_for(run(client, "mcp_down"), timeout=120)

    assert result.status == "failed"
    assert result.failure_class == "upstream_unavailable"
    assert result.error and "offline_desk" in result.error
    # the server and the cause, not "unhandled errors in a TaskGroup (1 sub-exception)"
    assert "MCP server 'offline_desk' unavailable: ConnectError: " in result.error, result.error
    assert "TaskGroup" not in result.error


async def test_malformed_tool_json_and_unknown_tool_go_back_to_model(
    client: Client, stack: Stack
) -> None:
    malformed = await run(client, "malformed")
    unknown = await run(client, "unknown_tool")

    for result, expected in ((malformed, "not valid JSON"), (unknown, "Unknown tool")):
        assert result.status == "completed", result.error
        invalid = [s for s in result.steps if s.outcome == "invalid"]
        assert len(invalid) == 1
        assert expected in invalid[0].detail
    assert "get_order" in next(s for s in unknown.steps if s.outcome == "invalid").detail


async def test_step_limit_halts_run(client: Client) -> None:
    result = await run(client, "support_scripted", limits=LimitOverrides(max_steps=1))

    assert result.status == "halted"
    assert result.stop_reason == "step_limit"
    assert result.model_calls == 1


@pytest.mark.parametrize(
    ("raw_input", "expected"),
    [
        ({"task": "hello"}, "profile: Field required"),
        ({"profile": "support", "task": 42}, "task: Input should be a valid string"),
        ({"profile": "support", "task": "x", "colour": "red"}, "colour: Extra inputs"),
        ("just a string", "valid dictionary"),
        ({"profile": "no_such_profile", "task": "x"}, "unknown profile 'no_such_profile'"),
        (
            {"profile": "support", "task": "x", "limits": {"max_steps": 500}},
            "limits.max_steps=500 exceeds the profile's ceiling of 8",
        ),
    ],
)
async def test_bad_input_fails_with_clear_error(
    client: Client, raw_input: object, expected: str
) -> None:
    handle = await client.start_workflow(
        "AgentWorkflow",
        raw_input,
        id=f"test-bad-input-{abs(hash(str(raw_input)))}-{asyncio.get_running_loop().time()}",
        task_queue="agents",
        result_type=RunResult,
    )
    with pytest.raises(WorkflowFailureError) as info:
        await asyncio.wait_for(handle.result(), timeout=60)
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    assert expected in cause.message


async def test_read_only_run_leaves_support_desk_unchanged(client: Client, stack: Stack) -> None:
    def counts() -> tuple[int, int]:
        with sqlite3.connect(stack.config.support_desk_db) as db:
            refunds = db.execute("SELECT COUNT(*) FROM refunds").fetchone()[0]
            emails = db.execute("SELECT COUNT(*) FROM emails").fetchone()[0]
        return refunds, emails

    before = counts()
    result = await run(client, "support_scripted")
    assert result.status == "completed"
    assert counts() == before


async def test_fallback_model_serves_when_the_primary_fails_for_good(client: Client) -> None:
    result = await run(client, "fallback")  # primary: HTTP 404, not retried; fallback answers

    assert result.status == "completed", result.error
    [step] = [s for s in result.steps if s.kind == "model"]
    assert step.name == "sim/quick_answer"
    assert "served by fallback sim/quick_answer" in step.detail
    assert "sim/retired_model" in step.detail and "404" in step.detail
    # Billed at the fallback's price, which served the call.
    assert step.usage is not None
    expected = (step.usage.input_tokens * 0.10 + step.usage.output_tokens * 0.40) / 1e6
    assert step.cost_usd == pytest.approx(expected)
