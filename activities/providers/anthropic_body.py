"""The body of an Anthropic Messages request, from Keel's provider-neutral conversation.

Keel's conversation is OpenAI-shaped (system, user, assistant with tool calls, tool messages);
Anthropic's is not, and its API refuses what does not fit, so the mapping is exact:

- system messages become the top-level ``system`` text blocks (Keel sends one, first);
- an assistant message becomes a text block (when it has text) and one ``tool_use`` block per
  call, so parallel calls stay one turn; ``input`` is the call's parsed arguments object;
- the tool messages after it become one user message of ``tool_result`` blocks, in order,
  with the images of a result as ``image`` blocks inside it for a model that accepts images
  (else the marker the text already carries); a user message that follows is merged into the
  same turn, after the results, as Anthropic requires;
- blocks are never empty (Anthropic refuses empty and whitespace-only text).

Arguments that are not a JSON object (the workflow refused such a call and answered it with an
error, but the call stays in the history) cannot be an ``input``: they are sent as
``{"_unparsed_arguments": "<the text>"}``, so the model sees what it produced next to the
error that says why it failed. Tool-use ids must match ``^[a-zA-Z0-9_-]+$``: Keel's own
(``keel-<step>-<n>``, workflows/agent/call_ids.py) and Anthropic's (``toolu_…``) do; an id from
another provider that does not (a fallback served the earlier turn) is mapped to one that
does, the same way for the call and its result.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from activities.providers.caching import min_cache_tokens, place_breakpoints
from keel.contracts import ChatMessage, ChatRequest, ToolCall, ToolSpec

MAX_TEMPERATURE = 1.0
"""Anthropic's range is 0-1 (OpenAI's 0-2): a higher setting is sent as 1."""
EMPTY_TEXT = "(empty)"
UNPARSED = "_unparsed_arguments"

_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_NOT_ID = re.compile(r"[^a-zA-Z0-9_-]")


def wire_id(call_id: str | None) -> str:
    """``call_id`` if Anthropic accepts it, else a stable id that it accepts."""
    value = call_id or ""
    if _ID.match(value):
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:12]
    return f"{_NOT_ID.sub('_', value)[:40]}_{digest}".lstrip("_") or digest


def tool_input(call: ToolCall) -> dict[str, Any]:
    """The ``input`` of a call in the history (see the module docstring for non-objects)."""
    try:
        parsed = json.loads(call.arguments or "{}")
    except (json.JSONDecodeError, RecursionError):
        parsed = None
    if isinstance(parsed, dict):
        return parsed
    return {UNPARSED: call.arguments}


def _text(text: str | None) -> dict[str, Any]:
    return {"type": "text", "text": text if text and text.strip() else EMPTY_TEXT}


def _assistant_blocks(message: ChatMessage) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if message.content and message.content.strip():
        blocks.append({"type": "text", "text": message.content})
    blocks += [
        {"type": "tool_use", "id": wire_id(c.id), "name": c.name, "input": tool_input(c)}
        for c in message.tool_calls
    ]
    return blocks or [_text(None)]


def _tool_result(message: ChatMessage, accepts_images: bool) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": wire_id(message.tool_call_id)}
    if accepts_images and message.images:
        parts: list[dict[str, Any]] = [_text(message.content)]
        parts += [
            {"type": "image",
             "source": {"type": "base64", "media_type": i.mime_type, "data": i.data}}
            for i in message.images
        ]  # fmt: skip
        block["content"] = parts
    else:
        block["content"] = message.content if message.content else EMPTY_TEXT
    return block


def messages_json(
    messages: list[ChatMessage], accepts_images: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``system`` blocks and the ``messages`` of the body (see the module docstring)."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            if message.content and message.content.strip():
                system.append({"type": "text", "text": message.content})
            continue
        if message.role == "assistant":
            role, blocks = "assistant", _assistant_blocks(message)
        elif message.role == "tool":
            role, blocks = "user", [_tool_result(message, accepts_images)]
        else:
            role, blocks = "user", [_text(message.content)]
        if out and out[-1]["role"] == role:
            out[-1]["content"] += blocks
        else:
            out.append({"role": role, "content": blocks})
    return system, out


def tool_json(tool: ToolSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name, "input_schema": tool.input_schema}
    if tool.description:
        out["description"] = tool.description
    return out


def build_body(request: ChatRequest) -> dict[str, Any]:
    """The JSON body of a Messages request, with its cache breakpoints (module caching)."""
    model = request.model
    system, messages = messages_json(request.messages, model.accepts_images)
    body: dict[str, Any] = {
        "model": model.name,
        "max_tokens": request.max_output_tokens or model.max_output_tokens,
        "temperature": min(model.temperature, MAX_TEMPERATURE),
        "messages": messages,
    }
    if system:
        body["system"] = system
    if request.tools:
        body["tools"] = [tool_json(t) for t in request.tools]
        body["tool_choice"] = {"type": "auto"}
    if model.prompt_cache:
        place_breakpoints(body, min_cache_tokens(model))
    return body
