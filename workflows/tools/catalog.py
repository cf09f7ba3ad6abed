"""The run's tool catalog: pure logic used by the workflow.

``build_catalog`` turns the servers' listings into the ``ToolSpec`` s a run may use (and
refuses input schemas that are not valid JSON Schema, so a server bug fails the run at its
start instead of at the first call). Validating calls against the catalog lives in
:mod:`workflows.tools.validation`; the text the model reads of a tool result, in
:mod:`activities.tool_view` (the worker computes the same view to store it).
"""

from __future__ import annotations

from mcp.types import ListToolsResult

from keel.contracts import ServerSettings, ToolSpec
from workflows.tools.schemas import schema_problem


class CatalogError(ValueError):
    """The profile's tool selection does not match the servers, or a schema is invalid."""


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
            problem = schema_problem(dict(tool.input_schema))
            if problem is not None:
                raise CatalogError(
                    f"tool {name!r} on MCP server {server.name!r} publishes an invalid input"
                    f" schema: {problem}"
                )
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
