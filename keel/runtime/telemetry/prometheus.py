"""The opt-in Prometheus scrape endpoint (``KEEL_PROMETHEUS_PORT``).

The endpoint has its own collector registry, so nothing is process-global and a test can run
two of them; the HTTP server is prometheus_client's, started when the process starts working
(:meth:`Telemetry.running`), not when the configuration is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from opentelemetry.sdk.metrics.export import MetricReader

from keel.contracts.errors import ConfigError

if TYPE_CHECKING:  # imported when an endpoint is created: most processes never serve one
    from prometheus_client import CollectorRegistry


@dataclass(frozen=True)
class PrometheusEndpoint:
    """Where the metrics are served for scraping, and the reader/registry behind it. The
    registry is private to this endpoint (no process-global collector state)."""

    host: str
    port: int
    reader: MetricReader
    registry: CollectorRegistry

    @classmethod
    def create(cls, host: str, port: int) -> PrometheusEndpoint:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry()
        return cls(host, port, PrometheusMetricReader(registry=registry), registry)

    def serve(self) -> WSGIServer:
        """Start serving ``/metrics``; returns the HTTP server (for :func:`stop`). A port in
        use is a ConfigError that names the variable to change."""
        from prometheus_client import start_http_server

        try:
            server, _thread = start_http_server(self.port, addr=self.host, registry=self.registry)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve Prometheus metrics on {self.host}:{self.port} ({exc});"
                " set KEEL_PROMETHEUS_PORT to a free port"
            ) from None
        return server


def stop(server: WSGIServer) -> None:
    """Stop a server returned by :meth:`PrometheusEndpoint.serve` and free its port."""
    server.shutdown()
    server.server_close()
