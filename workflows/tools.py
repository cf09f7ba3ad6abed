"""Tool catalog and tool-call preparation: pure logic the workflow runs before any call fires.

``prepare_call`` is the validation seam. Today it checks that the tool is in the run's
allowed set and that the arguments are a JSON object; schema, semantic and authorization
layers plug in here (issue: bounded runs). A rejected call never reaches an MCP server: the
model gets a structured error message instead, as data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mcp.types import CallToolResult, ListToolsResult, TextContent

from keel.errors import closest
from keel.models import ServerSettings, ToolCall, ToolSpec


class CatalogError(ValueError):
    """The profile's tool selection does not match what the servers offer."""


def build_catalog(
    servers: list[ServerSettings], listed: dict[str, ListToolsResult]
) -> list[ToolSpec]:
    """Tools the run may call: each server's listing filtered by the profile's allow-list."""
    catalog: list[ToolSpec] = []
    owner: dict[str, str] = {}
    for server in servers:
        offered = {tool.name: tool for tool in listed[server.name].tools}
        missing = [t for t in server.tools if t != "*" and t not in offered]
        if missing:
            raise CatalogError(
                f"profile allows tool(s) {', '.join(missing)} on MCP server {server.name!r},"
                f" which offers: {', '.join(sorted(offered)) or 'nothing'}"
            )
        for name, tool in offered.items():
            if not server.allows(name):
                continue
            if name in owner:
                raise CatalogError(
                    f"tool {name!r} is offered by both {owner[name]!r} and {server.name!r};"
                    " allow it on one server only"
                )
            owner[name] = server.name
            annotations = tool.annotations.model_dump(exclude_none=True) if tool.annotations else {}
            catalog.append(
                ToolSpec(
                    server=server.name,
                    name=name,
                    description=tool.description or "",
                    input_schema=dict(tool.input_schema),
                    annotations=annotations,
                )
            )
    return catalog


@dataclass(frozen=True)
class PreparedCall:
    """A tool call that passed validation and may be sent to its server."""

    call: ToolCall
    tool: ToolSpec
    arguments: dict[str, Any]


@dataclass(frozen=True)
class RejectedCall:
    """A tool call that failed validation; ``message`` goes back to the model."""

    call: ToolCall
    layer: str
    message: str

    def as_tool_content(self) -> str:
        return json.dumps(
            {"error": "invalid_tool_call", "layer": self.layer, "message": self.message}
        )


def prepare_call(call: ToolCall, catalog: list[ToolSpec]) -> PreparedCall | RejectedCall:
    """Check one call against the catalog; never raises for a model mistake."""
    by_name = {tool.name: tool for tool in catalog}
    tool = by_name.get(call.name)
    if tool is None:
        hints = closest(call.name, by_name)
        suggestion = f" Did you mean: {', '.join(hints)}?" if hints else ""
        return RejectedCall(
            call,
            "schema",
            f"Unknown tool {call.name!r}. Available tools: {', '.join(sorted(by_name))}."
            + suggestion,
        )
    try:
        arguments = json.loads(call.arguments or "{}")
    except json.JSONDecodeError as exc:
        return RejectedCall(
            call,
            "schema",
            f"Arguments for {call.name!r} are not valid JSON ({exc.msg} at position {exc.pos})."
            " Send a JSON object matching the tool's input schema.",
        )
    if not isinstance(arguments, dict):
        return RejectedCall(
            call, "schema", f"Arguments for {call.name!r} must be a JSON object, not {arguments!r}."
        )
    return PreparedCall(call, tool, arguments)


def compact_json(text: str) -> str:
    """Re-serialize JSON text without indentation: the same facts in fewer tokens."""
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return text
    try:
        return json.dumps(json.loads(stripped), separators=(",", ":"), ensure_ascii=False)
    except json.JSONDecodeError:
        return text


def result_text(result: CallToolResult) -> str:
    """The text the model sees for a tool result (text blocks, else structured content)."""
    texts = [compact_json(block.text) for block in result.content if isinstance(block, TextContent)]
    if texts:
        return "\n".join(texts)
    if result.structured_content is not None:
        return json.dumps(result.structured_content, separators=(",", ":"))
    return "(the tool returned no text)"
