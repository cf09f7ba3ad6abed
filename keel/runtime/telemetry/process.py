"""One process's telemetry: :class:`Telemetry`, built from the environment or by a test."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any
from wsgiref.simple_server import WSGIServer

from opentelemetry import metrics as otel_metrics
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import MetricBuffer, Runtime

from keel.runtime.telemetry import prometheus as prometheus_server
from keel.runtime.telemetry.prometheus import PrometheusEndpoint
from keel.runtime.telemetry.providers import meter_provider, resource_for, tracer_provider
from keel.runtime.telemetry.settings import TelemetrySettings
from keel.runtime.telemetry.temporal import draining, metric_buffer, temporal_runtime

INSTRUMENTATION_SCOPE = "keel"


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
        self._prometheus_server: WSGIServer | None = None
        self._interceptor: TracingInterceptor | None = None
        self._always_create_workflow_spans = always_create_workflow_spans
        self.buffer: MetricBuffer | None = None
        self.runtime: Runtime | None = None
        if temporal_metrics if temporal_metrics is not None else self.metering:
            self.buffer = metric_buffer()
        if self.buffer is not None or core_logs:
            self.runtime = temporal_runtime(self.buffer, core_logs=core_logs)

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
            settings = settings.traces_only()
        if not settings.enabled:
            return cls(core_logs=core_logs)
        resource = resource_for(service_name)
        meters, prometheus = meter_provider(settings, resource)
        return cls(
            tracer_provider=tracer_provider(settings, resource, synchronous=synchronous),
            meter_provider=meters,
            temporal_metrics=meters is not None,
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
            self._prometheus_server = self.prometheus.serve()
        if self.buffer is None:
            yield self
            return
        async with draining(self.buffer, self.meter_provider):
            yield self

    def shutdown(self) -> None:
        """Flush and stop the exporters (idempotent)."""
        if self._prometheus_server is not None:
            prometheus_server.stop(self._prometheus_server)
            self._prometheus_server = None
        if isinstance(self.tracer_provider, TracerProvider):
            self.tracer_provider.force_flush()
            self.tracer_provider.shutdown()
        if isinstance(self.meter_provider, MeterProvider):
            self.meter_provider.shutdown()
