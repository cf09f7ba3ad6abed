"""The MCP servers' traces: a tracer provider as the standard ``OTEL_*`` variables ask.

Off by default. With ``OTEL_TRACES_EXPORTER`` set (a comma list of ``otlp``, ``console``,
``none``), the provider installed as the process's global one receives the MCP SDK's own
server spans: one SERVER span ``tools/call {tool}`` per request, parented by the W3C trace
context the client sent in ``_meta`` (SEP-414), so a server's spans join the worker's trace
under its ``execute_tool`` span.

Read here: ``OTEL_SDK_DISABLED``, ``OTEL_TRACES_EXPORTER``, and
``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL`` (``http/protobuf``,
the default, or ``grpc``, which needs ``opentelemetry-exporter-otlp-proto-grpc``). The
exporters read their own endpoint, header, timeout and compression variables, the batch
processor ``OTEL_BSP_*``, the SDK resource ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES``. A bad value is a :class:`ServerConfigError` naming the
variable (exit 2, one line); the metrics variables are the worker's and are not read.

Spans are batched; :meth:`TracerProvider.shutdown` flushes them, which the launcher calls
on exit, including on SIGTERM. Written for the servers (about as long as the part of
``keel.runtime.telemetry`` it replaces) so they need neither Temporal nor Keel's runtime.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import IO

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from mcp_servers.shared.config import ServerConfigError

TRACE_EXPORTERS = ("otlp", "console", "none")
OTLP_PROTOCOLS = ("http/protobuf", "grpc")


def tracer_provider_from_env(
    service_name: str, env: Mapping[str, str] | None = None, *, console: IO[str] | None = None
) -> TracerProvider | None:
    """The provider the environment asks for, or None when traces are off.

    ``service_name`` is the default ``service.name`` when ``OTEL_SERVICE_NAME`` (or the
    resource attributes) set none; ``console`` is where the console exporter writes (a stdio
    server must keep stdout for the protocol).
    """
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporters = _exporters(env)
    if not exporters:
        return None
    provider = TracerProvider(resource=_resource(service_name))
    for name in exporters:
        exporter = (
            ConsoleSpanExporter(out=console or sys.stdout)
            if name == "console"
            else _otlp_exporter(_protocol(env))
        )
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _exporters(env: Mapping[str, str]) -> tuple[str, ...]:
    """The exporter names in ``OTEL_TRACES_EXPORTER``, deduplicated; () for none."""
    name = "OTEL_TRACES_EXPORTER"
    raw = env.get(name, "").strip()
    chosen = [part.strip().lower() for part in raw.split(",") if part.strip()]
    unknown = [part for part in chosen if part not in TRACE_EXPORTERS]
    if unknown:
        raise ServerConfigError(
            f"{name}={raw!r}: unknown exporter {unknown[0]!r} (expected a comma list of"
            f" {', '.join(TRACE_EXPORTERS)})"
        )
    if "none" in chosen:
        if len(chosen) > 1:
            raise ServerConfigError(
                f"{name}={raw!r}: 'none' cannot be combined with other exporters"
            )
        return ()
    return tuple(dict.fromkeys(chosen))


def _protocol(env: Mapping[str, str]) -> str:
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        raw = env.get(name, "").strip()
        if raw:
            if raw.lower() not in OTLP_PROTOCOLS:
                raise ServerConfigError(
                    f"{name}={raw!r}: unsupported OTLP protocol (expected"
                    f" {' or '.join(OTLP_PROTOCOLS)})"
                )
            return raw.lower()
    return "http/protobuf"


def _otlp_exporter(protocol: str) -> SpanExporter:
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcSpanExporter,
            )
        except ImportError:
            raise ServerConfigError(
                "OTLP over grpc needs the package opentelemetry-exporter-otlp-proto-grpc"
                " (pip install opentelemetry-exporter-otlp-proto-grpc), or set"
                " OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
            ) from None
        grpc: SpanExporter = GrpcSpanExporter()  # Any when the package is absent
        return grpc
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def _resource(service_name: str) -> Resource:
    """The SDK resource from the environment, ``service_name`` as the fallback name."""
    detected = Resource.create()
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        detected = detected.merge(Resource({SERVICE_NAME: service_name}))
    return detected
