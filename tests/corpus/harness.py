"""Running the corpus: one stack (its own Temporal, simulator, desk, knowledge, worker) plus
the hostile MCP server, every case started at once, decisions sent, results collected.

Nothing is mocked: the worker reaches the hostile server over streamable HTTP as
``KEEL_MCP_HOSTILE``, the simulator plays each case's scenario, effects are counted in the
support desk's SQLite file and in the hostile server's effects log (tests/corpus/effects.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError

from keel import render
from keel.contracts import (
    AgentInput,
    ApprovalRequest,
    LimitOverrides,
    Principal,
    RunResult,
    RunStatus,
)
from keel.procs import Child, free_port, python_argv, spawn, stop, wait_http
from keel.stack import Stack, StackConfig
from keel.watch import stream_events
from tests.corpus.case import Act, Case
from tests.corpus.decide import decide
from tests.corpus.files import write_cases
from tests.corpus.hostile_server import ANSI, EFFECTS_ENV, INJECTION
from tests.helpers import REPO, connect_stack

RUN_TIMEOUT = 180.0  # a run that has not ended by then is a finding (it hangs)
CONCURRENT_RUNS = 24  # on two shared cores, more at once only makes every run slower
POLL = 0.25


@dataclass
class Outcome:
    """What one case produced."""

    case: Case
    workflow_id: str = ""
    result: RunResult | None = None
    start_error: tuple[str, str] | None = None  # (ApplicationError type, message)
    problem: str | None = None  # the harness could not get a typed end (hang, crash, ...)
    acts: list[tuple[bool, str]] = field(default_factory=list)
    requests: list[ApprovalRequest] = field(default_factory=list)
    effects: list[tuple[str, str]] = field(default_factory=list)  # (tool, canonical args)
    seconds: float = 0.0  # from start to end, as the harness saw it
    printed: list[tuple[str, str]] = field(default_factory=list)  # what `keel status`/`watch` show


@dataclass
class Corpus:
    stack: Stack
    client: Client
    effects_log: Path
    scenario_errors: dict[str, str]


# Customers whose data is hostile: an injection in the name, escape sequences in the name.
HOSTILE_CUSTOMERS = [
    ("CUS-1066", INJECTION, "eve.injection@example.com", None, "gold", "2026-01-01"),
    ("CUS-1027", f"Eve {ANSI}", "eve.ansi@example.com", None, "standard", "2026-01-02"),
]


def seed_hostile_customers(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT OR IGNORE INTO customers VALUES (?, ?, ?, ?, ?, ?)", HOSTILE_CUSTOMERS
        )


@contextlib.contextmanager
def hostile_server(home: Path) -> Iterator[tuple[str, Path]]:
    """The hostile MCP server as a subprocess; yields its URL and its effects log."""
    port, log = free_port(), home / "hostile-effects.jsonl"
    # --insecure-no-auth: a third-party server that checks no tokens (the worker sends them
    # anyway); the corpus is about what a hostile server answers, not about authentication.
    argv = python_argv(
        "-m", "tests.corpus.hostile_server", "--port", str(port), "--insecure-no-auth"
    )
    env = {EFFECTS_ENV: str(log), "HOSTILE_SLOW_SECONDS": "6"}
    child: Child = spawn("hostile", argv, home / "logs" / "hostile.log", env=env, cwd=REPO)
    try:
        wait_http(child, f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}/mcp", log
    finally:
        stop(child)


@contextlib.contextmanager
def corpus_stack(cases: list[Case], home: Path) -> Iterator[tuple[Stack, Path, dict[str, str]]]:
    scenarios, profile_dir, errors = write_cases(cases, home / "cases")
    with hostile_server(home) as (url, effects_log):
        config = StackConfig.isolated(
            home,
            scenarios=scenarios,
            extra_worker_env={
                "KEEL_PROFILES_PATH": str(profile_dir),
                "KEEL_MCP_HOSTILE": url,
                "KEEL_MCP_READ_TIMEOUT_SECONDS": "10",
            },
        )
        stack = Stack(config)
        stack.up()
        try:
            seed_hostile_customers(config.support_desk_db)
            yield stack, effects_log, errors
        finally:
            stack.down()


async def connect(stack: Stack) -> Client:
    return await connect_stack(stack)


# ------------------------------------------------------------------------------ one case


async def start_case(client: Client, case: Case, workflow_id: str) -> WorkflowHandle[Any, Any]:
    if case.raw_input is not None:
        payload: Any = case.raw_input
    else:
        pid, roles = case.principal
        payload = AgentInput(
            profile=case.slug,
            task=case.task,
            principal=Principal(id=pid, roles=list(roles)),
            limits=LimitOverrides(**case.limits) if case.limits else None,
        )
    return await client.start_workflow(
        "AgentWorkflow", payload, id=workflow_id, task_queue="agents", result_type=RunResult
    )


async def pending(handle: WorkflowHandle[Any, Any]) -> list[ApprovalRequest]:
    try:
        found: list[ApprovalRequest] = await handle.query(
            "pending_approvals", result_type=list[ApprovalRequest]
        )
    except Exception:  # the run may have closed (a query then needs the history): retry
        return []
    return sorted(found, key=lambda r: (r.created_at, r.approval_id))


class Watcher:
    """Which runs wait for a human, from one visibility query for all of them (``KeelState``),
    so the cases do not each poll their run with queries (the worker answers queries)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.awaiting: set[str] = set()

    async def watch(self) -> None:
        query = "KeelState = 'awaiting_approval' AND ExecutionStatus = 'Running'"
        while True:
            with contextlib.suppress(Exception):
                self.awaiting = {w.id async for w in self.client.list_workflows(query)}
            await asyncio.sleep(POLL)


class _Runner:
    """Drives one started case: its acts, then the default rejection, until it ends."""

    def __init__(self, case: Case, handle: WorkflowHandle[Any, Any], outcome: Outcome,
                 watcher: Watcher) -> None:  # fmt: skip
        self.case, self.handle, self.outcome, self.watcher = case, handle, outcome, watcher
        self.result_task = asyncio.ensure_future(handle.result())
        self.seen: dict[str, ApprovalRequest] = {}
        self.decided: set[str] = set()
        self.last: ApprovalRequest | None = None

    async def look(self) -> list[ApprovalRequest]:
        if self.handle.id not in self.watcher.awaiting:
            return []
        requests = await pending(self.handle)
        for request in requests:
            self.seen.setdefault(request.approval_id, request)
        return requests

    async def wait_for(self, count: int) -> list[ApprovalRequest] | None:
        while not self.result_task.done():
            requests = [r for r in await self.look() if r.approval_id not in self.decided]
            if len(requests) >= count:
                return requests
            await asyncio.wait({self.result_task}, timeout=POLL)
        return None

    async def act(self, act: Act) -> None:
        target: ApprovalRequest | str
        arguments = act.arguments
        if act.early:
            target = act.approval_id or "apr-1-call_0_0"
        elif act.again and self.last is not None:
            target = self.last
        else:
            requests = await self.wait_for(act.wait)
            if requests is None:
                self.outcome.acts.append((False, "no request to decide: the run ended"))
                return
            chosen = requests[act.request]
            target = act.approval_id or chosen
            if act.arguments_of is not None:
                arguments = requests[act.arguments_of].arguments
            if act.approval_id is None:
                self.last = chosen
        accepted, said = await decide(self.handle, target, act.kind, arguments=arguments,
                                      reason=act.reason, roles=act.roles, via=act.via)  # fmt: skip
        self.outcome.acts.append((accepted, said))
        if accepted and act.via == "update" and not isinstance(target, str):
            self.decided.add(target.approval_id)  # else the drain rejects it in the end

    async def drain(self) -> None:
        """Reject whatever is still pending (unless the case is about timeouts)."""
        while not self.result_task.done():
            for request in await self.look():
                if self.case.auto_reject and request.approval_id not in self.decided:
                    self.decided.add(request.approval_id)
                    await decide(self.handle, request, "reject", reason="corpus: not approved")
            await asyncio.wait({self.result_task}, timeout=POLL)


async def _what_a_user_sees(
    client: Client, handle: WorkflowHandle[Any, Any], outcome: Outcome
) -> None:
    """The lines ``keel status`` and ``keel watch`` print for the closed run (best effort:
    both are queries the worker answers by replaying the run)."""
    lines: list[str] = []
    with contextlib.suppress(Exception):
        async with asyncio.timeout(30):
            status = await handle.query("status", result_type=RunStatus)
            outcome.printed.append(("keel status", render.status_line(status)))
            await stream_events(client, handle.id, lambda e: lines.append(render.progress_line(e)))
            outcome.printed.append(("keel watch", "\n".join(lines)))


async def run_case(
    client: Client, case: Case, watcher: Watcher, slots: asyncio.Semaphore
) -> Outcome:
    """Run one case to its end (at most ``CONCURRENT_RUNS`` cases at once)."""
    async with slots:
        return await _run_case(client, case, watcher)


async def _run_case(client: Client, case: Case, watcher: Watcher) -> Outcome:
    outcome = Outcome(case, workflow_id=f"corpus-{case.name}-{uuid.uuid4().hex[:8]}")
    began = time.monotonic()
    try:
        handle = await start_case(client, case, outcome.workflow_id)
        runner = _Runner(case, handle, outcome, watcher)
        async with asyncio.timeout(RUN_TIMEOUT):
            for act in case.acts:
                await runner.act(act)
            await runner.drain()
            outcome.result = runner.result_task.result()
        outcome.requests = list(runner.seen.values())
        await _what_a_user_sees(client, handle, outcome)
    except WorkflowFailureError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError):
            outcome.start_error = (cause.type or "", cause.message)
        else:
            outcome.problem = f"the workflow failed without a typed error: {cause!r}"
    except TimeoutError:
        outcome.problem = f"the run did not end within {RUN_TIMEOUT:g}s (it hangs)"
        with contextlib.suppress(Exception):
            await client.get_workflow_handle(outcome.workflow_id).terminate("corpus timeout")
    except Exception as exc:  # one case must not take the others down
        outcome.problem = f"the harness could not follow the run: {exc!r}"
    outcome.seconds = time.monotonic() - began
    return outcome
