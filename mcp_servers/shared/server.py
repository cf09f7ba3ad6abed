"""The MCP server class every Keel server is built on: ``MCPServer`` with Keel's identity and
JSON-RPC-correct prompt errors.

- ``serverInfo.version`` is Keel's package version (the SDK's default is an empty string).
- ``prompts/get`` of an unknown prompt, or without a required argument, answers JSON-RPC
  ``-32602`` (invalid params) naming the prompts there are. The SDK raises a ``ValueError``
  that goes out as code ``0``. The servers advertise the prompts capability (``MCPServer``
  always does), so each of them ships real prompts.
- Access tokens over HTTP (:mod:`mcp_servers.shared.auth.resource`): a server declares the
  scope of each of its tools (``tool_scopes``, one mapping next to its tools); given a
  ``resource_auth`` it is an OAuth 2.1 resource server, with the SDK's token checks (401) and
  Keel's per-tool scope checks (403, :mod:`mcp_servers.shared.auth.scopes`).

Side-effecting tools validate their arguments strictly (no ``"5"`` → ``5.0``): their
parameters are annotated with :data:`STRICT` (pydantic strict mode), so a string where the
schema says number is refused as a tool error before the tool runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, GetPromptResult, InputRequiredResult
from pydantic import Strict
from starlette.applications import Starlette

from mcp_servers.shared.auth.resource import ResourceAuth
from mcp_servers.shared.auth.scopes import protect_app
from mcp_servers.shared.config import ServerConfigError
from mcp_servers.shared.sandbox import Sandboxes

PACKAGE = "keel"
STRICT = Strict()
"""Annotate a tool parameter with this (``Annotated[float, STRICT, Field(...)]``) to refuse
coercion: a JSON string is not accepted for a number, a number not for a string."""


def package_version() -> str:
    """The installed Keel distribution's version; ``0+unknown`` when run from a bare checkout."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "0+unknown"


class KeelMCPServer(MCPServer[Any]):
    """``MCPServer`` whose ``serverInfo.version`` is Keel's and whose prompt errors are
    ``-32602``. Takes ``MCPServer``'s arguments; ``version`` defaults to Keel's.

    ``tool_scopes`` maps each tool to the scope a token needs to call it; ``resource_auth``
    (None: no token checks, as over stdio) turns the HTTP app into a resource server.
    ``sandboxes`` (evals only, :mod:`mcp_servers.shared.sandbox`) serves each call that
    names a run in its ``_meta`` from that run's copy of the database.
    """

    def __init__(
        self,
        name: str,
        *,
        tool_scopes: Mapping[str, str] | None = None,
        resource_auth: ResourceAuth | None = None,
        sandboxes: Sandboxes | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("version", package_version())
        if resource_auth is not None:
            kwargs.update(resource_auth.server_arguments())
        super().__init__(name, **kwargs)
        self.tool_scopes = dict(tool_scopes or {})
        self.resource_auth = resource_auth
        self.sandboxes = sandboxes

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        """The SDK's call, inside the run's sandbox when sandboxes are on."""
        if self.sandboxes is None:
            return await super().call_tool(name, arguments, context)
        try:
            meta = context.request_context.meta if context is not None else None
        except ValueError:  # called outside a request (server.call_tool in-process)
            meta = None
        async with self.sandboxes.scope(meta):
            return await super().call_tool(name, arguments, context)

    async def check_scopes(self) -> None:
        """Every tool must have a scope when tokens are checked: a tool without one would be
        callable with any token. A :class:`ServerConfigError` names the first such tool."""
        if self.resource_auth is None:
            return
        for tool in await self.list_tools():
            if tool.name not in self.tool_scopes:
                raise ServerConfigError(f"tool {tool.name!r} declares no scope (tool_scopes)")

    def streamable_http_app(self, **kwargs: Any) -> Starlette:
        """The SDK's app, plus per-tool scopes and their metadata when tokens are checked."""
        app = super().streamable_http_app(**kwargs)
        if self.resource_auth is not None:
            limit = kwargs.get("max_request_body_size", DEFAULT_MAX_REQUEST_BODY_SIZE)
            protect_app(app, self.resource_auth, self.tool_scopes, self.title or self.name, limit)
        return app

    async def get_prompt(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        context: Context[Any, Any] | None = None,
    ) -> GetPromptResult | InputRequiredResult:
        prompts = {prompt.name: prompt for prompt in await self.list_prompts()}
        prompt = prompts.get(name)
        if prompt is None:
            available = ", ".join(sorted(prompts)) or "none"
            raise MCPError(
                code=INVALID_PARAMS,
                message=f"Unknown prompt: {name!r}. Available prompts: {available}.",
                data={"name": name, "available": sorted(prompts)},
            )
        required = {a.name for a in prompt.arguments or [] if a.required}
        missing = sorted(required - set(arguments or {}))
        if missing:
            raise MCPError(
                code=INVALID_PARAMS,
                message=f"Prompt {name!r} needs the argument(s): {', '.join(missing)}.",
                data={"name": name, "missing": missing},
            )
        return await super().get_prompt(name, arguments, context)
