"""The activities' observers (activities/observe.py) without a run: each tool or model
attempt becomes one span and one structured log line, errors named by type. The events of
real runs are in tests/integration/test_activity_events.py."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from temporalio.exceptions import ApplicationError

from activities.observe import (
    ModelCallObserver,
    ToolCallObserver,
    parse_idempotency_key,
    result_summary,
)
from keel.contracts import ChatRequest, ChatResponse, ModelSettings, Price, Usage
from keel.runtime.logs import configure_logging
from keel.runtime.telemetry import Telemetry


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The log lines of this process as the worker writes them (JSON, one per line)."""
    stream = io.StringIO()
    handler = configure_logging("worker", stream=stream, fmt="json")
    yield stream
    logging.getLogger().removeHandler(handler)


def test_idempotency_keys_parse_into_step_and_call_id() -> None:
    assert parse_idempotency_key("agent-x-1:3:call_2_0") == (3, "call_2_0")
    assert parse_idempotency_key("wf:with:colons:12:c") == (12, "c")
    assert parse_idempotency_key("no-step") == (None, None)
    assert parse_idempotency_key("wf:x:c") == (None, None)
    assert parse_idempotency_key(None) == (None, None)


def test_result_summary_is_the_text_collapsed() -> None:
    result = {
        "content": [
            {"type": "text", "text": '{\n  "a": 1\n}'},
            {"type": "image", "data": "..."},
            {"type": "text", "text": "x" * 500},
        ]
    }
    summary = result_summary(result)
    assert summary.startswith('{ "a": 1 } xxx') and len(summary) == 200


@pytest.fixture
def traced() -> tuple[Telemetry, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Telemetry(tracer_provider=provider), exporter


def test_a_tool_error_result_is_an_error_span_and_outcome(
    traced: tuple[Telemetry, InMemorySpanExporter], log_stream: io.StringIO
) -> None:
    telemetry, exporter = traced
    observer = ToolCallObserver(telemetry, {"desk": "http://desk.internal:8201/mcp"})
    request = {"name": "get_order", "arguments": {"order_id": "ORD-9"}, "meta": None}
    with observer.observe("desk", request) as call:
        call.done({"content": [{"type": "text", "text": "no such order"}], "is_error": True})
    [span] = exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert span.name == "execute_tool get_order"
    assert span.status.status_code == StatusCode.ERROR
    assert attrs["error.type"] == "tool_error"
    assert (attrs["server.address"], attrs["server.port"]) == ("desk.internal", 8201)
    assert "keel.idempotency_key" not in attrs  # a lookup: no key, no step
    line = json.loads(log_stream.getvalue().splitlines()[-1])
    assert line["event"] == "tool.call" and line["outcome"] == "tool_error"
    assert line["result"] == "no such order" and line["step"] is None
    # the line leads to its span
    assert line["trace_id"] == format(span.context.trace_id, "032x")
    assert line["span_id"] == format(span.context.span_id, "016x")


def test_a_failed_tool_call_names_the_error_type(
    traced: tuple[Telemetry, InMemorySpanExporter], log_stream: io.StringIO
) -> None:
    telemetry, exporter = traced
    observer = ToolCallObserver(telemetry)
    request = {"name": "refund_order", "meta": {"io.keel/idempotency-key": "wf-1:2:call_1_0"}}
    with pytest.raises(ApplicationError), observer.observe("desk", request):
        raise ApplicationError("connection refused", type="MCPProtocolError")
    [span] = exporter.get_finished_spans()
    assert dict(span.attributes or {})["error.type"] == "MCPProtocolError"
    assert dict(span.attributes or {})["network.transport"] == "pipe"
    line = json.loads(log_stream.getvalue().splitlines()[-1])
    assert (line["outcome"], line["error_type"], line["step"]) == ("failed", "MCPProtocolError", 2)
    assert line["idempotency_key"] == "wf-1:2:call_1_0" and line["level"] == "warning"


def test_a_failed_model_call_is_an_error_span(
    traced: tuple[Telemetry, InMemorySpanExporter], log_stream: io.StringIO
) -> None:
    telemetry, exporter = traced
    request = ChatRequest(
        model=ModelSettings(name="gpt-4o-mini", base_url="https://api.openai.com/v1"),
        messages=[],
        conversation_id="c-1",
        step=4,
    )
    with pytest.raises(ApplicationError), ModelCallObserver(telemetry).observe(request):
        raise ApplicationError("HTTP 503", type="LLMHttpError")
    [span] = exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert span.name == "chat gpt-4o-mini"
    assert span.status.status_code == StatusCode.ERROR
    assert attrs["error.type"] == "LLMHttpError"
    assert (attrs["server.address"], attrs["server.port"]) == ("api.openai.com", 443)
    assert attrs["keel.step"] == 4 and "gen_ai.usage.input_tokens" not in attrs
    line = json.loads(log_stream.getvalue().splitlines()[-1])
    assert (line["event"], line["outcome"], line["step"]) == ("model.call", "error", 4)


def test_a_routed_model_call_names_its_tier_and_route(
    traced: tuple[Telemetry, InMemorySpanExporter], log_stream: io.StringIO
) -> None:
    telemetry, exporter = traced
    request = ChatRequest(
        model=ModelSettings(name="sim/strong", base_url="http://127.0.0.1:9/v1"),
        messages=[],
        conversation_id="c-2",
        step=3,
        tier="strong",
        route="escalated after a tool error at step 2",
    )
    with pytest.raises(ApplicationError), ModelCallObserver(telemetry).observe(request):
        raise ApplicationError("HTTP 503", type="LLMHttpError")
    [span] = exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert attrs["keel.tier"] == "strong"
    assert attrs["keel.route"] == "escalated after a tool error at step 2"
    line = json.loads(log_stream.getvalue().splitlines()[-1])
    assert (line["tier"], line["route"]) == ("strong", "escalated after a tool error at step 2")


def test_an_unrouted_model_call_has_no_routing_fields(
    traced: tuple[Telemetry, InMemorySpanExporter], log_stream: io.StringIO
) -> None:
    telemetry, exporter = traced
    request = ChatRequest(
        model=ModelSettings(name="sim/quick_answer", base_url="http://127.0.0.1:9/v1"),
        messages=[],
        conversation_id="c-3",
        step=1,
    )
    with pytest.raises(ApplicationError), ModelCallObserver(telemetry).observe(request):
        raise ApplicationError("HTTP 503", type="LLMHttpError")
    [span] = exporter.get_finished_spans()
    assert not {"keel.tier", "keel.route"} & set(span.attributes or {})
    line = json.loads(log_stream.getvalue().splitlines()[-1])
    assert "tier" not in line and "route" not in line


def test_a_model_call_reports_cache_reads_and_writes(
    traced: tuple[Telemetry, InMemorySpanExporter], log_stream: io.StringIO
) -> None:
    telemetry, exporter = traced
    price = Price(input_per_mtok=3.0, output_per_mtok=15.0, cached_input_per_mtok=0.3,
                  cache_write_per_mtok=3.75)  # fmt: skip
    model = ModelSettings(name="claude-sonnet-4-5", provider="anthropic",
                          base_url="http://127.0.0.1:9/v1", price=price)  # fmt: skip
    request = ChatRequest(model=model, messages=[], conversation_id="c-2", step=2)
    usage = Usage(input_tokens=3000, output_tokens=100, cached_tokens=2000, cache_write_tokens=600)
    with ModelCallObserver(telemetry).observe(request) as call:
        call.done(ChatResponse(model="claude-sonnet-4-5", usage=usage, finish_reason="stop"))
    [span] = exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.provider.name"] == "anthropic"  # the wire, on a host it does not know
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 2000
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == 600
    line = json.loads(log_stream.getvalue().splitlines()[-1])
    assert (line["cached_tokens"], line["cache_write_tokens"]) == (2000, 600)
    # 400 fresh at 3.00, 2000 read at 0.30, 600 written at 3.75, 100 out at 15.00 per million
    assert line["cost_usd"] == pytest.approx((400 * 3 + 2000 * 0.3 + 600 * 3.75 + 100 * 15) / 1e6)
