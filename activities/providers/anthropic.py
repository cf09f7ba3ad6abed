"""Anthropic's Messages API over httpx2, behind the same provider interface as the OpenAI one.

Like the OpenAI-compatible provider, and for the same reasons, it does not use the vendor SDK:
the SDK retries on its own (Temporal owns retries: a retry inside an attempt hides it from
history and from the budget), keeps its own connection pool (the worker shares one HTTP client,
one circuit per base URL) and raises its own exception types (Keel maps every failure to one
``ApplicationError`` classification, activities/providers/base.py). The wire is small and
documented, so speaking it directly keeps one behaviour for both providers.

``base_url`` includes the version, like OpenAI's (``https://api.anthropic.com/v1``); the request
goes to ``{base_url}/messages``. The body is built by activities/providers/anthropic_body.py,
its cache breakpoints by activities/providers/caching.py.

Usage: Anthropic reports the uncached input (``input_tokens``), the tokens written to the cache
(``cache_creation_input_tokens``) and those read from it (``cache_read_input_tokens``) apart;
Keel's ``Usage`` is OpenAI-shaped (``input_tokens`` is the whole prompt), so the three are added
up and the two cache figures kept as ``cached_tokens`` and ``cache_write_tokens``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2
from temporalio import activity

from activities.providers.anthropic_body import build_body
from activities.providers.base import http_error, transport_error
from activities.providers.openai_compat import (
    CONVERSATION_HEADER,
    BadResponse,
    bad_response,
    json_body,
    token_count,
)
from keel.contracts import ChatRequest, ChatResponse, ToolCall, Usage

ANTHROPIC_VERSION = "2023-06-01"

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
    "pause_turn": "pause_turn",
}
"""``stop_reason`` as OpenAI's ``finish_reason``, so logs and spans read the same for both
providers. ``pause_turn`` only happens with Anthropic's server tools, which Keel does not offer:
it is kept as it is, and the text so far is the turn's answer. Unknown reasons are kept too."""


def parse_usage(raw: Any) -> Usage:
    """``usage`` in Keel's (OpenAI's) sense, refusing negative, fractional or absurd figures."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise BadResponse("usage is not an object")
    fresh = token_count(raw.get("input_tokens"), "input_tokens")
    written = token_count(raw.get("cache_creation_input_tokens"), "cache_creation_input_tokens")
    read = token_count(raw.get("cache_read_input_tokens"), "cache_read_input_tokens")
    return Usage(
        input_tokens=fresh + written + read,
        output_tokens=token_count(raw.get("output_tokens"), "output_tokens"),
        cached_tokens=read,
        cache_write_tokens=written,
    )


def _tool_call(block: dict[str, Any], index: int) -> ToolCall:
    name = block.get("name")
    if not isinstance(name, str) or not name:
        raise BadResponse(f"content[{index}] (tool_use) has no name")
    raw_id = block.get("id")
    if raw_id is not None and not isinstance(raw_id, str):
        raise BadResponse(f"content[{index}] (tool_use {name!r}) has an id that is not text")
    given = block.get("input")
    if given is None:
        arguments = "{}"
    elif isinstance(given, dict):
        arguments = json.dumps(given, ensure_ascii=False)
    elif isinstance(given, str):  # JSON text, as some compatible servers send it: the
        arguments = given  # workflow decides what malformed arguments mean
    else:
        raise BadResponse(f"content[{index}] (tool_use {name!r}) input is a"
                          f" {type(given).__name__}, not a JSON object")  # fmt: skip
    # A missing id is renamed by the workflow (workflows/agent/call_ids.py), as for OpenAI.
    return ToolCall(id=raw_id or "", name=name, arguments=arguments)


def _content(blocks: Any) -> tuple[str | None, list[ToolCall]]:
    """The answer's text (text blocks joined) and tool calls (tool_use blocks, in order).
    Other blocks (thinking, server tool results) are not something a Keel run uses."""
    if not isinstance(blocks, list):
        raise BadResponse(f"content is a {type(blocks).__name__}, not a list of blocks")
    texts: list[str] = []
    calls: list[ToolCall] = []
    for index, block in enumerate(blocks):
        if not isinstance(block, dict):
            raise BadResponse(f"content[{index}] is not an object")
        kind = block.get("type")
        if kind == "text":
            if not isinstance(block.get("text"), str):
                raise BadResponse(f"content[{index}] (text) has no string 'text'")
            texts.append(block["text"])
        elif kind == "tool_use":
            calls.append(_tool_call(block, index))
    return ("".join(texts) if texts else None), calls


def parse_response(data: Any, requested_model: str) -> ChatResponse:
    """Turn a Messages response into a ChatResponse, or raise a non-retryable model_error."""
    try:
        if not isinstance(data, dict):
            raise BadResponse(f"the body is a JSON {type(data).__name__}, not an object")
        if data.get("type") == "error":
            raise BadResponse(f"an error body with HTTP 200: {_error_text(data)}")
        try:
            usage = parse_usage(data.get("usage"))
        except BadResponse as exc:
            problem = f"LLM provider reported invalid usage: {exc}"
            raise bad_response(problem, "LLMBadUsage") from None
        if "content" not in data:
            raise BadResponse("no content")
        text, calls = _content(data["content"])
        stop = data.get("stop_reason")
        return ChatResponse(
            content=text,
            tool_calls=calls,
            usage=usage,
            model=str(data.get("model") or requested_model),
            finish_reason=FINISH_REASONS.get(stop, stop) if isinstance(stop, str) else None,
        )
    except BadResponse as exc:
        problem = f"LLM provider returned an unexpected response shape: {exc}"
        raise bad_response(problem) from None


def _error_text(payload: Any) -> str:
    """``{"type": "error", "error": {"type": …, "message": …}}`` as ``type: message``."""
    error = payload.get("error", payload) if isinstance(payload, dict) else payload
    if isinstance(error, dict):
        kind, message = error.get("type"), error.get("message")
        text = str(message) if message else json.dumps(error)[:500]
        return f"{kind}: {text}" if isinstance(kind, str) else text
    return str(error)[:500]


def error_message(response: httpx2.Response) -> str:
    try:
        return _error_text(response.json())
    except (json.JSONDecodeError, ValueError):
        return response.text[:500] or response.reason_phrase


class AnthropicProvider:
    """Calls ``{base_url}/messages`` with one shared HTTP client (retries off)."""

    def __init__(self, http: httpx2.AsyncClient) -> None:
        self._http = http

    async def chat(self, request: ChatRequest, api_key: str | None) -> ChatResponse:
        url = f"{request.model.base_url.rstrip('/')}/messages"
        headers = {
            CONVERSATION_HEADER: request.conversation_id,
            "anthropic-version": ANTHROPIC_VERSION,
        }
        if api_key:
            headers["x-api-key"] = api_key
        started = time.monotonic()
        try:
            response = await self._http.post(
                url,
                json=build_body(request),
                headers=headers,
                timeout=request.model.timeout_seconds,
            )
        except httpx2.TransportError as exc:
            raise transport_error(url, exc) from None
        if response.status_code >= 400:
            # 429 and 5xx (529 "overloaded" included) are retryable, with retry-after.
            raise http_error(
                response.status_code, error_message(response), response.headers.get("retry-after")
            )
        result = parse_response(json_body(response, url), request.model.name)
        result.latency_ms = (time.monotonic() - started) * 1000
        if activity.in_activity():
            result.attempt = activity.info().attempt
        return result
