"""The worker's access tokens (claims, verified as a Keel server verifies them), what a 401/403
becomes, and which servers of a profile get the run's principal."""

from __future__ import annotations

import httpx2
import pytest
from temporalio.exceptions import ApplicationError

from activities.mcp_auth import (
    AccessTokens,
    Identity,
    metadata_url,
    record_denial,
    refusing_denied,
)
from activities.profiles import resolve_identity
from keel.contracts import Profile
from keel.contracts.names import LOCAL_ISSUER, TYP_ACCESS_TOKEN
from keel.runtime.config import MCPServerTarget, Settings
from keel.runtime.keys import LocalKeys, TokenSigner
from mcp_servers.shared.auth.jwks import KeySet

URL = "http://127.0.0.1:8201/mcp"


def test_the_principal_travels_as_plain_data() -> None:
    argument = {"id": "alice", "roles": ["agent"], "scopes": ["desk:read"]}
    assert Identity.from_argument(argument) == Identity("alice", ("agent",), ("desk:read",))
    assert Identity.from_argument({"id": "bob"}) == Identity("bob", (), None)
    assert Identity.from_argument(None) is None
    assert Identity.from_argument({"roles": []}) is None


def test_the_metadata_url_is_rfc_9728s() -> None:
    assert metadata_url(URL) == "http://127.0.0.1:8201/.well-known/oauth-protected-resource/mcp"
    assert metadata_url("https://h/") == "https://h/.well-known/oauth-protected-resource"


async def test_a_token_names_the_principal_and_the_worker(keys: LocalKeys) -> None:
    tokens = AccessTokens(TokenSigner(keys.signing_key.read_bytes(), LOCAL_ISSUER))
    token = await tokens.mint(URL, Identity("alice", ("agent",), ("desk:read", "desk:email")))
    claims = KeySet([str(keys.jwks)]).verify(
        token, typ=TYP_ACCESS_TOKEN, issuers=[LOCAL_ISSUER], audiences=[URL]
    )
    assert (claims["sub"], claims["roles"], claims["act"]) == (
        "alice",
        ["agent"],
        {"sub": "keel-worker"},
    )
    assert (claims["client_id"], claims["scope"]) == ("keel-worker", "desk:read desk:email")
    assert claims["exp"] - claims["iat"] == 300
    assert "keel_run" not in claims  # outside an activity there is no run to name
    again = await tokens.mint(URL, Identity("alice", ("agent",), ("desk:read",)))
    assert again != token  # a fresh token every time


def test_no_signing_key_no_tokens(keys: LocalKeys) -> None:
    assert AccessTokens.from_settings(Settings(signing_key=None)) is None
    assert AccessTokens.from_settings(Settings(signing_key=keys.signing_key)) is not None


def denied(status: int, challenge: str) -> httpx2.Response:
    return httpx2.Response(status, headers={"www-authenticate": challenge})


async def test_a_refusal_after_a_403_is_one_non_retryable_line() -> None:
    async def call() -> None:
        record_denial(
            denied(403, 'Bearer error="insufficient_scope", scope="desk:refund", '
                   'error_description="this call needs the scope desk:refund"')
        )  # fmt: skip
        raise RuntimeError("Server returned an error response")

    with pytest.raises(ApplicationError) as refused:
        await refusing_denied("support_desk", call)
    assert refused.value.type == "MCPAccessDenied" and refused.value.non_retryable
    assert refused.value.message == (
        "MCP server 'support_desk' refused the request: HTTP 403 insufficient_scope:"
        " this call needs the scope desk:refund"
    )


async def test_other_failures_and_successes_pass_through() -> None:
    async def broken() -> None:
        raise RuntimeError("connection refused")

    async def fine() -> str:
        record_denial(denied(401, 'Bearer error="invalid_token"'))  # seen, but nothing failed
        return "ok"

    with pytest.raises(RuntimeError, match="connection refused"):
        await refusing_denied("support_desk", broken)
    assert await refusing_denied("support_desk", fine) == "ok"
    record_denial(denied(401, ""))  # outside an attempt: nothing to record it in, no error


def test_only_http_servers_of_a_worker_with_a_key_get_the_principal(keys: LocalKeys) -> None:
    profile = Profile.model_validate(
        {
            "name": "p",
            "system_prompt": "s",
            "model": {"name": "sim/quick_answer"},
            "servers": [{"name": "desk"}, {"name": "local"}, {"name": "unknown"}],
        }
    )
    servers = {
        "desk": MCPServerTarget("desk", url=URL),
        "local": MCPServerTarget("local", command=("python", "local.py")),
    }
    with_key = resolve_identity(
        profile, Settings(mcp_servers=servers, signing_key=keys.signing_key)
    )
    assert [s.identity for s in with_key.servers] == [True, False, False]
    without = resolve_identity(profile, Settings(mcp_servers=servers, signing_key=None))
    assert [s.identity for s in without.servers] == [False, False, False]
