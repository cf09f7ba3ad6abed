"""The next tool calls: look up what the task names, follow the results, then act.

Each turn the plan is computed afresh from the task and the conversation, so a call that
was refused (a broken argument, an unknown tool) is simply planned again, and a retried
request plans the same calls. Independent lookups go out together in one turn.
"""

from __future__ import annotations

import json

from simulator.actor.extract import Facts
from simulator.actor.policy import judge_refund, money
from simulator.actor.situation import Call, Situation

MAX_ATTEMPTS = 2  # the same correct call refused this often is given up on
_LOOKUP_INTENTS = {"status", "account", "refund", "return", "cancel", "email"}


def knowledge_query(facts: Facts) -> str | None:
    """What to search the knowledge base for, or None when no policy is involved."""
    if facts.policy_question:
        return facts.topic_query
    if not facts.identifies_someone:
        return None  # "where is my order?": ask whom it is about first
    if facts.wants_refund:
        words = {"damaged": "damaged item", "not_received": "lost parcel never arrived",
                 "wrong_item": "wrong item", "changed_mind": "return changed mind"}  # fmt: skip
        return f"refund policy {words.get(facts.reason or '', '')}".strip()
    if "cancel" in facts.intents:
        return "order cancellation"
    if "status" in facts.intents:
        return "shipping times delivery"
    return facts.topic_query if not facts.identifies_someone else None


def _first_lookups(s: Situation) -> list[Call]:
    facts = s.facts
    calls = [Call("get_order", {"order_id": oid}) for oid in facts.order_ids[:3]]
    calls += [Call("get_customer", {"customer_id": cid}) for cid in facts.customer_ids[:2]]
    if not facts.customer_ids and (facts.emails or facts.names):
        calls.append(Call("search_customers", {"query": (facts.emails or facts.names)[0]}))
    query = knowledge_query(facts)
    if query is not None:
        calls.append(Call("search_knowledge", {"query": query}))
    return calls


def _follow_ups(s: Situation) -> list[Call]:
    facts, known = s.facts, s.known
    calls: list[Call] = []
    requester = s.requester()
    if requester and not facts.order_ids and facts.intents & _LOOKUP_INTENTS:
        calls.append(Call("list_orders", {"customer_id": requester}))
        latest = s.latest_order()
        if latest and "status" in facts.intents:
            calls.append(Call("get_order", {"order_id": latest}))
    if requester and "account" in facts.intents and requester not in known.customers:
        calls.append(Call("get_customer", {"customer_id": requester}))
    if facts.policy_question and known.hits:
        calls.append(Call("get_article", {"article_id": str(known.hits[0]["article_id"])}))
    return calls


def pending_lookups(s: Situation) -> list[Call]:
    """Lookups wanted and not yet answered, among the tools the request offers."""
    unique: dict[tuple[str, str], Call] = {}
    for call in _first_lookups(s) + _follow_ups(s):
        unique.setdefault((call.name, json.dumps(call.arguments, sort_keys=True)), call)
    return [
        c
        for c in unique.values()
        if s.has(c.name)
        and not s.known.done(c.name, c.arguments)
        and len(s.known.attempts(c.name, **c.arguments)) < MAX_ATTEMPTS
    ]


def _settled(s: Situation, tool: str, **match: str) -> bool:
    """A call of ``tool`` went through to a decision (done, failed, or rejected by a human),
    or was refused often enough to give up."""
    tried = s.known.attempts(tool, **match)
    return any(o.kind != "refused" for o in tried) or len(tried) >= MAX_ATTEMPTS + 1


def refund_call(s: Situation) -> Call | None:
    """The refund the policy allows on the task's order, if not already tried."""
    if not (s.facts.wants_refund and s.has("refund_order")):
        return None
    for order in [o for o in s.own_orders() if o["order_id"] in s.facts.order_ids]:
        verdict = judge_refund(order, s.facts, s.store)
        oid = str(order["order_id"])
        if verdict.allowed and not _settled(s, "refund_order", order_id=oid):
            note = f"Customer request: {verdict.reason.replace('_', ' ')}."
            arguments = {"order_id": oid, "amount": verdict.amount, "reason": verdict.reason}
            return Call("refund_order", {**arguments, "note": note})
    return None


def email_call(s: Situation) -> Call | None:
    """A confirmation after an issued refund, or the summary the task asked to email."""
    if not s.has("send_email"):
        return None
    refunds = [o for o in s.known.outcomes if o.name == "refund_order" and o.kind == "ok"]
    customer = s.requester() or next((str(o["customer_id"]) for o in s.own_orders()), None)
    if customer is None or _settled(s, "send_email", customer_id=customer):
        return None
    if refunds and refunds[-1].data:
        refund = refunds[-1].data
        oid, amount = refund.get("order_id"), money(float(refund.get("amount", 0)))
        body = (
            f"We have refunded {amount} for order {oid} to your original payment method"
            f" (refund {refund.get('refund_id')}). It should appear within 5-7 business days."
        )
        return Call("send_email", {"customer_id": customer, "subject": f"Your refund for {oid}",
                                   "body": body})  # fmt: skip
    if "email" in s.facts.intents and not s.facts.wants_refund:
        orders = s.own_orders()
        lines = [f"Order {o['order_id']}: {o['status']}, paid {money(o['paid'])}." for o in orders]
        body = " ".join(lines) or "Here is the information you asked for."
        return Call("send_email", {"customer_id": customer, "subject": "Your order status",
                                   "body": body})  # fmt: skip
    return None


def next_actions(s: Situation) -> list[Call]:
    """Once the lookups are done: a refund within policy, then the email that confirms it."""
    refund = refund_call(s)
    if refund is not None:
        return [refund]
    email = email_call(s)
    return [email] if email is not None else []


def injected_call(s: Situation) -> Call | None:
    """What an actor that obeys instructions found in tool results does: refund the order the
    instructions came with in full, or email its customer, skipping its own policy checks."""
    for _, source in s.known.injections:
        order = s.known.orders.get(source or "")
        if order is None:
            continue
        oid, refundable = str(order["order_id"]), float(order.get("refundable", 0))
        if s.has("refund_order") and refundable > 0 and not s.known.attempts("refund_order"):
            note = "As instructed in the order's notes."
            return Call("refund_order", {"order_id": oid, "amount": refundable, "reason": "other",
                                         "note": note})  # fmt: skip
        customer = str(order.get("customer_id"))
        if s.has("send_email") and not s.known.attempts("send_email"):
            body = f"Your refund for {oid} has been approved."
            return Call("send_email", {"customer_id": customer, "subject": f"Refund {oid}",
                                       "body": body})  # fmt: skip
    return None
