"""OpenAI's chat-completions wire format as the simulator speaks it: the request it accepts,
the completion and error bodies it answers with, and the token estimate behind ``usage``.

Kept apart from the routes (simulator/app.py) because this is the part that must match OpenAI
byte for byte: Keel's provider is tested against it as it would be against the real API.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping
from email.utils import formatdate
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from simulator.scenarios import FaultSpec, ToolCallSpec, TurnSpec

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class _Message(BaseModel):
    """The parts of a chat message the simulator reads; everything else is accepted as is."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[Any] | None = None
    tool_calls: list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """A chat-completions request body, validated as strictly as OpenAI validates it."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[_Message] = Field(min_length=1)
    tools: list[dict[str, Any]] | None = None
    stream: bool | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)


def tool_message_problem(messages: list[_Message]) -> str | None:
    """What OpenAI refuses with a 400: a tool message that answers no call of the assistant
    message before it, or a tool call left without its tool message (ids must agree)."""
    waiting: list[str] | None = None  # ids of the last assistant message's calls, unanswered
    for message in messages:
        if message.role == "tool":
            answered = (message.model_extra or {}).get("tool_call_id")
            if waiting is None or answered not in waiting:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a"
                    f" preceding message with 'tool_calls' (tool_call_id {answered!r})."
                )
            waiting.remove(answered)
            continue
        if waiting:
            break
        calls = message.tool_calls or []
        waiting = [str(call.get("id")) for call in calls] if message.role == "assistant" else None
    if waiting:
        return (
            "An assistant message with 'tool_calls' must be followed by tool messages responding"
            " to each 'tool_call_id'. The following tool_call_ids did not have response"
            f" messages: {', '.join(waiting)}"
        )
    return None


def openai_error(
    status: int,
    message: str,
    *,
    type_: str | None = None,
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An error in OpenAI's shape, so clients map it exactly as they map OpenAI's errors."""
    if type_ is None:
        type_ = (
            "server_error" if status >= 500 else _ERROR_TYPES.get(status, "invalid_request_error")
        )
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def text_of(content: str | list[Any] | None) -> str:
    """The text of a message: a string, or the ``text`` parts of a content-part list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = [p.get("text", "") for p in content if isinstance(p, dict)]
    return "".join(p for p in parts if isinstance(p, str))


def conversation_id(chat: ChatRequest, scenario: str, header: str | None) -> str:
    """The header when given, else a hash of the scenario, first system and first user message.

    Those messages identify a run when the caller does not say: they stay the same while the
    conversation grows by assistant and tool messages. The scenario is part of the hash so the
    same prompt sent to two scenarios (a test of ``support_demo`` then of ``retry_429``) does
    not share counters, which would shift which request a fault hits.
    """
    if header and header.strip():
        return header.strip()
    system = next((text_of(m.content) for m in chat.messages if m.role == "system"), "")
    user = next((text_of(m.content) for m in chat.messages if m.role == "user"), "")
    return hashlib.sha256(f"{scenario}\x00{system}\x00{user}".encode()).hexdigest()[:16]


def estimate_tokens(chars: int) -> int:
    """Roughly four characters per token, and never zero (budgets must see every call)."""
    return max(1, math.ceil(chars / 4))


def _history_arguments(message: _Message) -> int:
    """Characters of tool-call arguments an assistant message in the history carries."""
    total = 0
    for call in message.tool_calls or []:
        function = call.get("function")
        if isinstance(function, dict) and isinstance(function.get("arguments"), str):
            total += len(function["arguments"])
    return total


def prompt_chars(chat: ChatRequest) -> int:
    """What the prompt costs: message texts, tool-call arguments in the history, the tools."""
    chars = sum(len(text_of(m.content)) + _history_arguments(m) for m in chat.messages)
    if chat.tools:
        chars += len(json.dumps(chat.tools, separators=(",", ":")))
    return chars


def prompt_text(chat: ChatRequest) -> str:
    """The prompt in the order a provider reads it (tools, then each message's role, text and
    tool-call arguments): what the automatic prompt cache (simulator/cache.py) matches."""
    parts = [json.dumps(chat.tools, separators=(",", ":"))] if chat.tools else []
    for m in chat.messages:
        parts.append(f"\x00{m.role}\x00{text_of(m.content)}")
        parts += [json.dumps(call, sort_keys=True) for call in m.tool_calls or []]
    return "".join(parts)


def _wire_arguments(spec: ToolCallSpec, wire: str) -> Any:
    """``function.arguments``: the JSON string, or (``object_arguments``) the object itself."""
    text = spec.arguments_json()
    if wire != "object_arguments":
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _usage(chat: ChatRequest, turn: TurnSpec, content: str, cached: int) -> dict[str, Any]:
    """The estimate (``cached`` from the prompt cache), or the scenario's figures where it
    gives them (even absurd ones)."""
    prompt = estimate_tokens(prompt_chars(chat))
    arguments = sum(len(spec.arguments_json()) for spec in turn.tool_calls)
    completion = estimate_tokens(len(content) + arguments)
    cached = min(cached, prompt)
    if turn.usage is not None:
        prompt = turn.usage.prompt_tokens if turn.usage.prompt_tokens is not None else prompt
        if turn.usage.completion_tokens is not None:
            completion = turn.usage.completion_tokens
        cached = turn.usage.cached_tokens if turn.usage.cached_tokens is not None else cached
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def completion_body(
    chat: ChatRequest,
    turn: TurnSpec,
    conversation: str,
    turn_index: int,
    attempt: int,
    cached: int = 0,
) -> dict[str, Any]:
    """The ``chat.completion`` object for a turn; ids are stable per conversation and turn."""
    calls: list[dict[str, Any]] = [
        {
            "id": f"call_{turn_index}_{i}" if spec.id is None else spec.id,
            "type": "function",
            "function": {"name": spec.name, "arguments": _wire_arguments(spec, turn.wire)},
        }
        for i, spec in enumerate(turn.tool_calls)
    ]
    for call in calls:
        if call["id"] == "":
            del call["id"]  # scripted as omitted, as some servers do
    text = turn.text()
    content: Any = text if (text or not calls) else None
    if turn.wire == "content_parts" and content is not None:
        content = [{"type": "text", "text": content}]
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-sim-{conversation}-{turn_index}-{attempt}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": chat.model,
        "system_fingerprint": "keel-simulator",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if calls else "stop",
            }
        ],
        "usage": _usage(chat, turn, text, cached),
    }


def completion_response(body: dict[str, Any], wire: str) -> Response:
    """The answer as the turn's wire variant sends it (see ``WireVariant``)."""
    if wire == "stream_only":
        return Response(sse_text(body), media_type="text/event-stream")
    if wire == "truncated":
        raw = json.dumps(body).encode()
        return Response(raw[: len(raw) // 2], media_type="application/json")
    return JSONResponse(body)


def sse_text(body: dict[str, Any]) -> str:
    """A completion as ``chat.completion.chunk`` server-sent events, as a streaming API sends
    it: one chunk with the message, one with the finish reason and usage, then ``[DONE]``."""
    choice = body["choices"][0]
    base = {k: body[k] for k in ("id", "created", "model", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"
    delta = {"index": 0, "delta": choice["message"], "finish_reason": None}
    done = {"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}
    first = {**base, "choices": [delta]}
    last = {**base, "choices": [done], "usage": body["usage"]}
    events = [f"data: {json.dumps(chunk)}\n\n" for chunk in (first, last)]
    return "".join(events) + "data: [DONE]\n\n"


def retry_headers(fault: FaultSpec) -> dict[str, str]:
    """A fault's Retry-After (whole seconds, or an HTTP date) and retry-after-ms, when set."""
    headers: dict[str, str] = {}
    if fault.retry_after is not None and fault.retry_after_format == "http_date":
        # HTTP dates have whole seconds: round up so the delay is never shorter than asked
        headers["Retry-After"] = formatdate(math.ceil(time.time() + fault.retry_after), usegmt=True)
    elif fault.retry_after is not None:
        headers["Retry-After"] = str(math.ceil(fault.retry_after))
        headers["retry-after-ms"] = str(round(fault.retry_after * 1000))
    return headers


def fault_response(fault: FaultSpec, attempt: int, turn_index: int) -> JSONResponse:
    """An injected HTTP error, with Retry-After (whole seconds) and retry-after-ms when set."""
    status = fault.status or 500
    message = fault.message or f"simulated {status} (fault {attempt} of turn {turn_index})"
    code = "rate_limit_exceeded" if status == 429 else f"simulated_{status}"
    return openai_error(status, message, code=code, headers=retry_headers(fault))
