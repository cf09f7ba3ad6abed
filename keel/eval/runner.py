"""Running an eval: every (config, task, trial) as a real run, concurrently, with the eval as
the human who answers approval requests.

Each run is a workflow ``eval-<eval id>-<config>-<task>-<trial>`` on the stack's worker: an
``AgentWorkflow`` for ``profile:`` configs, ``keel.pipeline.<name>`` for ``pipeline:`` ones
(same input, same ``RunResult``). While it runs the eval polls its ``status`` query; when the
run waits for approval, the eval decides each request as the task's ``approve`` says
(``approve`` / ``reject``, with the request's digest and the approver roles it asks for) — or,
for ``none``, stops waiting: the run is recorded as ``awaiting_approval`` and terminated. A run
waiting for guidance is recorded as ``awaiting_guidance`` likewise (the eval gives none) — in
both cases once the waiting run's status has been still for ``SETTLE_SECONDS`` (a call of the
same turn may still be running). A stopped run has no ``RunResult``: the tools it called come
from its progress stream, read once after it was terminated (reading it live would add an
update per batch to every run).
Then its checks are judged (:mod:`keel.eval.checks`, state through :mod:`keel.eval.state`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError

from keel.client import build_input, query_status, start_run
from keel.contracts import (
    AgentInput,
    ApprovalRequest,
    Decision,
    DecisionOutcome,
    ProgressEvent,
    RunResult,
    RunStatus,
)
from keel.contracts.errors import KeelError
from keel.contracts.names import QUERY_PENDING_APPROVALS, UPDATE_DECIDE
from keel.eval.checks import judge, run_checks
from keel.eval.dataset import Config, Dataset, Task
from keel.eval.models import EvalRun, EvalStatus
from keel.eval.state import StateReader
from keel.runtime.config import Settings
from keel.watch import stream_events

POLL_SECONDS = 0.3
PROGRESS_READ_SECONDS = 15.0
SETTLE_SECONDS = 1.0
# Tool calls that reached the server: what "called" means for tools_called / tools_not_called
# (a call refused by validation or a human's rejection had no effect).
EXECUTED = frozenset({"ok", "tool_error", "failed"})
DECIDER = "keel-eval"
PIPELINE_PREFIX = "keel.pipeline."


@dataclass(frozen=True)
class Item:
    """One run of the plan."""

    config_name: str
    config: Config
    task: Task
    trial: int

    def workflow_id(self, eval_id: str) -> str:
        return f"eval-{eval_id}-{self.config_name}-{self.task.id}-{self.trial}"


def plan(dataset: Dataset, configs: dict[str, Config], k: int) -> list[Item]:
    """Every (config, task, trial) a task's ``configs`` covers, trials interleaved."""
    return [
        Item(name, config, task, trial)
        for trial in range(1, k + 1)
        for task in dataset.tasks
        for name, config in configs.items()
        if dataset.covers(task, name)
    ]


def agent_input(item: Item, settings: Settings) -> AgentInput:
    """The run's input, validated against its profile (a bad one is an InputError)."""
    profile = item.config.profile or item.task.profile
    if profile is None:
        raise KeelError(
            f"task {item.task.id}: config {item.config_name} ({item.config.spec}) names no"
            " profile and the task sets none (profile = ...)"
        )
    raw: dict[str, object] = {
        "profile": profile,
        "task": item.task.task,
        "principal": item.task.principal.model_dump(),
    }
    return build_input(raw, settings)


@dataclass
class Watched:
    """What the eval saw of one run while it ran."""

    seen_approvals: set[str] = field(default_factory=set)
    decisions: int = 0
    tools: list[str] = field(default_factory=list)
    cost_usd: float = 0.0

    quiet: tuple[object, float] | None = None

    def settled(self, status: RunStatus, now: float) -> bool:
        """Whether the waiting run has been still for ``SETTLE_SECONDS``: a call of the same
        turn as the one waiting for approval may still be running when the run starts to
        wait, and the eval should record what it did before it stops the run."""
        seen = (status.state, status.step, status.tool_calls, status.last_event,
                status.pending_approvals)  # fmt: skip
        if self.quiet is None or self.quiet[0] != seen:
            self.quiet = (seen, now)
            return False
        return now - self.quiet[1] >= SETTLE_SECONDS

    def on_event(self, event: ProgressEvent) -> None:
        if event.kind == "tool.finished" and event.tool and event.data.get("outcome") in EXECUTED:
            self.tools.append(event.tool)
        if event.kind == "approval.requested" and event.data.get("approval_id"):
            self.seen_approvals.add(str(event.data["approval_id"]))


@dataclass
class Runner:
    client: Client
    settings: Settings
    eval_id: str
    state: StateReader
    timeout_seconds: float = 300.0
    on_done: Callable[[EvalRun], None] | None = None

    async def start(self, item: Item) -> WorkflowHandle[object, RunResult]:
        workflow_id = item.workflow_id(self.eval_id)
        payload = agent_input(item, self.settings)
        if item.config.kind == "profile":
            return await start_run(self.client, self.settings, payload, workflow_id)
        try:
            return await self.client.start_workflow(
                PIPELINE_PREFIX + item.config.target,
                payload,
                id=workflow_id,
                task_queue=self.settings.task_queue,
                result_type=RunResult,
            )
        except RPCError as exc:
            raise KeelError(f"cannot start workflow {workflow_id}: {exc.message}") from None

    async def run(self, item: Item) -> EvalRun:
        """Run ``item`` to its end (or to where the eval stops waiting) and judge it."""
        workflow_id = item.workflow_id(self.eval_id)
        started = time.monotonic()
        try:
            handle = await self.start(item)
            run = await self._follow(item, handle, started)
        except (KeelError, RPCError) as exc:
            message = getattr(exc, "message", None) or str(exc)
            run = self._record(item, workflow_id, "eval_error", started, Watched(), error=message)
        checks = run_checks(run, item.task.expect)
        for index, check in enumerate(item.task.expect.state):
            checks.append(await self.state.check(index, check, workflow_id))
        judged = judge(run, checks)
        if self.on_done is not None:
            self.on_done(judged)
        return judged

    async def _follow(
        self, item: Item, handle: WorkflowHandle[object, RunResult], started: float
    ) -> EvalRun:
        watched = Watched()
        result = asyncio.ensure_future(handle.result())
        try:
            stopped = await self._watch(item, handle, result, watched, started)
            if stopped is not None:
                run = self._record(item, handle.id, stopped, started, watched)
                with contextlib.suppress(RPCError):
                    await handle.terminate(reason=f"keel eval: stopped waiting ({stopped})")
                await self._read_progress(handle.id, watched)
                seen = {
                    "tools_called": watched.tools,
                    "approvals_requested": len(watched.seen_approvals),
                }
                return run.model_copy(update=seen)
            try:
                outcome = result.result()
            except WorkflowFailureError as exc:
                why = getattr(exc.cause, "message", None) or str(exc.cause)
                return self._record(item, handle.id, "eval_error", started, watched, error=why)
            return self._recorded_result(item, handle.id, outcome, started, watched)
        finally:
            result.cancel()
            await asyncio.gather(result, return_exceptions=True)

    async def _read_progress(self, workflow_id: str, watched: Watched) -> None:
        """The progress events of a closed run (tools it called, approvals it requested)."""
        with contextlib.suppress(Exception):  # best effort: a run without a stream has none
            await asyncio.wait_for(
                stream_events(self.client, workflow_id, watched.on_event), PROGRESS_READ_SECONDS
            )

    async def _watch(
        self,
        item: Item,
        handle: WorkflowHandle[object, RunResult],
        result: asyncio.Future[RunResult],
        watched: Watched,
        started: float,
    ) -> EvalStatus | None:
        """Poll until the run ends (None) or the eval stops waiting (the status recorded)."""
        while not result.done():
            await asyncio.wait({result}, timeout=POLL_SECONDS)
            if result.done():
                return None
            if time.monotonic() - started > self.timeout_seconds:
                return "eval_timeout"
            try:
                status = await query_status(handle)
            except (RPCError, WorkflowQueryFailedError):
                continue
            watched.cost_usd = status.cost_usd
            stop: EvalStatus | None = None
            if status.state == "awaiting_guidance":
                stop = "awaiting_guidance"
            elif status.state == "awaiting_approval" and not await self._decide(
                item, handle, watched
            ):
                stop = "awaiting_approval"
            if stop is not None and watched.settled(status, time.monotonic()):
                return stop
        return None

    async def _decide(
        self, item: Item, handle: WorkflowHandle[object, RunResult], watched: Watched
    ) -> bool:
        """Answer the pending requests as the task says; False: the eval stops waiting."""
        try:
            pending: list[ApprovalRequest] = await handle.query(
                QUERY_PENDING_APPROVALS, result_type=list[ApprovalRequest]
            )
        except (RPCError, WorkflowQueryFailedError):
            return True
        watched.seen_approvals.update(request.approval_id for request in pending)
        if item.task.approve == "none":
            return not pending
        for request in pending:
            decision = Decision(
                approval_id=request.approval_id,
                digest=request.digest,
                decision=item.task.approve,
                reason=None if item.task.approve == "approve" else "keel eval: rejected",
                by=DECIDER,
                roles=list(request.approver_roles),
            )
            with contextlib.suppress(RPCError, WorkflowUpdateFailedError):
                outcome = await handle.execute_update(
                    UPDATE_DECIDE, decision, result_type=DecisionOutcome
                )
                watched.decisions += int(outcome.accepted)  # an accepted human decision
        return True

    def _record(
        self,
        item: Item,
        workflow_id: str,
        status: EvalStatus,
        started: float,
        watched: Watched,
        error: str | None = None,
    ) -> EvalRun:
        return EvalRun(
            config=item.config_name,
            task=item.task.id,
            trial=item.trial,
            workflow_id=workflow_id,
            status=status,
            tools_called=watched.tools,
            approvals_requested=len(watched.seen_approvals),
            interventions=watched.decisions,
            cost_usd=watched.cost_usd,
            latency_seconds=time.monotonic() - started,
            error=error,
        )

    def _recorded_result(
        self, item: Item, workflow_id: str, result: RunResult, started: float, watched: Watched
    ) -> EvalRun:
        run = self._record(item, workflow_id, result.status, started, watched)
        requested = watched.seen_approvals | {record.approval_id for record in result.approvals}
        return run.model_copy(
            update={
                "failure_class": result.failure_class,
                "final_answer": result.final_answer,
                "tools_called": [
                    s.name for s in result.steps if s.kind == "tool" and s.outcome in EXECUTED
                ],
                "approvals_requested": len(requested),
                "interventions": watched.decisions + result.guidance,
                "cost_usd": result.cost_usd,
                "result": result,
            }
        )


async def run_all(runner: Runner, items: list[Item], concurrency: int) -> list[EvalRun]:
    """Run ``items`` with at most ``concurrency`` at a time; results in plan order."""
    limit = asyncio.Semaphore(concurrency)

    async def bounded(item: Item) -> EvalRun:
        async with limit:
            return await runner.run(item)

    return list(await asyncio.gather(*(bounded(item) for item in items)))
