"""Access tokens for tests that talk to MCP servers directly (no worker in between).

The servers of the test stack verify tokens against the stack's JWKS
(``stack.config.keys``: ``connect(url, stack.config.keys)``); a test that starts a server of
its own gives it ``server_env()`` and calls it with ``connect(url)``, both for this test
process's own key directory (:func:`local_keys`). Tokens are signed with the same code the
worker and ``keel token`` use (``keel.runtime.keys.TokenSigner``): nothing is faked.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from keel.contracts.names import LOCAL_ISSUER, TYP_ACCESS_TOKEN
from keel.runtime.keys import LocalKeys, TokenSigner, ensure_local_keys
from mcp_servers.knowledge.server import TOOL_SCOPES as KB_TOOL_SCOPES
from mcp_servers.support_desk.server import TOOL_SCOPES as DESK_TOOL_SCOPES

DESK_SCOPES = tuple(sorted(set(DESK_TOOL_SCOPES.values())))
KB_SCOPES = tuple(sorted(set(KB_TOOL_SCOPES.values())))
ALL_SCOPES = DESK_SCOPES + KB_SCOPES


@functools.cache
def local_keys() -> LocalKeys:
    """This test process's key directory (created once, removed at exit)."""
    directory = Path(tempfile.mkdtemp(prefix="keel-test-keys-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return ensure_local_keys(directory)


def server_env(keys: LocalKeys | None = None) -> dict[str, str]:
    """The environment of an MCP server that trusts tokens signed with ``keys`` (default:
    :func:`local_keys`)."""
    keys = keys or local_keys()
    return {"KEEL_AUTH_JWKS": str(keys.jwks), "KEEL_AUTH_ISSUER": LOCAL_ISSUER}


def mint(
    keys: LocalKeys | None,
    audience: str,
    scopes: Sequence[str] = ALL_SCOPES,
    *,
    typ: str = TYP_ACCESS_TOKEN,
    ttl: float = 300,
    **claims: Any,
) -> str:
    """An access token for ``audience`` (an MCP URL) with ``scopes``, ``sub`` ``tester``,
    signed with ``keys`` (None: :func:`local_keys`)."""
    payload: dict[str, Any] = {"aud": audience, "sub": "tester", "client_id": "tests"}
    if scopes:
        payload["scope"] = " ".join(scopes)
    payload.update(claims)
    signer = TokenSigner.from_file((keys or local_keys()).signing_key)
    return signer.sign(payload, typ=typ, ttl_seconds=ttl)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def connect(
    url: str, keys: LocalKeys | None = None, *, token: str | None = None, **options: Any
) -> AsyncIterator[Client]:
    """An ``mcp.Client`` of ``url`` whose requests carry ``token`` (default: one minted with
    ``keys``, else :func:`local_keys`, for every scope); ``options`` go to ``Client``."""
    if token is None:
        token = mint(keys, url)
    async with (
        httpx2.AsyncClient(headers=bearer(token), timeout=httpx2.Timeout(30.0, read=300.0)) as http,
        Client(streamable_http_client(url, http_client=http), **options) as client,
    ):
        yield client
