"""Chaos driver shared by tests/integration/test_chaos.py (small N) and bench/chaos.py (large N).

Starts its own stack (so killing and restarting its parts disturbs no other test), starts N
approval-needing runs, and while they run: approves every request as a human would (by
signal, which survives restarts), SIGKILLs and restarts the worker, kills and restarts the
support-desk MCP server, restarts the Temporal dev server on the same SQLite file, and makes
the simulator fail or hang a share of all model calls. Then it collects what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from keel.contracts import AgentInput, ApprovalRequest, Principal, RunResult
from keel.stack import Stack, StackConfig
from tests.helpers import REPO

APPROVE_EARLY = 6.0  # seconds after start: the runs wait for approval by then
APPROVE_LATE = 13.0
PROFILES = os.pathsep.join([str(REPO / "tests" / "profiles"), str(REPO / "profiles")])


def chaos_stack(home: Path) -> Stack:
    config = StackConfig.isolated(
        home,
        extra_worker_env={
            "KEEL_PROFILES_PATH": PROFILES,
            "KEEL_BREAKER_FAILURES": "20",
            "KEEL_BREAKER_COOLDOWN_SECONDS": "1",
            "KEEL_MCP_READ_TIMEOUT_SECONDS": "5",
        },
    )
    # Tool calls take 1.5 s, so a crash can land while a refund is in flight.
    config.component_env = {"support_desk": {"SUPPORT_DESK_LATENCY_MS": "1500"}}
    return Stack(config)


@dataclass
class ChaosReport:
    runs: int
    statuses: dict[str, int] = field(default_factory=dict)
    refunds: int = 0
    emails: int = 0
    approvals_sent: int = 0
    model_requests: int = 0
    model_turns: int = 0
    repeated_after_completion: list[str] = field(default_factory=list)
    retried_write_calls: int = 0  # refunds/emails whose activity ran more than once
    actions: list[str] = field(default_factory=list)
    seconds: float = 0.0


async def connect(stack: Stack) -> Client:
    return await Client.connect(
        stack.config.temporal_address, data_converter=pydantic_data_converter
    )


async def approve_pending(handle: WorkflowHandle[Any, Any], seen: set[tuple[str, str]]) -> int:
    """Signal an approval for every open request (a human at the console)."""
    try:
        requests = await asyncio.wait_for(
            handle.query("pending_approvals", result_type=list[ApprovalRequest]), timeout=3
        )
    except (RPCError, TimeoutError):
        return 0  # worker or server restarting: try again on the next round
    sent = 0
    for request in requests:
        decision = {"approval_id": request.approval_id, "digest": request.digest,
                    "decision": "approve", "by": "chaos"}  # fmt: skip
        try:
            await handle.signal("decide", decision)
        except RPCError:
            continue
        if (handle.id, request.approval_id) not in seen:
            seen.add((handle.id, request.approval_id))
            sent += 1
    return sent


async def write_in_flight(
    handles: list[WorkflowHandle[Any, Any]], approved: set[tuple[str, str]], deadline: float
) -> bool:
    """Wait until an approved run has a tool call running on the worker: after approval the
    only tool calls of the chaos scenario are its refund and its email."""
    while time.monotonic() < deadline:
        runs = {run for run, _ in approved}
        for handle in (h for h in handles if h.id in runs):
            try:
                description = await handle.describe()
            except RPCError:
                continue
            for pending in description.raw_description.pending_activities:
                started = pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                if started and pending.activity_type.name.endswith(".call-tool"):
                    return True
        await asyncio.sleep(0.05)
    return False


async def chaos_actions(
    stack: Stack,
    report: ChaosReport,
    started: float,
    handles: list[WorkflowHandle[Any, Any]],
    approved: set[tuple[str, str]],
) -> None:
    """The disturbances, spread over the first ~25 seconds of the runs."""

    async def at(second: float, label: str, action: Any) -> None:
        await asyncio.sleep(max(0.0, started + second - time.monotonic()))
        await asyncio.to_thread(action)
        report.actions.append(f"{time.monotonic() - started:5.1f}s {label}")

    await at(1.5, "SIGKILL worker", lambda: stack.kill("worker"))
    await at(2.5, "start worker", lambda: stack.start("worker"))
    # Best effort: SIGKILL the worker while an approved refund or email is running (its
    # effect may have happened, its answer is lost; Temporal retries with the same
    # idempotency key); else at a fixed time.
    hit = await write_in_flight(handles, approved, started + APPROVE_EARLY + 2.5)
    await at(0, "SIGKILL worker" + (" during a write" if hit else ""), lambda: stack.kill("worker"))
    await at(0, "start worker", lambda: stack.start("worker"))
    await at(APPROVE_EARLY + 3.5, "SIGKILL support_desk", lambda: stack.kill("support_desk"))
    await at(APPROVE_EARLY + 5.0, "start support_desk", lambda: stack.start("support_desk"))
    await at(APPROVE_LATE + 0.5, "restart temporal",
             lambda: (stack.stop("temporal"), stack.start("temporal")))  # fmt: skip
    await at(APPROVE_LATE + 6, "SIGKILL worker", lambda: stack.kill("worker"))
    await at(APPROVE_LATE + 7, "start worker", lambda: stack.start("worker"))


async def read_history(handle: WorkflowHandle[Any, Any]) -> tuple[list[float], int]:
    """When the workflow recorded each model turn as completed (epoch seconds, in order), and
    how many write tool calls (refund, email) needed more than one attempt."""
    scheduled: dict[int, str] = {}
    done: list[float] = []
    retried_writes = 0
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            summary = attrs.activity_type.name
            if summary.endswith(".call-tool"):
                summary += " " + event.user_metadata.summary.data.decode(errors="replace")
            scheduled[event.event_id] = summary
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attrs_s = event.activity_task_started_event_attributes
            kind = scheduled.get(attrs_s.scheduled_event_id, "")
            if attrs_s.attempt > 1 and ("refund_order" in kind or "send_email" in kind):
                retried_writes += 1
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            attrs_c = event.activity_task_completed_event_attributes
            if scheduled.get(attrs_c.scheduled_event_id) == "keel.llm.chat":
                done.append(event.event_time.ToDatetime().timestamp())
    return done, retried_writes


async def run_chaos(stack: Stack, runs: int, timeout: float = 240.0) -> ChaosReport:
    """Start ``runs`` runs on a running ``stack``, disturb it, and report what happened."""
    report = ChaosReport(runs=runs)
    client = await connect(stack)
    sim = stack.config.llm_base_url
    db = stack.config.support_desk_db
    with sqlite3.connect(db) as conn:
        refunds_before = conn.execute("SELECT COUNT(*) FROM refunds").fetchone()[0]
        emails_before = conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0]
    handles = []
    for i in range(runs):
        agent_input = AgentInput(
            profile="chaos", task=f"chaos run {i}", principal=Principal(id=f"chaos-{i}")
        )
        handles.append(
            await client.start_workflow(
                "AgentWorkflow",
                agent_input,
                id=f"chaos-{i}-{time.time_ns()}",
                task_queue="agents",
                result_type=RunResult,
            )
        )
    chaos = {"error_rate": 0.10, "hang_rate": 0.05, "hang_seconds": 8, "seed": 11}
    httpx2.post(f"{sim}/sim/chaos", json=chaos, timeout=5).raise_for_status()
    started = time.monotonic()
    results: dict[str, RunResult] = {}
    seen: set[tuple[str, str]] = set()
    disturb = asyncio.create_task(chaos_actions(stack, report, started, handles, seen))
    while len(results) < runs and time.monotonic() - started < timeout:
        for index, handle in enumerate(handles):
            if handle.id in results:
                continue
            # The first half is approved early (its refunds run into a worker SIGKILL), the
            # second half late (its refunds run into the Temporal restart).
            if time.monotonic() - started >= (APPROVE_EARLY if index % 2 == 0 else APPROVE_LATE):
                report.approvals_sent += await approve_pending(handle, seen)
            with contextlib.suppress(TimeoutError, RPCError):
                results[handle.id] = await asyncio.wait_for(handle.result(), timeout=0.2)
        await asyncio.sleep(0.3)
    await disturb
    httpx2.post(f"{sim}/sim/chaos", json={}, timeout=5).raise_for_status()
    report.seconds = time.monotonic() - started
    for result in results.values():
        report.statuses[result.status] = report.statuses.get(result.status, 0) + 1
    report.statuses["unfinished"] = runs - len(results)
    with sqlite3.connect(db) as conn:
        report.refunds = conn.execute("SELECT COUNT(*) FROM refunds").fetchone()[0] - refunds_before
        report.emails = conn.execute("SELECT COUNT(*) FROM emails").fetchone()[0] - emails_before
    for handle in handles:
        completed_at, retried = await read_history(handle)
        report.retried_write_calls += retried
        timeline = httpx2.get(f"{sim}/sim/conversations/{handle.id}/timeline", timeout=5).json()
        for turn, times in timeline["request_times"].items():
            report.model_requests += len(times)
            index = int(turn)
            if index < len(completed_at):
                report.model_turns += 1
                late = [t for t in times if t > completed_at[index]]
                if late:
                    report.repeated_after_completion.append(f"{handle.id} turn {index}")
    return report
