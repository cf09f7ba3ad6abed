"""Anthropic's Messages wire format as the simulator speaks it: the request read as the
OpenAI-shaped request the scenarios and the actor already understand, the turn rendered back
as an Anthropic message (parallel ``tool_use`` blocks, ``stop_reason``, usage with cache
figures), and errors in Anthropic's shape.

Validation is simulator/anthropic_check.py; the prompt cache is simulator/cache.py, fed with
each block's size counted as activities/providers/caching.py counts it (the two must agree:
tests/unit/simulator/test_anthropic_wire.py checks that they do).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from starlette.responses import JSONResponse, Response

from simulator.anthropic_check import MessagesRequest
from simulator.cache import AnthropicUsage, Block, PromptCache
from simulator.scenarios import FaultSpec, ToolCallSpec, TurnSpec
from simulator.wire import ChatRequest, estimate_tokens, retry_headers

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def anthropic_error(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """``{"type": "error", "error": {"type": …, "message": …}}``, as Anthropic answers."""
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers or {})


def fault_response(fault: FaultSpec, attempt: int, turn_index: int) -> JSONResponse:
    """An injected HTTP error in Anthropic's shape, with its retry-after."""
    status = fault.status or 500
    message = fault.message or f"simulated {status} (fault {attempt} of turn {turn_index})"
    return anthropic_error(status, message, retry_headers(fault))


def _texts(blocks: list[dict[str, Any]]) -> str:
    return "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content", "")
    return content if isinstance(content, str) else _texts(content)


def _openai_messages(request: MessagesRequest) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system = _texts(request.system_blocks())
    if system:
        out.append({"role": "system", "content": system})
    for message in request.messages:
        blocks = request.blocks(message)
        if message.role == "assistant":
            calls = [
                {"id": b["id"], "type": "function",
                 "function": {"name": b["name"], "arguments": json.dumps(b["input"])}}
                for b in blocks if b.get("type") == "tool_use"
            ]  # fmt: skip
            reply: dict[str, Any] = {"role": "assistant", "content": _texts(blocks) or None}
            if calls:
                reply["tool_calls"] = calls
            out.append(reply)
            continue
        out += [
            {"role": "tool", "tool_call_id": b["tool_use_id"], "content": _result_text(b)}
            for b in blocks
            if b.get("type") == "tool_result"
        ]
        text = _texts(blocks)
        if text:
            out.append({"role": "user", "content": text})
    return out


def as_chat(request: MessagesRequest) -> ChatRequest:
    """The request as the OpenAI-shaped one the scenarios and the actor read."""
    tools = [
        {"type": "function", "function": {"name": t["name"],
         "description": t.get("description", ""), "parameters": t["input_schema"]}}
        for t in request.tools or []
    ]  # fmt: skip
    return ChatRequest.model_validate(
        {
            "model": request.model,
            "messages": _openai_messages(request),
            "tools": tools or None,
            "max_tokens": request.max_tokens,
        }
    )


def block_chars(block: dict[str, Any]) -> int:
    """Characters of one block the estimate counts (as activities/providers/caching.py)."""
    kind = block.get("type")
    if kind is None or kind == "custom":
        tool = {k: v for k, v in block.items() if k != "cache_control"}
        return len(json.dumps(tool, separators=(",", ":"), ensure_ascii=False))
    if kind == "text":
        return len(str(block.get("text", "")))
    if kind == "tool_use":
        arguments = json.dumps(block.get("input", {}), separators=(",", ":"), ensure_ascii=False)
        return len(str(block.get("name", ""))) + len(arguments)
    if kind == "tool_result":
        content = block.get("content", "")
        if isinstance(content, str):
            return len(content)
        return sum(block_chars(part) for part in content if isinstance(part, dict))
    return 0


def prompt_blocks(request: MessagesRequest) -> list[Block]:
    """Each block with the digest and size of the prefix it ends (marks left out of both);
    a message's role goes into the digest with its first block."""
    sections: list[tuple[str, list[dict[str, Any]]]] = [
        ("tools", list(request.tools or [])),
        ("system", request.system_blocks()),
    ]
    sections += [(m.role, request.blocks(m)) for m in request.messages]
    hasher = hashlib.sha256()
    chars = 0
    out: list[Block] = []
    for role, blocks in sections:
        hasher.update(f"\x00{role}".encode())
        for block in blocks:
            plain = {k: v for k, v in block.items() if k != "cache_control"}
            hasher.update(f"\x00{json.dumps(plain, sort_keys=True)}".encode())
            chars += block_chars(block)
            out.append(Block(hasher.copy().hexdigest(), chars, "cache_control" in block))
    return out


def _input(spec: ToolCallSpec) -> Any:
    """A call's ``input``: the object; scripted malformed JSON goes as the raw text."""
    try:
        parsed = json.loads(spec.arguments_json())
    except json.JSONDecodeError:
        return spec.arguments_json()
    return parsed if isinstance(parsed, dict) else spec.arguments_json()


def _usage(turn: TurnSpec, cache: AnthropicUsage, output: int) -> dict[str, int | None]:
    usage: dict[str, int | None] = {
        "input_tokens": cache.input_tokens,
        "cache_creation_input_tokens": cache.cache_creation_input_tokens,
        "cache_read_input_tokens": cache.cache_read_input_tokens,
        "output_tokens": output,
    }
    if turn.usage is not None:  # the scenario's figures, even absurd ones
        given = turn.usage
        if given.prompt_tokens is not None:
            usage["input_tokens"] = given.prompt_tokens
        if given.completion_tokens is not None:
            usage["output_tokens"] = given.completion_tokens
        if given.cached_tokens is not None:
            usage["cache_read_input_tokens"] = given.cached_tokens
    return usage


def message_body(
    request: MessagesRequest,
    turn: TurnSpec,
    ids: tuple[str, int, int],
    cache: tuple[PromptCache, int],
) -> dict[str, Any]:
    """The ``message`` answering a turn; ``ids`` are (conversation, turn, attempt), ``cache``
    the prompt cache and the minimum it caches."""
    conversation, turn_index, attempt = ids
    content: list[dict[str, Any]] = []
    text = turn.text()
    if text:
        content.append({"type": "text", "text": text})
    for i, spec in enumerate(turn.tool_calls):
        use: dict[str, Any] = {"type": "tool_use", "id": spec.id, "name": spec.name,
                               "input": _input(spec)}  # fmt: skip
        if spec.id is None:
            use["id"] = f"toolu_{turn_index}_{i}"
        elif spec.id == "":
            del use["id"]  # scripted as omitted, as a broken server might
        content.append(use)
    arguments = sum(len(spec.arguments_json()) for spec in turn.tool_calls)
    billed = cache[0].anthropic(request.model, prompt_blocks(request), cache[1])
    return {
        "id": f"msg_sim_{conversation}_{turn_index}_{attempt}",
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": content,
        "stop_reason": "tool_use" if turn.tool_calls else "end_turn",
        "stop_sequence": None,
        "usage": _usage(turn, billed, estimate_tokens(len(text) + arguments)),
    }


def message_response(body: dict[str, Any], wire: str) -> Response:
    """The answer as the turn's wire variant sends it (``stream_only``: server-sent events
    whatever was asked; ``truncated``: the JSON cut in half; anything else: whole)."""
    if wire == "stream_only":
        start = {"type": "message_start", "message": {**body, "content": []}}
        events = [("message_start", start), ("message_stop", {"type": "message_stop"})]
        text = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)
        return Response(text, media_type="text/event-stream")
    if wire == "truncated":
        raw = json.dumps(body).encode()
        return Response(raw[: len(raw) // 2], media_type="application/json")
    return JSONResponse(body)
