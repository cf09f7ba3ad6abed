"""The refund triage's deterministic part: the claim's categories, what the message asks for,
and the store's refund policy as rules (mcp_servers/knowledge/articles: refund-policy,
damaged-items, returns-process, shipping-times).

Pure functions of the order (``get_order``'s result), the customer, the message and the
classified claim: no I/O and no clock of their own (``Rules.today`` is given), so the workflow
replays them and a unit test pins every branch.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

Category = Literal["damaged", "not_delivered", "wrong_item", "changed_mind", "late", "other"]

ORDER_ID = re.compile(r"\bORD-\d{4,}\b", re.IGNORECASE)
CUSTOMER_ID = re.compile(r"\bCUS-\d{4,}\b", re.IGNORECASE)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
AMOUNT = re.compile(
    r"(?:\$\s*(\d+(?:\.\d{1,2})?))|(?:\b(\d+(?:\.\d{1,2})?)\s*(?:USD|dollars?|\$))", re.I
)
PHOTO = re.compile(r"\b(photo|picture|pic|image)s?\b", re.IGNORECASE)


class Claim(BaseModel):
    """What the customer claims, as the decision node classifies it."""

    category: Category = Field(
        description="damaged: arrived broken, torn or defective; not_delivered: never arrived"
        " or lost; wrong_item: a different item, size or colour than ordered; changed_mind:"
        " the customer no longer wants it; late: arrived later than promised; other: anything"
        " else, or no reason given"
    )
    summary: str = Field(
        min_length=1, max_length=300, description="the claim in one sentence, for the ticket"
    )


@dataclass(frozen=True)
class Rules:
    """The policy's numbers (profile ``[parameters]``) and the day it is applied on."""

    today: datetime.date
    window_days: int = 30  # refund-policy: damaged or wrong items within 30 days of delivery
    agent_limit: float = 100.0  # refund-policy: above this a supervisor decides
    photo_from: float = 50.0  # damaged-items: a photo for orders of 50.00 USD or more


@dataclass(frozen=True)
class Request:
    """What the message itself says, read deterministically."""

    order_ids: list[str]
    amount: float | None  # an amount the customer asks for, if they name one
    photo: bool  # the customer says they sent a photo
    emails: list[str]
    customer_ids: list[str]


@dataclass(frozen=True)
class Plan:
    """What the policy allows: refund ``amount`` for ``reason``; nothing (and why); or a person
    must decide (``human``)."""

    action: Literal["refund", "none", "human"]
    message: str
    amount: float = 0.0
    reason: str = "other"


def _unique(found: list[str]) -> list[str]:
    seen: list[str] = []
    for item in found:
        if item not in seen:
            seen.append(item)
    return seen


def read_request(text: str) -> Request:
    """The order ids (upper-cased, in order, once each), the amount asked for, whether a
    photo was sent, and the emails and customer ids the message names."""
    amounts = [float(a or b) for a, b in AMOUNT.findall(ORDER_ID.sub(" ", text))]
    return Request(
        order_ids=_unique([m.upper() for m in ORDER_ID.findall(text)]),
        amount=amounts[0] if amounts else None,
        photo=PHOTO.search(text) is not None,
        emails=_unique([m.lower() for m in EMAIL.findall(text)]),
        customer_ids=_unique([m.upper() for m in CUSTOMER_ID.findall(text)]),
    )


def owner_mismatch(request: Request, customer: dict[str, Any]) -> bool:
    """The message names a customer (by email or id) who does not own the order."""
    email = str(customer.get("email", "")).lower()
    cid = str(customer.get("customer_id", "")).upper()
    return any(e != email for e in request.emails) or any(c != cid for c in request.customer_ids)


def money(amount: float) -> str:
    return f"{amount:.2f} USD"


def _date(value: Any) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def refund_plan(order: dict[str, Any], claim: Claim, request: Request, rules: Rules) -> Plan:
    """The refund policy applied to ``order`` for ``claim``."""
    oid, status = order.get("order_id", "?"), order.get("status", "")
    if status in ("pending", "cancelled"):
        return Plan(
            "none", f"Order {oid} is {status}: nothing was charged, so there is nothing to refund."
        )
    if float(order.get("refundable") or 0.0) <= 0:
        return Plan("none", f"Order {oid} is already fully refunded.")
    if claim.category == "other":
        return Plan(
            "none",
            f"Could you tell me what went wrong with order {oid}? Then I can"
            " check what the refund policy allows.",
        )
    if claim.category == "not_delivered":
        return _not_delivered(order)
    if claim.category == "changed_mind":
        return Plan(
            "none",
            f"Unused items of order {oid} can be returned within"
            f" {rules.window_days} days of delivery in their original packaging; the"
            " refund is issued once the return arrives (returns-process).",
        )
    if claim.category == "late":
        return _late(order)
    return _damaged_or_wrong(order, claim, request, rules)


def _not_delivered(order: dict[str, Any]) -> Plan:
    oid = order.get("order_id", "?")
    if order.get("status") == "delivered":
        return Plan(
            "human",
            f"The carrier reports order {oid} as delivered: a colleague will"
            " open a trace with the carrier before any refund (shipping-times).",
        )
    return Plan(
        "none",
        f"Order {oid} is {order.get('status')} and still within its delivery"
        " time (shipping-times). If the carrier confirms it lost, or it has not arrived"
        " 10 business days after the latest estimated date, it is refunded in full"
        " (refund-policy).",
    )


def _late(order: dict[str, Any]) -> Plan:
    oid = order.get("order_id", "?")
    shipping = float(order.get("shipping") or 0.0)
    if shipping <= 0:
        return Plan(
            "none",
            f"Order {oid} shipped free of charge, so there is no shipping fee"
            " to refund for the delay (shipping-times).",
        )
    amount = min(shipping, float(order.get("refundable") or 0.0))
    return Plan(
        "refund",
        f"A refund of the {money(amount)} shipping on order {oid} for the late delivery.",
        amount,
        "other",
    )


def _damaged_or_wrong(order: dict[str, Any], claim: Claim, request: Request, rules: Rules) -> Plan:
    oid, refundable = order.get("order_id", "?"), float(order.get("refundable") or 0.0)
    delivered = _date(order.get("delivered_at"))
    if order.get("status") != "delivered" or delivered is None:
        return Plan(
            "human",
            f"Order {oid} is {order.get('status')}, not delivered yet, but the"
            " claim says it arrived: a colleague will look into it.",
        )
    days = (rules.today - delivered).days
    if days > rules.window_days:
        return Plan(
            "none",
            f"Order {oid} was delivered on {delivered.isoformat()}, {days} days"
            f" ago: that is outside the {rules.window_days}-day refund window. A defect"
            " can still be claimed under the warranty.",
        )
    amount = request.amount if request.amount is not None else refundable
    if amount > refundable + 1e-9:
        return Plan(
            "none",
            f"{money(amount)} is more than the {money(refundable)} still"
            f" refundable on order {oid}, so I cannot refund that amount.",
        )
    if amount > rules.agent_limit:
        return Plan(
            "human",
            f"A refund of {money(amount)} on order {oid} is above"
            f" {money(rules.agent_limit)}: a supervisor decides it.",
        )
    paid = float(order.get("paid") or 0.0)
    if claim.category == "damaged" and paid >= rules.photo_from and not request.photo:
        return Plan(
            "none",
            f"Order {oid} is over {money(rules.photo_from)}: please send a photo"
            " of the damage and of the shipping box, then it can be refunded"
            " (damaged-items).",
        )
    reason = claim.category
    return Plan(
        "refund",
        f"A refund of {money(amount)} on order {oid} ({reason.replace('_', ' ')}, refund-policy).",
        round(amount, 2),
        reason,
    )
