"""``temporalio.mcp.<server>.call-tool`` attempts: an ``execute_tool {tool}`` span, the
``tool.call`` event, the ``keel.tool.*`` metrics."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import Status, StatusCode

from activities.observe.instruments import Instruments
from activities.observe.spans import (
    attempt,
    cancelled,
    client_span,
    end_with_error,
    log,
    server_attributes,
)
from keel.contracts import names
from keel.runtime.logs import content
from keel.runtime.telemetry import Telemetry

SUMMARY_CHARS = 200


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
            "keel.attempt": attempt(),
            **server_attributes(url),
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
        with client_span(self.telemetry, f"execute_tool {call.tool}", attributes) as span:
            try:
                yield call
            except BaseException as exc:
                kind = end_with_error(span, exc)
                outcome = "cancelled" if cancelled(exc) else "failed"
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
        number = attempt()
        attributes = {"server": call.server, "tool": call.tool, "outcome": outcome}
        self.instruments.tool_calls.add(1, attributes)
        self.instruments.tool_duration.record(seconds, attributes)
        if number > 1:
            self.instruments.retries.add(1, {"kind": "tool", "name": call.tool})
        fields: dict[str, Any] = {
            "server": call.server,
            "tool": call.tool,
            "step": call.step,
            "tool_call_id": call.tool_call_id,
            "idempotency_key": call.key,
            "attempt": number,
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
