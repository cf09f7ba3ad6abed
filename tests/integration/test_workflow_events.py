"""Workflow-side log events on the real stack: each one logged once, even under forced replay.

The runs here go to an in-process worker on a private task queue with
``max_cached_workflows=0``: every workflow task rebuilds the workflow by replaying its
history from the start. A probe that logs with a plain stdlib logger (not replay-safe) shows
that the replays really happen; Keel's events (``workflow.logger`` underneath) must not repeat.

No query is sent to these runs: on a worker that does not cache the workflow, a query that
arrives while a workflow task is pending makes the SDK process that task's new events outside
replay to answer it, and their log events repeat (a Temporal SDK limitation, documented in
docs/operations.md; with the worker's cache, queries are answered from the cached workflow).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from io import StringIO
from typing import Any

import httpx2
from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.client import Interceptor as ClientInterceptor
from temporalio.contrib.workflow_streams import WorkflowStreamClient
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from keel.contracts import (
    PROGRESS_TOPIC,
    AgentInput,
    ApprovalRequest,
    Decision,
    DecisionOutcome,
    Principal,
    ProgressEvent,
)
from keel.contracts import RunResult as RunResultModel
from keel.runtime.config import Settings
from keel.runtime.logs import configure_logging
from keel.stack import Stack
from tests.conftest import REPO, TEST_PROFILES
from worker import build_worker

PROBE = "test.replay_probe"
WORKFLOW_EVENTS = (
    "run.started",
    "tool.validation",
    "approval.requested",
    "approval.escalated",
    "approval.decision",
    "run.stop",
    "run.guided",
    "run.finished",
)


class _ProbeInbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        # Deliberately replay-unsafe: runs each time a worker rebuilds the workflow.
        workflow_id = workflow.info().workflow_id
        logging.getLogger(PROBE).info(
            "workflow rebuilt", extra={"keel": {"workflow_id": workflow_id}}
        )
        return await super().execute_workflow(input)


class ReplayProbe(ClientInterceptor, Interceptor):
    """Logs (replay-unsafely) every time a workflow instance is built from its history."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _ProbeInbound


@contextlib.asynccontextmanager
async def replaying_worker(client: Client, stack: Stack) -> AsyncIterator[str]:
    """An in-process worker on a private task queue that replays every workflow task;
    yields the task queue. Built by ``worker.build_worker`` from the stack's settings."""
    queue = f"replay-{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env(
        {
            **stack.config.worker_env(),
            "KEEL_PROFILES_PATH": os.pathsep.join([str(TEST_PROFILES), str(REPO / "profiles")]),
            "KEEL_TASK_QUEUE": queue,
        }
    )
    config = client.config()
    config["interceptors"] = [ReplayProbe()]
    probed = Client(**config)
    transport = httpx2.AsyncHTTPTransport(retries=0)
    async with (
        httpx2.AsyncClient(transport=transport) as http,
        build_worker(probed, settings, http, max_cached_workflows=0),
    ):
        yield queue


@contextlib.contextmanager
def captured_logs() -> Any:
    """Every log line of this process (structlog JSON) while the block runs."""
    buffer = StringIO()
    handler = configure_logging("test", stream=buffer)
    try:
        yield buffer
    finally:
        logging.getLogger().removeHandler(handler)


def log_lines(buffer: StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]


async def start_on(
    client: Client, queue: str, profile: str, task: str = "ORD-1050: the strap broke. Refund?"
) -> WorkflowHandle[Any, RunResultModel]:
    return await client.start_workflow(
        "AgentWorkflow",
        AgentInput(profile=profile, task=task, principal=Principal(id="tester", roles=["agent"])),
        id=f"events-{profile}-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
        result_type=RunResultModel,
    )


def rejection(approval_id: str, digest: str | None) -> Decision:
    return Decision(
        approval_id=approval_id, digest=digest, decision="reject", reason="not today",
        by="alice", roles=["supervisor"],
    )  # fmt: skip


async def reject_as_announced(client: Client, handle: WorkflowHandle[Any, Any], count: int) -> None:
    """Reject ``count`` requests by signal as the run announces them on its progress stream
    (``approval.requested`` carries the id and digest): no query, see the module docstring."""
    stream = WorkflowStreamClient.create(client, handle.id)
    decided = 0
    async for item in stream.subscribe([PROGRESS_TOPIC], result_type=ProgressEvent):
        event = item.data
        if event.kind == "approval.requested":
            data = event.data
            await handle.signal("decide", rejection(data["approval_id"], data["digest"]))
            decided += 1
            if decided == count:
                return


async def reject_all(handle: WorkflowHandle[Any, Any], count: int) -> None:
    """Reject ``count`` approval requests as a supervisor, as they become pending."""
    decided: set[str] = set()
    while len(decided) < count:
        requests = await handle.query("pending_approvals", result_type=list[ApprovalRequest])
        for request in requests:
            if request.approval_id in decided:
                continue
            await handle.execute_update(
                "decide",
                rejection(request.approval_id, request.digest),
                result_type=DecisionOutcome,
            )
            decided.add(request.approval_id)


def events_of(lines: list[dict[str, Any]], workflow_id: str) -> list[dict[str, Any]]:
    return [
        line
        for line in lines
        if line.get("workflow_id") == workflow_id and line.get("event") in WORKFLOW_EVENTS
    ]


async def test_workflow_events_are_logged_once_under_forced_replay(
    client: Client, stack: Stack
) -> None:
    with captured_logs() as buffer:
        async with replaying_worker(client, stack) as queue:
            refunds = await start_on(client, queue, "approvals_two")
            # Decided by signal as the progress stream announces the requests, not by polling
            # the pending_approvals query: see the note on queries in the docstring.
            await reject_as_announced(client, refunds, 2)
            refunds_result = await refunds.result()
            guarded_result = await (guarded := await start_on(client, queue, "guarded")).result()
            loop_result = await (loop := await start_on(client, queue, "loop")).result()
    lines = log_lines(buffer)

    # The setup really replays: the replay-unsafe probe ran once per workflow task.
    rebuilt = Counter(line.get("workflow_id") for line in lines if line.get("logger") == PROBE)
    assert rebuilt[refunds.id] > 5
    assert rebuilt[loop.id] > 5

    # approvals_two: a refund and an email, both wait for a human, both rejected.
    events = events_of(lines, refunds.id)
    assert Counter(e["event"] for e in events) == {
        "run.started": 1,
        "tool.validation": 2,
        "approval.requested": 2,
        "approval.decision": 2,
        "run.finished": 1,
    }
    keys = [
        (e["event"], e.get("step"), e.get("tool_call_id") or e.get("approval_id")) for e in events
    ]
    assert len(keys) == len(set(keys)), "an event was logged twice"
    started = events[0]
    assert started["event"] == "run.started"
    assert started["profile"] == "approvals_two" and started["model"] == "sim/refund_and_email"
    assert started["run_id"] == refunds.result_run_id
    assert "ORD-1050" in started["task"]
    validations = [e for e in events if e["event"] == "tool.validation"]
    assert [(e["step"], e["outcome"], e["layer"]) for e in validations] == [
        (1, "passed", None),
        (1, "passed", None),
    ]
    requested = [e for e in events if e["event"] == "approval.requested"]
    assert sorted(e["tool"] for e in requested) == ["refund_order", "send_email"]
    assert all(e["step"] == 1 and e["reversibility"] == "irreversible" for e in requested)
    decisions = [e for e in events if e["event"] == "approval.decision"]
    assert {(e["decision"], e["by"], e["reason"], e["step"]) for e in decisions} == {
        ("reject", "alice", "not today", 1)
    }
    assert all(e["waited_seconds"] >= 0 for e in decisions)
    finished = events[-1]
    assert finished["event"] == "run.finished"
    assert finished["status"] == refunds_result.status == "completed"
    assert finished["steps"] == refunds_result.model_calls == 2
    assert finished["tool_calls"] == refunds_result.tool_calls == 2
    assert finished["input_tokens"] == refunds_result.usage.input_tokens > 0
    assert finished["cost_usd"] == refunds_result.cost_usd > 0
    assert finished["approvals"] == 2

    # guarded: three refusals, each with its layer and reason.
    events = events_of(lines, guarded.id)
    refused = sorted(
        (e for e in events if e["event"] == "tool.validation"), key=lambda e: e["tool_call_id"]
    )
    assert [(e["outcome"], e["layer"]) for e in refused] == [
        ("refused", "semantic"),
        ("refused", "semantic"),
        ("refused", "schema"),
    ]
    assert "multiple of 0.01" in refused[2]["reason"]
    assert "ORD-9999" in refused[0]["reason"]
    assert [e["event"] for e in events].count("run.finished") == 1
    assert guarded_result.status == "completed"

    # loop: the no-progress stop trips once and halts the run.
    events = events_of(lines, loop.id)
    [stop] = [e for e in events if e["event"] == "run.stop"]
    assert stop["reason"] == loop_result.stop_reason == "no_progress"
    assert stop["action"] == "halt"
    assert stop["step"] == loop_result.model_calls
    [finished] = [e for e in events if e["event"] == "run.finished"]
    assert finished["status"] == "halted"
    assert finished["failure_class"] == "no_progress"
