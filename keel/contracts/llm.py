"""The model activity's wire types: messages, tool calls, tool specs, usage, request, response."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from keel.contracts.content import ContentRef, canonical_json
from keel.contracts.context_view import ContextState, ContextView
from keel.contracts.model_settings import ModelSettings, Price
from keel.contracts.spend import SpendTag

PER_TOKEN = 1e-6  # prices are per million tokens


class ToolCall(BaseModel):
    """A tool call as the model produced it; ``arguments`` is the raw JSON text, unparsed."""

    id: str
    name: str
    arguments: str = "{}"


class ImagePart(BaseModel):
    """An image a tool returned (MCP ``ImageContent``): base64 data and its media type."""

    mime_type: str
    data: str = Field(description="base64, as MCP carries it")


class ChatMessage(BaseModel):
    """One message of the conversation, in a provider-neutral shape.

    ``images`` (tool messages only) are the images of the tool's result: the provider sends
    them to a model whose settings say ``accepts_images``, and leaves them out otherwise —
    ``content`` already names each one with a marker such as ``[image/png, 5 KB]``.
    """

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    images: list[ImagePart] = Field(default_factory=list)
    content_ref: ContentRef | None = Field(
        default=None,
        description="the message's content and images are stored (message_content_bytes):"
        " the model activity reads them from the content store; content and images are empty",
    )


class ToolSpec(BaseModel):
    """A tool offered to the model: MCP name, description and input schema, plus its server."""

    server: str
    name: str
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    annotations: dict[str, Any] = Field(default_factory=dict)


class Usage(BaseModel):
    """Token usage as the provider reported it, in OpenAI's sense: ``input_tokens`` is the
    whole prompt, of which ``cached_tokens`` were read from the provider's prompt cache and
    ``cache_write_tokens`` were written to it (Anthropic reports the three apart; its provider
    adds them up)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def plus(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
        )


class ChatRequest(BaseModel):
    """Input of the ``keel.llm.chat`` activity."""

    model: ModelSettings
    messages: list[ChatMessage]
    tools: list[ToolSpec] = Field(default_factory=list)
    conversation_id: str = Field(description="stable per run; lets providers group requests")
    max_output_tokens: int | None = Field(
        default=None,
        ge=1,
        description="this call's cap, when a budget leaves less than the model's",
    )
    step: int | None = Field(
        default=None, ge=1, description="the run's model-call index, for logs, spans, metrics"
    )
    prior: ContentRef | None = Field(
        default=None,
        description="the stored transcript node holding every message before `messages`"
        " (keel/runtime/store/transcripts.py); None: `messages` is the whole conversation",
    )
    tier: str | None = Field(
        default=None, description="the routing tier serving the call ([tiers.<name>])"
    )
    route: str | None = Field(default=None, description="why that tier serves it")
    view: ContextView | None = Field(
        default=None,
        description="how the activity trims the assembled conversation before the provider"
        " sees it (workflows/agent/context.py); None: sent whole",
    )
    spend: SpendTag | None = Field(
        default=None,
        description="whose spend the call is (run, profile, principal) and the budgets it"
        " counts against (keel/runtime/spend); None: not recorded across runs",
    )


class ChatResponse(BaseModel):
    """Output of the ``keel.llm.chat`` activity."""

    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    model: str
    finish_reason: str | None = None
    latency_ms: float = 0.0
    attempt: int = 1
    transcript: ContentRef | None = Field(
        default=None,
        description="the stored transcript node of the request's conversation (prior plus"
        " messages): the next request's prior; None when the request was not stored",
    )
    content_ref: ContentRef | None = Field(
        default=None,
        description="the answer's content is stored (message_content_bytes of the assistant"
        " message with this content): the workflow sends that message by reference",
    )


class ConversationState(BaseModel):
    """A run's conversation as workflow state (and as carried across continue-as-new).

    ``prior`` is the stored transcript node of every message already sent to the model;
    ``pending`` the messages since, sent with the next request. The counts cover both, for the
    budget's prompt estimate (workflows/agent/budget.py) without reading the store.
    ``context`` is kept for a profile with ``[context]`` only: one small record per message
    and the view so far (keel/contracts/context_view.py); the estimate applies that view.
    """

    prior: ContentRef | None = None
    pending: list[ChatMessage] = Field(default_factory=list)
    messages: int = 0
    text_bytes: int = 0
    tool_calls: int = 0
    images: int = 0
    context: ContextState | None = None


def message_content_bytes(message: ChatMessage) -> bytes:
    """What ``ChatMessage.content_ref`` addresses: the canonical JSON of the message's content
    and images. The worker stores it (a tool result, a model answer); the workflow, holding the
    same message, computes the same digest and may send the reference instead of the text."""
    images = [image.model_dump() for image in message.images]
    return canonical_json({"content": message.content, "images": images})


def call_cost(usage: Usage, price: Price) -> float:
    """USD of one call. ``usage.input_tokens`` includes ``cached_tokens`` and
    ``cache_write_tokens`` (OpenAI semantics).

    Cached tokens are billed at the cached price, tokens written to the cache at the cache
    write price (each the input price when none is listed), the rest of the input at the input
    price. A provider reporting more cached (then written) tokens than input tokens is treated
    as all input cached rather than as a negative uncached count.
    """
    cached = min(max(usage.cached_tokens, 0), usage.input_tokens)
    written = min(max(usage.cache_write_tokens, 0), usage.input_tokens - cached)
    return (
        (usage.input_tokens - cached - written) * price.input_per_mtok * PER_TOKEN
        + cached * price.cached_price * PER_TOKEN
        + written * price.cache_write_price * PER_TOKEN
        + usage.output_tokens * price.output_per_mtok * PER_TOKEN
    )


def cache_savings(usage: Usage, price: Price) -> float:
    """USD the prompt cache saved on one call: the cached tokens at the input price minus at the
    cached price, minus the premium paid for the tokens written to the cache (their write price
    minus the input price). Negative for a call that wrote more than it read (the next calls
    are meant to read it). Clamped like ``call_cost``."""
    cached = min(max(usage.cached_tokens, 0), usage.input_tokens)
    written = min(max(usage.cache_write_tokens, 0), usage.input_tokens - cached)
    return (
        cached * (price.input_per_mtok - price.cached_price) * PER_TOKEN
        - written * (price.cache_write_price - price.input_per_mtok) * PER_TOKEN
    )
