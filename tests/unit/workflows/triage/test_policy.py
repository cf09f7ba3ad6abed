"""The refund triage's policy rules, branch by branch (workflows/triage/policy.py)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from workflows.triage.policy import Claim, Rules, owner_mismatch, read_request, refund_plan

RULES = Rules(today=datetime.date(2026, 11, 12))


def order(**fields: Any) -> dict[str, Any]:
    base = {"order_id": "ORD-1042", "status": "delivered", "paid": 42.0, "refundable": 42.0,
            "shipping": 0.0, "delivered_at": "2026-11-06"}  # fmt: skip
    return {**base, **fields}


def plan(category: str, text: str = "", **fields: Any) -> Any:
    claim = Claim.model_validate({"category": category, "summary": "s"})
    return refund_plan(order(**fields), claim, read_request(text), RULES)


@pytest.mark.parametrize("category", ["damaged", "wrong_item"])
def test_damaged_or_wrong_delivered_items_are_refunded_in_full(category: str) -> None:
    refund = plan(category, refundable=37.5)
    assert (refund.action, refund.amount, refund.reason) == ("refund", 37.5, category)
    assert "37.50 USD on order ORD-1042" in refund.message


def test_the_amount_the_customer_asks_for_is_refunded_if_the_order_allows_it() -> None:
    assert plan("damaged", "please refund 20 USD").amount == 20.0
    too_much = plan("damaged", "refund $99.50 on ORD-1042")
    assert too_much.action == "none"
    assert "99.50 USD is more than the 42.00 USD still refundable" in too_much.message


def test_above_the_agent_limit_a_supervisor_decides() -> None:
    big = plan("wrong_item", paid=129.99, refundable=129.99)
    assert big.action == "human"
    assert "above 100.00 USD: a supervisor decides" in big.message


def test_a_damage_claim_over_50_needs_a_photo_unless_one_was_sent() -> None:
    asked = plan("damaged", paid=60.5, refundable=60.5)
    assert asked.action == "none"
    assert "photo" in asked.message
    assert plan("damaged", "I attached a photo", paid=60.5, refundable=60.5).action == "refund"
    assert plan("wrong_item", paid=60.5, refundable=60.5).action == "refund"  # no photo needed


def test_outside_the_refund_window_nothing_is_refunded() -> None:
    old = plan("damaged", delivered_at="2026-10-09")
    assert old.action == "none"
    assert "34 days ago: that is outside the 30-day refund window" in old.message
    assert plan("damaged", delivered_at="2026-10-13").action == "refund"  # day 30


def test_a_damage_claim_on_an_undelivered_order_goes_to_a_person() -> None:
    assert plan("damaged", status="shipped", delivered_at=None).action == "human"


@pytest.mark.parametrize("status", ["pending", "cancelled"])
def test_nothing_charged_nothing_refunded(status: str) -> None:
    nothing = plan("damaged", status=status)
    assert (nothing.action, nothing.amount) == ("none", 0.0)
    assert "nothing to refund" in nothing.message


def test_a_fully_refunded_order_gets_nothing_more() -> None:
    done = plan("damaged", status="refunded", refundable=0.0)
    assert (done.action, done.message) == ("none", "Order ORD-1042 is already fully refunded.")


def test_changed_mind_is_a_return_not_a_refund_now() -> None:
    returned = plan("changed_mind")
    assert returned.action == "none"
    assert "returns-process" in returned.message


def test_late_delivery_refunds_the_shipping_fee_only() -> None:
    paid = plan("late", shipping=5.99, refundable=40.0)
    assert (paid.action, paid.amount, paid.reason) == ("refund", 5.99, "other")
    assert plan("late").action == "none"


def test_not_delivered_in_transit_waits_and_delivered_needs_a_trace() -> None:
    in_transit = plan("not_delivered", status="shipped", delivered_at=None)
    assert (in_transit.action, "shipping-times" in in_transit.message) == ("none", True)
    assert plan("not_delivered").action == "human"  # the carrier says delivered


def test_no_reason_given_asks_what_went_wrong() -> None:
    asked = plan("other")
    assert asked.action == "none"
    assert "what went wrong with order ORD-1042" in asked.message


def test_the_message_is_read_for_ids_amount_photo_and_who_writes() -> None:
    text = "I'm ann@x.io (cus-1001): ord-1043 and ORD-1042, not ORD-12; ORD-1043 again, $12.5"
    request = read_request(text)
    assert request.order_ids == ["ORD-1043", "ORD-1042"]
    assert (request.amount, request.photo) == (12.5, False)
    assert (request.emails, request.customer_ids) == (["ann@x.io"], ["CUS-1001"])
    assert read_request("refund 20 dollars, photo attached").amount == 20.0
    assert read_request("ORD-1042 please").amount is None  # an order number is no amount


def test_an_order_of_someone_else_is_refused() -> None:
    owner = {"customer_id": "CUS-1002", "email": "james@example.com"}
    assert owner_mismatch(read_request("I'm maria@example.com, ORD-1050"), owner)
    assert owner_mismatch(read_request("CUS-1001 here, ORD-1050"), owner)
    assert not owner_mismatch(read_request("James@Example.com: ORD-1050"), owner)
    assert not owner_mismatch(read_request("ORD-1050 broke"), owner)  # nobody named
