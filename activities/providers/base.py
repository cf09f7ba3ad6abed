"""The provider interface every LLM backend implements, and how HTTP failures are classified.

Temporal owns retries: providers never retry on their own. They turn each failure into an
``ApplicationError`` that says whether a retry can help (408/409/429/5xx and transport errors)
or not (any other 4xx), and pass ``Retry-After`` on as ``next_retry_delay``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from temporalio.exceptions import ApplicationError

from keel.contracts import ChatRequest, ChatResponse

RETRYABLE_STATUS = frozenset({408, 409, 429})


class ChatProvider(Protocol):
    """A chat-completion backend with tool calling."""

    async def chat(self, request: ChatRequest, api_key: str | None) -> ChatResponse:
        """Run one model turn; raise ApplicationError on failure."""
        ...


def parse_retry_after(value: str | None) -> timedelta | None:
    """``Retry-After`` in seconds (the HTTP-date form is rare for APIs and is ignored)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return timedelta(seconds=max(0.0, min(seconds, 600.0)))


def http_error(status: int, message: str, retry_after: str | None = None) -> ApplicationError:
    """Map an HTTP status from a provider to a retryable or non-retryable ApplicationError."""
    retryable = status in RETRYABLE_STATUS or status >= 500
    return ApplicationError(
        f"LLM provider answered HTTP {status}: {message}",
        status,
        type="LLMHttpError" if retryable else "LLMRequestRejected",
        non_retryable=not retryable,
        next_retry_delay=parse_retry_after(retry_after) if retryable else None,
    )


def transport_error(url: str, exc: Exception) -> ApplicationError:
    """A connection or timeout failure: retryable, with the URL in the message."""
    detail = str(exc) or type(exc).__name__
    return ApplicationError(
        f"LLM provider at {url} unreachable: {type(exc).__name__}: {detail}",
        type="LLMTransportError",
    )
