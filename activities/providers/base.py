"""The provider interface every LLM backend implements, and how HTTP failures are classified.

Temporal owns retries: providers never retry on their own. They turn each failure into an
``ApplicationError`` that says whether a retry can help (408/409/429/5xx and transport errors)
or not (any other 4xx), and pass ``Retry-After`` on as ``next_retry_delay``.
"""

from __future__ import annotations

import time
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Protocol

from temporalio.exceptions import ApplicationError

from keel.contracts import ChatRequest, ChatResponse

RETRYABLE_STATUS = frozenset({408, 409, 429})
MAX_RETRY_AFTER_SECONDS = 600.0


class ChatProvider(Protocol):
    """A chat-completion backend with tool calling."""

    async def chat(self, request: ChatRequest, api_key: str | None) -> ChatResponse:
        """Run one model turn; raise ApplicationError on failure."""
        ...


def parse_retry_after(value: str | None, now: float | None = None) -> timedelta | None:
    """``Retry-After`` as seconds or as an HTTP date (RFC 9110), capped at ten minutes.

    A date is turned into the delay from ``now`` (epoch seconds, default the current time); a
    date in the past means "retry now". Anything unreadable is ignored (Temporal's backoff).
    """
    if not value or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; obsolete forms may omit the zone
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return timedelta(seconds=max(0.0, min(seconds, MAX_RETRY_AFTER_SECONDS)))


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
