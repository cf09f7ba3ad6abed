"""OpenTelemetry traces and metrics of a real run, exported in memory.

A worker built by ``worker.build_worker`` runs in this process on a private task queue,
against the session stack's real Temporal server, MCP servers and simulator; its client
carries Temporal's tracing interceptor and a Temporal runtime whose metric buffer feeds the
same meter provider. Spans go to an ``InMemorySpanExporter``, metrics to an
``InMemoryMetricReader``. Nothing is mocked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2
import pytest
import pytest_asyncio
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from keel.contracts import AgentInput, Principal, RunResult
from keel.procs import free_port
from keel.runtime.config import Settings
from keel.runtime.telemetry import PrometheusEndpoint, Telemetry
from keel.stack import Stack, StackConfig
from tests.auth import connect as mcp_connect
from tests.auth import server_env
from tests.conftest import REPO, TEST_PROFILES
from tests.helpers import desk_server
from worker import build_worker, connect

PROFILE = "budget"  # scenario sim/support_demo: 3 model turns, 4 tool calls, 0.15/0.60 USD
TASK = "Hi, I'm Maria Lopez. ORD-1042 arrived damaged. Refund?"


@dataclass
class Observed:
    result: RunResult
    workflow_id: str
    spans: list[ReadableSpan]
    metrics: MetricsData
    server_spans: list[tuple[str, Span]]  # (service.name, span) the support desk exported


def worker_settings(stack: Stack, task_queue: str, desk_url: str | None = None) -> Settings:
    return Settings.from_env(
        {
            "TEMPORAL_ADDRESS": stack.config.temporal_address,
            "KEEL_TASK_QUEUE": task_queue,
            "KEEL_PROFILES_PATH": os.pathsep.join([str(TEST_PROFILES), str(REPO / "profiles")]),
            "KEEL_LLM_BASE_URL": stack.config.llm_base_url,
            "KEEL_MCP_SUPPORT_DESK": desk_url or stack.config.mcp_url("support_desk"),
            "KEEL_MCP_KNOWLEDGE": stack.config.mcp_url("knowledge"),
            # the stack's key: its servers (and a desk given server_env) accept its tokens
            "KEEL_SIGNING_KEY": str(stack.config.keys.signing_key),
        }
    )


class OtlpReceiver:
    """A minimal OTLP/HTTP trace receiver (what a collector does first): decodes each POSTed
    ``ExportTraceServiceRequest`` and keeps its spans with their ``service.name``."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Span]] = []
        received = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                for resource_spans in request.resource_spans:
                    attributes = {a.key: a.value for a in resource_spans.resource.attributes}
                    service = attributes["service.name"].string_value
                    for scope in resource_spans.scope_spans:
                        received.extend((service, span) for span in scope.spans)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()
                self.wfile.write(ExportTraceServiceResponse().SerializeToString())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OtlpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest_asyncio.fixture(scope="module")
async def observed(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Observed:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    telemetry = Telemetry(tracer_provider=tracer_provider, meter_provider=MeterProvider([reader]))
    workflow_id = f"test-telemetry-{uuid.uuid4().hex[:10]}"
    with OtlpReceiver() as receiver:
        # A support desk of its own that exports its spans over OTLP to the receiver.
        desk_env = {
            **stack.config.server_env(),
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        with desk_server(tmp_path_factory.mktemp("traced-desk"), desk_env) as desk_url:
            settings = worker_settings(stack, f"telemetry-{uuid.uuid4().hex[:8]}", desk_url)
            async with telemetry.running():
                client = await connect(settings, telemetry)
                async with (
                    httpx2.AsyncClient() as http,
                    build_worker(client, settings, http, telemetry=telemetry),
                ):
                    handle = await client.start_workflow(
                        "AgentWorkflow",
                        AgentInput(
                            profile=PROFILE, task=TASK, principal=Principal(id="t", roles=["agent"])
                        ),
                        id=workflow_id,
                        task_queue=settings.task_queue,
                        result_type=RunResult,
                    )
                    result = await handle.result()
        # Stopping the desk (SIGTERM) flushed its batched spans before it exited.
    # ``running()`` drained the Temporal metric buffer a last time on exit.
    data = reader.get_metrics_data()
    assert data is not None
    return Observed(
        result, workflow_id, list(spans.get_finished_spans()), data, list(receiver.spans)
    )


def by_name(observed: Observed, prefix: str) -> list[ReadableSpan]:
    return [s for s in observed.spans if s.name.startswith(prefix)]


def parent_of(observed: Observed, span: ReadableSpan) -> ReadableSpan | None:
    if span.parent is None:
        return None
    for candidate in observed.spans:
        if candidate.context.span_id == span.parent.span_id:
            return candidate
    return None


def ancestors(observed: Observed, span: ReadableSpan) -> list[str]:
    names: list[str] = []
    current = parent_of(observed, span)
    while current is not None:
        names.append(current.name)
        current = parent_of(observed, current)
    return names


def points(data: MetricsData, name: str) -> list[Any]:
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


# --------------------------------------------------------------------------- traces


def test_the_run_completed(observed: Observed) -> None:
    assert observed.result.status == "completed", observed.result.error
    assert observed.result.model_calls == 3
    assert observed.result.tool_calls == 4


def test_one_trace_from_the_client_through_workflow_to_activities(observed: Observed) -> None:
    [start] = by_name(observed, "StartWorkflow:AgentWorkflow")
    assert start.kind == SpanKind.CLIENT
    assert start.parent is None
    [run] = by_name(observed, "RunWorkflow:AgentWorkflow")
    assert parent_of(observed, run) is start
    activities = by_name(observed, "RunActivity:")
    # profile load + 2 list-tools + 3 chats + 4 tool calls, each one attempt
    assert len(activities) == 10
    for span in observed.spans:
        assert span.context.trace_id == start.context.trace_id, span.name
    for span in activities:
        scheduled = parent_of(observed, span)
        assert scheduled is not None and scheduled.name.startswith("StartActivity:")
        assert start.name in ancestors(observed, span)


def test_model_and_tool_spans_are_children_of_their_activity(observed: Observed) -> None:
    chats = by_name(observed, "chat ")
    tools = by_name(observed, "execute_tool ")
    assert len(chats) == 3 and len(tools) == 4
    for span in chats:
        parent = parent_of(observed, span)
        assert parent is not None and parent.name == "RunActivity:keel.llm.chat"
        assert span.kind == SpanKind.CLIENT
    for span in tools:
        parent = parent_of(observed, span)
        assert parent is not None and parent.name.startswith("RunActivity:temporalio.mcp.")
        assert parent.name.endswith(".call-tool")
    assert sorted(s.name for s in tools) == sorted(
        f"execute_tool {t}"
        for t in ("search_customers", "get_order", "search_knowledge", "get_article")
    )


def test_chat_spans_carry_genai_attributes_with_the_simulator_usage(
    observed: Observed, stack: Stack
) -> None:
    records = {r.step: r for r in observed.result.steps if r.kind == "model"}
    port = int(stack.config.llm_base_url.split(":")[2].split("/")[0])
    for span in by_name(observed, "chat "):
        attrs: dict[str, Any] = dict(span.attributes or {})
        record = records[attrs["keel.step"]]
        assert record.usage is not None
        assert span.name == "chat sim/support_demo"
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.provider.name"] == "openai"
        assert attrs["gen_ai.request.model"] == "sim/support_demo"
        assert attrs["gen_ai.response.model"] == "sim/support_demo"
        assert attrs["gen_ai.request.max_tokens"] == 1024
        assert attrs["gen_ai.usage.input_tokens"] == record.usage.input_tokens > 0
        assert attrs["gen_ai.usage.output_tokens"] == record.usage.output_tokens > 0
        assert attrs["gen_ai.usage.cache_read.input_tokens"] == 0
        assert attrs["server.address"] == "127.0.0.1"
        assert attrs["server.port"] == port
        assert attrs["keel.attempt"] == 1
        assert attrs["gen_ai.conversation.id"] == observed.workflow_id
        assert attrs["keel.cost_usd"] == pytest.approx(record.cost_usd)
        expected = ("tool_calls",) if record.step < 3 else ("stop",)
        assert tuple(attrs["gen_ai.response.finish_reasons"]) == expected
        assert span.status.status_code != StatusCode.ERROR


def test_tool_spans_carry_mcp_attributes_and_the_idempotency_key(observed: Observed) -> None:
    records = {r.tool_call_id: r for r in observed.result.steps if r.kind == "tool"}
    for span in by_name(observed, "execute_tool "):
        attrs: dict[str, Any] = dict(span.attributes or {})
        record = records[attrs["gen_ai.tool.call.id"]]
        assert attrs["gen_ai.operation.name"] == "execute_tool"
        assert attrs["gen_ai.tool.name"] == record.name
        assert attrs["mcp.method.name"] == "tools/call"
        assert attrs["network.transport"] == "tcp"
        assert attrs["keel.mcp.server"] == record.server
        assert attrs["keel.idempotency_key"] == record.idempotency_key
        assert attrs["keel.idempotency_key"] == (
            f"{observed.workflow_id}:{record.step}:{record.tool_call_id}"
        )
        assert attrs["keel.step"] == record.step
        assert "error.type" not in attrs


def test_mcp_server_spans_join_the_run_trace_under_their_tool_call(observed: Observed) -> None:
    """The worker sends W3C trace context in each request's ``_meta`` (SEP-414); the support
    desk's SERVER span ``tools/call {tool}`` is a child of the worker's ``execute_tool`` span."""
    calls = {
        s.context.span_id: s
        for s in by_name(observed, "execute_tool ")
        if dict(s.attributes or {})["keel.mcp.server"] == "support_desk"
    }
    assert len(calls) == 2  # search_customers, get_order
    served = [
        (service, span)
        for service, span in observed.server_spans
        if span.name.startswith("tools/call ")
    ]
    assert len(served) == len(calls)
    for service, span in served:
        parent = calls[int.from_bytes(span.parent_span_id, "big")]
        assert service == "keel-support-desk"
        assert span.kind == Span.SPAN_KIND_SERVER
        assert span.name == f"tools/call {parent.name.removeprefix('execute_tool ')}"
        assert int.from_bytes(span.trace_id, "big") == parent.context.trace_id
        attributes = {a.key: a.value.string_value for a in span.attributes}
        assert attributes["mcp.method.name"] == "tools/call"
        assert attributes["gen_ai.tool.name"] == parent.name.removeprefix("execute_tool ")


def test_mcp_server_with_a_bad_exporter_exits_2_with_one_line(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "mcp_servers.support_desk", "--port", "1"]
    argv += ["--db", str(tmp_path / "d.db")]
    out = subprocess.run(
        argv,
        env={**os.environ, **server_env(), "OTEL_TRACES_EXPORTER": "zipkin"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "support-desk: error: OTEL_TRACES_EXPORTER='zipkin': unknown exporter 'zipkin'"
        " (expected a comma list of otlp, console, none)"
    ]


async def test_make_up_with_console_traces_starts_and_servers_print_their_spans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``OTEL_TRACES_EXPORTER=console make up``: the Temporal dev server (which refuses that
    value) does not inherit it, and an MCP server prints its spans into its log."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    stack = Stack(StackConfig.isolated(tmp_path))
    try:
        stack.start("temporal")
        stack.start("support_desk")
        async with mcp_connect(stack.config.mcp_url("support_desk"), stack.config.keys) as client:
            assert not (await client.call_tool("get_order", {"order_id": "ORD-1042"})).is_error
    finally:
        stack.down()  # the desk flushes its batched spans as it stops
    log = stack.log_path("support_desk").read_text()
    assert '"name": "tools/call get_order"' in log
    assert '"service.name": "keel-support-desk"' in log


# --------------------------------------------------------------------------- metrics


def test_token_usage_histogram_sums_to_the_run_usage(observed: Observed) -> None:
    usage = observed.result.usage
    sums: dict[str, int] = {}
    counts: dict[str, int] = {}
    for point in points(observed.metrics, "gen_ai.client.token.usage"):
        attrs = dict(point.attributes)
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.request.model"] == "sim/support_demo"
        kind = attrs["gen_ai.token.type"]
        sums[kind] = sums.get(kind, 0) + int(point.sum)
        counts[kind] = counts.get(kind, 0) + point.count
    assert sums == {"input": usage.input_tokens, "output": usage.output_tokens}
    assert counts == {"input": 3, "output": 3}


def test_operation_duration_and_cost(observed: Observed) -> None:
    [duration] = points(observed.metrics, "gen_ai.client.operation.duration")
    assert duration.count == 3 and duration.sum > 0
    assert "error.type" not in dict(duration.attributes)
    [cost] = points(observed.metrics, "keel.llm.cost")
    assert cost.value == pytest.approx(observed.result.cost_usd)


def test_tool_call_outcomes(observed: Observed) -> None:
    calls = {
        (p.attributes["server"], p.attributes["tool"], p.attributes["outcome"]): p.value
        for p in points(observed.metrics, "keel.tool.calls")
    }
    assert calls == {
        ("support_desk", "search_customers", "ok"): 1,
        ("support_desk", "get_order", "ok"): 1,
        ("knowledge", "search_knowledge", "ok"): 1,
        ("knowledge", "get_article", "ok"): 1,
    }
    assert points(observed.metrics, "keel.retries") == []


def test_run_level_metrics_from_the_workflow(observed: Observed) -> None:
    runs = [p for p in points(observed.metrics, "keel.runs") if p.attributes["profile"] == PROFILE]
    assert [(dict(p.attributes)["status"], p.value) for p in runs] == [("completed", 1)]
    [steps] = [
        p for p in points(observed.metrics, "keel.run.steps") if p.attributes["profile"] == PROFILE
    ]
    assert steps.count == 1 and steps.sum == 3


def test_temporal_sdk_metrics_share_the_meter_provider(observed: Observed) -> None:
    names = {
        metric.name
        for resource in observed.metrics.resource_metrics
        for scope in resource.scope_metrics
        if scope.scope.name == "temporalio"
        for metric in scope.metrics
    }
    assert any(name.startswith("temporal_") for name in names), names


# --------------------------------------------------------------------------- configuration
# (the pure configuration tests: tests/unit/keel/runtime/test_telemetry.py)


def test_worker_with_a_bad_exporter_exits_2_with_one_line() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "worker.py")],
        env={"PATH": os.environ.get("PATH", ""), "OTEL_TRACES_EXPORTER": "bogus"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines == [
        "keel worker: OTEL_TRACES_EXPORTER='bogus': unknown exporter 'bogus'"
        " (expected a comma list of otlp, console, none)"
    ]


@pytest.fixture
def prometheus_telemetry() -> Iterator[tuple[Telemetry, int]]:
    port = free_port()
    endpoint = PrometheusEndpoint.create("127.0.0.1", port)
    telemetry = Telemetry(
        meter_provider=MeterProvider([endpoint.reader]), prometheus=endpoint, temporal_metrics=False
    )
    yield telemetry, port
    telemetry.shutdown()


async def test_prometheus_endpoint_serves_the_metrics(
    prometheus_telemetry: tuple[Telemetry, int],
) -> None:
    from activities.observe import Instruments

    telemetry, port = prometheus_telemetry
    Instruments(telemetry).tool_calls.add(
        2, {"server": "support_desk", "tool": "get_order", "outcome": "ok"}
    )
    async with telemetry.running(), httpx2.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    lines = [line for line in response.text.splitlines() if line.startswith("keel_tool_calls")]
    assert any(
        'tool="get_order"' in line and 'outcome="ok"' in line and line.endswith(" 2.0")
        for line in lines
    ), response.text
