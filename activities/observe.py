"""What each model call and each tool call leaves behind: one log event, one span, metrics.

Activities are the only place where a call's latency, attempt, usage and outcome are all
known, and an activity attempt runs exactly once (a workflow replay never re-runs it), so
recording here never duplicates: every *attempt* is one ``model.call`` / ``tool.call`` event
and one span, with its attempt number.

* ``model.call`` event and a ``chat {model}`` span (kind CLIENT) with the GenAI semantic
  conventions' attributes (``gen_ai.*``, ``server.*``, ``error.type``) plus ``keel.*``;
  metrics ``gen_ai.client.token.usage``, ``gen_ai.client.operation.duration``,
  ``keel.llm.cost``, ``keel.retries``.
* ``tool.call`` event and an ``execute_tool {tool}`` span (kind CLIENT) with the GenAI
  execute-tool and MCP client attributes (``mcp.method.name`` …); metrics
  ``keel.tool.calls``, ``keel.tool.duration``, ``keel.retries``.

Names and fields are listed in docs/operations.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from temporalio import activity
from temporalio.exceptions import ApplicationError

from keel.contracts import ChatRequest, ChatResponse, call_cost, names
from keel.runtime.logs import content, get_logger
from keel.runtime.telemetry import Telemetry

SUMMARY_CHARS = 200
# Bucket boundaries the GenAI semantic conventions advise for their two client histograms.
TOKEN_BUCKETS = [4.0**i for i in range(14)]  # 1, 4, 16, … 67108864
DURATION_BUCKETS = [0.01 * 2**i for i in range(14)]  # 0.01, 0.02, … 81.92 s
# Well-known ``gen_ai.provider.name`` values by API host; any other OpenAI-compatible
# endpoint (vLLM, Ollama, LiteLLM, the simulator) is reported as "openai", the wire format
# Keel speaks, with ``server.address`` telling which server it was (as the conventions say).
PROVIDER_BY_HOST = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "api.groq.com": "groq",
    "api.deepseek.com": "deepseek",
    "api.mistral.ai": "mistral_ai",
    "api.x.ai": "x_ai",
    "api.perplexity.ai": "perplexity",
    "generativelanguage.googleapis.com": "gcp.gemini",
}

log = get_logger("keel.activity")


class Instruments:
    """The activity-side metric instruments (creating one twice returns the same one)."""

    def __init__(self, telemetry: Telemetry) -> None:
        meter = telemetry.meter
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.cost = meter.create_counter(
            "keel.llm.cost", unit="USD", description="Model spend, by model and provider."
        )
        self.tool_calls = meter.create_counter(
            "keel.tool.calls", unit="{call}", description="Tool call attempts, by outcome."
        )
        self.tool_duration = meter.create_histogram(
            "keel.tool.duration",
            unit="s",
            description="Duration of one tool call attempt.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.retries = meter.create_counter(
            "keel.retries",
            unit="{attempt}",
            description="Activity attempts after the first, by kind (model or tool).",
        )


def _server(url: str | None) -> dict[str, Any]:
    """``server.address`` / ``server.port`` of an HTTP endpoint (empty for none)."""
    if not url:
        return {}
    parts = urlsplit(url)
    if not parts.hostname:
        return {}
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {"server.address": parts.hostname, "server.port": port}


def provider_name(base_url: str) -> str:
    host = urlsplit(base_url).hostname or ""
    if host.endswith(".openai.azure.com"):
        return "azure.ai.openai"
    return PROVIDER_BY_HOST.get(host, "openai")


def error_type(exc: BaseException) -> str:
    """A low-cardinality error class: the ApplicationError type, else the exception class."""
    if isinstance(exc, ApplicationError) and exc.type:
        return exc.type
    return type(exc).__name__


def _attempt() -> int:
    return activity.info().attempt if activity.in_activity() else 1


def _client_span(
    telemetry: Telemetry, name: str, attributes: dict[str, Any]
) -> contextlib.AbstractContextManager[Span]:
    """A CLIENT span made current; errors are recorded by ``_end_with_error``, not the SDK."""
    return telemetry.tracer.start_as_current_span(
        name,
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    )


def _end_with_error(span: Span, exc: BaseException) -> str:
    kind = error_type(exc)
    span.set_attribute("error.type", kind)
    span.set_status(Status(StatusCode.ERROR, f"{kind}: {exc}"))
    return kind


# --------------------------------------------------------------------------- model calls


class ModelCallObserver:
    """Observes ``keel.llm.chat`` attempts (built once per LLMActivities)."""

    def __init__(self, telemetry: Telemetry | None = None) -> None:
        self.telemetry = telemetry or Telemetry.disabled()
        self.instruments = Instruments(self.telemetry)

    @contextlib.contextmanager
    def observe(self, request: ChatRequest) -> Iterator[ModelCall]:
        """Wrap one provider call; the caller hands the response to ``call.done``."""
        model = request.model
        provider = provider_name(model.base_url)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model.name,
            "gen_ai.request.max_tokens": request.max_output_tokens or model.max_output_tokens,
            "gen_ai.request.temperature": model.temperature,
            "gen_ai.conversation.id": request.conversation_id,
            "keel.attempt": _attempt(),
            **_server(model.base_url),
        }
        if request.step is not None:
            attributes["keel.step"] = request.step
        call = ModelCall(request=request, provider=provider, metric_attributes={
            k: v for k, v in attributes.items()
            if k in ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
                     "server.address", "server.port")
        })  # fmt: skip
        started = time.monotonic()
        with _client_span(self.telemetry, f"chat {model.name}", attributes) as span:
            try:
                yield call
            except BaseException as exc:
                kind = _end_with_error(span, exc)
                self._record(call, time.monotonic() - started, error=exc, kind=kind)
                raise
            self._finish(span, call)
            self._record(call, time.monotonic() - started)

    def _finish(self, span: Span, call: ModelCall) -> None:
        response = call.response
        if response is None:
            return
        usage = response.usage
        span.set_attributes(
            {
                "gen_ai.response.model": response.model,
                "gen_ai.usage.input_tokens": usage.input_tokens,
                "gen_ai.usage.output_tokens": usage.output_tokens,
                "gen_ai.usage.cache_read.input_tokens": usage.cached_tokens,
            }
        )
        if response.finish_reason:
            span.set_attribute("gen_ai.response.finish_reasons", [response.finish_reason])
        if call.cost is not None:
            span.set_attribute("keel.cost_usd", call.cost)

    def _record(
        self,
        call: ModelCall,
        seconds: float,
        *,
        error: BaseException | None = None,
        kind: str | None = None,
    ) -> None:
        request, response, attempt = call.request, call.response, _attempt()
        metric_attributes = dict(call.metric_attributes)
        if response is not None:
            metric_attributes["gen_ai.response.model"] = response.model
        if kind is not None:
            metric_attributes["error.type"] = kind
        self.instruments.duration.record(seconds, metric_attributes)
        if attempt > 1:
            self.instruments.retries.add(1, {"kind": "model", "name": request.model.name})
        fields: dict[str, Any] = {
            "model": request.model.name,
            "provider": call.provider,
            "base_url": request.model.base_url,
            "step": request.step,
            "attempt": attempt,
            "latency_ms": round(seconds * 1000, 3),
            "messages": content([m.model_dump(exclude_defaults=True) for m in request.messages]),
            "tools": len(request.tools),
            "max_tokens": request.max_output_tokens or request.model.max_output_tokens,
        }
        if response is not None:
            usage = response.usage
            token_attributes = {**metric_attributes, "gen_ai.token.type": "input"}
            self.instruments.token_usage.record(usage.input_tokens, token_attributes)
            token_attributes["gen_ai.token.type"] = "output"
            self.instruments.token_usage.record(usage.output_tokens, token_attributes)
            if call.cost is not None:
                self.instruments.cost.add(
                    call.cost, {"model": request.model.name, "provider": call.provider}
                )
            fields.update(
                response_model=response.model,
                completion=content(
                    {
                        "content": response.content,
                        "tool_calls": [c.model_dump() for c in response.tool_calls],
                    }
                ),
                finish_reason=response.finish_reason,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cached_tokens=usage.cached_tokens,
                cost_usd=call.cost,
            )
        if error is None:
            log.info("model.call", outcome="ok", **fields)
        else:
            outcome = "cancelled" if _cancelled(error) else "error"
            log.warning(
                "model.call", outcome=outcome, error_type=kind, error=str(error)[:500], **fields
            )


@dataclass
class ModelCall:
    """One model-call attempt in flight; ``done`` hands over the provider's response."""

    request: ChatRequest
    provider: str
    metric_attributes: dict[str, Any]
    response: ChatResponse | None = None
    cost: float | None = None

    def done(self, response: ChatResponse) -> None:
        self.response = response
        price = self.request.model.price
        self.cost = call_cost(response.usage, price) if price is not None else None


def _cancelled(exc: BaseException) -> bool:
    return isinstance(exc, asyncio.CancelledError)


# --------------------------------------------------------------------------- tool calls


@dataclass
class ToolCall:
    """One ``call-tool`` attempt in flight."""

    server: str
    tool: str
    arguments: Any
    key: str | None
    step: int | None
    tool_call_id: str | None
    result: Mapping[str, Any] | None = field(default=None)

    @classmethod
    def from_request(cls, server: str, request: Any) -> ToolCall:
        """Read the temporalio-mcp call-tool request (a dict: name, arguments, meta)."""
        body = request if isinstance(request, Mapping) else {}
        meta = body.get("meta") or {}
        key = meta.get(names.META_IDEMPOTENCY_KEY) if isinstance(meta, Mapping) else None
        step, call_id = parse_idempotency_key(key)
        return cls(
            server=server,
            tool=str(body.get("name") or "?"),
            arguments=body.get("arguments"),
            key=key if isinstance(key, str) else None,
            step=step,
            tool_call_id=call_id,
        )

    def done(self, result: Any) -> None:
        self.result = result if isinstance(result, Mapping) else None


def parse_idempotency_key(key: object) -> tuple[int | None, str | None]:
    """``<workflow_id>:<step>:<tool_call_id>`` → (step, tool_call_id); (None, None) if not so."""
    if not isinstance(key, str):
        return None, None
    parts = key.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None, None
    return int(parts[1]), parts[2]


def result_summary(result: Mapping[str, Any]) -> str:
    """The first characters of a CallToolResult's text content, whitespace collapsed (servers
    often pretty-print JSON)."""
    texts = [
        str(block.get("text", ""))
        for block in result.get("content") or []
        if isinstance(block, Mapping) and block.get("type") == "text"
    ]
    return " ".join(" ".join(texts).split())[:SUMMARY_CHARS]


class ToolCallObserver:
    """Observes ``temporalio.mcp.<server>.call-tool`` attempts (in the MCP interceptor)."""

    def __init__(
        self, telemetry: Telemetry | None = None, urls: Mapping[str, str | None] | None = None
    ) -> None:
        self.telemetry = telemetry or Telemetry.disabled()
        self.instruments = Instruments(self.telemetry)
        self.urls = dict(urls or {})

    @contextlib.contextmanager
    def observe(self, server: str, request: Any) -> Iterator[ToolCall]:
        call = ToolCall.from_request(server, request)
        url = self.urls.get(server)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.tool,
            "gen_ai.tool.type": "extension",
            "mcp.method.name": "tools/call",
            "network.transport": "tcp" if url else "pipe",
            "keel.mcp.server": server,
            "keel.attempt": _attempt(),
            **_server(url),
        }
        if url:
            attributes["network.protocol.name"] = "http"
        if call.tool_call_id:
            attributes["gen_ai.tool.call.id"] = call.tool_call_id
        if call.key:
            attributes["keel.idempotency_key"] = call.key
        if call.step is not None:
            attributes["keel.step"] = call.step
        started = time.monotonic()
        with _client_span(self.telemetry, f"execute_tool {call.tool}", attributes) as span:
            try:
                yield call
            except BaseException as exc:
                kind = _end_with_error(span, exc)
                outcome = "cancelled" if _cancelled(exc) else "failed"
                self._record(call, time.monotonic() - started, outcome, error=exc, kind=kind)
                raise
            outcome = "tool_error" if call.result and call.result.get("is_error") else "ok"
            if outcome == "tool_error":
                span.set_attribute("error.type", "tool_error")
                span.set_status(Status(StatusCode.ERROR, "tool_error"))
            self._record(call, time.monotonic() - started, outcome)

    def _record(
        self,
        call: ToolCall,
        seconds: float,
        outcome: str,
        *,
        error: BaseException | None = None,
        kind: str | None = None,
    ) -> None:
        attempt = _attempt()
        attributes = {"server": call.server, "tool": call.tool, "outcome": outcome}
        self.instruments.tool_calls.add(1, attributes)
        self.instruments.tool_duration.record(seconds, attributes)
        if attempt > 1:
            self.instruments.retries.add(1, {"kind": "tool", "name": call.tool})
        fields: dict[str, Any] = {
            "server": call.server,
            "tool": call.tool,
            "step": call.step,
            "tool_call_id": call.tool_call_id,
            "idempotency_key": call.key,
            "attempt": attempt,
            "latency_ms": round(seconds * 1000, 3),
            "arguments": content(call.arguments),
            "outcome": outcome,
        }
        if call.result is not None:
            fields["is_error"] = bool(call.result.get("is_error"))
            fields["result"] = content(result_summary(call.result))
        if error is None:
            log.info("tool.call", **fields)
        else:
            log.warning("tool.call", error_type=kind, error=str(error)[:500], **fields)
