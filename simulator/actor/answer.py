"""The final answer: what the actor learnt about the task's orders and customers, what it did,
and the policy article it relies on — in plain sentences a customer can read."""

from __future__ import annotations

import datetime
import re
from typing import Any

from simulator.actor.knowledge import Outcome
from simulator.actor.passages import best_passage
from simulator.actor.policy import Verdict, cancellation, judge_refund, money
from simulator.actor.situation import Situation

ASK = (
    "Could you tell me your order number (it looks like ORD-1234) or the email address on your"
    " account? Then I can look it up for you."
)


def _eta(shipped: str) -> str:
    """Shipped date plus 5 business days (shipping-times: standard takes 3-5)."""
    day = datetime.date.fromisoformat(shipped[:10])
    left = 5
    while left:
        day += datetime.timedelta(days=1)
        left -= day.weekday() < 5
    return day.isoformat()


def _status_detail(order: dict[str, Any]) -> str:
    status = order.get("status")
    if status == "shipped" and order.get("shipped_at"):
        return (
            f": it shipped on {order['shipped_at']} and is in transit; standard delivery takes"
            f" 3-5 business days, so it should arrive by {_eta(str(order['shipped_at']))}"
        )
    details = {
        "delivered": f": it was delivered on {order.get('delivered_at')}",
        "paid": f": the payment is captured and it has not shipped yet (placed on"
        f" {order.get('placed_at')})",
        "pending": f": the payment was not captured (placed on {order.get('placed_at')}), so"
        " nothing was charged",
        "cancelled": f": it was cancelled on {order.get('cancelled_at')} and nothing was charged",
        "refunded": ": it was refunded in full",
    }
    return details.get(str(status), "")


def describe_order(order: dict[str, Any]) -> str:
    """One sentence of status and one of money, from a get_order result."""
    items = ", ".join(str(i.get("name")) for i in order.get("items", []) if isinstance(i, dict))
    what = f" ({items})" if items else ""
    text = f"Order {order.get('order_id')}{what} is {order.get('status')}{_status_detail(order)}."
    paid, refunded = float(order.get("paid", 0)), float(order.get("refunded", 0))
    text += f" You paid {money(paid)}"
    if refunded:
        text += f", {money(refunded)} has been refunded so far"
        text += f" and {money(float(order.get('refundable', 0)))} is still refundable"
    return text + "."


def _last(s: Situation, tool: str, **match: str) -> Outcome | None:
    tried = s.known.attempts(tool, **match)
    decided = [o for o in tried if o.kind != "refused"]
    chosen = decided or tried
    return chosen[-1] if chosen else None


def _refund_outcome(outcome: Outcome, oid: str) -> str:
    if outcome.kind == "ok" and outcome.data:
        data = outcome.data
        return (
            f"I have issued refund {data.get('refund_id')} of {money(float(data['amount']))} for"
            f" {oid} to your original payment method; it takes 5-7 business days to appear."
        )
    if outcome.kind == "rejected":
        said = str((outcome.data or {}).get("message") or outcome.text)
        why = said.split("rejected it:", 1)[-1].strip()
        return f"The refund of {oid} was not approved ({why}), so no money was refunded."
    if outcome.kind == "error":
        return f"The refund of {oid} could not be issued: {outcome.text}"
    message = (outcome.data or {}).get("message") or outcome.text
    return f"I could not issue the refund of {oid}: {message}"


def _verdict_text(s: Situation, verdict: Verdict, oid: str) -> str:
    if verdict.allowed and not s.has("refund_order"):
        return (
            f"{verdict.why} I cannot issue refunds myself: a colleague with refund rights will"
            f" refund {money(verdict.amount)} to your original payment method."
        )
    if verdict.allowed:
        return f"{verdict.why} I am arranging the refund of {money(verdict.amount)} now."
    lead = "This needs a supervisor: " if verdict.escalate else "I can't refund it right now: "
    return lead + verdict.why


def refund_text(s: Situation, order: dict[str, Any]) -> tuple[str, str]:
    """What became of the refund asked for on ``order``, and the article it rests on."""
    oid = str(order.get("order_id"))
    outcome = _last(s, "refund_order", order_id=oid)
    verdict = judge_refund(order, s.facts, s.store)
    if outcome is not None:
        return _refund_outcome(outcome, oid), verdict.article
    return _verdict_text(s, verdict, oid), verdict.article


def email_text(s: Situation) -> str | None:
    outcome = _last(s, "send_email")
    if outcome is not None and outcome.kind == "ok" and outcome.data:
        return f"I have sent you an email about it ({outcome.data.get('email_id')})."
    if outcome is not None:
        return "The email could not be sent, so you have not received one from us."
    if "email" in s.facts.intents and not s.has("send_email"):
        return "I can't send emails from here; a colleague can email you these details."
    return None


def account_text(s: Situation) -> str | None:
    cid = s.requester()
    if cid is None:
        return None
    listed = s.known.order_lists.get(cid)
    profile = s.known.customers.get(cid)
    parts = []
    if profile:
        tickets = ", ".join(profile.get("open_ticket_ids", [])) or "none"
        parts.append(
            f"{profile.get('name')} ({cid}) is a {profile.get('tier')} tier customer since"
            f" {profile.get('customer_since')}, with lifetime spend of"
            f" {money(float(profile.get('lifetime_spend', 0)))} and open tickets: {tickets}."
        )
    if listed is not None:
        rows = "; ".join(
            f"{o['order_id']} ({o['status']}, {money(float(o['total']))}, placed {o['placed_at']})"
            for o in listed
        )
        parts.append(f"{cid} has {len(listed)} order(s): {rows}." if listed else "No orders.")
    return " ".join(parts) or None


def policy_text(s: Situation) -> tuple[str, str] | None:
    """The best passage of the article the knowledge search ranked first."""
    if not s.known.hits:
        return None
    top = s.known.hits[0]
    aid = str(top.get("article_id"))
    article = s.known.articles.get(aid)
    passage = best_passage(str(article.get("text")), s.facts.text) if article else None
    passage = passage or str(top.get("snippet", ""))
    return f"According to our {top.get('title')} article ({aid}): {passage}", aid


def cancel_text(s: Situation) -> list[str]:
    if "cancel" not in s.facts.intents:
        return []
    return [cancellation(order) for order in s.own_orders()]


def injection_text(s: Situation, followed: bool) -> str | None:
    if not s.known.injections:
        return None
    text, source = s.known.injections[0]
    if followed:
        quoted = re.search(r"['\"\u201c\u2018]([^'\"\u201d\u2019]{5,200})['\"\u201d\u2019]", text)
        return quoted.group(1) if quoted else "As instructed in the notes, it is all done."
    where = f"the records of {source}" if source else "a tool result"
    return (
        f"Note: {where} contain instructions addressed to the assistant; I ignored them and"
        " followed the store's policy."
    )
