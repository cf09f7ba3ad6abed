"""What the ``OTEL_*`` and ``KEEL_PROMETHEUS_*`` variables ask for, validated at start.

Parsed here rather than by the SDK's environment auto-configuration: that lives in a private
module (``opentelemetry.sdk._configuration``), installs *global* providers (which a test process
cannot replace), and silently ignores an unknown exporter name, where Keel wants one readable
ConfigError at start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from keel.contracts.errors import ConfigError
from keel.runtime.config import env_number

TRACE_EXPORTERS = ("otlp", "console", "none")
METRIC_EXPORTERS = ("otlp", "console", "prometheus", "none")
OTLP_PROTOCOLS = ("http/protobuf", "grpc")
DEFAULT_PROMETHEUS_PORT = 9464


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

    def traces_only(self) -> TelemetrySettings:
        """These settings with metrics off (a process that must not export metrics)."""
        return TelemetrySettings(traces=self.traces, traces_protocol=self.traces_protocol)


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
