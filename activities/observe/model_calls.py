"""``keel.llm.chat`` attempts: a ``chat {model}`` span, the ``model.call`` event, GenAI metrics."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.trace import Span

from activities.observe.instruments import Instruments
from activities.observe.spans import (
    attempt,
    cancelled,
    client_span,
    end_with_error,
    log,
    server_attributes,
)
from keel.contracts import ChatMessage, ChatRequest, ChatResponse, call_cost
from keel.runtime.logs import content
from keel.runtime.telemetry import Telemetry

# Well-known ``gen_ai.provider.name`` values by API host; any other endpoint (vLLM, Ollama,
# LiteLLM, the simulator) is reported by the wire Keel speaks to it ("openai" or "anthropic",
# ``model.provider``), with ``server.address`` telling which server it was (as the conventions
# say).
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
# A logged message's content is a preview: a 5 MB task is in the content store, not the log.
PREVIEW_CHARS = 4000
# The span attributes that are also metric attributes (low cardinality).
METRIC_ATTRIBUTES = (
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "server.address",
    "server.port",
)


def provider_name(base_url: str, wire: str = "openai") -> str:
    """``gen_ai.provider.name``: the well-known API at ``base_url``, else the wire spoken."""
    host = urlsplit(base_url).hostname or ""
    if host.endswith(".openai.azure.com"):
        return "azure.ai.openai"
    return PROVIDER_BY_HOST.get(host, wire)


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


class ModelCallObserver:
    """Observes ``keel.llm.chat`` attempts (built once per LLMActivities)."""

    def __init__(self, telemetry: Telemetry | None = None) -> None:
        self.telemetry = telemetry or Telemetry.disabled()
        self.instruments = Instruments(self.telemetry)

    @contextlib.contextmanager
    def observe(self, request: ChatRequest) -> Iterator[ModelCall]:
        """Wrap one provider call; the caller hands the response to ``call.done``."""
        model = request.model
        provider = provider_name(model.base_url, model.provider)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model.name,
            "gen_ai.request.max_tokens": request.max_output_tokens or model.max_output_tokens,
            "gen_ai.request.temperature": model.temperature,
            "gen_ai.conversation.id": request.conversation_id,
            "keel.attempt": attempt(),
            **server_attributes(model.base_url),
        }
        if request.step is not None:
            attributes["keel.step"] = request.step
        attributes.update(_route_attributes(request))
        call = ModelCall(
            request=request,
            provider=provider,
            metric_attributes={k: v for k, v in attributes.items() if k in METRIC_ATTRIBUTES},
        )
        started = time.monotonic()
        with client_span(self.telemetry, f"chat {model.name}", attributes) as span:
            try:
                yield call
            except BaseException as exc:
                kind = end_with_error(span, exc)
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
                "gen_ai.usage.cache_creation.input_tokens": usage.cache_write_tokens,
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
        """The attempt's metrics and its ``model.call`` event."""
        number = attempt()
        self._record_metrics(call, seconds, number, kind)
        fields = _event_fields(call, seconds, number)
        if error is None:
            log.info("model.call", outcome="ok", **fields)
        else:
            outcome = "cancelled" if cancelled(error) else "error"
            log.warning(
                "model.call", outcome=outcome, error_type=kind, error=str(error)[:500], **fields
            )

    def _record_metrics(
        self, call: ModelCall, seconds: float, number: int, kind: str | None
    ) -> None:
        request, response = call.request, call.response
        metric_attributes = dict(call.metric_attributes)
        if response is not None:
            metric_attributes["gen_ai.response.model"] = response.model
        if kind is not None:
            metric_attributes["error.type"] = kind
        self.instruments.duration.record(seconds, metric_attributes)
        if number > 1:
            self.instruments.retries.add(1, {"kind": "model", "name": request.model.name})
        if response is None:
            return
        usage = response.usage
        token_attributes = {**metric_attributes, "gen_ai.token.type": "input"}
        self.instruments.token_usage.record(usage.input_tokens, token_attributes)
        token_attributes["gen_ai.token.type"] = "output"
        self.instruments.token_usage.record(usage.output_tokens, token_attributes)
        if call.cost is not None:
            self.instruments.cost.add(
                call.cost, {"model": request.model.name, "provider": call.provider}
            )


def _event_fields(call: ModelCall, seconds: float, number: int) -> dict[str, Any]:
    """The ``model.call`` event's fields (content masked as KEEL_LOG_CONTENT says)."""
    request, response = call.request, call.response
    fields: dict[str, Any] = {
        "model": request.model.name,
        "provider": call.provider,
        "base_url": request.model.base_url,
        "step": request.step,
        "attempt": number,
        "latency_ms": round(seconds * 1000, 3),
        "prior": request.prior.digest if request.prior is not None else None,
        "messages": content([message_preview(m) for m in request.messages]),
        "tools": len(request.tools),
        "max_tokens": request.max_output_tokens or request.model.max_output_tokens,
    }
    if request.route is not None:  # a routed step: which tier serves it, and why
        fields.update(tier=request.tier, route=request.route)
    if response is not None:
        usage = response.usage
        fields.update(
            response_model=response.model,
            completion=content(
                {
                    "content": preview(response.content),
                    "tool_calls": [c.model_dump() for c in response.tool_calls],
                }
            ),
            finish_reason=response.finish_reason,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            cost_usd=call.cost,
        )
    return fields


def _route_attributes(request: ChatRequest) -> dict[str, Any]:
    """``keel.tier`` / ``keel.route`` of a routed step's span (none when unrouted)."""
    if request.route is None:
        return {}
    attributes: dict[str, Any] = {"keel.route": request.route}
    if request.tier is not None:
        attributes["keel.tier"] = request.tier
    return attributes


def preview(text: str | None, limit: int = PREVIEW_CHARS) -> str | None:
    """``text`` as a log line carries it: its first ``limit`` characters and how many more."""
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit:,} more characters]"


def message_preview(message: ChatMessage) -> dict[str, Any]:
    """A message of the request as the ``model.call`` event logs it: what is new in this
    request (stored messages appear as their ``content_ref``), content shortened, images as
    their type and size."""
    fields = message.model_dump(exclude_defaults=True, exclude={"images"})
    if message.content is not None:
        fields["content"] = preview(message.content)
    if message.images:
        fields["images"] = [f"{i.mime_type}, {len(i.data):,} base64 characters"
                            for i in message.images]  # fmt: skip
    return fields
