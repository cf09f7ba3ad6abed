"""Structured logs for every Keel process: structlog, one JSON object per line.

``configure_logging(component)`` is called once by each entry point (worker, MCP servers,
simulator, CLI). It routes structlog *and* the standard library (Temporal's SDK loggers,
uvicorn, httpx, ``workflow.logger``, ``activity.logger``) through one
``structlog.stdlib.ProcessorFormatter``, so every line has the same shape::

    {"event": "model.call", "level": "info", "timestamp": "...", "component": "worker",
     "logger": "keel.llm", "workflow_id": "...", "run_id": "...", "step": 2, ...}

With tracing on, a line logged inside a span also has that span's ``trace_id``/``span_id``.

Conventions (the event catalogue is in docs/operations.md):

* Event names are dotted: ``model.call``, ``tool.call``, ``tool.validation``,
  ``approval.requested``, ``approval.decision``, ``run.stop``, ``run.finished``.
* Activity code logs with ``get_logger(name).info(event, **fields)``; the activity's
  workflow id, run id, activity type and attempt are added automatically.
* Workflow code logs through ``workflows/events.py`` (``workflow.logger`` underneath), which is
  replay-safe: the SDK drops log calls while a workflow replays history, so a forced replay
  does not repeat an event. Fields travel in the record's ``extra={"keel": {...}}``; the
  SDK's ``temporal_workflow`` extra supplies workflow id, run id, type and task queue.

Settings (environment):

* ``KEEL_LOG_FORMAT``: ``json`` (default) or ``console`` (coloured key=value, for people).
* ``KEEL_LOG_LEVEL``: ``info`` by default.
* ``KEEL_LOG_CONTENT``: ``full`` (default: prompts, completions and tool arguments/results
  are logged, with secrets masked) or ``none`` (content replaced by its size and a digest,
  for deployments where prompts may hold personal data). Secrets are always masked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import IO, Any, Literal

import structlog
from opentelemetry import trace as otel_trace
from structlog.typing import EventDict, Processor, WrappedLogger
from temporalio import activity, workflow

ContentMode = Literal["full", "none"]

SECRET_KEY = re.compile(
    r"(api[_-]?key|secret|token|password|passwd|authorization|cookie|credential|private[_-]?key)",
    re.IGNORECASE,
)
SECRET_VALUE = re.compile(
    r"(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+[A-Za-z0-9._\-]{8,}|gh[pousr]_[A-Za-z0-9]{16,}"
    r"|xox[abpr]-[A-Za-z0-9\-]{8,}|AKIA[0-9A-Z]{16})"
)
MASK = "[redacted]"
# Keys the idempotency ledger and token counters use; they name secrets only by accident.
NOT_SECRET = frozenset(
    {
        "idempotency_key",
        "input_tokens",
        "output_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "max_tokens",
        "tokens",
    }
)

_CONTEXT_EXTRAS = {
    "temporal_workflow": {
        "workflow_id": "workflow_id",
        "run_id": "run_id",
        "workflow_type": "workflow_type",
        "task_queue": "task_queue",
    },
    "temporal_activity": {
        "workflow_id": "workflow_id",
        "workflow_run_id": "run_id",
        "activity_type": "activity_type",
        "activity_id": "activity_id",
        "attempt": "attempt",
    },
}


def content_mode() -> ContentMode:
    """``KEEL_LOG_CONTENT``: whether prompts, completions and tool payloads are logged."""
    return "none" if os.environ.get("KEEL_LOG_CONTENT", "full").lower() == "none" else "full"


def redact(value: Any) -> Any:
    """``value`` with secrets masked: values under secret-looking keys, and strings that look
    like API keys or bearer tokens anywhere. Always applied, whatever the content mode."""
    if isinstance(value, Mapping):
        return {
            k: (MASK if _secret_key(k) and v not in (None, "") else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return SECRET_VALUE.sub(MASK, value)
    return value


def content(value: Any, mode: ContentMode | None = None) -> Any:
    """What a log event may carry of prompt/completion/tool payload ``value``: the value with
    secrets masked (``full``), or only its size and digest (``none``)."""
    if value is None:
        return None
    if (mode or content_mode()) == "full":
        return redact(value)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return {"chars": len(text), "sha256": hashlib.sha256(text.encode()).hexdigest()[:16]}


def get_logger(name: str) -> Any:
    """A structlog logger; use ``.info(event, **fields)``."""
    return structlog.stdlib.get_logger(name)


def configure_logging(
    component: str,
    *,
    level: str | None = None,
    stream: IO[str] | None = None,
    fmt: str | None = None,
) -> logging.Handler:
    """Route structlog and stdlib logging through one formatter writing to ``stream``.

    Idempotent: a second call replaces the handler it installed before. Returns the handler
    (tests attach it to a ``StringIO``)."""
    chosen = (fmt or os.environ.get("KEEL_LOG_FORMAT", "json")).lower()
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if chosen == "console"
        else structlog.processors.JSONRenderer(default=str)
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _stdlib_extras,
        _activity_context,
        _trace_context,
        _Component(component),
        _redact_event,
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
    handler.set_name("keel")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "keel"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel((level or os.environ.get("KEEL_LOG_LEVEL", "info")).upper())
    # The context is in the structured fields; do not also append it to every message.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    for noisy in ("httpx", "httpx2", "httpcore", "httpcore2", "mcp.client.streamable_http"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler


def _trace_context(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """``trace_id`` / ``span_id`` of the span current where the line is logged (a model or
    tool call's span, an MCP server's ``tools/call`` span), so a log line leads to its trace
    and back. Absent when tracing is off: no-op spans have no valid context."""
    context = otel_trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


class _Component:
    def __init__(self, component: str) -> None:
        self.component = component

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("component", self.component)
        return event_dict


def _stdlib_extras(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Lift the SDK's ``temporal_workflow``/``temporal_activity`` extras and Keel's ``keel``
    extra of a stdlib record into top-level fields."""
    record = event_dict.get("_record")
    if record is None:
        return event_dict
    for extra, names in _CONTEXT_EXTRAS.items():
        values = getattr(record, extra, None)
        if isinstance(values, Mapping):
            for source, target in names.items():
                if values.get(source) is not None:
                    event_dict.setdefault(target, values[source])
    fields = getattr(record, "keel", None)
    if isinstance(fields, Mapping):
        for key, value in fields.items():
            event_dict.setdefault(key, value)
    return event_dict


def _activity_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Inside an activity, bind the workflow id, run id, activity type and attempt."""
    if not activity.in_activity():
        return event_dict
    info = activity.info()
    if info.workflow_id:
        event_dict.setdefault("workflow_id", info.workflow_id)
    if info.workflow_run_id:
        event_dict.setdefault("run_id", info.workflow_run_id)
    event_dict.setdefault("activity_type", info.activity_type)
    event_dict.setdefault("attempt", info.attempt)
    return event_dict


def _redact_event(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Mask secrets in every field of every line (a second net behind ``content``)."""
    for key, value in list(event_dict.items()):
        if key.startswith("_") or key in ("event", "timestamp", "level", "logger"):
            continue
        if _secret_key(key) and value not in (None, ""):
            event_dict[key] = MASK
        elif isinstance(value, str | Mapping | list | tuple):
            event_dict[key] = redact(value)
    return event_dict


def _secret_key(key: object) -> bool:
    return isinstance(key, str) and key not in NOT_SECRET and bool(SECRET_KEY.search(key))
