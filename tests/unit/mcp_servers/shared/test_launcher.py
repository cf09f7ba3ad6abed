"""The launcher's pure parts: the shared options and the Host-header policy."""

from __future__ import annotations

import pytest

from mcp_servers.shared.launcher import build_parser, transport_security


def test_defaults_are_http_on_loopback_at_the_given_port() -> None:
    args = build_parser("desk", "d", 8201).parse_args([])
    assert (args.transport, args.host, args.port, args.allowed_host) == (
        "http",
        "127.0.0.1",
        8201,
        [],
    )


def test_allowed_host_repeats() -> None:
    argv = ["--allowed-host", "desk:*", "--allowed-host", "desk.local:8201", "--port", "9"]
    args = build_parser("desk", "d", 8201).parse_args(argv)
    assert (args.allowed_host, args.port) == (["desk:*", "desk.local:8201"], 9)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "0"], "desk: error: argument --port: port must be in 1..65535, got 0\n"),
        (["--port", "x"], "desk: error: argument --port: port must be an integer, got 'x'\n"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser("desk", "d", 8201).parse_args(argv)
    assert done.value.code == 2
    assert capsys.readouterr().err == message


def test_loopback_bind_checks_hosts_and_origins() -> None:
    security = transport_security("127.0.0.1", [])
    assert security.enable_dns_rebinding_protection
    assert security.allowed_hosts == ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    assert security.allowed_origins == [
        "http://127.0.0.1:*",
        "http://localhost:*",
        "http://[::1]:*",
    ]


def test_container_bind_checks_nothing_unless_hosts_are_named() -> None:
    assert not transport_security("0.0.0.0", []).enable_dns_rebinding_protection
    named = transport_security("0.0.0.0", ["support-desk:*"])
    assert named.enable_dns_rebinding_protection
    assert named.allowed_hosts is not None and "support-desk:*" in named.allowed_hosts
    assert named.allowed_origins is not None
    assert {"http://support-desk:*", "https://support-desk:*"} <= set(named.allowed_origins)
