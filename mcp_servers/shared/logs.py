"""The MCP servers' log lines: JSON on stderr, the same shape as the worker's.

Every record — the server's own (structlog or stdlib ``logging``), the MCP SDK's, uvicorn's —
goes through one formatter, so a line carries ``event``, ``level``, ``logger``,
``timestamp`` (ISO, UTC), ``component`` (the server's name), the fields of a stdlib record's
``extra={"keel": {...}}`` at the top level (how the ledger logs its events), and, inside a
span (an MCP ``tools/call`` request when tracing is on), ``trace_id`` and ``span_id``, so a
line leads to its trace and back. stdout stays free for the stdio transport.

Secrets are masked on every line: values under secret-looking keys, and strings shaped like
API keys or bearer tokens. The servers log no tool payloads, so this is the only content rule.

Written for the servers, not shared with ``keel.runtime.logs``: that module knows Temporal
workflows and activities, which a server must not import. Settings: ``KEEL_LOG_FORMAT``
(``json``, the default, or ``console``) and ``KEEL_LOG_LEVEL`` (default ``info``).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import IO, Any

import structlog
from opentelemetry import trace as otel_trace
from structlog.typing import EventDict, Processor, WrappedLogger

HANDLER_NAME = "keel"
SECRET_KEY = re.compile(
    r"(api[_-]?key|secret|token|password|passwd|authorization|cookie|credential|private[_-]?key)",
    re.IGNORECASE,
)
SECRET_VALUE = re.compile(
    r"(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+[A-Za-z0-9._\-]{8,}|gh[pousr]_[A-Za-z0-9]{16,}"
    r"|xox[abpr]-[A-Za-z0-9\-]{8,}|AKIA[0-9A-Z]{16})"
)
MASK = "[redacted]"
_RESERVED = frozenset({"event", "timestamp", "level", "logger"})


def get_logger(name: str) -> Any:
    """A structlog logger; use ``.info(event, **fields)``."""
    return structlog.stdlib.get_logger(name)


def configure_logging(
    component: str, *, level: str | None = None, stream: IO[str] | None = None
) -> logging.Handler:
    """Route structlog and stdlib logging through one formatter writing to ``stream``.

    Idempotent: a second call replaces the handler the first one installed (other handlers
    on the root logger stay). Returns the handler, so a test can point it at a ``StringIO``.
    """
    console = os.environ.get("KEEL_LOG_FORMAT", "json").lower() == "console"
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if console
        else structlog.processors.JSONRenderer(default=str)
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _record_extras,
        _trace_context,
        _Component(component),
        _mask_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel((level or os.environ.get("KEEL_LOG_LEVEL", "info")).upper())
    return handler


def _record_extras(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Lift the fields of a stdlib record's ``extra={"keel": {...}}`` to the top level."""
    record = event.get("_record")
    fields = getattr(record, "keel", None) if record is not None else None
    if isinstance(fields, Mapping):
        for key, value in fields.items():
            event.setdefault(key, value)
    return event


def _trace_context(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """``trace_id`` / ``span_id`` of the current span; absent when tracing is off (no-op
    spans have no valid context)."""
    context = otel_trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


class _Component:
    """Adds ``component`` (the server's name) to every line."""

    def __init__(self, component: str) -> None:
        self.component = component

    def __call__(self, _: WrappedLogger, __: str, event: EventDict) -> EventDict:
        event.setdefault("component", self.component)
        return event


def _mask_secrets(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Mask secrets in every field of every line."""
    for key, value in list(event.items()):
        if not key.startswith("_") and key not in _RESERVED:
            event[key] = _masked(key, value)
    return event


def _masked(key: object, value: Any) -> Any:
    """``value`` (found under ``key``) with secrets replaced by :data:`MASK`."""
    if isinstance(key, str) and SECRET_KEY.search(key) and value not in (None, ""):
        return MASK
    if isinstance(value, str):
        return SECRET_VALUE.sub(MASK, value)
    if isinstance(value, Mapping):
        return {k: _masked(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(None, v) for v in value]
    return value
