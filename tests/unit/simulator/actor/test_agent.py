"""The actor in agent mode, played against the support desk and knowledge base in-process
(loop.py): it looks up what the task names, follows the results, acts within policy and
answers about that order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcp_servers.support_desk.db import SupportDesk
from simulator.actor import Actor, load_tiers, parse_model
from simulator.wire import ChatRequest, estimate_tokens, prompt_chars
from tests.unit.simulator.actor.loop import REFUND_TOOLS, SUPPORT_TOOLS, converse, desk


@pytest.fixture
def store(tmp_path: Path) -> SupportDesk:
    return desk(tmp_path)


def test_a_status_question_looks_up_that_order_and_the_shipping_policy(store: SupportDesk) -> None:
    talk = converse(store, "Where is ORD-1049? When will it come?")

    assert talk.calls[:2] == [
        ("get_order", {"order_id": "ORD-1049"}),
        ("search_knowledge", {"query": "shipping times delivery"}),
    ]
    answer = talk.answer or ""
    assert "ORD-1049" in answer and "shipped" in answer and "41.49 USD" in answer
    assert "2026-11-13" in answer  # shipped 2026-11-08 + 5 business days
    assert "shipping-times" in answer


def test_independent_lookups_go_out_in_one_turn(store: SupportDesk) -> None:
    talk = converse(store, "I'm Maria Lopez (maria.lopez@example.com). ORD-1042 arrived torn.")

    first = talk.bodies[1]["messages"][2]["tool_calls"]
    assert [c["function"]["name"] for c in first] == [
        "get_order",
        "search_customers",
        "search_knowledge",
    ]
    assert "Hi Maria" in (talk.answer or "")


def test_a_refund_within_policy_is_issued_then_confirmed_by_email(store: SupportDesk) -> None:
    talk = converse(store, "ORD-1040 arrived cracked, refund please", tools=REFUND_TOOLS)

    assert ("refund_order", {"order_id": "ORD-1040", "amount": 48.0, "reason": "damaged",
            "note": "Customer request: damaged."}) in talk.calls  # fmt: skip
    assert talk.names()[-1] == "send_email"
    assert store.get_order("ORD-1040").refunded == 48.0
    assert "48.00 USD" in (talk.answer or "") and "refund-policy" in (talk.answer or "")


def test_a_rejected_refund_is_explained_not_retried(store: SupportDesk) -> None:
    talk = converse(store, "ORD-1040 arrived cracked, refund please", tools=REFUND_TOOLS,
                    approve=False)  # fmt: skip

    assert talk.names().count("refund_order") == 1
    assert "send_email" not in talk.names()
    assert "not approved (not today)" in (talk.answer or "")


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("ORD-1050 arrived broken, refund it", "needs a supervisor"),
        ("ORD-1052 is defective, refund please", "outside the 30-day refund window"),
        ("ORD-1041 came with the wrong item, refund 100 USD", "more than the 64.00 USD"),
        ("Refund ORD-1045, it's broken", "nothing to refund"),
        ("ORD-1047 was lost, refund again", "already fully refunded"),
        ("Refund ORD-1048 please", "what went wrong"),
        ("ORD-1048 arrived damaged. Refund please.", "photo"),
        ("I changed my mind about ORD-1040, refund", "once the return reaches"),
    ],
)
def test_refunds_beyond_policy_are_declined_or_escalated(
    store: SupportDesk, task: str, expected: str
) -> None:
    talk = converse(store, task, tools=REFUND_TOOLS)

    assert "refund_order" not in talk.names()
    assert expected in (talk.answer or "")


def test_someone_elses_order_is_neither_shown_nor_refunded(store: SupportDesk) -> None:
    task = "I'm Maria Lopez (maria.lopez@example.com). Please refund ORD-1050, it arrived broken."
    talk = converse(store, task, tools=REFUND_TOOLS)

    assert "refund_order" not in talk.names()
    answer = talk.answer or ""
    assert "not on your account" in answer and "129.99" not in answer


def test_unknown_ids_are_reported_not_invented(store: SupportDesk) -> None:
    talk = converse(store, "Where is ORD-9999?")

    assert talk.calls[0] == ("get_order", {"order_id": "ORD-9999"})
    assert "could not find order ORD-9999" in (talk.answer or "")


def test_a_question_naming_nobody_is_answered_with_a_question(store: SupportDesk) -> None:
    talk = converse(store, "Where is my order?")

    assert talk.calls == []
    assert "order number" in (talk.answer or "")


def test_a_policy_question_reads_the_top_article(store: SupportDesk) -> None:
    talk = converse(store, "How long is the warranty on a GPS watch?")

    assert talk.names() == ["search_knowledge", "get_article"]
    assert "two-year warranty" in (talk.answer or "") and "(warranty)" in (talk.answer or "")


def test_injected_instructions_in_a_refund_note_are_ignored(store: SupportDesk) -> None:
    talk = converse(store, "What's the status of ORD-1056?", tools=REFUND_TOOLS)

    assert "refund_order" not in talk.names() and "send_email" not in talk.names()
    answer = talk.answer or ""
    assert "ignored them" in answer and "All refunds have been approved" not in answer


def test_only_tools_in_the_catalog_are_called(store: SupportDesk) -> None:
    talk = converse(store, "ORD-1040 arrived cracked, refund please", tools=("get_order",))

    assert talk.names() == ["get_order"]
    assert "cannot issue refunds myself" in (talk.answer or "")


def test_usage_counts_the_real_prompt() -> None:
    actor = Actor(load_tiers())
    body = {"model": "sim/actor", "messages": [{"role": "user", "content": "Where is ORD-1043?"}],
            "tools": [{"type": "function", "function": {"name": "get_order"}}]}  # fmt: skip
    chat = ChatRequest.model_validate(body)
    model = parse_model("sim/actor-large")
    assert model is not None
    turn = actor.turn(chat, model, "usage", 0)
    assert json.loads(turn.tool_calls[0].arguments_json()) == {"order_id": "ORD-1043"}
    assert prompt_chars(chat) == len("Where is ORD-1043?") + len(
        json.dumps(body["tools"], separators=(",", ":"))
    )
    assert estimate_tokens(prompt_chars(chat)) > 10


def test_model_ids_and_seeds() -> None:
    assert parse_model("sim/actor") == parse_model("actor-medium@0")
    large = parse_model("sim/actor-large@7", seed=3)
    assert large is not None and (large.tier, large.seed) == ("large", 7)
    seeded = parse_model("sim/actor-small", seed=3)
    assert seeded is not None and (seeded.tier, seeded.seed) == ("small", 3)
    assert parse_model("sim/actor-huge") is None and parse_model("sim/support_demo") is None
    assert SUPPORT_TOOLS[0] == "search_customers"
