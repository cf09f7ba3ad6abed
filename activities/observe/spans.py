"""What the model-call and tool-call observers share: the CLIENT span, its error status, the
attempt number and the ``server.*`` attributes, and the logger both write to."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from temporalio import activity
from temporalio.exceptions import ApplicationError

from keel.runtime.logs import get_logger
from keel.runtime.telemetry import Telemetry

log = get_logger("keel.activity")


def server_attributes(url: str | None) -> dict[str, Any]:
    """``server.address`` / ``server.port`` of an HTTP endpoint (empty for none)."""
    if not url:
        return {}
    parts = urlsplit(url)
    if not parts.hostname:
        return {}
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {"server.address": parts.hostname, "server.port": port}


def error_type(exc: BaseException) -> str:
    """A low-cardinality error class: the ApplicationError type, else the exception class."""
    if isinstance(exc, ApplicationError) and exc.type:
        return exc.type
    return type(exc).__name__


def attempt() -> int:
    """The current activity attempt (1 outside an activity, as in unit tests)."""
    return activity.info().attempt if activity.in_activity() else 1


def cancelled(exc: BaseException) -> bool:
    return isinstance(exc, asyncio.CancelledError)


def client_span(
    telemetry: Telemetry, name: str, attributes: dict[str, Any]
) -> contextlib.AbstractContextManager[Span]:
    """A CLIENT span made current; errors are recorded by ``end_with_error``, not the SDK."""
    return telemetry.tracer.start_as_current_span(
        name,
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    )


def end_with_error(span: Span, exc: BaseException) -> str:
    """Mark ``span`` failed with ``exc``'s error type; return that type."""
    kind = error_type(exc)
    span.set_attribute("error.type", kind)
    span.set_status(Status(StatusCode.ERROR, f"{kind}: {exc}"))
    return kind
