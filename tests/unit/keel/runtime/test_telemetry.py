"""Telemetry configuration from the standard OpenTelemetry variables (no exporter sends
anything here: building the exporters and the Temporal runtime is in-process). The traces
and metrics of a real run are in tests/integration/test_telemetry.py."""

from __future__ import annotations

import pytest

from keel.contracts.errors import ConfigError
from keel.runtime.telemetry import Telemetry, TelemetrySettings


def test_no_configuration_means_no_exporters() -> None:
    telemetry = Telemetry.from_env("keel-test", {})
    assert not telemetry.tracing and not telemetry.metering
    assert telemetry.runtime is None and telemetry.interceptor() is None
    assert telemetry.connect_options() == {}


def test_settings_from_the_standard_variables() -> None:
    settings = TelemetrySettings.from_env(
        {
            "OTEL_TRACES_EXPORTER": "otlp, console",
            "OTEL_METRICS_EXPORTER": "prometheus",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "KEEL_PROMETHEUS_PORT": "9100",
        }
    )
    assert settings.traces == ("otlp", "console")
    assert settings.metrics == ()
    assert (settings.prometheus_host, settings.prometheus_port) == ("127.0.0.1", 9100)
    assert (
        TelemetrySettings.from_env({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"})
        == TelemetrySettings()
    )


def test_exporters_are_built_from_the_environment() -> None:
    telemetry = Telemetry.from_env(
        "keel-test",
        {
            "OTEL_TRACES_EXPORTER": "otlp,console",
            "OTEL_METRICS_EXPORTER": "console",
        },
        core_logs=True,
    )
    try:
        assert telemetry.tracing and telemetry.metering
        assert telemetry.runtime is not None and telemetry.buffer is not None
        options = telemetry.connect_options()
        assert options["runtime"] is telemetry.runtime
        assert [type(i).__name__ for i in options["interceptors"]] == ["TracingInterceptor"]
        # The CLI's flavour: traces only, whatever the metrics variables say.
        cli = Telemetry.from_env("keel-cli", {"OTEL_METRICS_EXPORTER": "otlp"}, metrics=False)
        assert not cli.tracing and not cli.metering and cli.runtime is None
    finally:
        telemetry.shutdown()


def test_grpc_without_its_package_is_a_config_error() -> None:
    # opentelemetry-exporter-otlp-proto-grpc is deliberately not a dependency of Keel.
    with pytest.raises(ConfigError, match="opentelemetry-exporter-otlp-proto-grpc"):
        Telemetry.from_env(
            "keel-test", {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
        )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "bogus"}, "OTEL_TRACES_EXPORTER='bogus': unknown exporter"),
        ({"OTEL_METRICS_EXPORTER": "otlp,none"}, "'none' cannot be combined"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
            "unsupported OTLP protocol",
        ),
        ({"KEEL_PROMETHEUS_PORT": "lots"}, "KEEL_PROMETHEUS_PORT='lots' is not a port number"),
        ({"KEEL_PROMETHEUS_PORT": "70000"}, "must be in 1..65535"),
    ],
)
def test_misconfiguration_is_a_config_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        TelemetrySettings.from_env(env)
