"""Durable timers on Temporal's time-skipping test server: an escalation nobody answers, and
a wall clock that fires while the run waits for a human. An hour passes in seconds.

The time-skipping server skips time only while no activity runs, so these tests put the timer
in the idle part of a run (waiting for guidance); the wall clock that cancels an activity in
flight is tested in real time in test_bounded_runs.py.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx2
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from keel.contracts import AgentInput, Principal, RunResult
from keel.contracts.names import SEARCH_ATTRIBUTES
from keel.procs import free_port
from keel.runtime.config import Settings
from keel.stack import Stack
from tests.conftest import REPO, TEST_PROFILES
from worker import build_worker


@pytest_asyncio.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    server = Path(sys.executable).parent / "temporal-test-server"
    environment = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=str(server)
    )
    # The test server, like any namespace, must know Keel's search attributes.
    await environment.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=environment.client.namespace,
            search_attributes={
                name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in SEARCH_ATTRIBUTES
            },
        )
    )
    yield environment
    await environment.shutdown()


async def run_skipping(
    env: WorkflowEnvironment, stack: Stack, profile: str
) -> tuple[RunResult, timedelta]:
    settings = Settings.from_env(
        {
            "KEEL_PROFILES_PATH": os.pathsep.join([str(TEST_PROFILES), str(REPO / "profiles")]),
            "KEEL_LLM_BASE_URL": stack.config.llm_base_url,
            "KEEL_MCP_SUPPORT_DESK": stack.config.mcp_url("support_desk"),
            "KEEL_MCP_KNOWLEDGE": stack.config.mcp_url("knowledge"),
            "KEEL_SIGNING_KEY": str(stack.config.keys.signing_key),  # the servers trust it
        }
    )
    client: Client = env.client
    async with httpx2.AsyncClient() as http, build_worker(client, settings, http):
        handle = await client.start_workflow(
            "AgentWorkflow",
            AgentInput(
                profile=profile, task="ORD-1042?", principal=Principal(id="t", roles=["agent"])
            ),
            id=f"ts-{profile}-{uuid.uuid4().hex[:8]}",
            task_queue=settings.task_queue,
            result_type=RunResult,
        )
        result = await handle.result()
        description = await handle.describe()
    assert description.close_time is not None
    return result, description.close_time - description.start_time


async def test_unanswered_escalation_times_out_and_halts(
    env: WorkflowEnvironment, stack: Stack
) -> None:
    result, elapsed = await run_skipping(env, stack, "escalate_timeout")  # waits up to 1 h
    assert result.status == "halted"
    assert result.stop_reason == "no_progress"
    assert result.model_calls == 3
    assert elapsed >= timedelta(hours=1)


async def test_wall_clock_fires_while_waiting_for_a_human(
    env: WorkflowEnvironment, stack: Stack
) -> None:
    result, elapsed = await run_skipping(env, stack, "escalate")  # wall clock 30 min < 1 h wait
    assert result.status == "halted"
    assert result.stop_reason == result.failure_class == "wall_clock"
    assert timedelta(minutes=30) <= elapsed < timedelta(hours=1)


def refunds(stack: Stack) -> list[tuple[str, int]]:
    with sqlite3.connect(stack.config.support_desk_db) as db:
        return db.execute("SELECT order_id, amount_cents FROM refunds ORDER BY rowid").fetchall()


async def test_unanswered_approval_is_auto_rejected(env: WorkflowEnvironment, stack: Stack) -> None:
    before = refunds(stack)
    result, elapsed = await run_skipping(env, stack, "approvals_autoreject")  # 120 s timeout
    assert result.status == "completed"  # the model was told, and answered
    step = next(s for s in result.steps if s.name == "refund_order")
    assert step.outcome == "rejected" and "automatically" in step.detail
    assert [(r.decision, r.by) for r in result.approvals] == [("timeout", None)]
    assert elapsed >= timedelta(seconds=120)
    assert refunds(stack) == before


async def test_unanswered_approval_escalates_then_halts(
    env: WorkflowEnvironment, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = f"approvals-{uuid.uuid4().hex[:8]}"
    sink = f"{stack.config.llm_base_url}/sim/webhooks/{channel}"
    monkeypatch.setenv("KEEL_TEST_APPROVAL_WEBHOOK", sink)  # the in-process worker reads it
    before = refunds(stack)
    result, elapsed = await run_skipping(env, stack, "approvals_escalate")
    assert result.status == "halted"
    assert result.stop_reason == result.failure_class == "approval_timeout"
    assert elapsed >= timedelta(seconds=120 + 7200)  # first wait, notification, second wait
    events = httpx2.get(sink, timeout=5).json()["events"]
    assert len(events) == 1
    body = events[0].get("body", events[0])
    assert body["event"] == "approval_escalated"
    assert body["request"]["tool"] == "refund_order"
    assert refunds(stack) == before


async def test_a_failing_escalation_webhook_is_logged_and_the_wait_goes_on(
    env: WorkflowEnvironment,
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="temporalio.workflow")
    nowhere = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: every attempt fails
    monkeypatch.setenv("KEEL_TEST_APPROVAL_WEBHOOK", nowhere)
    result, elapsed = await run_skipping(env, stack, "approvals_escalate")
    assert result.status == "halted" and result.failure_class == "approval_timeout"
    assert elapsed >= timedelta(seconds=120 + 7200)  # the second wait still happened
    # (the SDK appends the workflow's details unless keel.runtime.logs turned that off)
    events = [
        r for r in caplog.records if r.getMessage().split(" (")[0] == "approval.escalation_failed"
    ]
    [failed] = events
    fields = failed.keel  # type: ignore[attr-defined]
    assert fields["approval_id"] == result.approvals[0].approval_id
    assert fields["step"] == result.approvals[0].step and fields["error"]
