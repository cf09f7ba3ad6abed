"""The servers' environment numbers: a bad value is one readable ServerConfigError."""

from __future__ import annotations

import pytest

from mcp_servers.shared.config import ServerConfigError, latency_ms_from_env


def test_latency_defaults_to_zero_and_reads_integers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DESK_LATENCY_MS", raising=False)
    assert latency_ms_from_env("DESK_LATENCY_MS") == 0
    monkeypatch.setenv("DESK_LATENCY_MS", " 250 ")
    assert latency_ms_from_env("DESK_LATENCY_MS") == 250


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("slow", "DESK_LATENCY_MS must be an integer, got 'slow'"),
        ("1.5", "DESK_LATENCY_MS must be an integer, got '1.5'"),
        ("-1", "DESK_LATENCY_MS must be >= 0, got -1"),
    ],
)
def test_bad_latency_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, raw: str, message: str
) -> None:
    monkeypatch.setenv("DESK_LATENCY_MS", raw)
    with pytest.raises(ServerConfigError) as error:
        latency_ms_from_env("DESK_LATENCY_MS")
    assert str(error.value) == message
