"""OpenAI-compatible chat completions over httpx2: OpenAI, vLLM, Ollama, LiteLLM, the simulator.

MCP input schemas are passed through unchanged as function ``parameters``; tool-call
arguments come back as the raw JSON text the model produced, so the workflow (not this
provider) decides what a malformed call means.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.providers.base import http_error, transport_error
from keel.contracts import ChatMessage, ChatRequest, ChatResponse, ToolCall, ToolSpec, Usage

CONVERSATION_HEADER = "X-Keel-Conversation"


def _message_json(message: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    return out


def _tool_json(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.input_schema,
        },
    }


def build_body(request: ChatRequest) -> dict[str, Any]:
    """The JSON body of a chat-completions request."""
    body: dict[str, Any] = {
        "model": request.model.name,
        "messages": [_message_json(m) for m in request.messages],
        "max_tokens": request.max_output_tokens or request.model.max_output_tokens,
        "temperature": request.model.temperature,
    }
    if request.tools:
        body["tools"] = [_tool_json(t) for t in request.tools]
        body["tool_choice"] = "auto"
    return body


def parse_response(data: dict[str, Any], requested_model: str) -> ChatResponse:
    """Turn a chat-completions response into a ChatResponse, or raise a non-retryable error."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
        calls = [
            ToolCall(
                id=str(call.get("id") or ""),  # some servers omit it: the workflow renames
                name=str(call["function"]["name"]),
                arguments=str(call["function"].get("arguments") or "{}"),
            )
            for call in message.get("tool_calls") or []
        ]
        usage_raw = data.get("usage") or {}
        details = usage_raw.get("prompt_tokens_details") or {}
        usage = Usage(
            input_tokens=int(usage_raw.get("prompt_tokens") or 0),
            output_tokens=int(usage_raw.get("completion_tokens") or 0),
            cached_tokens=int(details.get("cached_tokens") or 0),
        )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ApplicationError(
            f"LLM provider returned an unexpected response shape ({type(exc).__name__}: {exc})",
            type="LLMBadResponse",
            non_retryable=True,
        ) from None
    return ChatResponse(
        content=message.get("content"),
        tool_calls=calls,
        usage=usage,
        model=str(data.get("model") or requested_model),
        finish_reason=choice.get("finish_reason"),
    )


def _error_message(response: httpx2.Response) -> str:
    try:
        payload = response.json()
        error = payload.get("error", payload)
        if isinstance(error, dict):
            return str(error.get("message") or error)
        return str(error)
    except (json.JSONDecodeError, ValueError, AttributeError):
        return response.text[:500] or response.reason_phrase


class OpenAICompatProvider:
    """Calls ``{base_url}/chat/completions`` with one shared HTTP client (retries off)."""

    def __init__(self, http: httpx2.AsyncClient) -> None:
        self._http = http

    async def chat(self, request: ChatRequest, api_key: str | None) -> ChatResponse:
        url = f"{request.model.base_url.rstrip('/')}/chat/completions"
        headers = {CONVERSATION_HEADER: request.conversation_id}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
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
            raise http_error(
                response.status_code, _error_message(response), response.headers.get("retry-after")
            )
        try:
            data = response.json()
        except (json.JSONDecodeError, ValueError):
            raise ApplicationError(
                f"LLM provider at {url} returned non-JSON: {response.text[:200]!r}",
                type="LLMBadResponse",
            ) from None
        result = parse_response(data, request.model.name)
        result.latency_ms = (time.monotonic() - started) * 1000
        if activity.in_activity():
            result.attempt = activity.info().attempt
        return result
