"""Runs of any length on the real stack: continue-as-new and the history budget.

The test profiles set ``[history] continue_after_events = 10``, so a run continues as new after
every tool turn: each test crosses one or more boundaries and checks that the run goes on as
one run — its result, its queries, its approvals, its guidance and its progress stream — and
that a run whose history would pass its budget halts with a typed result instead.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from keel.client import start_run
from keel.contracts import AgentInput, Principal, RunResult, RunStatus
from keel.runtime.config import Settings
from keel.stack import Stack
from keel.watch import stream_events
from tests.helpers import keel, run_chain, sim_requests, start
from tests.integration.media_server import page_text

STORY_ORDERS = ["ORD-1040", "ORD-1041", "ORD-1042", "ORD-1043", "ORD-1044"]


async def wait_for_status(client: Client, workflow_id: str, done: Any) -> RunStatus:
    """The latest run's status once ``done(status)`` holds (bounded polling)."""
    handle = client.get_workflow_handle(workflow_id)
    for _ in range(600):
        status = await handle.query("status", result_type=RunStatus)
        if done(status):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {workflow_id} never reached the expected status: {status}")


async def test_a_run_continues_as_new_and_its_result_covers_every_step(
    client: Client, stack: Stack
) -> None:
    settings = Settings.from_env(stack.config.client_env())
    agent_input = AgentInput(profile="continue_story", task="Look the five orders up.",
                             principal=Principal(id="tester", roles=["agent"]))  # fmt: skip
    # The handle of the SDK, obtained before any boundary: it names the workflow id.
    handle = await start_run(client, settings, agent_input)
    status = await wait_for_status(client, handle.id, lambda s: s.continued >= 3)
    # Queried through the old handle after three boundaries: the counts are the whole run's.
    seen = await handle.query("status", result_type=RunStatus)
    assert seen.continued >= 3 and seen.step >= status.step >= 3
    assert seen.tool_calls >= 3

    result = await handle.result()
    assert result.status == "completed"
    assert result.final_answer == "I looked up ORD-1040 to ORD-1044, one after the other."
    assert result.continued == 5  # after each of the five tool turns
    assert (result.model_calls, result.tool_calls) == (6, 5)
    assert [s.step for s in result.steps if s.kind == "model"] == [1, 2, 3, 4, 5, 6]
    tools = [s for s in result.steps if s.kind == "tool"]
    assert [(s.step, s.name, s.outcome) for s in tools] == [(n, "get_order", "ok") for n in
                                                            range(1, 6)]  # fmt: skip
    costs = [s.cost_usd or 0.0 for s in result.steps if s.kind == "model"]
    assert abs(result.cost_usd - sum(costs)) < 1e-9 and result.cost_usd > 0
    assert result.usage.input_tokens == sum(
        s.usage.input_tokens for s in result.steps if s.usage is not None
    )

    chain = await run_chain(client, handle.id, handle.first_execution_run_id or "")
    assert len(chain) == 6
    for number, events in enumerate(chain):
        scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in events
                     if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]  # fmt: skip
        assert scheduled.count("keel.llm.chat") == 1  # one model call per run
        if number:  # a continued run never loads its profile or lists its tools again
            assert set(scheduled) <= {"keel.llm.chat", "temporalio.mcp.support_desk.call-tool"}
    final = await client.get_workflow_handle(handle.id).query("status", result_type=RunStatus)
    assert (final.state, final.step, final.tool_calls, final.continued) == ("completed", 6, 5, 5)


def test_keel_run_and_watch_follow_the_progress_across_every_boundary(stack: Stack) -> None:
    run_id = f"cli-continue-{uuid.uuid4().hex[:10]}"
    out = keel(stack, "run", "continue_story", "Look the five orders up.", "--id", run_id)
    assert out.returncode == 0, out.stderr
    assert "I looked up ORD-1040 to ORD-1044" in out.stdout
    for step in range(1, 7):  # every step's progress, whichever run made it
        assert f"step {step}: thinking" in out.stderr
    assert out.stderr.count("continued as new after step") == 5

    watched = keel(stack, "watch", run_id, "--json")
    assert watched.returncode == 0, watched.stderr
    *events, result = [json.loads(line) for line in watched.stdout.splitlines()]
    kinds = [event["kind"] for event in events]
    assert kinds[0] == "run.started" and kinds[-1] == "run.finished"
    assert kinds.count("run.started") == 1 and kinds.count("run.continued") == 5
    assert [e["data"]["generation"] for e in events if e["kind"] == "run.continued"] == [
        1, 2, 3, 4, 5,
    ]  # fmt: skip
    assert kinds.count("model.finished") == 6
    assert (result["status"], result["continued"]) == ("completed", 5)

    status = keel(stack, "status", run_id, "--json")
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert (shown["state"], shown["step"], shown["continued"]) == ("completed", 6, 5)
    assert shown["execution"] == "Completed"


async def test_the_progress_stream_is_read_across_the_boundary(client: Client) -> None:
    handle = await start(client, "continue_story", task="Look the five orders up.")
    received: list[Any] = []
    delivered = await stream_events(client, handle.id, received.append)  # from the first run
    assert delivered == len(received)
    steps = [e.step for e in received if e.kind == "model.started"]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert received[-1].kind == "run.finished" and received[-1].data["status"] == "completed"
    result = await client.get_workflow_handle(handle.id, result_type=RunResult).result()
    assert result.continued == 5


async def test_an_approval_requested_after_a_boundary_is_decided_by_workflow_id(
    client: Client, stack: Stack
) -> None:
    handle = await start(client, "continue_refund", task="James Okafor: the strap broke.")
    await wait_for_status(client, handle.id, lambda s: s.state == "awaiting_approval")
    listed = keel(stack, "approvals", "--json")
    assert listed.returncode == 0, listed.stderr
    [request] = [r for r in json.loads(listed.stdout) if r["workflow_id"] == handle.id]
    assert (request["tool"], request["step"]) == ("refund_order", 2)

    rejected = keel(stack, "reject", handle.id, request["approval_id"], "--reason",
                    "not under the policy", "--by", "bob", "--role", "supervisor")  # fmt: skip
    assert rejected.returncode == 0, rejected.stderr
    assert rejected.stdout.startswith(f"rejected: {request['approval_id']} in run {handle.id}")

    result = await client.get_workflow_handle(handle.id, result_type=RunResult).result()
    assert result.status == "completed"
    assert result.continued == 2  # after the lookup, and after the rejected refund
    [record] = result.approvals
    assert (record.decision, record.by, record.step) == ("reject", "bob", 2)
    refused = [s for s in result.steps if s.name == "refund_order"]
    assert [s.outcome for s in refused] == ["rejected"]
    # A decision on it again is refused in one line.
    again = keel(stack, "approve", handle.id, request["approval_id"], "--role", "supervisor")
    assert again.returncode == 2 and "Traceback" not in again.stderr


async def test_an_escalated_run_is_guided_after_a_boundary(client: Client) -> None:
    handle = await start(client, "continue_escalate")  # loop: no_progress at the 3rd call
    status = await wait_for_status(client, handle.id, lambda s: s.state == "awaiting_guidance")
    assert status.continued == 2  # the repeat counter was carried across both boundaries
    await client.get_workflow_handle(handle.id).signal(
        "guide",
        {"instruction": "Stop re-reading the order.", "extend": {"max_repeated_calls": 5},
         "by": "lead"},
    )  # fmt: skip
    result = await client.get_workflow_handle(handle.id, result_type=RunResult).result()
    assert (result.status, result.stop_reason, result.guidance) == ("halted", "no_progress", 1)
    gets = [s for s in result.steps if s.name == "get_order" and s.outcome == "ok"]
    assert len(gets) == 2 + 4 and result.model_calls == 8
    # A boundary after every tool turn but the two that tripped the limit: the raised limit
    # and the fresh repeat counts were carried too.
    assert result.continued == 6


async def test_a_run_whose_history_would_pass_its_budget_halts_with_history_limit(
    client: Client,
) -> None:
    handle = await start(client, "history_limit", task="Look the five orders up.")
    result = await handle.result()
    assert (result.status, result.stop_reason, result.failure_class) == (
        "halted", "history_limit", "history_limit",
    )  # fmt: skip
    assert 1 <= result.model_calls < 6 and result.continued == 0
    assert "history.max_events=30" in (result.error or "")
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.COMPLETED  # a result, not a termination
    assert description.search_attributes["KeelFailureClass"] == ["history_limit"]


async def test_keel_status_says_a_terminated_run_is_terminated(
    client: Client, stack: Stack
) -> None:
    handle = await start(client, "escalate")
    await wait_for_status(client, handle.id, lambda s: s.state == "awaiting_guidance")
    await handle.terminate(reason="operator stopped it")
    out = keel(stack, "status", handle.id)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("[terminated]")
    assert "operator stopped it" in out.stdout
    shown = json.loads(keel(stack, "status", handle.id, "--json").stdout)
    assert (shown["state"], shown["execution"]) == ("terminated", "Terminated")
    assert shown["step"] == 3  # what the run had done, read from its last state
    # KeelState cannot be changed on a closed run: it still says what the run last set.
    description = await handle.describe()
    assert description.search_attributes["KeelState"] == ["awaiting_guidance"]


async def test_a_run_waiting_for_a_human_halts_when_its_history_reaches_the_budget(
    client: Client,
) -> None:
    handle = await start(client, "history_limit_approval", task="James Okafor: the strap broke.")
    await wait_for_status(client, handle.id, lambda s: s.state == "awaiting_approval")
    # Decisions that cannot be accepted still land in history: enough of them pass the budget.
    for attempt in range(60):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            break
        await handle.signal("decide", {"approval_id": f"apr-{attempt:020d}", "decision": "approve"})
        await asyncio.sleep(0.05)
    result = await handle.result()
    assert (result.status, result.failure_class) == ("halted", "history_limit")
    assert "history.max_events=70" in (result.error or "")
    refused = [r for r in result.approvals if r.decision == "refused"]
    assert refused and all("not pending" in r.outcome for r in refused)
    assert not [s for s in result.steps if s.name == "refund_order" and s.outcome == "ok"]
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_a_long_run_of_20_kb_results_continues_as_new_and_reads_its_whole_conversation(
    client: Client, stack: Stack
) -> None:
    """bench/history.py's 1000-step run at a smaller scale: 60 steps of 20 KB pages, a new
    run every ~150 KB of history; each run's history stays small, and the model still reads
    every page of the conversation, the ones from earlier runs included."""
    handle = await start(client, "long_continued", task="Page through the ledger.")
    result = await handle.result()

    assert (result.status, result.stop_reason) == ("halted", "step_limit"), result.error
    assert (result.model_calls, result.tool_calls) == (60, 60)
    assert result.continued >= 3
    tools = [s for s in result.steps if s.kind == "tool"]
    assert [s.outcome for s in tools] == ["ok"] * 60
    chain = await run_chain(client, handle.id, handle.first_execution_run_id or "")
    assert len(chain) == result.continued + 1
    sizes = [sum(e.ByteSize() for e in events) for events in chain]
    assert max(sizes) < 400_000, sizes  # 150 KB threshold + one step, not 60 steps of pages
    last = sim_requests(stack, handle.id)[-1]["body"]["messages"]
    pages = [m["content"] for m in last if m["role"] == "tool"]
    assert pages == [page_text(n, 20) for n in range(1, 60)]
