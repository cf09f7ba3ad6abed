"""Live progress: the workflow stream a run publishes, and `keel run` / `keel watch`.

Integration tests run on the session's real stack (Temporal dev server, worker subprocess,
MCP servers, simulator); the pure template tests are in
tests/unit/workflows/report/test_progress_text.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import sys
from collections import Counter
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError

from keel.contracts import ApprovalRequest, ProgressEvent
from keel.stack import Stack
from keel.watch import stream_events, watch
from tests.helpers import REPO, keel, keel_env, start
from tests.integration.test_workflow_events import reject_all, replaying_worker, start_on

SUPPORT_TASK = "Hi, I'm Maria Lopez (maria.lopez@example.com). ORD-1042 arrived damaged. Refund?"


async def collect(client: Client, workflow_id: str) -> list[ProgressEvent]:
    events: list[ProgressEvent] = []
    await stream_events(client, workflow_id, events.append)
    return events


def identity(event: ProgressEvent) -> tuple[Any, ...]:
    """What makes an event unique in a run: a duplicate would repeat all of it."""
    return (
        event.kind,
        event.step,
        event.data.get("tool_call_id"),
        event.data.get("approval_id"),
        event.message,
    )


def assert_no_duplicates(events: list[ProgressEvent]) -> None:
    repeated = [key for key, n in Counter(identity(e) for e in events).items() if n > 1]
    assert not repeated, f"published more than once: {repeated}"


def assert_support_story(events: list[ProgressEvent]) -> None:
    """The `support_scripted` profile's run (sim/support_demo), with its templates."""
    assert_no_duplicates(events)
    kinds = [e.kind for e in events]
    assert kinds == [
        "run.started",
        "model.started",
        "model.finished",
        *["tool.started"] * 3,
        *["tool.finished"] * 3,
        "model.started",
        "model.finished",
        "tool.started",
        "tool.finished",
        "model.started",
        "model.finished",
        "run.finished",
    ]
    messages = [e.message for e in events]
    assert messages[0] == "run started: profile support_scripted, model sim/support_demo"
    assert messages[1] == "step 1: thinking…"
    assert messages[2].startswith("step 1: sim/support_demo replied with 3 tool call(s) (")
    # Started in the model's call order; finished in whatever order the calls completed.
    assert messages[3:6] == [
        "searching customers for “maria.lopez@example.com”…",
        "looking up order ORD-1042…",
        "searching the policies for “refund policy damaged item”…",
    ]
    finished = {e.tool: e.message for e in events[6:9]}
    assert finished["search_customers"] == "found 1 customer(s)"
    assert re.fullmatch(
        r"order ORD-1042: \w+, paid \$42\.00, refundable \$\d+\.\d\d", finished["get_order"]
    )
    assert re.fullmatch(r"found [1-9]\d* article\(s\)", finished["search_knowledge"])
    assert all(e.data["outcome"] == "ok" for e in events[6:9])
    assert messages[9] == "step 2: thinking…"
    assert messages[11] == "reading article refund-policy…"
    assert messages[12].startswith("read “") and "efund" in messages[12]
    assert messages[14].startswith("step 3: sim/support_demo replied with an answer")
    assert messages[15].startswith("completed: 3 step(s) · 4 tool call(s) · ")
    assert [e.step for e in events] == [None, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3]
    finish = events[-1].data
    assert finish["status"] == "completed"
    assert (finish["model_calls"], finish["tool_calls"]) == (3, 4)
    tool_ids = {e.data["tool_call_id"] for e in events if e.kind == "tool.started"}
    assert tool_ids == {e.data["tool_call_id"] for e in events if e.kind == "tool.finished"}


async def test_scripted_run_streams_templated_progress_in_order(client: Client) -> None:
    handle = await start(client, "support_scripted", SUPPORT_TASK)
    live: list[ProgressEvent] = []
    result = await watch(client, handle.id, live.append)  # subscribes while the run runs

    assert result.status == "completed"
    assert_support_story(live)
    # Read again after the run closed (a query answered by replaying the history): the same
    # log, event for event.
    assert [e.model_dump() for e in await collect(client, handle.id)] == [
        e.model_dump() for e in live
    ]


async def test_retried_model_calls_publish_each_event_once(client: Client) -> None:
    handle = await start(client, "retry429", SUPPORT_TASK)  # turn 1: two 429s, then served
    events: list[ProgressEvent] = []
    result = await watch(client, handle.id, events.append)

    assert result.status == "completed"
    [first] = [s for s in result.steps if s.kind == "model" and s.step == 1]
    assert first.attempts == 3
    assert_no_duplicates(events)
    step_one = [e for e in events if e.step == 1 and e.kind.startswith("model.")]
    assert [e.kind for e in step_one] == ["model.started", "model.finished"]
    assert step_one[1].data["attempts"] == 3
    # The profile has no templates: generic texts.
    assert "calling get_order(order_id=ORD-1042)" in [e.message for e in events]
    assert "get_order done" in [e.message for e in events]


async def test_forced_replay_publishes_each_event_once(client: Client, stack: Stack) -> None:
    async with replaying_worker(client, stack) as queue:
        handle = await start_on(client, queue, "support_scripted", SUPPORT_TASK)
        events: list[ProgressEvent] = []
        result = await watch(client, handle.id, events.append)
        assert result.status == "completed"
        after = await collect(client, handle.id)
    assert_support_story(events)
    assert [e.model_dump() for e in after] == [e.model_dump() for e in events]


async def test_approvals_and_refusals_read_as_progress(client: Client, stack: Stack) -> None:
    with sqlite3.connect(stack.config.support_desk_db) as db:
        [paid, refunded] = db.execute(
            "SELECT paid_cents, refunded_cents FROM orders WHERE order_id = 'ORD-1042'"
        ).fetchone()
    refundable = paid - refunded >= 4200
    handle = await start(client, "refunds", SUPPORT_TASK)
    events: list[ProgressEvent] = []
    watching = asyncio.ensure_future(watch(client, handle.id, events.append))
    await reject_all(handle, 2 if refundable else 1)
    result = await watching

    assert result.status == "completed"
    assert_no_duplicates(events)
    messages = [e.message for e in events]
    email = "send_email to CUS-1001: “Your refund for order ORD-1042”"
    assert f"waiting for approval: {email}" in messages
    assert "send_email rejected by alice (not today)" in messages
    if refundable:
        assert "waiting for approval: refund_order $42.00 on order ORD-1042" in messages
        assert "refund_order rejected by alice (not today)" in messages
    else:  # an earlier test (the demo) refunded ORD-1042 in this session's database
        [refusal] = [e for e in events if e.kind == "tool.refused"]
        assert refusal.tool == "refund_order" and refusal.data["layer"] == "semantic"
    requested = [e for e in events if e.kind == "approval.requested"]
    assert all(e.step == 3 and e.data["reversibility"] == "irreversible" for e in requested)
    decided = [e for e in events if e.kind == "approval.decided"]
    assert [e.data["decision"] for e in decided] == ["reject"] * len(requested)
    # Each decision is published after its request and before the run finishes.
    assert messages.index(f"waiting for approval: {email}") < messages.index(
        "send_email rejected by alice (not today)"
    )
    assert events[-1].kind == "run.finished"


async def test_cancelled_run_releases_its_watchers(client: Client) -> None:
    """A run cancelled while a watcher long-polls it: the watcher ends, and the poll it was
    waiting on was answered before the run closed (no update handler left running)."""
    handle = await start(client, "approvals_two", "James: my watch strap broke.")
    events: list[ProgressEvent] = []
    watching = asyncio.ensure_future(watch(client, handle.id, events.append))
    await _until(lambda: _pending(client, handle.id))
    await _until(lambda: _seen(events, "approval.requested"))
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(watching, timeout=60)

    assert events[-1].kind == "run.finished"
    assert events[-1].message.startswith("failed (cancelled): the run was cancelled")
    updates: Counter[str] = Counter()
    async for event in handle.fetch_history_events():
        updates[EventType.Name(event.event_type)] += 1
    accepted = updates["EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED"]
    assert accepted >= 1
    assert updates["EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED"] == accepted
    assert updates["EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED"] == 1


async def _seen(events: list[ProgressEvent], kind: str) -> bool:
    return any(e.kind == kind for e in events)


def test_progress_of_a_step_limit_run(stack: Stack) -> None:
    out = keel(stack, "run", "loop", "ORD-1042?", "--max-steps", "2")
    assert out.returncode == 1, out.stderr
    assert "stopped (step_limit): step limit reached (max_steps=2)" in out.stderr
    assert "halted (step_limit)" in out.stderr


# ---------------------------------------------------------------------------- the CLI


def test_keel_run_shows_progress_live(stack: Stack) -> None:
    out = keel(stack, "run", "support_scripted", SUPPORT_TASK)
    assert out.returncode == 0, out.stderr
    assert "status: completed" in out.stdout  # stdout: the result; stderr: the progress
    assert "looking up order" not in out.stdout
    lines = out.stderr.splitlines()
    assert any(line.endswith("→ looking up order ORD-1042…") for line in lines)
    assert any(line.endswith("step 2: thinking…") for line in lines)
    assert "■ completed: 3 step(s) · 4 tool call(s) · " in lines[-1]


def test_keel_run_json_prints_events_as_json_lines(stack: Stack) -> None:
    out = keel(stack, "run", "quick", "What is Keel?", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "completed"
    events = [ProgressEvent.model_validate_json(line) for line in out.stderr.splitlines()[1:]]
    assert [e.kind for e in events] == [
        "run.started",
        "model.started",
        "model.finished",
        "run.finished",
    ]


async def test_keel_watch_attaches_to_a_waiting_run_and_to_a_finished_one(
    client: Client, stack: Stack
) -> None:
    # approvals_two: a refund of ORD-1050 and an email to CUS-1002, both irreversible. The
    # email always waits for a human; the refund too while ORD-1050 has 10.00 refundable
    # left (tests that approve refunds draw on it).
    handle = await start(client, "approvals_two", "James: my watch strap broke.")
    await _until(lambda: _pending(client, handle.id))
    pending = await client.get_workflow_handle(handle.id).query(
        "pending_approvals", result_type=list[ApprovalRequest]
    )
    watcher = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "keel", "watch", handle.id, "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=keel_env(stack), cwd=REPO,
    )  # fmt: skip
    assert watcher.stdout is not None
    # What happened so far arrives while the run still waits for the human.
    seen: list[dict[str, Any]] = []
    while [e.get("kind") for e in seen].count("approval.requested") < len(pending):
        line = await asyncio.wait_for(watcher.stdout.readline(), timeout=60)
        assert line, "watch ended before the run did"
        seen.append(json.loads(line))
    assert seen[0]["kind"] == "run.started"
    email = "waiting for approval: send_email(customer_id=CUS-1002, subject=Your refund for"
    assert any(e["message"].startswith(email) for e in seen), seen

    await reject_all(handle, len(pending))
    rest, err = await asyncio.wait_for(watcher.communicate(), timeout=60)
    assert watcher.returncode == 0, err.decode()
    lines = [json.loads(line) for line in rest.decode().splitlines()]
    events, result = seen + lines[:-1], lines[-1]
    assert [e["kind"] for e in events].count("approval.requested") == len(pending)
    assert "send_email rejected by alice (not today)" in [e["message"] for e in events]
    assert events[-1]["kind"] == "run.finished"
    assert result["status"] == "completed"
    assert [a["decision"] for a in result["approvals"]] == ["reject"] * len(pending)

    # The run has finished: watch prints every event, then the result, and exits.
    again = keel(stack, "watch", handle.id)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("waiting for approval: send_email") == 1
    assert "■ completed: 2 step(s)" in again.stdout
    assert "status: completed" in again.stdout


def test_watch_of_an_unknown_run_is_one_line_and_exit_2(stack: Stack) -> None:
    out = keel(stack, "watch", "no-such-run-123")
    assert out.returncode == 2
    assert out.stderr.strip() == "keel: no run with id 'no-such-run-123'"


async def _pending(client: Client, workflow_id: str) -> bool:
    handle = client.get_workflow_handle(workflow_id)
    return bool(await handle.query("pending_approvals"))


async def _until(check: Any, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition never held"
        await asyncio.sleep(0.1)
