"""Chaos driver shared by tests/integration/test_chaos.py (small N) and bench/chaos.py (large N).

Starts its own stack (so killing and restarting its parts disturbs no other test), starts N
approval-needing runs, and while they run: approves every request as a human would (by
signal, which survives restarts), SIGKILLs and restarts the worker, kills and restarts the
support-desk MCP server, restarts the Temporal dev server on the same SQLite file, and makes
the simulator fail or hang a share of all model calls. Then it collects what happened.

Each run refunds an order of its own (``ORD-2000`` onwards, added to the desk before the runs
start; the ``chaos_refund`` scenario reads the order id from the run's task), so any number of
runs can refund. Two of the worker SIGKILLs wait for a write in flight: the driver watches the
support desk's idempotency ledger for a ``pending`` claim of ``refund_order`` or ``send_email``
(the claim is taken before the tool's 1.5 s latency and the effect), kills the worker then, and
counts the kill as one during a write only if that claim was still not ``done`` after the worker
had died.
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
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError

from keel.contracts import AgentInput, ApprovalRequest, Principal, RunResult
from keel.stack import Stack, StackConfig
from mcp_servers.support_desk.seed import OrderSeed, insert_orders
from tests.helpers import REPO, connect_stack, plain_events

APPROVE_EARLY = 6.0  # seconds after start: the runs wait for approval by then
APPROVE_LATE = 13.0
WRITE_LATENCY_SECONDS = 1.5  # the support desk's latency per tool call
WRITE_KILL_WAIT = 20.0  # seconds a write-triggered kill waits for a write in flight
WRITES_PER_RUN = 2  # the scenario's refund and email, each approved once
FIRST_RUN_ORDER = 2000
WRITE_TOOLS = ("refund_order", "send_email")
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
    latency_ms = str(round(WRITE_LATENCY_SECONDS * 1000))
    config.component_env = {"support_desk": {"SUPPORT_DESK_LATENCY_MS": latency_ms}}
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
    orders: list[str] = field(default_factory=list)  # one per run, in run order
    refunds_by_order: dict[str, int] = field(default_factory=dict)
    emails_by_order: dict[str, int] = field(default_factory=dict)
    kills_during_write: int = 0  # worker SIGKILLs while a write claim was not yet done
    writes_at_kills: list[int] = field(default_factory=list)  # claims in flight per such kill

    @property
    def terminal(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "unfinished")

    @property
    def duplicate_effects(self) -> int:
        """Refunds and emails beyond one per run's order."""
        counts = [*self.refunds_by_order.values(), *self.emails_by_order.values()]
        return sum(max(0, n - 1) for n in counts)

    @property
    def lost_effects(self) -> int:
        """Runs' refunds and emails that never happened."""
        return sum(
            (self.refunds_by_order.get(o, 0) == 0) + (self.emails_by_order.get(o, 0) == 0)
            for o in self.orders
        )


async def connect(stack: Stack) -> Client:
    return await connect_stack(stack)


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


def add_run_orders(db: Path, runs: int) -> list[str]:
    """One delivered 129.99 watch order of James Okafor's per run, numbered after any earlier
    ones; returns their ids in run order."""
    with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn, conn:
        top = conn.execute(
            "SELECT MAX(CAST(SUBSTR(order_id, 5) AS INTEGER)) FROM orders"
        ).fetchone()[0]
        first = max(FIRST_RUN_ORDER, (top or 0) + 1)
        orders: list[OrderSeed] = [
            (f"ORD-{first + i}", "CUS-1002", "delivered", 0, "2026-10-30", "2026-10-31",
             "2026-11-04", None, [("PRD-204", 1)])
            for i in range(runs)
        ]  # fmt: skip
        insert_orders(conn, orders)
    return [order[0] for order in orders]


def writes_in_flight(db: Path, claimed_within: float | None = None) -> set[tuple[str, ...]]:
    """(tool, key, token) of refund/email claims the support desk holds and has not finished;
    with ``claimed_within``, only claims that recent (still inside the tool's latency, so
    surely running and not left behind by a killed server)."""
    since = time.time() - claimed_within if claimed_within is not None else 0.0
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        rows = conn.execute(
            "SELECT tool, key, token FROM idempotency_ledger"
            " WHERE state != 'done' AND claimed_at > ? AND tool IN (?, ?)",
            (since, *WRITE_TOOLS),
        ).fetchall()
    return {tuple(row) for row in rows}


def kill_during_write(stack: Stack, deadline: float) -> int:
    """SIGKILL the worker as soon as a write is in flight (or at ``deadline``); return how
    many of the claims seen before the kill were still not done once the worker had died."""
    db = stack.config.support_desk_db
    before: set[tuple[str, ...]] = set()
    while time.monotonic() < deadline and not before:
        with contextlib.suppress(sqlite3.Error):
            before = writes_in_flight(db, claimed_within=WRITE_LATENCY_SECONDS - 0.3)
        if not before:
            time.sleep(0.02)
    stack.kill("worker")
    try:
        return len(before & writes_in_flight(db))
    except sqlite3.Error:
        return 0


async def chaos_actions(stack: Stack, report: ChaosReport, started: float) -> None:
    """The disturbances, spread over the first ~25 seconds of the runs (the two kills that
    wait for a write in flight may come later)."""

    async def at(second: float, label: str, action: Any) -> None:
        await asyncio.sleep(max(0.0, started + second - time.monotonic()))
        await asyncio.to_thread(action)
        report.actions.append(f"{time.monotonic() - started:5.1f}s {label}")

    async def at_write(second: float) -> None:
        # SIGKILL the worker while an approved refund or email is running (its effect may
        # have happened, its answer is lost; Temporal retries with the same idempotency key).
        await asyncio.sleep(max(0.0, started + second - time.monotonic()))
        deadline = time.monotonic() + WRITE_KILL_WAIT
        hit = await asyncio.to_thread(kill_during_write, stack, deadline)
        if hit:
            report.kills_during_write += 1
            report.writes_at_kills.append(hit)
        what = f"during {hit} write(s) in flight" if hit else "(no write in flight)"
        report.actions.append(f"{time.monotonic() - started:5.1f}s SIGKILL worker {what}")

    await at(1.5, "SIGKILL worker", lambda: stack.kill("worker"))
    await at(2.5, "start worker", lambda: stack.start("worker"))
    await at_write(APPROVE_EARLY)
    await at(0, "start worker", lambda: stack.start("worker"))
    await at(APPROVE_EARLY + 3.5, "SIGKILL support_desk", lambda: stack.kill("support_desk"))
    await at(APPROVE_EARLY + 5.0, "start support_desk", lambda: stack.start("support_desk"))
    await at(APPROVE_LATE + 0.5, "restart temporal",
             lambda: (stack.stop("temporal"), stack.start("temporal")))  # fmt: skip
    await at_write(APPROVE_LATE + 1.5)
    await at(0, "start worker", lambda: stack.start("worker"))


async def read_history(client: Client, handle: WorkflowHandle[Any, Any]) -> tuple[list[float], int]:
    """When the workflow recorded each model turn as completed (epoch seconds, in order), and
    how many write tool calls (refund, email) needed more than one attempt."""
    scheduled: dict[int, str] = {}
    done: list[float] = []
    retried_writes = 0
    for event in await plain_events(client, handle):  # the summaries are encrypted
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


async def drive_run(
    handle: WorkflowHandle[Any, Any],
    approve_after: float,
    seen: set[tuple[str, str]],
    report: ChaosReport,
    results: dict[str, RunResult | None],
    deadline: float,
) -> None:
    """One run's human: approve its requests once due (by signal), then wait for its end."""
    await asyncio.sleep(max(0.0, approve_after - time.monotonic()))
    while time.monotonic() < deadline:
        if sum(1 for run, _ in seen if run == handle.id) < WRITES_PER_RUN:
            sent = await approve_pending(handle, seen)  # (not `+= await`: runs interleave)
            report.approvals_sent += sent
        try:
            results[handle.id] = await asyncio.wait_for(handle.result(), timeout=1.0)
            return
        except (TimeoutError, RPCError):
            await asyncio.sleep(0.5)
        except WorkflowFailureError:
            results[handle.id] = None  # the workflow itself failed: terminal, no result
            return


def count_effects(db: Path, report: ChaosReport) -> None:
    """Refunds per run order and confirmation emails per run order, from the desk's rows."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        for order in report.orders:
            report.refunds_by_order[order] = conn.execute(
                "SELECT COUNT(*) FROM refunds WHERE order_id = ?", (order,)
            ).fetchone()[0]
            report.emails_by_order[order] = conn.execute(
                "SELECT COUNT(*) FROM emails WHERE subject = ?", (f"Chaos refund {order}",)
            ).fetchone()[0]
    report.refunds = sum(report.refunds_by_order.values())
    report.emails = sum(report.emails_by_order.values())


async def run_chaos(stack: Stack, runs: int, timeout: float = 240.0) -> ChaosReport:
    """Start ``runs`` runs on a running ``stack``, disturb it, and report what happened."""
    report = ChaosReport(runs=runs)
    client = await connect(stack)
    sim = stack.config.llm_base_url
    report.orders = add_run_orders(stack.config.support_desk_db, runs)
    handles = []
    for i, order in enumerate(report.orders):
        task = f"chaos run {i}: the strap of the watch from order {order} broke"
        agent_input = AgentInput(profile="chaos", task=task, principal=Principal(id=f"chaos-{i}"))
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
    results: dict[str, RunResult | None] = {}
    seen: set[tuple[str, str]] = set()
    disturb = asyncio.create_task(chaos_actions(stack, report, started))
    # The first half is approved early (its refunds run into a worker SIGKILL), the second
    # half late (its refunds run into the Temporal restart and the last SIGKILL).
    await asyncio.gather(*(
        drive_run(handle, started + (APPROVE_EARLY if i % 2 == 0 else APPROVE_LATE), seen,
                  report, results, started + timeout)
        for i, handle in enumerate(handles)
    ))  # fmt: skip
    await disturb
    httpx2.post(f"{sim}/sim/chaos", json={}, timeout=5).raise_for_status()
    report.seconds = time.monotonic() - started
    for result in results.values():
        status = result.status if result is not None else "workflow failed"
        report.statuses[status] = report.statuses.get(status, 0) + 1
    report.statuses["unfinished"] = runs - len(results)
    count_effects(stack.config.support_desk_db, report)
    for handle in handles:
        await read_turns(client, handle, sim, report)
    return report


async def read_turns(
    client: Client, handle: WorkflowHandle[Any, Any], sim: str, report: ChaosReport
) -> None:
    """Model requests per turn, and turns requested again after Temporal recorded them."""
    completed_at, retried = await read_history(client, handle)
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
