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
from pydantic import ValidationError
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
        "messages": messages_json(request.messages, request.model.accepts_images),
        "max_tokens": request.max_output_tokens or request.model.max_output_tokens,
        "temperature": request.model.temperature,
    }
    if request.tools:
        body["tools"] = [_tool_json(t) for t in request.tools]
        body["tool_choice"] = "auto"
    return body


def messages_json(messages: list[ChatMessage], accepts_images: bool) -> list[dict[str, Any]]:
    """The conversation on the wire. OpenAI's tool messages carry text only, so for a model
    that accepts images the images of a run of tool messages follow it in one user message
    (text naming the calls, then ``image_url`` parts with data URLs); the tool messages stay
    together right after their assistant message, which keeps the conversation valid. For
    other models images are left out: the tool text already names them with a marker."""
    out: list[dict[str, Any]] = []
    pending: list[ChatMessage] = []
    for message in messages:
        if pending and message.role != "tool":
            out.append(_images_message(pending))
            pending = []
        out.append(_message_json(message))
        if accepts_images and message.role == "tool" and message.images:
            pending.append(message)
    if pending:
        out.append(_images_message(pending))
    return out


def _images_message(messages: list[ChatMessage]) -> dict[str, Any]:
    calls = ", ".join(f"{m.tool_call_id} ({len(m.images)})" for m in messages)
    parts: list[dict[str, Any]] = [
        {"type": "text", "text": f"Images returned by tool call(s) {calls}, in order:"}
    ]
    for message in messages:
        parts += [
            {"type": "image_url", "image_url": {"url": f"data:{i.mime_type};base64,{i.data}"}}
            for i in message.images
        ]
    return {"role": "user", "content": parts}


MAX_USAGE_TOKENS = 100_000_000
"""More tokens than any model's context in one call: a usage figure above it is a provider bug."""


class BadResponse(ValueError):
    """The provider's answer is not a valid chat completion; ``str()`` is one readable line."""


def bad_response(message: str, error_type: str = "LLMBadResponse") -> ApplicationError:
    """A non-retryable ``model_error``: asking again would get the same unreadable answer."""
    return ApplicationError(message, type=error_type, non_retryable=True)


def content_text(content: Any) -> str | None:
    """``message.content``: a string, null, or a list of content parts whose text is joined.

    Only ``text`` parts carry text (``refusal`` parts are kept as text too); other part types
    (audio, images in a reply) are not something Keel's runs can use and are left out.
    """
    if content is None or isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadResponse(f"message.content is a {type(content).__name__}, not text or parts")
    texts: list[str] = []
    for index, part in enumerate(content):
        if not isinstance(part, dict):
            raise BadResponse(f"message.content[{index}] is not an object")
        kind = part.get("type")
        if kind in ("text", "refusal"):
            text = part.get(kind)
            if not isinstance(text, str):
                raise BadResponse(f"message.content[{index}] ({kind}) has no string {kind!r}")
            texts.append(text)
    return "".join(texts) if texts else None


def arguments_text(arguments: Any) -> str:
    """``function.arguments``: the JSON text as sent, or an object some servers send, as JSON."""
    if arguments is None or arguments == "":
        return "{}"
    if isinstance(arguments, str):
        return arguments
    if isinstance(arguments, dict):
        return json.dumps(arguments, ensure_ascii=False)
    raise BadResponse(f"function.arguments is a {type(arguments).__name__}, not a JSON object")


def _tool_call(call: Any) -> ToolCall:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise BadResponse("a tool call has no 'function' object")
    function = call["function"]
    if not isinstance(function.get("name"), str) or not function["name"]:
        raise BadResponse("a tool call's function has no name")
    raw_id = call.get("id")
    if raw_id is not None and not isinstance(raw_id, str | int):
        raise BadResponse(f"tool call {function['name']!r} has an id that is not text")
    arguments = arguments_text(function.get("arguments"))
    # Some servers omit or repeat ids: the workflow renames them (workflows/agent/call_ids.py).
    return ToolCall(id="" if raw_id is None else str(raw_id), name=function["name"],
                    arguments=arguments)  # fmt: skip


def token_count(raw: Any, field: str) -> int:
    """One usage figure: a whole, non-negative number of tokens below ``MAX_USAGE_TOKENS``."""
    if raw is None:
        return 0
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw != int(raw):
        raise BadResponse(f"usage.{field}={raw!r} is not a whole number of tokens")
    if not 0 <= raw <= MAX_USAGE_TOKENS:
        raise BadResponse(f"usage.{field}={raw!r} is out of range (0 to {MAX_USAGE_TOKENS:,})")
    return int(raw)


def parse_usage(data: dict[str, Any]) -> Usage:
    """``usage``, refusing negative, fractional or absurd figures: a budget must never be
    lowered (or disabled) by what a provider reports."""
    usage_raw = data.get("usage") or {}
    if not isinstance(usage_raw, dict):
        raise BadResponse("usage is not an object")
    details = usage_raw.get("prompt_tokens_details") or {}
    if not isinstance(details, dict):
        raise BadResponse("usage.prompt_tokens_details is not an object")
    return Usage(
        input_tokens=token_count(usage_raw.get("prompt_tokens"), "prompt_tokens"),
        output_tokens=token_count(usage_raw.get("completion_tokens"), "completion_tokens"),
        cached_tokens=token_count(details.get("cached_tokens"), "cached_tokens"),
    )


def parse_response(data: Any, requested_model: str) -> ChatResponse:
    """Turn a chat-completions response into a ChatResponse, or raise a non-retryable error."""
    try:
        if not isinstance(data, dict):
            raise BadResponse(f"the body is a JSON {type(data).__name__}, not an object")
        try:
            usage = parse_usage(data)
        except BadResponse as exc:
            problem = f"LLM provider reported invalid usage: {exc}"
            raise bad_response(problem, "LLMBadUsage") from None
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise BadResponse("no choices")
        choice = choices[0]
        reply = choice.get("message")
        if not isinstance(reply, dict):
            raise BadResponse("choices[0] has no message object")
        return ChatResponse(
            content=content_text(reply.get("content")),
            tool_calls=[_tool_call(call) for call in reply.get("tool_calls") or []],
            usage=usage,
            model=str(data.get("model") or requested_model),
            finish_reason=_optional_text(choice.get("finish_reason")),
        )
    except (BadResponse, ValidationError) as exc:
        detail = str(exc).splitlines()[0] if isinstance(exc, BadResponse) else _first_error(exc)
        problem = f"LLM provider returned an unexpected response shape: {detail}"
        raise bad_response(problem) from None


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _first_error(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"{where}: {first['msg']}"


def _error_message(response: httpx2.Response) -> str:
    try:
        payload = response.json()
        error = payload.get("error", payload)
        if isinstance(error, dict):
            return str(error.get("message") or error)
        return str(error)
    except (json.JSONDecodeError, ValueError, AttributeError):
        return response.text[:500] or response.reason_phrase


def json_body(response: httpx2.Response, url: str) -> Any:
    """The body as JSON. A stream (SSE) or a body that is not JSON — cut off, HTML from a
    proxy — is a non-retryable ``model_error``: the same request gets the same answer."""
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "text/event-stream":
        raise bad_response(
            f"LLM provider at {url} answered with a stream (text/event-stream) although Keel"
            " sends stream=false; point the model at an endpoint that answers plain JSON"
        )
    try:
        return response.json()
    except (json.JSONDecodeError, ValueError) as exc:
        size = len(response.content)
        raise bad_response(
            f"LLM provider at {url} returned a body that is not valid JSON ({size:,} bytes,"
            f" {str(exc).splitlines()[0]}): {response.text[:120]!r}"
        ) from None


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
        data = json_body(response, url)
        result = parse_response(data, request.model.name)
        result.latency_ms = (time.monotonic() - started) * 1000
        if activity.in_activity():
            result.attempt = activity.info().attempt
        return result
