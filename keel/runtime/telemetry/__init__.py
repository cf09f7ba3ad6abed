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

One module per concern: ``settings`` (what the environment asks for), ``providers`` (the
OpenTelemetry providers and exporters that answer it), ``prometheus`` (the scrape endpoint),
``temporal`` (the SDK runtime and its metric bridge) and ``process`` (:class:`Telemetry`, which
puts them together). Import from this package; the split is an implementation detail.
"""

from keel.runtime.telemetry.process import INSTRUMENTATION_SCOPE, Telemetry
from keel.runtime.telemetry.prometheus import PrometheusEndpoint
from keel.runtime.telemetry.providers import resource_for
from keel.runtime.telemetry.settings import TelemetrySettings

__all__ = [
    "INSTRUMENTATION_SCOPE",
    "PrometheusEndpoint",
    "Telemetry",
    "TelemetrySettings",
    "resource_for",
]
