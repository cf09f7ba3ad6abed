"""The servers' JSON log lines: component, the ``keel`` extra's fields, trace ids, masking."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

from mcp_servers.shared.ledger import LOGGER_NAME
from mcp_servers.shared.logs import MASK, configure_logging, get_logger


def parsed(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_ledger_event_is_one_json_line_with_its_fields_on_top(lines: io.StringIO) -> None:
    extra = {"keel": {"tool": "refund_order", "idempotency_key": "wf:1:c", "is_error": False}}
    logging.getLogger(LOGGER_NAME).info("ledger.replay", extra=extra)
    [line] = parsed(lines)
    assert {k: line[k] for k in ("event", "level", "logger", "component")} == {
        "event": "ledger.replay",
        "level": "info",
        "logger": "mcp_servers.ledger",  # the name log queries have always used
        "component": "support-desk",
    }
    assert (line["tool"], line["idempotency_key"], line["is_error"]) == (
        "refund_order",
        "wf:1:c",
        False,
    )
    assert line["timestamp"].endswith("Z") and "trace_id" not in line


def test_lines_inside_a_span_carry_its_ids(lines: io.StringIO) -> None:
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("tools/call get_order") as span:
        get_logger("keel.mcp_server").info("inside")
    [line] = parsed(lines)
    context = span.get_span_context()
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")


def test_secrets_are_masked(lines: io.StringIO) -> None:
    get_logger("x").warning(
        "upstream said no",
        api_key="abc123",
        detail="Authorization: Bearer abcdefgh12345678 was refused",
        headers={"cookie": "s=1", "accept": "json"},
        idempotency_key="wf:1:c",
    )
    [line] = parsed(lines)
    assert line["api_key"] == MASK
    assert line["detail"] == f"Authorization: {MASK} was refused"
    assert line["headers"] == {"cookie": MASK, "accept": "json"}
    assert line["idempotency_key"] == "wf:1:c"


def test_configuring_twice_keeps_one_handler(lines: io.StringIO) -> None:
    again = configure_logging("support-desk", stream=lines)
    get_logger("x").info("once")
    assert [line["event"] for line in parsed(lines)] == ["once"]
    logging.getLogger().removeHandler(again)
