"""OpenTelemetry traces and metrics for Keel's processes, configured by the standard variables.

One :class:`Telemetry` per process holds a tracer provider, a meter provider and, when metrics
are on, the Temporal ``Runtime`` whose metric buffer feeds that meter provider (so the SDK's
own metrics and the workflow's ``workflow.metric_meter()`` metrics are exported next to the
activities' ``gen_ai.*`` ones). Nothing is global: activities and interceptors receive the
``Telemetry`` they record to (built once in worker.py), which is also what lets a test run a
worker against in-memory exporters.

Configuration (docs/operations.md lists every variable):

* ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER``: comma lists of ``otlp``, ``console``,
  ``none`` (metrics also ``prometheus``). Default ``none``: no exporter, no-op providers, no
  output, no overhead beyond a no-op call.
* ``OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]PROTOCOL``: ``http/protobuf`` (default) or ``grpc``
  (needs ``opentelemetry-exporter-otlp-proto-grpc``); endpoints, headers, timeouts and
  compression (``OTEL_EXPORTER_OTLP_*``) are read by the exporters themselves, batching by the
  span processor (``OTEL_BSP_*``), the export interval by the metric reader
  (``OTEL_METRIC_EXPORT_INTERVAL``), ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` by
  the SDK ``Resource``; ``OTEL_SDK_DISABLED=true`` turns everything off.
* ``KEEL_PROMETHEUS_PORT`` (and ``KEEL_PROMETHEUS_HOST``, default ``127.0.0.1``): serve the
  metrics at ``http://HOST:PORT/metrics`` for Prometheus to scrape (off by default).

The exporter selection is written here (about twenty lines) rather than taken from the SDK's
environment auto-configuration: that lives in a private module (``opentelemetry.sdk.
_configuration``), installs *global* providers (which a test process cannot replace), and
silently ignores an unknown exporter name, where Keel wants one readable ConfigError at start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any

from opentelemetry import metrics as otel_metrics
from opentelemetry import trace as otel_trace
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
from temporalio.contrib.opentelemetry import MetricsExporter, TracingInterceptor
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

from keel.contracts.errors import ConfigError
from keel.runtime.config import env_number

INSTRUMENTATION_SCOPE = "keel"
TRACE_EXPORTERS = ("otlp", "console", "none")
METRIC_EXPORTERS = ("otlp", "console", "prometheus", "none")
OTLP_PROTOCOLS = ("http/protobuf", "grpc")
DEFAULT_PROMETHEUS_PORT = 9464
# Updates the SDK runtime buffers between two drains (one a second); generous on purpose:
# a full buffer drops updates.
METRIC_BUFFER_SIZE = 50_000


@dataclass(frozen=True)
class TelemetrySettings:
    """What the ``OTEL_*`` and ``KEEL_PROMETHEUS_*`` variables ask for."""

    traces: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    traces_protocol: str = "http/protobuf"
    metrics_protocol: str = "http/protobuf"
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.traces or self.metrics or self.prometheus_port)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TelemetrySettings:
        """Parse the environment; a bad value is a ConfigError naming the variable."""
        env = os.environ if env is None else env
        if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return cls()
        traces = _exporters(env, "OTEL_TRACES_EXPORTER", TRACE_EXPORTERS)
        metrics = _exporters(env, "OTEL_METRICS_EXPORTER", METRIC_EXPORTERS)
        port = _port(env, "KEEL_PROMETHEUS_PORT")
        if "prometheus" in metrics:
            metrics = tuple(m for m in metrics if m != "prometheus")
            if port is None:
                port = _port(env, "OTEL_EXPORTER_PROMETHEUS_PORT") or DEFAULT_PROMETHEUS_PORT
        host = (
            env.get("KEEL_PROMETHEUS_HOST") or env.get("OTEL_EXPORTER_PROMETHEUS_HOST") or ""
        ).strip() or "127.0.0.1"
        return cls(
            traces=traces,
            metrics=metrics,
            traces_protocol=_protocol(env, "TRACES") if "otlp" in traces else "http/protobuf",
            metrics_protocol=_protocol(env, "METRICS") if "otlp" in metrics else "http/protobuf",
            prometheus_host=host,
            prometheus_port=port,
        )


def _exporters(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name, "").strip()
    chosen = [part.strip().lower() for part in raw.split(",") if part.strip()]
    unknown = [part for part in chosen if part not in allowed]
    if unknown:
        raise ConfigError(
            f"{name}={raw!r}: unknown exporter {unknown[0]!r} (expected a comma list of"
            f" {', '.join(allowed)})"
        )
    if "none" in chosen:
        if len(chosen) > 1:
            raise ConfigError(f"{name}={raw!r}: 'none' cannot be combined with other exporters")
        return ()
    return tuple(dict.fromkeys(chosen))


def _protocol(env: Mapping[str, str], signal: str) -> str:
    for name in (f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        raw = env.get(name, "").strip()
        if raw:
            if raw.lower() not in OTLP_PROTOCOLS:
                raise ConfigError(
                    f"{name}={raw!r}: unsupported OTLP protocol (expected"
                    f" {' or '.join(OTLP_PROTOCOLS)})"
                )
            return raw.lower()
    return "http/protobuf"


def _port(env: Mapping[str, str], name: str) -> int | None:
    return env_number(
        env,
        name,
        int,
        None,
        not_a="a port number",
        valid=lambda port: 1 <= port <= 65535,
        rule="must be in 1..65535",
    )


def _otlp_span_exporter(protocol: str) -> SpanExporter:
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcSpanExporter,
            )
        except ImportError:
            raise _grpc_missing() from None
        return GrpcSpanExporter()
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
        return GrpcMetricExporter()
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter()


def _grpc_missing() -> ConfigError:
    return ConfigError(
        "OTLP over grpc needs the package opentelemetry-exporter-otlp-proto-grpc"
        " (pip install opentelemetry-exporter-otlp-proto-grpc), or set"
        " OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
    )


def resource_for(service_name: str) -> Resource:
    """The SDK resource (``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME``), with
    ``service_name`` as the default service name when the environment sets none."""
    detected = Resource.create()
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        detected = detected.merge(Resource({SERVICE_NAME: service_name}))
    return detected


def _tracer_provider(
    settings: TelemetrySettings,
    resource: Resource,
    *,
    synchronous: bool = False,
    console: IO[str] | None = None,
) -> TracerProvider | None:
    """A tracer provider with the chosen span exporters, or None when traces are off."""
    if not settings.traces:
        return None
    provider = TracerProvider(resource=resource)
    for name in settings.traces:
        exporter = (
            ConsoleSpanExporter(out=console or sys.stdout)
            if name == "console"
            else _otlp_span_exporter(settings.traces_protocol)
        )
        processor: SpanProcessor = (
            SimpleSpanProcessor(exporter) if synchronous else BatchSpanProcessor(exporter)
        )
        provider.add_span_processor(processor)
    return provider


def tracer_provider_from_env(
    service_name: str, env: Mapping[str, str] | None = None, *, console: IO[str] | None = None
) -> TracerProvider | None:
    """Traces only, as the ``OTEL_*`` variables ask (metrics variables are still validated):
    for processes that record nothing but spans, such as Keel's MCP servers. ``console`` is
    where the console exporter writes (a stdio MCP server must keep stdout for the protocol).
    None when traces are off; a bad value is a ConfigError naming the variable."""
    settings = TelemetrySettings.from_env(env)
    return _tracer_provider(settings, resource_for(service_name), console=console)


@dataclass(frozen=True)
class PrometheusEndpoint:
    """Where the metrics are served for scraping, and the reader/registry behind it. The
    registry is private to this endpoint (no process-global collector state)."""

    host: str
    port: int
    reader: MetricReader
    registry: Any

    @classmethod
    def create(cls, host: str, port: int) -> PrometheusEndpoint:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry()
        return cls(host, port, PrometheusMetricReader(registry=registry), registry)


class Telemetry:
    """The tracer and meter of one process, and the Temporal runtime that shares the meter.

    Build it with :meth:`from_env` (processes), :meth:`disabled` (no-op), or the constructor
    (tests: pass SDK providers with in-memory exporters). ``temporal_metrics`` routes the
    Temporal SDK runtime's metrics (including ``workflow.metric_meter()``) into the meter
    provider; ``core_logs`` forwards the SDK core's own log lines (written to the console in
    their own format by default) to the ``temporalio.core`` Python logger, so they render as
    Keel's JSON lines. Either needs a dedicated Temporal ``Runtime``, which has to be passed
    to ``Client.connect`` (:meth:`connect_options`); the metric buffer is drained while the
    process runs (:meth:`running`).
    """

    def __init__(
        self,
        *,
        tracer_provider: otel_trace.TracerProvider | None = None,
        meter_provider: otel_metrics.MeterProvider | None = None,
        temporal_metrics: bool | None = None,
        core_logs: bool = False,
        prometheus: PrometheusEndpoint | None = None,
        always_create_workflow_spans: bool = True,
    ) -> None:
        self.tracing = tracer_provider is not None
        self.metering = meter_provider is not None
        self.tracer_provider = tracer_provider or otel_trace.NoOpTracerProvider()
        self.meter_provider = meter_provider or otel_metrics.NoOpMeterProvider()
        self.tracer = self.tracer_provider.get_tracer(INSTRUMENTATION_SCOPE)
        self.meter = self.meter_provider.get_meter(INSTRUMENTATION_SCOPE)
        self.prometheus = prometheus
        self._prometheus_server: Any = None
        self._interceptor: TracingInterceptor | None = None
        self._always_create_workflow_spans = always_create_workflow_spans
        self.buffer: MetricBuffer | None = None
        self.runtime: Runtime | None = None
        if temporal_metrics if temporal_metrics is not None else self.metering:
            self.buffer = MetricBuffer(
                METRIC_BUFFER_SIZE, duration_format=MetricBufferDurationFormat.SECONDS
            )
        if self.buffer is not None or core_logs:
            logs = LoggingConfig.default
            if core_logs:
                logs = dataclasses.replace(
                    logs,
                    forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
                )
            self.runtime = Runtime(telemetry=TelemetryConfig(logging=logs, metrics=self.buffer))

    @classmethod
    def disabled(cls) -> Telemetry:
        """No exporters: no-op providers, the default Temporal runtime."""
        return cls()

    @classmethod
    def from_env(
        cls,
        service_name: str,
        env: Mapping[str, str] | None = None,
        *,
        synchronous: bool = False,
        metrics: bool = True,
        core_logs: bool = False,
    ) -> Telemetry:
        """The telemetry the environment asks for; ``disabled()`` when it asks for none.

        ``synchronous`` exports each span when it ends (short-lived processes such as the CLI,
        which leave with ``os._exit`` and so never run a batch processor's final flush).
        ``metrics=False`` leaves metrics off whatever the environment says (still validated);
        ``core_logs`` forwards the Temporal core's log lines to Python logging (the worker).
        """
        settings = TelemetrySettings.from_env(env)
        if not metrics:
            settings = TelemetrySettings(
                traces=settings.traces, traces_protocol=settings.traces_protocol
            )
        if not settings.enabled:
            return cls(core_logs=core_logs)
        resource = resource_for(service_name)
        tracer_provider = _tracer_provider(settings, resource, synchronous=synchronous)
        readers: list[MetricReader] = []
        for name in settings.metrics:
            metric_exporter = (
                ConsoleMetricExporter()
                if name == "console"
                else _otlp_metric_exporter(settings.metrics_protocol)
            )
            readers.append(PeriodicExportingMetricReader(metric_exporter))
        prometheus: PrometheusEndpoint | None = None
        if settings.prometheus_port is not None:
            prometheus = PrometheusEndpoint.create(
                settings.prometheus_host, settings.prometheus_port
            )
            readers.append(prometheus.reader)
        meter_provider = (
            MeterProvider(resource=resource, metric_readers=readers) if readers else None
        )
        return cls(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            temporal_metrics=meter_provider is not None,
            core_logs=core_logs,
            prometheus=prometheus,
        )

    # ------------------------------------------------------------------ Temporal wiring

    def interceptor(self) -> TracingInterceptor | None:
        """Temporal's tracing interceptor on this tracer (one instance), or None without
        tracing. On a client it links client → workflow → activity spans for every worker
        built on that client."""
        if not self.tracing:
            return None
        if self._interceptor is None:
            self._interceptor = TracingInterceptor(
                self.tracer, always_create_workflow_spans=self._always_create_workflow_spans
            )
        return self._interceptor

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for ``Client.connect``: the tracing interceptor, the runtime."""
        options: dict[str, Any] = {}
        interceptor = self.interceptor()
        if interceptor is not None:
            options["interceptors"] = [interceptor]
        if self.runtime is not None:
            options["runtime"] = self.runtime
        return options

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Telemetry]:
        """While the process works: serve Prometheus, drain the Temporal metric buffer into
        the meter provider every second (and once more on exit). Call :meth:`shutdown`
        afterwards to flush the exporters."""
        if self.prometheus is not None and self._prometheus_server is None:
            self._serve_prometheus()
        if self.buffer is None:
            yield self
            return
        async with _SafeMetricsExporter(
            self.buffer,
            self.meter_provider,
            meter_name="temporalio",
            poll_interval=timedelta(seconds=1),
        ):
            yield self

    def _serve_prometheus(self) -> None:
        assert self.prometheus is not None
        from prometheus_client import start_http_server

        endpoint = self.prometheus
        try:
            self._prometheus_server, _thread = start_http_server(
                endpoint.port, addr=endpoint.host, registry=endpoint.registry
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot serve Prometheus metrics on {endpoint.host}:{endpoint.port} ({exc});"
                " set KEEL_PROMETHEUS_PORT to a free port"
            ) from None

    def shutdown(self) -> None:
        """Flush and stop the exporters (idempotent)."""
        if self._prometheus_server is not None:
            self._prometheus_server.shutdown()
            self._prometheus_server.server_close()
            self._prometheus_server = None
        if isinstance(self.tracer_provider, TracerProvider):
            self.tracer_provider.force_flush()
            self.tracer_provider.shutdown()
        if isinstance(self.meter_provider, MeterProvider):
            self.meter_provider.shutdown()


class _SafeMetricsExporter(MetricsExporter):
    """``MetricsExporter`` without its ``id()``-keyed caches.

    temporalio 1.35 caches converted attribute sets and instruments by the ``id()`` of the
    Core objects without keeping those objects alive. An attribute set made by a workflow's
    ``metric_meter().with_additional_attributes(...)`` is freed after the run, its ``id()``
    can be reused by the next one, and the exporter then labels an update with another
    update's attributes (seen in tests/integration/test_telemetry.py: a ``keel.runs`` point
    without its ``profile``). Here attributes are converted per update (a small dict) and
    instruments are keyed by name and kind, which OpenTelemetry requires to be unique anyway.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._by_name: dict[tuple[str, int], Any] = {}

    def _get_or_create_instrument(self, metric: Any) -> Any:
        key = (metric.name, metric.kind)
        instrument = self._by_name.get(key)
        if instrument is None:
            self._instruments.pop(id(metric), None)  # never trust an id()-keyed hit
            instrument = self._by_name[key] = super()._get_or_create_instrument(metric)
        return instrument

    def _get_or_create_attributes(self, attributes: Any) -> Any:
        return dict(attributes)
