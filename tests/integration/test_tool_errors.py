"""Tool errors answered as plain text, on the real stack: the profile's error pattern makes a
matching result a tool error (step outcome, what the model is told, failed lookups)."""

from __future__ import annotations

from temporalio.client import Client

from keel.contracts import RunResult
from tests.helpers import run


async def test_a_result_matching_the_error_pattern_is_a_tool_error(client: Client) -> None:
    result: RunResult = await run(client, "error_pattern")

    assert result.status == "completed", result.error
    outcomes = {s.name: (s.outcome, s.detail) for s in result.steps if s.kind == "tool"}
    assert outcomes["get_order"][0] == "tool_error"
    assert '"order_id":"ORD-1050"' in (outcomes["get_order"][1] or "")
    # refund_order's lookup got the same answer: a failed lookup, so `exists` refused the call
    refund_outcome, refund_detail = outcomes["refund_order"]
    assert refund_outcome == "invalid"
    assert (refund_detail or "").startswith("semantic:")
    assert result.approvals == []  # refused before any approval was asked
