"""State checks: read a tool server's final state for one run, in that run's sandbox.

Each check calls a read tool (``get_order`` …) over MCP with ``_meta["io.keel/run"]`` = the
run's workflow id, so a support desk in sandbox mode answers from that run's own database
copy. The call carries an access token signed with the stack's key (as the worker's and
``keel token``'s are: aud = the server's URL, the scopes the server advertises).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from keel.contracts.errors import ConfigError, KeelError
from keel.contracts.names import META_RUN, TYP_ACCESS_TOKEN
from keel.eval.checks import state_check, state_error
from keel.eval.dataset import StateCheck
from keel.eval.models import CheckOutcome
from keel.runtime.keys import TokenSigner
from keel.tokens import advertised_scopes

EVAL_CLIENT_ID = "keel-eval"


class StateReader:
    """Reads state checks from the servers ``urls`` names, with tokens from ``signer``."""

    def __init__(self, urls: Mapping[str, str], signer: TokenSigner | None) -> None:
        self.urls = dict(urls)
        self.signer = signer
        self._scopes: dict[str, list[str]] = {}

    async def _token(self, server: str, url: str) -> str | None:
        if self.signer is None:
            return None
        if server not in self._scopes:
            try:
                self._scopes[server] = await advertised_scopes(server, url)
            except KeelError:
                self._scopes[server] = []
        claims: dict[str, Any] = {"aud": url, "sub": EVAL_CLIENT_ID, "client_id": EVAL_CLIENT_ID}
        if self._scopes[server]:
            claims["scope"] = " ".join(self._scopes[server])
        return self.signer.sign(claims, typ=TYP_ACCESS_TOKEN, ttl_seconds=300)

    async def read(self, server: str, tool: str, arguments: dict[str, Any], run: str) -> Any:
        """The tool's structured result (else its text parsed as JSON) in run ``run``'s
        sandbox; a tool error or unreachable server is a KeelError."""
        url = self.urls.get(server)
        if url is None:
            raise ConfigError(f"no URL for MCP server {server!r} (known: {', '.join(self.urls)})")
        token = await self._token(server, url)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with (
                httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0)) as http,
                Client(streamable_http_client(url, http_client=http)) as client,
            ):
                meta: Any = {META_RUN: run}  # the SDK's RequestParamsMeta is a TypedDict
                result = await client.call_tool(tool, arguments, meta=meta)
        except Exception as exc:  # the SDK's transport errors have no common base
            raise KeelError(f"{type(exc).__name__}: {exc}") from None
        text = " ".join(getattr(part, "text", "") for part in result.content)
        if result.is_error:
            raise KeelError(f"tool error: {text[:200]}")
        if result.structured_content is not None:
            return result.structured_content
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text

    async def check(self, index: int, check: StateCheck, run: str) -> CheckOutcome:
        try:
            value = await self.read(check.server, check.tool, check.arguments, run)
        except KeelError as exc:
            return state_error(index, check, str(exc))
        return state_check(index, check, value)
