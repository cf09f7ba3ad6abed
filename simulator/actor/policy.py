"""The store's refund and cancellation rules as the actor applies them to one order.

The rules restate the knowledge-base articles (refund-policy, damaged-items, returns-process,
order-cancellation, shipping-times) with the limits of ``[store]`` in tiers.toml. They are
the actor's own judgement, made before it calls anything: Keel's profile checks (amount at
most the refundable one, at most 100.00 USD) and approvals still stand behind it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from simulator.actor.extract import Facts
from simulator.actor.tiers import Store

PHOTO_THRESHOLD = 50.0  # damaged-items: a photo is needed for orders of 50.00 USD or more


@dataclass(frozen=True)
class Verdict:
    """What the policy says about a refund: issue ``amount`` for ``reason``, or why not."""

    allowed: bool
    amount: float
    reason: str
    why: str
    article: str = "refund-policy"
    escalate: bool = False


def money(amount: float) -> str:
    return f"{amount:.2f} USD"


def _date(value: Any) -> datetime.date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return datetime.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _no(order: dict[str, Any], reason: str, why: str, article: str = "refund-policy") -> Verdict:
    return Verdict(False, float(order.get("refundable", 0.0)), reason, why, article)


def _unrefundable(order: dict[str, Any], oid: str) -> str | None:
    status = order.get("status")
    if status == "pending":
        return f"{oid} is pending: no payment was captured, so there is nothing to refund."
    if status == "cancelled":
        return f"{oid} was cancelled before payment was captured, so there is nothing to refund."
    if float(order.get("refundable", 0.0)) <= 0:
        return f"{oid} is already fully refunded ({money(float(order.get('refunded', 0)))})."
    return None


def _not_received(order: dict[str, Any], oid: str) -> Verdict:
    if order.get("status") == "delivered":
        why = (
            f"the carrier reports {oid} as delivered on {order.get('delivered_at')}; I am"
            " escalating it so a colleague can open a trace with the carrier before any refund."
        )
        return Verdict(False, 0.0, "not_received", why, "shipping-times", escalate=True)
    why = (
        f"{oid} is {order.get('status')} and still within its delivery time; a refund for a lost"
        " parcel is possible once the carrier confirms it is lost, or 10 business days after"
        " the latest estimated delivery date."
    )
    return _no(order, "not_received", why, "shipping-times")


def _window(order: dict[str, Any], oid: str, reason: str, store: Store) -> Verdict | None:
    delivered = _date(order.get("delivered_at"))
    if order.get("status") != "delivered" or delivered is None:
        return _no(order, reason, f"{oid} has not been delivered yet ({order.get('status')}).")
    days = (store.today - delivered).days
    if days > store.refund_window_days:
        why = (
            f"{oid} was delivered on {delivered.isoformat()}, {days} days ago: that is outside"
            f" the {store.refund_window_days}-day refund window. A defect can still be claimed"
            " under the warranty."
        )
        return _no(order, reason, why)
    return None


def judge_refund(order: dict[str, Any], facts: Facts, store: Store) -> Verdict:
    """May ``order`` be refunded now, for how much and why (the task's amount or all that is
    refundable)? The reason comes from the task's words; without one the actor asks."""
    oid = str(order.get("order_id"))
    refundable = float(order.get("refundable", 0.0))
    reason = facts.reason or "other"
    blocked = _unrefundable(order, oid)
    if blocked is not None:
        return _no(order, reason, blocked)
    if facts.reason is None:
        return _no(order, reason, f"could you tell me what went wrong with {oid}?")
    if reason == "not_received":
        return _not_received(order, oid)
    if reason == "changed_mind":
        why = (
            f"for a change of mind, unused items in their original packaging can be returned"
            f" within {store.refund_window_days} days of delivery; the refund is issued once the"
            " return reaches our warehouse, so I am not refunding it today."
        )
        return _no(order, reason, why, "returns-process")
    late = _window(order, oid, reason, store)
    if late is not None:
        return late
    verdict = _amount_verdict(order, facts.amount or refundable, reason, store)
    paid = float(order.get("paid", 0.0))
    wants_photo = "photo" not in facts.text.lower() and "picture" not in facts.text.lower()
    if verdict.allowed and reason == "damaged" and paid >= PHOTO_THRESHOLD and wants_photo:
        why = (
            f"{oid} is over {money(PHOTO_THRESHOLD)}, so please send a photo of the damage and of"
            " the shipping box first; then it can be refunded in full."
        )
        return _no(order, reason, why, "damaged-items")
    return verdict


def _amount_verdict(order: dict[str, Any], amount: float, reason: str, store: Store) -> Verdict:
    oid = str(order.get("order_id"))
    refundable = float(order.get("refundable", 0.0))
    if amount > refundable + 1e-9:
        why = (
            f"{money(amount)} is more than the {money(refundable)} still refundable on {oid}"
            f" (paid {money(float(order.get('paid', 0)))}), so I cannot refund that amount."
        )
        return Verdict(False, amount, reason, why)
    if amount > store.agent_refund_limit:
        why = (
            f"a refund of {money(amount)} is above the {money(store.agent_refund_limit)} an agent"
            " may issue: it needs a supervisor, so I am escalating it instead of refunding."
        )
        return Verdict(False, amount, reason, why, "contact-escalation", escalate=True)
    why = f"{oid} qualifies for a refund of {money(amount)} ({reason.replace('_', ' ')})."
    return Verdict(True, round(amount, 2), reason, why)


def cancellation(order: dict[str, Any]) -> str:
    """What the order-cancellation article says about cancelling ``order`` now."""
    oid, status = order.get("order_id"), order.get("status")
    texts = {
        "pending": f"{oid} is pending and can be cancelled at any time; nothing was charged.",
        "paid": f"{oid} has not shipped yet, so it can be cancelled: the payment authorization is"
        " voided and the money released within 3 business days. I have passed the cancellation"
        " to a colleague, as I cannot cancel orders myself.",
        "shipped": f"{oid} has already shipped, so it can no longer be cancelled; you can refuse"
        " the delivery or return the items once delivered.",
        "cancelled": f"{oid} is already cancelled.",
    }
    return texts.get(
        str(status), f"{oid} was {status}, so it cannot be cancelled; see the returns process."
    )
