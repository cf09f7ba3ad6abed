"""The activities' structured log events: one ``model.call`` per model attempt, one
``tool.call`` per tool attempt, secrets masked, content optional.

Runs go through a worker built by ``worker.build_worker`` in this process (private task
queue) against the session stack's real Temporal server, MCP servers and simulator, with
``max_cached_workflows=0`` so every workflow task replays the history: events must still
appear once per attempt. The log lines are captured by ``keel.runtime.logs.configure_logging`` on a
``StringIO``, exactly as the worker process writes them to stderr. The observers on their
own (without a run) are tested in tests/unit/activities/test_observe.py.
"""

from __future__ import annotations

import io
import json
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
import pytest_asyncio
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from temporalio.client import Client

from keel.contracts import AgentInput, Principal, RunResult
from keel.runtime.logs import configure_logging
from keel.runtime.telemetry import Telemetry
from keel.stack import Stack
from tests.integration.test_telemetry import worker_settings
from worker import build_worker, connect

SECRET = "sk-live-4f9a8b7c6d5e4f3a2b1c"
RETRY_TASK = f"Hi, I'm Maria Lopez. ORD-1042 arrived damaged. Refund? (my key is {SECRET})"
QUIET_TASK = "A private question nobody should read in the logs."


@dataclass
class Captured:
    retried: RunResult
    retried_id: str
    quiet: RunResult
    quiet_id: str
    lines: list[dict[str, Any]]
    text: str
    metrics: InMemoryMetricReader


@pytest.fixture(scope="module")
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = configure_logging("worker", stream=stream, fmt="json")
    yield stream
    logging.getLogger().removeHandler(handler)


async def _run(client: Client, task_queue: str, profile: str, task: str) -> tuple[RunResult, str]:
    workflow_id = f"test-events-{profile}-{uuid.uuid4().hex[:10]}"
    handle = await client.start_workflow(
        "AgentWorkflow",
        AgentInput(profile=profile, task=task, principal=Principal(id="t", roles=["agent"])),
        id=workflow_id,
        task_queue=task_queue,
        result_type=RunResult,
    )
    return await handle.result(), workflow_id


@pytest_asyncio.fixture(scope="module")
async def captured(stack: Stack, log_stream: io.StringIO) -> Captured:
    reader = InMemoryMetricReader()
    telemetry = Telemetry(meter_provider=MeterProvider([reader]), temporal_metrics=False)
    settings = worker_settings(stack, f"events-{uuid.uuid4().hex[:8]}")
    client = await connect(settings, telemetry)
    async with (
        httpx2.AsyncClient() as http,
        build_worker(client, settings, http, telemetry=telemetry, max_cached_workflows=0),
    ):
        retried, retried_id = await _run(client, settings.task_queue, "retry429", RETRY_TASK)
        os.environ["KEEL_LOG_CONTENT"] = "none"
        try:
            quiet, quiet_id = await _run(client, settings.task_queue, "quick", QUIET_TASK)
        finally:
            del os.environ["KEEL_LOG_CONTENT"]
    text = log_stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return Captured(retried, retried_id, quiet, quiet_id, lines, text, reader)


def events(captured: Captured, name: str, workflow_id: str) -> list[dict[str, Any]]:
    return [
        line
        for line in captured.lines
        if line.get("event") == name and line.get("workflow_id") == workflow_id
    ]


def test_every_line_is_json(captured: Captured) -> None:
    assert captured.lines, "nothing was logged"
    assert len(captured.lines) == len(captured.text.splitlines())
    assert not any("trace_id" in line for line in captured.lines)  # tracing is off here


def test_one_model_call_event_per_attempt(captured: Captured) -> None:
    result = captured.retried
    assert result.status == "completed", result.error
    records = [r for r in result.steps if r.kind == "model"]
    assert [r.attempts for r in records] == [3, 1, 1]
    calls = events(captured, "model.call", captured.retried_id)
    seen = sorted((c["step"], c["attempt"], c["outcome"]) for c in calls)
    assert seen == [
        (1, 1, "error"),
        (1, 2, "error"),
        (1, 3, "ok"),
        (2, 1, "ok"),
        (3, 1, "ok"),
    ]
    for call in calls:
        assert call["level"] == ("info" if call["outcome"] == "ok" else "warning")
        assert call["activity_type"] == "keel.llm.chat"
        assert call["run_id"] and call["component"] == "worker"
        assert call["model"] == "sim/retry_429" and call["provider"] == "openai"
        if call["outcome"] == "error":
            assert call["error_type"] == "LLMHttpError"
            assert "HTTP 429" in call["error"]
            assert "input_tokens" not in call


def test_model_call_events_carry_usage_cost_and_content(captured: Captured) -> None:
    records = {r.step: r for r in captured.retried.steps if r.kind == "model"}
    for call in events(captured, "model.call", captured.retried_id):
        if call["outcome"] != "ok":
            continue
        record = records[call["step"]]
        assert record.usage is not None and record.cost_usd is not None
        assert call["input_tokens"] == record.usage.input_tokens
        assert call["output_tokens"] == record.usage.output_tokens
        assert call["cached_tokens"] == record.usage.cached_tokens == 0
        assert call["cost_usd"] == pytest.approx(record.cost_usd)
        assert call["latency_ms"] > 0
        assert call["finish_reason"] in ("tool_calls", "stop")
        # what is new in the request: the start, then each answer (stored: by reference)
        # and its tool results after the stored transcript node
        if call["step"] == 1:
            assert call["prior"] is None
            assert [m["role"] for m in call["messages"]] == ["system", "user"]
        else:
            assert call["prior"].startswith("sha256:")
            assert call["messages"][0]["role"] == "assistant"
            assert {m["role"] for m in call["messages"][1:]} == {"tool"}
        assert isinstance(call["completion"], dict)
    final = max(events(captured, "model.call", captured.retried_id), key=lambda c: c["step"])
    assert final["completion"]["content"] == captured.retried.final_answer


def test_secrets_are_masked_everywhere(captured: Captured) -> None:
    assert SECRET not in captured.text
    first = next(
        c
        for c in events(captured, "model.call", captured.retried_id)
        if c["step"] == 1 and c["outcome"] == "ok"
    )
    assert first["messages"][1]["content"].endswith("(my key is [redacted])")


def test_one_tool_call_event_per_attempt_with_key_and_step(captured: Captured) -> None:
    records = {str(r.tool_call_id): r for r in captured.retried.steps if r.kind == "tool"}
    calls = events(captured, "tool.call", captured.retried_id)
    assert sorted(c["tool_call_id"] for c in calls) == sorted(records)
    for call in calls:
        record = records[call["tool_call_id"]]
        assert call["tool"] == record.name and call["server"] == record.server
        assert call["idempotency_key"] == record.idempotency_key
        assert call["step"] == record.step
        assert call["attempt"] == record.attempts == 1
        assert call["outcome"] == "ok" and call["is_error"] is False
        assert call["activity_type"] == f"temporalio.mcp.{record.server}.call-tool"
        assert isinstance(call["arguments"], dict)
        assert 0 < len(call["result"]) <= 200 and "\n" not in call["result"]


def test_content_none_keeps_sizes_and_digests_only(captured: Captured) -> None:
    assert captured.quiet.status == "completed"
    [call] = events(captured, "model.call", captured.quiet_id)
    assert set(call["messages"]) == {"chars", "sha256"}
    assert set(call["completion"]) == {"chars", "sha256"}
    assert call["input_tokens"] > 0
    assert QUIET_TASK not in captured.text
    assert captured.quiet.final_answer is not None
    assert captured.quiet.final_answer not in captured.text


def test_retries_and_failed_attempts_are_metered(captured: Captured) -> None:
    data = captured.metrics.get_metrics_data()
    assert data is not None
    found: dict[str, list[Any]] = {
        metric.name: list(metric.data.data_points)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    retries = {(p.attributes["kind"], p.attributes["name"]): p.value for p in found["keel.retries"]}
    assert retries == {("model", "sim/retry_429"): 2}
    failed = [
        p
        for p in found["gen_ai.client.operation.duration"]
        if p.attributes.get("error.type") == "LLMHttpError"
    ]
    assert [p.count for p in failed] == [2]
