"""``keel token`` in this process: what it signs, and its mistakes in one line (exit 2).

The tokens are checked with the servers' own verification (``KeySet`` over the JWKS the key
directory publishes), so "the token is right" means "a Keel server accepts it". ``--server``
against a running server (scopes read from its metadata) is tested with MCP Inspector in
tests/integration/test_mcp_inspector.py.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from keel.cli import main
from keel.contracts.names import APPROVER_AUDIENCE, LOCAL_ISSUER, TYP_ACCESS_TOKEN, TYP_GRANT
from keel.procs import free_port
from keel.runtime.keys import LocalKeys
from mcp_servers.shared.auth.jwks import KeySet

URL = "http://127.0.0.1:8201/mcp"
Keel = Callable[..., tuple[int, str, str]]


@pytest.fixture
def keel(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], keys: LocalKeys
) -> Keel:
    """``keel <args>`` with the key of ``keys``: (exit code, stdout, stderr)."""
    monkeypatch.setenv("KEEL_SIGNING_KEY", str(keys.signing_key))
    monkeypatch.setenv("KEEL_AUTH_ISSUER", LOCAL_ISSUER)
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        printed = capsys.readouterr()
        return code, printed.out, printed.err

    return run


def verified(keys: LocalKeys, token: str, audience: str, typ: str | None) -> dict[str, Any]:
    return KeySet([str(keys.jwks)]).verify(
        token, typ=typ, issuers=[LOCAL_ISSUER], audiences=[audience], refuse_typ=[TYP_GRANT]
    )


def test_an_access_token_for_an_audience_with_scopes(keel: Keel, keys: LocalKeys) -> None:
    code, out, err = keel("token", "--audience", URL, "--scope", "desk:read",
                          "--scope", "desk:refund desk:email", "--sub", "alice",
                          "--role", "supervisor", "--ttl", "600")  # fmt: skip
    assert (code, err) == (0, "")
    [token] = out.split()
    claims = verified(keys, token, URL, TYP_ACCESS_TOKEN)
    assert claims["sub"] == "alice" and claims["client_id"] == "keel-cli"
    assert claims["scope"] == "desk:read desk:refund desk:email"
    assert claims["roles"] == ["supervisor"]
    assert claims["exp"] - claims["iat"] == 600
    assert "act" not in claims  # a person acts for themselves


def test_the_default_subject_is_the_os_user(keel: Keel, keys: LocalKeys) -> None:
    _, out, _ = keel("token", "--audience", URL, "--scope", "kb:read")
    assert verified(keys, out.strip(), URL, TYP_ACCESS_TOKEN)["sub"] == getpass.getuser()


def test_an_approver_identity_token(keel: Keel, keys: LocalKeys) -> None:
    code, out, _ = keel("token", "--approver", "--sub", "alice", "--role", "supervisor")
    assert code == 0
    token = out.strip()
    assert jwt.get_unverified_header(token)["typ"] not in (TYP_ACCESS_TOKEN, TYP_GRANT)
    claims = verified(keys, token, APPROVER_AUDIENCE, None)
    assert (claims["preferred_username"], claims["roles"]) == ("alice", ["supervisor"])
    # never usable as an access token: a server's audience is its URL
    with pytest.raises(Exception, match="another audience"):
        verified(keys, token, URL, None)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--audience", URL, "--ttl", "0"], "--ttl must be 1..86400 seconds, got 0"),
        (["--audience", URL, "--ttl", "86401"], "--ttl must be 1..86400 seconds, got 86401"),
        ([], "keel token needs --server NAME or --audience URL (or --approver)"),
        (["--server", "nowhere"], "unknown MCP server 'nowhere' (known: knowledge, support_desk"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(keel: Keel, args: list[str], message: str) -> None:
    code, out, err = keel("token", *args)
    assert (code, out) == (2, "")
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_stdio_server_takes_no_tokens(keel: Keel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_MCP_LOCAL", "stdio:python local.py")
    code, _, err = keel("token", "--server", "local")
    assert code == 2 and "MCP server 'local' runs over stdio: it takes no tokens" in err


def test_without_a_signing_key_it_says_how_to_get_one(
    keel: Keel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_SIGNING_KEY", "")  # set and empty: no key
    code, out, err = keel("token", "--audience", URL)
    assert (code, out) == (2, "")
    assert err == "keel: no signing key: run `make up` first or set KEEL_SIGNING_KEY\n"
