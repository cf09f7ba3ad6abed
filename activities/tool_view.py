"""What the model reads of a tool result: its text and its images, and the bytes that address it.

Pure functions over ``CallToolResult``, shared by the workflow, which builds the tool message
from them (workflows/tools/execute.py, workflows/agent/turn.py), and the worker's MCP
interceptor, which stores the same view in the content store (activities/tool_results.py) so
the workflow can send the tool message by reference: :func:`view_bytes` is the
``message_content_bytes`` of that tool message, computed on either side from the same result.
"""

from __future__ import annotations

import json

from mcp.types import (
    AudioContent,
    CallToolResult,
    ContentBlock,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

from keel.contracts import ChatMessage, ImagePart, message_content_bytes
from keel.contracts.json_text import loads_bounded
from keel.contracts.sizes import human_size


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


def view_message(result: CallToolResult, tool_call_id: str | None = None) -> ChatMessage:
    """The tool message the model gets for ``result`` (as workflows/agent/turn.py builds it)."""
    return ChatMessage(role="tool", tool_call_id=tool_call_id, content=result_text(result),
                       images=result_images(result))  # fmt: skip


def view_bytes(result: CallToolResult) -> bytes:
    """What the tool message's ``content_ref`` addresses: its content and images."""
    return message_content_bytes(view_message(result))
