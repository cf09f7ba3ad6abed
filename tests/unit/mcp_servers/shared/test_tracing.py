"""The servers' tracer provider from the standard OTEL_* variables."""

from __future__ import annotations

import io

import pytest
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from mcp_servers.shared.config import ServerConfigError
from mcp_servers.shared.tracing import tracer_provider_from_env


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"OTEL_TRACES_EXPORTER": "none"},
        {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"},
    ],
)
def test_traces_are_off_unless_asked_for(env: dict[str, str]) -> None:
    assert tracer_provider_from_env("keel-desk", env) is None


def test_console_spans_go_to_the_given_stream_under_the_default_service_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    out = io.StringIO()
    provider = tracer_provider_from_env(
        "keel-desk", {"OTEL_TRACES_EXPORTER": "console"}, console=out
    )
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "keel-desk"
    with provider.get_tracer("test").start_as_current_span("tools/call get_order"):
        pass
    provider.shutdown()  # flushes the batch, as the launcher does on exit
    assert '"name": "tools/call get_order"' in out.getvalue()


def test_otlp_exporter_is_batched() -> None:
    provider = tracer_provider_from_env("keel-desk", {"OTEL_TRACES_EXPORTER": "otlp,otlp"})
    assert provider is not None
    processors = provider._active_span_processor._span_processors
    assert len(processors) == 1 and isinstance(processors[0], BatchSpanProcessor)
    assert not isinstance(processors[0].span_exporter, ConsoleSpanExporter)
    provider.shutdown()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"OTEL_TRACES_EXPORTER": "zipkin"},
            "OTEL_TRACES_EXPORTER='zipkin': unknown exporter 'zipkin'"
            " (expected a comma list of otlp, console, none)",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "none,console"},
            "OTEL_TRACES_EXPORTER='none,console': 'none' cannot be combined with other exporters",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_PROTOCOL='http/json': unsupported OTLP protocol"
            " (expected http/protobuf or grpc)",
        ),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ServerConfigError) as error:
        tracer_provider_from_env("keel-desk", env)
    assert str(error.value) == message
