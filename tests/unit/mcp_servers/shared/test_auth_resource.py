"""The resource server's token verifier and settings, with real keys and real JWTs.

Every token here is signed by ``keel.runtime.keys.TokenSigner`` (the worker's and
``keel token``'s signer) and verified by the SDK-facing ``JwtTokenVerifier`` over the
foundation's ``KeySet``: nothing is faked.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from keel.contracts.names import LOCAL_ISSUER, TYP_ACCESS_TOKEN, TYP_GRANT
from keel.runtime.keys import LocalKeys, TokenSigner, ensure_local_keys, rotate_signing_key
from mcp_servers.shared.auth import jwks
from mcp_servers.shared.auth.jwks import KeySet
from mcp_servers.shared.auth.resource import (
    JwtTokenVerifier,
    insecure_requested,
    principal,
    resource_auth,
    token_scopes,
)
from mcp_servers.shared.config import ServerConfigError
from mcp_servers.shared.launcher import build_parser
from mcp_servers.shared.server import KeelMCPServer

URL = "http://127.0.0.1:8201/mcp"


def sign(keys: LocalKeys, *, typ: str = TYP_ACCESS_TOKEN, age: float = 0, **claims: Any) -> str:
    """A token of ``keys``, issued ``age`` seconds ago for 300 s."""
    payload = {"aud": URL, "sub": "alice", "scope": "desk:read desk:email", **claims}
    signer = TokenSigner.from_file(keys.signing_key, str(payload.pop("iss", LOCAL_ISSUER)))
    return signer.sign(payload, typ=typ, ttl_seconds=300, now=time.time() - age)


def verifier(keys: LocalKeys, **options: Any) -> JwtTokenVerifier:
    options.setdefault("issuers", [LOCAL_ISSUER])
    options.setdefault("resource_url", URL)
    return JwtTokenVerifier(KeySet([str(keys.jwks)]), **options)


async def test_a_valid_token_becomes_the_sdks_access_token(keys: LocalKeys) -> None:
    token = sign(keys, client_id="keel-worker", act={"sub": "keel-worker"}, keel_run="run-7")
    access = await verifier(keys).verify_token(token)
    assert access is not None
    assert (access.client_id, access.subject, access.resource) == ("keel-worker", "alice", URL)
    assert access.scopes == ["desk:read", "desk:email"]
    assert access.expires_at is not None and access.expires_at > time.time()
    assert access.claims is not None and access.claims["keel_run"] == "run-7"
    assert principal(access) == {
        "sub": "alice",
        "act": {"sub": "keel-worker"},
        "keel_run": "run-7",
        "client_id": "keel-worker",
    }


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"typ": TYP_GRANT}, "wrong token type"),
        ({"age": 400}, "token expired"),  # expired 100 s ago, beyond the 30 s leeway
        ({"aud": "http://127.0.0.1:8202/mcp"}, "another audience"),
        ({"iss": "https://evil.example"}, "untrusted issuer"),
    ],
)
async def test_refused_tokens_are_none_and_logged_with_the_reason(
    keys: LocalKeys, claims: dict[str, Any], reason: str, lines: io.StringIO
) -> None:
    token = sign(keys, **claims)
    assert await verifier(keys).verify_token(token) is None
    [line] = [json.loads(text) for text in lines.getvalue().splitlines()]
    assert line["event"] == "access token refused" and reason in line["reason"], line
    assert token not in lines.getvalue()


async def test_a_bad_signature_is_refused(keys: LocalKeys) -> None:
    header, payload, signature = sign(keys).split(".")
    forged = ".".join([header, payload, ("A" if signature[0] != "A" else "B") + signature[1:]])
    assert await verifier(keys).verify_token(forged) is None


async def test_a_key_of_another_issuer_is_unknown(keys: LocalKeys, tmp_path: Path) -> None:
    stranger = ensure_local_keys(tmp_path / "stranger")
    assert await verifier(keys).verify_token(sign(stranger)) is None


async def test_a_rotated_key_is_picked_up_without_a_restart(
    keys: LocalKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    checker = verifier(keys)  # loaded before the rotation
    old = sign(keys)
    rotate_signing_key(keys.directory)
    new = sign(keys)
    assert jwt.get_unverified_header(old)["kid"] != jwt.get_unverified_header(new)["kid"]
    assert len(json.loads(keys.jwks.read_text())["keys"]) == 2
    monkeypatch.setattr(jwks, "RELOAD_INTERVAL_SECONDS", 0.0)  # reload at the first unknown kid
    assert await checker.verify_token(new) is not None
    assert await checker.verify_token(old) is not None  # tokens already issued stay valid


async def test_a_trailing_slash_and_extra_audiences_are_accepted(keys: LocalKeys) -> None:
    checker = verifier(keys, resource_url=URL + "/", audiences=["http://desk.example/mcp"])
    assert await checker.verify_token(sign(keys, aud=URL + "/")) is not None
    extra = await checker.verify_token(sign(keys, aud=["http://desk.example/mcp"]))
    assert extra is not None and extra.resource == "http://desk.example/mcp"
    assert await checker.verify_token(sign(keys, aud="http://other.example/mcp")) is None


@pytest.mark.parametrize(
    ("claims", "scopes"),
    [
        ({"scope": "desk:read  desk:refund"}, ["desk:read", "desk:refund"]),
        ({"scp": ["kb:read", "desk:read"]}, ["kb:read", "desk:read"]),
        ({"scp": "kb:read desk:read"}, ["kb:read", "desk:read"]),  # Entra writes a string
        ({"scope": "a b", "scp": ["b", "c"]}, ["a", "b", "c"]),
        ({}, []),
    ],
)
def test_scopes_come_from_scope_or_scp(claims: dict[str, Any], scopes: list[str]) -> None:
    assert token_scopes(claims) == scopes


def parse(*argv: str) -> argparse.Namespace:
    return build_parser("desk", "d", 8201).parse_args(list(argv))


def test_no_jwks_is_one_line_naming_both_options() -> None:
    with pytest.raises(ServerConfigError) as refused:
        resource_auth(parse(), env={})
    assert "--jwks" in str(refused.value) and "--insecure-no-auth" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_flags_win_over_the_environment_and_defaults_follow_host_and_port(
    keys: LocalKeys,
) -> None:
    env = {"KEEL_AUTH_JWKS": "/nowhere/jwks.json", "KEEL_AUTH_AUDIENCE": "http://a/mcp, http://b/"}
    auth = resource_auth(parse("--jwks", str(keys.jwks), "--port", "9001"), env=env)
    assert auth.resource_url == "http://127.0.0.1:9001/mcp"
    assert auth.issuers == (LOCAL_ISSUER,)
    assert set(auth.verifier.audiences) >= {"http://a/mcp", "http://b", "http://b/"}
    ipv6 = resource_auth(
        parse("--host", "::1", "--port", "9"), env={"KEEL_AUTH_JWKS": str(keys.jwks)}
    )
    assert ipv6.resource_url == "http://[::1]:9/mcp"
    named = resource_auth(
        parse("--resource-url", "https://desk.example/mcp/", "--issuer", "https://idp.example/r"),
        env={"KEEL_AUTH_JWKS": str(keys.jwks)},
    )
    assert (named.resource_url, named.issuers) == (
        "https://desk.example/mcp",
        ("https://idp.example/r",),
    )


def test_an_unreadable_jwks_or_a_bad_issuer_is_a_config_error(keys: LocalKeys) -> None:
    with pytest.raises(ServerConfigError, match="cannot read JWKS"):
        resource_auth(parse("--jwks", "/nowhere/jwks.json"), env={})
    with pytest.raises(ServerConfigError, match="not an http"):
        resource_auth(parse("--jwks", str(keys.jwks), "--issuer", "keel"), env={})


@pytest.mark.parametrize(
    ("argv", "env", "insecure"),
    [
        ([], {}, False),
        (["--insecure-no-auth"], {}, True),
        ([], {"KEEL_INSECURE_NO_AUTH": "1"}, True),
        ([], {"KEEL_INSECURE_NO_AUTH": "false"}, False),
    ],
)
def test_insecure_is_a_flag_or_a_variable(
    argv: list[str], env: dict[str, str], insecure: bool
) -> None:
    assert insecure_requested(parse(*argv), env=env) is insecure


def test_a_malformed_insecure_variable_is_refused() -> None:
    with pytest.raises(ServerConfigError, match="KEEL_INSECURE_NO_AUTH"):
        insecure_requested(parse(), env={"KEEL_INSECURE_NO_AUTH": "maybe"})


async def test_a_tool_without_a_scope_stops_a_server_that_checks_tokens(keys: LocalKeys) -> None:
    auth = resource_auth(parse("--jwks", str(keys.jwks)), env={})
    server = KeelMCPServer("probe", tool_scopes={"listed": "p:read"}, resource_auth=auth)

    @server.tool(name="listed")
    def listed() -> str:
        return "ok"

    await server.check_scopes()  # every tool has its scope

    @server.tool(name="forgotten")
    def forgotten() -> str:
        return "ok"

    with pytest.raises(ServerConfigError, match="tool 'forgotten' declares no scope"):
        await server.check_scopes()
    await KeelMCPServer("open", tool_scopes={}).check_scopes()  # no tokens checked: no scopes
