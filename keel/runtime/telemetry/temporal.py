"""The Temporal side of telemetry: a dedicated SDK ``Runtime`` and its metric bridge.

The Temporal SDK records its own metrics (and the workflows' ``workflow.metric_meter()``) in
its Rust core. With a ``MetricBuffer`` on the runtime, those updates are drained into Keel's
OpenTelemetry meter provider, so they are exported next to the activities' metrics. The same
runtime can forward the core's log lines to Python logging, where they render as Keel's JSON.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from opentelemetry import metrics as otel_metrics
from temporalio.contrib.opentelemetry import MetricsExporter
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

# Updates the SDK runtime buffers between two drains (one a second); generous on purpose:
# a full buffer drops updates.
METRIC_BUFFER_SIZE = 50_000


def metric_buffer() -> MetricBuffer:
    """A buffer for the SDK's metric updates, durations in seconds (OpenTelemetry's unit)."""
    return MetricBuffer(METRIC_BUFFER_SIZE, duration_format=MetricBufferDurationFormat.SECONDS)


def temporal_runtime(buffer: MetricBuffer | None, *, core_logs: bool) -> Runtime:
    """A Temporal runtime that fills ``buffer`` (if any) and, with ``core_logs``, forwards the
    core's log lines to the ``temporalio.core`` Python logger instead of the console."""
    logs = LoggingConfig.default
    if core_logs:
        logs = dataclasses.replace(
            logs, forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core"))
        )
    return Runtime(telemetry=TelemetryConfig(logging=logs, metrics=buffer))


@contextlib.asynccontextmanager
async def draining(
    buffer: MetricBuffer, meter_provider: otel_metrics.MeterProvider
) -> AsyncIterator[None]:
    """Drain ``buffer`` into ``meter_provider`` every second while inside, once more on exit."""
    async with _SafeMetricsExporter(
        buffer, meter_provider, meter_name="temporalio", poll_interval=timedelta(seconds=1)
    ):
        yield


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
