"""Anthropic Messages requests, validated as strictly as Anthropic validates them.

The request model refuses unknown fields (Anthropic answers "Extra inputs are not permitted");
``problem`` finds what the schema cannot: empty text blocks, more than four ``cache_control``
breakpoints, a ``tool_result`` that answers no ``tool_use`` of the message before it, a
``tool_use`` left unanswered, results after other content, malformed ids. Each problem is
the one-line message Anthropic's 400 would carry, so Keel's provider is held to the real
API's rules, not to whatever the simulator would tolerate.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_BREAKPOINTS = 4
ID = re.compile(r"^[a-zA-Z0-9_-]+$")
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
BLOCK_TYPES = frozenset({"text", "image", "tool_use", "tool_result", "document"})


class _Forbid(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnthropicMessage(_Forbid):
    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class MessagesRequest(_Forbid):
    """A Messages request body: the fields Anthropic accepts, no others."""

    model: str = Field(min_length=1)
    messages: list[AnthropicMessage] = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    metadata: dict[str, Any] | None = None

    def blocks(self, message: AnthropicMessage) -> list[dict[str, Any]]:
        """A message's content as blocks (a string is one text block)."""
        if isinstance(message.content, str):
            return [{"type": "text", "text": message.content}]
        return message.content

    def system_blocks(self) -> list[dict[str, Any]]:
        if self.system is None:
            return []
        if isinstance(self.system, str):
            return [{"type": "text", "text": self.system}] if self.system else []
        return self.system


def _cache_problem(where: str, block: dict[str, Any]) -> str | None:
    mark = block.get("cache_control")
    if mark is None:
        return None
    if not isinstance(mark, dict) or mark.get("type") != "ephemeral":
        return f"{where}.cache_control.type: Input should be 'ephemeral'"
    if set(mark) - {"type", "ttl"} or mark.get("ttl", "5m") not in ("5m", "1h"):
        return f"{where}.cache_control: only 'type' and 'ttl' ('5m' or '1h') are permitted"
    return None


def _text_problem(where: str, block: dict[str, Any]) -> str | None:
    text = block.get("text")
    if not isinstance(text, str):
        return f"{where}.text: Field required"
    if not text:
        return f"{where}: text content blocks must be non-empty"
    if not text.strip():
        return f"{where}: text content blocks must contain non-whitespace text"
    return None


def _image_problem(where: str, block: dict[str, Any]) -> str | None:
    source = block.get("source")
    if not isinstance(source, dict) or source.get("type") != "base64":
        return f"{where}.source: Input should be a base64 image source"
    if source.get("media_type") not in IMAGE_TYPES:
        return f"{where}.source.media_type: Input should be one of {', '.join(sorted(IMAGE_TYPES))}"
    if not isinstance(source.get("data"), str) or not source["data"]:
        return f"{where}.source.data: Field required"
    return None


def _result_problem(where: str, block: dict[str, Any]) -> str | None:
    if not isinstance(block.get("tool_use_id"), str) or not ID.match(block["tool_use_id"]):
        return f"{where}.tool_use_id: String should match pattern '^[a-zA-Z0-9_-]+$'"
    content = block.get("content", "")
    if isinstance(content, str):
        return None
    if not isinstance(content, list):
        return f"{where}.content: Input should be a valid string or list"
    for index, part in enumerate(content):
        inner = f"{where}.content.{index}"
        if not isinstance(part, dict) or part.get("type") not in ("text", "image"):
            return f"{inner}: tool_result content may hold only text and image blocks"
        problem = (_text_problem if part["type"] == "text" else _image_problem)(inner, part)
        if problem:
            return problem
    return None


def block_problem(where: str, block: dict[str, Any]) -> str | None:
    """What is wrong with one content block, or None."""
    kind = block.get("type")
    if kind not in BLOCK_TYPES:
        return f"{where}.type: Input tag {kind!r} does not match any of the expected tags"
    if kind == "text":
        return _text_problem(where, block) or _cache_problem(where, block)
    if kind == "image":
        return _image_problem(where, block) or _cache_problem(where, block)
    if kind == "tool_use":
        if not isinstance(block.get("id"), str) or not ID.match(block["id"]):
            return f"{where}.id: String should match pattern '^[a-zA-Z0-9_-]+$'"
        if not isinstance(block.get("name"), str) or not TOOL_NAME.match(block["name"]):
            return f"{where}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
        if not isinstance(block.get("input"), dict):
            return f"{where}.input: Input should be a valid dictionary"
    if kind == "tool_result":
        return _result_problem(where, block) or _cache_problem(where, block)
    return _cache_problem(where, block)


def _tools_problem(tools: list[dict[str, Any]]) -> str | None:
    names: set[str] = set()
    for index, tool in enumerate(tools):
        where = f"tools.{index}"
        name = tool.get("name")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            return f"{where}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
        if name in names:
            return f"tools: Tool names must be unique ({name!r})"
        names.add(name)
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return f"{where}.input_schema.type: Input should be 'object'"
        extra = set(tool) - {"name", "description", "input_schema", "cache_control", "type"}
        if extra:
            return f"{where}.{sorted(extra)[0]}: Extra inputs are not permitted"
        problem = _cache_problem(where, tool)
        if problem:
            return problem
    return None


def _pairing_problem(index: int, blocks: list[dict[str, Any]], waiting: set[str]) -> str | None:
    """Results of a user message against the tool uses of the assistant message before it."""
    results = [b for b in blocks if b.get("type") == "tool_result"]
    if results and any(b.get("type") != "tool_result" for b in blocks[: len(results)]):
        return (f"messages.{index}: tool_result blocks must come before any other content"
                " in a user message")  # fmt: skip
    answered = {str(b.get("tool_use_id")) for b in results}
    unexpected = sorted(answered - waiting)
    if unexpected:
        return (
            f"messages.{index}.content: unexpected `tool_use_id` found in `tool_result` blocks:"
            f" {', '.join(unexpected)}. Each `tool_result` block must have a corresponding"
            " `tool_use` block in the previous message."
        )
    missing = sorted(waiting - answered)
    if missing:
        return (
            f"messages.{index - 1}: `tool_use` ids were found without `tool_result` blocks"
            f" immediately after: {', '.join(missing)}. Each `tool_use` block must have a"
            " corresponding `tool_result` block in the next message."
        )
    return None


def _content_problem(index: int, role: str, blocks: list[dict[str, Any]]) -> str | None:
    wrong = "tool_use" if role == "user" else "tool_result"
    for position, block in enumerate(blocks):
        where = f"messages.{index}.content.{position}"
        if block.get("type") == wrong:
            return f"{where}: {wrong} blocks are not permitted in a {role} message"
        found = block_problem(where, block)
        if found:
            return found
    return None


def _messages_problem(request: MessagesRequest) -> str | None:
    waiting: set[str] = set()
    seen_ids: set[str] = set()
    last = len(request.messages) - 1
    for index, message in enumerate(request.messages):
        blocks = request.blocks(message)
        if not blocks and not (index == last and message.role == "assistant"):
            return f"messages.{index}: all messages must have non-empty content except for the"\
                " optional final assistant message"  # fmt: skip
        found = _content_problem(index, message.role, blocks)
        if found is None and message.role == "user":
            found = _pairing_problem(index, blocks, waiting)
        elif found is None and waiting:
            found = _pairing_problem(index, [], waiting)
        if found:
            return found
        uses = [str(b["id"]) for b in blocks if b.get("type") == "tool_use"]
        if seen_ids.intersection(uses) or len(set(uses)) != len(uses):
            return f"messages.{index}: `tool_use` ids must be unique"
        seen_ids.update(uses)
        waiting = set(uses)
    return _pairing_problem(last + 1, [], waiting) if waiting else None


def problem(request: MessagesRequest) -> str | None:
    """What Anthropic would refuse in ``request`` with a 400, or None."""
    for index, block in enumerate(request.system_blocks()):
        if block.get("type") != "text":
            return f"system.{index}.type: Input should be 'text'"
        found = _text_problem(f"system.{index}", block) or _cache_problem(f"system.{index}", block)
        if found:
            return found
    found = _tools_problem(request.tools or []) or _messages_problem(request)
    if found:
        return found
    marks = sum(1 for b in all_blocks(request) if "cache_control" in b)
    if marks > MAX_BREAKPOINTS:
        return (f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided."
                f" Found {marks}.")  # fmt: skip
    return None


def all_blocks(request: MessagesRequest) -> list[dict[str, Any]]:
    """Every block in prompt order (tools, system, messages): what the cache reads."""
    blocks = list(request.tools or []) + request.system_blocks()
    for message in request.messages:
        blocks += request.blocks(message)
    return blocks
