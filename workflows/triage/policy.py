"""The refund triage's deterministic part: the claim's categories, and the store's refund
policy (mcp_servers/knowledge/articles/refund-policy.md, damaged-items.md) as rules.

Pure functions of the order (``get_order``'s result) and the classified claim: no I/O, no
clock, so the workflow replays them and a unit test pins every branch. The policy's time
windows (30 days from delivery, 14 days to report damage) are not checked: the demo store's
dates are fixed while the clock is not, so a window would make the same request pass today and
fail next month. A store with live data adds the check here, against the order's
``delivered_at`` and the workflow's clock (``workflow.now()``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

Category = Literal["damaged", "not_delivered", "wrong_item", "changed_mind", "late", "other"]

ORDER_ID = re.compile(r"\bORD-\d{4,}\b", re.IGNORECASE)


class Claim(BaseModel):
    """What the customer claims, as the decision node classifies it."""

    category: Category = Field(
        description="damaged: arrived broken, torn or defective; not_delivered: never arrived"
        " or lost; wrong_item: a different item, size or colour than ordered; changed_mind:"
        " the customer no longer wants it; late: arrived later than promised; other: anything"
        " else, or unclear"
    )
    summary: str = Field(
        min_length=1, max_length=300, description="the claim in one sentence, for the ticket"
    )


@dataclass(frozen=True)
class Plan:
    """What the policy allows: refund ``amount`` for ``reason``, or nothing (and why), or a
    person must look (``human``)."""

    action: Literal["refund", "none", "human"]
    message: str
    amount: float = 0.0
    reason: str = "other"


def order_ids(text: str) -> list[str]:
    """The order ids a message names, upper-cased, in order, without repeats."""
    seen: list[str] = []
    for match in ORDER_ID.findall(text):
        if match.upper() not in seen:
            seen.append(match.upper())
    return seen


def refund_plan(order: dict[str, Any], claim: Claim) -> Plan:
    """The refund policy applied to ``order`` for ``claim``."""
    order_id, status = order.get("order_id", "?"), order.get("status", "")
    refundable = float(order.get("refundable") or 0.0)
    if status in ("pending", "cancelled"):
        return Plan(
            "none",
            f"Order {order_id} is {status}: nothing was charged, so there is nothing to refund.",
        )
    if refundable <= 0:
        return Plan("none", f"Order {order_id} has already been refunded in full.")
    if claim.category in ("damaged", "wrong_item"):
        if status != "delivered":
            return Plan(
                "human",
                f"Order {order_id} is {status}, not delivered yet, but the"
                f" claim says it arrived {claim.category.replace('_', ' ')}.",
            )
        reason = claim.category
        return Plan(
            "refund",
            f"A full refund of {refundable:.2f} USD on order {order_id}"
            f" ({reason.replace('_', ' ')}, refund-policy).",
            refundable,
            reason,
        )
    if claim.category == "changed_mind":
        return Plan(
            "none",
            f"Unused items of order {order_id} can be returned within 30 days"
            " of delivery in their original packaging; the refund is issued once the"
            " return arrives (returns-process).",
        )
    if claim.category == "late":
        shipping = float(order.get("shipping") or 0.0)
        if shipping > 0:
            amount = min(shipping, refundable)
            return Plan(
                "refund",
                f"A refund of the {amount:.2f} USD shipping on order"
                f" {order_id} for the late delivery.",
                amount,
                "other",
            )
        return Plan(
            "none",
            f"Order {order_id} shipped free of charge, so there is no shipping"
            " fee to refund for the delay (shipping-times).",
        )
    if claim.category == "not_delivered":
        return Plan(
            "human",
            f"Order {order_id} needs a carrier trace before a refund"
            " (refund-policy: items that never arrived).",
        )
    return Plan("human", f"The request about order {order_id} does not fit a refund rule.")
