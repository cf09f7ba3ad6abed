"""The run's tool catalog and the text of tool results: pure logic used by the workflow.

``build_catalog`` turns the servers' listings into the ``ToolSpec`` s a run may use (and
refuses input schemas that are not valid JSON Schema, so a server bug fails the run at its
start instead of at the first call). Validating calls against the catalog lives in
:mod:`workflows.tools.validation`.
"""

from __future__ import annotations

import json

from mcp.types import (
    AudioContent,
    CallToolResult,
    ContentBlock,
    ImageContent,
    ListToolsResult,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

from keel.contracts import ImagePart, ServerSettings, ToolSpec
from keel.contracts.sizes import human_size
from workflows.json_text import loads_bounded
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


def compact_json(text: str) -> str:
    """Re-serialize JSON text without indentation: the same facts in fewer tokens."""
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return text
    try:
        return json.dumps(loads_bounded(stripped), separators=(",", ":"), ensure_ascii=False)
    except ValueError:  # not JSON, or too deep to re-serialise: keep the text as it is
        return text


def result_text(result: CallToolResult) -> str:
    """The text the model sees for a tool result.

    Text blocks (compacted JSON), else the structured content; every other block becomes a
    marker in its place: ``[image/png, 5 KB]`` (the image itself goes to models that accept
    images, ``result_images``), ``[audio/wav, 12 KB: audio is not passed to the model]``,
    ``[resource link: <uri> (name, type, size)]``, an embedded text resource inlined after
    its ``[resource <uri> (type)]`` header (the worker has cut the result to the server's
    ``max_result_bytes``), an embedded binary resource as ``[resource <uri> (type, size)]``.
    """
    parts = [_block_text(block) for block in result.content]
    has_text = any(isinstance(block, TextContent) for block in result.content)
    if not has_text and result.structured_content is not None:
        parts.insert(0, json.dumps(result.structured_content, separators=(",", ":")))
    return "\n".join(parts) if parts else "(the tool returned no text)"


def result_images(result: CallToolResult) -> list[ImagePart]:
    """The images of a tool result, in order, for models that accept images."""
    return [
        ImagePart(mime_type=block.mime_type, data=block.data)
        for block in result.content
        if isinstance(block, ImageContent) and block.mime_type.startswith("image/")
    ]


def _block_text(block: ContentBlock) -> str:
    if isinstance(block, TextContent):
        return compact_json(block.text)
    if isinstance(block, ImageContent):
        return f"[{block.mime_type}, {_size(block.data)}]"
    if isinstance(block, AudioContent):
        return f"[{block.mime_type}, {_size(block.data)}: audio is not passed to the model]"
    if isinstance(block, ResourceLink):
        facts = [block.name, block.mime_type, human_size(block.size) if block.size else None]
        return f"[resource link: {block.uri} ({', '.join(f for f in facts if f)})]"
    resource = block.resource
    mime = resource.mime_type or "unknown type"
    if isinstance(resource, TextResourceContents):
        return f"[resource {resource.uri} ({mime})]\n{resource.text}"
    return f"[resource {resource.uri} ({mime}, {_size(resource.blob)})]"


def _size(data: str) -> str:
    """The decoded size of base64 ``data``, readable (3 bytes per 4 characters, less padding)."""
    return human_size(len(data) * 3 // 4 - data[-2:].count("="))
