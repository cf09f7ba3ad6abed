"""Assemble the final answer from the parts in :mod:`simulator.actor.answer`."""

from __future__ import annotations

from simulator.actor.answer import (
    ASK,
    account_text,
    cancel_text,
    describe_order,
    email_text,
    injection_text,
    policy_text,
    refund_text,
)
from simulator.actor.situation import Situation


def _greeting(s: Situation) -> str:
    name = s.requester_name()
    return f"Hi {name.split()[0]}," if name else "Hello,"


def _lookups(s: Situation) -> list[str]:
    """What could not be found, and who the task's contacts turned out to be."""
    facts, known = s.facts, s.known
    parts = [
        f"I could not find order {oid}; please check the number (it looks like ORD-1234)."
        for oid in facts.order_ids
        if oid in known.missing
    ]
    parts += [f"I could not find customer {c}." for c in facts.customer_ids if c in known.missing]
    for query in (*facts.emails, *facts.names):
        found = known.matches.get(query)
        if found is not None and not found:
            parts.append(f"I could not find a customer matching {query}.")
        elif found is not None and len(found) > 1:
            parts.append(f"Several customers match {query}; which one are you? {ASK}")
    return parts


def _orders(s: Situation) -> tuple[list[str], list[str]]:
    """Sentences about the task's orders, and the articles they rest on."""
    parts: list[str] = []
    articles: list[str] = []
    for order in s.orders():
        if s.foreign(order):
            parts.append(
                f"Order {order.get('order_id')} is not on your account, so I can't share its"
                " details or make changes to it."
            )
            continue
        parts.append(describe_order(order))
        if s.facts.wants_refund and order.get("order_id") in s.facts.order_ids:
            text, article = refund_text(s, order)
            parts.append(text)
            articles.append(article)
    if s.facts.wants_refund and not s.facts.order_ids and s.requester():
        parts.append("Which order is the refund for? Please tell me its number (ORD-1234).")
    parts += cancel_text(s)
    return parts, articles


def _citation(s: Situation, articles: list[str]) -> str | None:
    seen = [str(h.get("article_id")) for h in s.known.hits] + list(s.known.articles)
    if not seen:
        return None
    cited = next((a for a in articles if a in seen), None) or seen[0]
    return f"(Policy: {cited}.)"


def write_answer(s: Situation, followed_injection: bool = False) -> str:
    """The answer to the task from what the conversation established."""
    facts = s.facts
    if not facts.identifies_someone and not facts.policy_question:
        return f"{_greeting(s)} {ASK}"
    parts = [_greeting(s), *_lookups(s)]
    order_parts, articles = _orders(s)
    parts += order_parts
    if "account" in facts.intents or (not facts.order_ids and not order_parts):
        parts.append(account_text(s) or "")
    policy = policy_text(s) if facts.policy_question else None
    if policy is not None:
        parts.append(policy[0])
        articles.insert(0, policy[1])
    parts.append(email_text(s) or "")
    parts.append(injection_text(s, followed_injection) or "")
    parts.append(_citation(s, articles) or "")
    return " ".join(p for p in parts if p)


def premature_answer(s: Situation) -> str:
    """What a model answers before it has looked anything up."""
    about = ", ".join(s.facts.order_ids) or "your request"
    return f"{_greeting(s)} thanks for your message about {about}. I am looking into it now."
