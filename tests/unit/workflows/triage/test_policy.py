"""The refund triage's policy rules, branch by branch (workflows/triage/policy.py)."""

from __future__ import annotations

from typing import Any

import pytest

from workflows.triage.policy import Claim, order_ids, refund_plan


def order(**fields: Any) -> dict[str, Any]:
    base = {"order_id": "ORD-1042", "status": "delivered", "refundable": 42.0, "shipping": 0.0}
    return {**base, **fields}


def claim(category: str) -> Claim:
    return Claim.model_validate({"category": category, "summary": "s"})


@pytest.mark.parametrize("category", ["damaged", "wrong_item"])
def test_damaged_or_wrong_delivered_items_are_refunded_in_full(category: str) -> None:
    plan = refund_plan(order(refundable=37.5), claim(category))
    assert (plan.action, plan.amount, plan.reason) == ("refund", 37.5, category)
    assert "37.50 USD on order ORD-1042" in plan.message


def test_a_damage_claim_on_an_undelivered_order_goes_to_a_person() -> None:
    assert refund_plan(order(status="shipped"), claim("damaged")).action == "human"


@pytest.mark.parametrize("status", ["pending", "cancelled"])
def test_nothing_charged_nothing_refunded(status: str) -> None:
    plan = refund_plan(order(status=status), claim("damaged"))
    assert (plan.action, plan.amount) == ("none", 0.0)
    assert status in plan.message


def test_a_fully_refunded_order_gets_nothing_more() -> None:
    plan = refund_plan(order(status="refunded", refundable=0.0), claim("damaged"))
    assert plan.action == "none"
    assert "already been refunded" in plan.message


def test_changed_mind_is_a_return_not_a_refund_now() -> None:
    plan = refund_plan(order(), claim("changed_mind"))
    assert plan.action == "none"
    assert "returns-process" in plan.message


def test_late_delivery_refunds_the_shipping_fee_only() -> None:
    paid_shipping = refund_plan(order(shipping=5.99, refundable=40.0), claim("late"))
    assert (paid_shipping.action, paid_shipping.amount, paid_shipping.reason) == (
        "refund", 5.99, "other"
    )  # fmt: skip
    free = refund_plan(order(shipping=0.0), claim("late"))
    assert free.action == "none"


@pytest.mark.parametrize("category", ["not_delivered", "other"])
def test_what_the_rules_cannot_settle_goes_to_a_person(category: str) -> None:
    assert refund_plan(order(), claim(category)).action == "human"


def test_order_ids_are_found_once_each_in_order() -> None:
    text = "ord-1043 and ORD-1042, not ORD-12; again ORD-1043"
    assert order_ids(text) == ["ORD-1043", "ORD-1042"]
    assert order_ids("no order here") == []
