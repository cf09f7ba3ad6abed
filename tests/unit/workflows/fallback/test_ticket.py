"""keel.fallback.ticket's pure parts: the ticket it opens from what the run collected, and
the ticket id it reads back; and when a result starts a fallback at all."""

from __future__ import annotations

import pytest

from keel.contracts import Fact, FallbackInput, FallbackSettings, Principal, RunResult
from workflows.agent.fallback import triggers
from workflows.fallback.ticket import MAX_BODY, ticket_arguments, ticket_body, ticket_id_of


def request(**fields: object) -> FallbackInput:
    base: dict[str, object] = {
        "parent_workflow_id": "wf-1",
        "profile": "support",
        "task": "Where is ORD-1042?",
        "principal": Principal(id="maria", roles=["customer"]),
        "status": "halted",
        "stop_reason": "step_limit",
        "failure_class": "step_limit",
        "error": "step limit reached (max_steps=3)",
        "model_calls": 3,
        "tool_calls": 3,
        "cost_usd": 0.0012,
        "facts": [
            Fact(
                step=1,
                tool="get_order",
                server="support_desk",
                outcome="ok",
                detail='{"order_id":"ORD-1042","customer_id":"CUS-1001"}',
            )
        ],
        "customer_id": "CUS-1001",
        "order_ids": ["ORD-1042"],
    }
    return FallbackInput.model_validate({**base, **fields})


def test_the_ticket_names_the_run_and_carries_what_it_collected() -> None:
    arguments = ticket_arguments(request())
    assert arguments["subject"] == "Keel run wf-1 halted (step_limit)"
    assert (arguments["customer_id"], arguments["priority"]) == ("CUS-1001", "high")
    body = arguments["body"]
    for part in ("Task: Where is ORD-1042?", "For: maria (customer)", "step_limit",
                 "Customer: CUS-1001 · orders: ORD-1042",
                 'step 1 support_desk.get_order ok: {"order_id":"ORD-1042"'):  # fmt: skip
        assert part in body


def test_without_a_customer_the_ticket_names_none_and_a_long_body_is_cut() -> None:
    arguments = ticket_arguments(request(customer_id=None, order_ids=[], task="x" * 50_000))
    assert "customer_id" not in arguments
    assert len(arguments["body"]) <= MAX_BODY
    assert "Customer:" not in ticket_body(request(customer_id=None, order_ids=[]))
    assert "(in the run history)" in ticket_body(request(task=""))  # a continued run


def test_the_ticket_id_is_read_from_structured_content_or_json_text() -> None:
    assert ticket_id_of({"ticket_id": "TCK-5006"}, "") == "TCK-5006"
    assert ticket_id_of(None, '{"ticket_id": "TCK-5007"}') == "TCK-5007"
    assert ticket_id_of(None, "Error: down") is None
    assert ticket_id_of({"ticket_id": 5}, "") is None


@pytest.mark.parametrize(
    ("status", "failure_class", "on", "starts"),
    [
        ("halted", "step_limit", None, True),
        ("failed", "upstream_unavailable", None, True),
        ("halted", "lost_result_aborted", None, False),  # a human aborted it
        ("rejected", "step_limit", None, False),
        ("completed", None, None, False),
        ("halted", "step_limit", ["wall_clock"], False),
        ("halted", "wall_clock", ["wall_clock"], True),
    ],
)
def test_which_results_start_the_fallback(
    status: str, failure_class: str | None, on: list[str] | None, starts: bool
) -> None:
    settings = FallbackSettings() if on is None else FallbackSettings(on=on)
    result = RunResult.model_validate(
        {"status": status, "failure_class": failure_class, "profile": "p", "model": "m"}
    )
    assert triggers(settings, result) is starts
    assert triggers(None, result) is False
