"""The MCP server class every Keel server is built on: ``MCPServer`` with Keel's identity and
JSON-RPC-correct prompt errors.

- ``serverInfo.version`` is Keel's package version (the SDK's default is an empty string).
- ``prompts/get`` of an unknown prompt, or without a required argument, answers JSON-RPC
  ``-32602`` (invalid params) naming the prompts there are. The SDK raises a ``ValueError``
  that goes out as code ``0``. The servers advertise the prompts capability (``MCPServer``
  always does), so each of them ships real prompts.

Side-effecting tools validate their arguments strictly (no ``"5"`` → ``5.0``): their
parameters are annotated with :data:`STRICT` (pydantic strict mode), so a string where the
schema says number is refused as a tool error before the tool runs.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, GetPromptResult, InputRequiredResult
from pydantic import Strict

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
    ``-32602``. Takes ``MCPServer``'s arguments; ``version`` defaults to Keel's."""

    def __init__(self, name: str, **kwargs: Any) -> None:
        kwargs.setdefault("version", package_version())
        super().__init__(name, **kwargs)

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
