"""The OpenTelemetry providers and exporters that :class:`TelemetrySettings` ask for.

The exporter selection is written here (about twenty lines) rather than taken from the SDK's
environment auto-configuration (see ``settings``). Each OTLP exporter reads its own endpoint,
headers, timeout and compression from ``OTEL_EXPORTER_OTLP_*``; the grpc exporters are an
optional package, so asking for grpc without it is a ConfigError that says what to install.
"""

from __future__ import annotations

import sys

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from keel.contracts.errors import ConfigError
from keel.runtime.telemetry.prometheus import PrometheusEndpoint
from keel.runtime.telemetry.settings import TelemetrySettings


def resource_for(service_name: str) -> Resource:
    """The SDK resource (``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME``), with
    ``service_name`` as the default service name when the environment sets none."""
    detected = Resource.create()
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        detected = detected.merge(Resource({SERVICE_NAME: service_name}))
    return detected


def tracer_provider(
    settings: TelemetrySettings, resource: Resource, *, synchronous: bool = False
) -> TracerProvider | None:
    """A tracer provider with the chosen span exporters, or None when traces are off.
    ``synchronous`` exports each span when it ends instead of in batches."""
    if not settings.traces:
        return None
    provider = TracerProvider(resource=resource)
    for name in settings.traces:
        exporter = (
            ConsoleSpanExporter(out=sys.stdout)
            if name == "console"
            else _otlp_span_exporter(settings.traces_protocol)
        )
        processor: SpanProcessor = (
            SimpleSpanProcessor(exporter) if synchronous else BatchSpanProcessor(exporter)
        )
        provider.add_span_processor(processor)
    return provider


def meter_provider(
    settings: TelemetrySettings, resource: Resource
) -> tuple[MeterProvider | None, PrometheusEndpoint | None]:
    """A meter provider with the chosen metric readers (None when metrics are off), and the
    Prometheus endpoint whose reader is one of them (None unless a port is set)."""
    readers: list[MetricReader] = []
    for name in settings.metrics:
        exporter = (
            ConsoleMetricExporter()
            if name == "console"
            else _otlp_metric_exporter(settings.metrics_protocol)
        )
        readers.append(PeriodicExportingMetricReader(exporter))
    prometheus: PrometheusEndpoint | None = None
    if settings.prometheus_port is not None:
        prometheus = PrometheusEndpoint.create(settings.prometheus_host, settings.prometheus_port)
        readers.append(prometheus.reader)
    provider = MeterProvider(resource=resource, metric_readers=readers) if readers else None
    return provider, prometheus


def _otlp_span_exporter(protocol: str) -> SpanExporter:
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcSpanExporter,
            )
        except ImportError:
            raise _grpc_missing() from None
        grpc_exporter: SpanExporter = GrpcSpanExporter()
        return grpc_exporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _otlp_metric_exporter(protocol: str) -> MetricExporter:
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter as GrpcMetricExporter,
            )
        except ImportError:
            raise _grpc_missing() from None
        grpc_exporter: MetricExporter = GrpcMetricExporter()
        return grpc_exporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter()


def _grpc_missing() -> ConfigError:
    return ConfigError(
        "OTLP over grpc needs the package opentelemetry-exporter-otlp-proto-grpc"
        " (pip install opentelemetry-exporter-otlp-proto-grpc), or set"
        " OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
    )
