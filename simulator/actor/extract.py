"""What a task asks: the ids, emails, names and amounts it names, and its intents.

Keyword rules over the task text, the way a reader skims a support message. Intents are not
exclusive: "ORD-1042 arrived broken, refund it and email me" is a refund and an email request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ORDER_ID = re.compile(r"\bORD-\d{4}\b", re.IGNORECASE)
CUSTOMER_ID = re.compile(r"\bCUS-\d{4}\b", re.IGNORECASE)
TICKET_ID = re.compile(r"\bTCK-\d{4}\b", re.IGNORECASE)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_NAME = re.compile(
    r"\b(?:I'm|I am|my name is|this is|customer|for|from)\s+"
    r"([A-Z][a-z]+(?:\s+(?:O'|Mc)?[A-Z][a-z'\u2019]+)+)"
)
_AMOUNT = re.compile(
    r"(?:\$|USD\s?)(\d{1,6}(?:\.\d{1,2})?)|(\d{1,6}(?:\.\d{1,2})?)\s?(?:USD|usd|dollars|\$)"
)

# Why an order is refunded, in refund_order's reasons; first match wins.
REASON_WORDS: dict[str, tuple[str, ...]] = {
    "not_received": ("never arrived", "never came", "not arrived", "didn't arrive",
                     "did not arrive", "not received", "lost", "missing", "never got",
                     "hasn't arrived", "has not arrived", "not delivered", "never delivered"),
    "wrong_item": ("wrong item", "wrong size", "wrong colour", "wrong color", "different item",
                   "instead of", "not what i ordered", "wrong product", "wrong model"),
    "damaged": ("damaged", "broken", "broke", "torn", "ripped", "cracked", "defective", "dented",
                "coming apart", "doesn't work", "does not work", "dead on arrival", "faulty",
                "leaks", "leaking", "scratched", "smashed"),
    "changed_mind": ("changed my mind", "change of mind", "don't want", "do not want",
                     "no longer need", "don't need", "do not need", "no longer want"),
}  # fmt: skip

_INTENT_WORDS: dict[str, tuple[str, ...]] = {
    "refund": ("refund", "money back", "reimburse", "pay me back", "compensat", "chargeback"),
    "return": ("return it", "send it back", "return the", "return my", "returning"),
    "status": ("where is", "where's", "status", "when will", "when does", "track", "eta",
               "delivery date", "shipped yet", "has it shipped", "been delivered", "arriving",
               "not here yet", "what happened to"),
    "cancel": ("cancel",),
    "email": ("email me", "e-mail me", "send me an email", "send an email", "email the customer",
              "confirm by email", "by email", "send me a confirmation", "email confirmation",
              "email them", "email her", "email him", "write to"),
    "account": ("my orders", "my account", "which orders", "what orders", "all orders",
                "orders does", "orders of", "order history", "loyalty tier", "my tier",
                "lifetime", "open tickets", "orders for", "ordered", "tier is", "what tier"),
}  # fmt: skip

# Knowledge-base topics: words in the task → the query the actor searches with.
# The first topic whose words occur wins, so the specific ones come first.
TOPICS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("warranty", "guarantee", "defect"), "warranty defects claims"),
    (("damaged", "broken", "torn", "cracked"), "damaged items report"),
    (("cancel",), "order cancellation"),
    (("loyalty", "tier", "gold", "platinum", "silver"), "loyalty tiers benefits"),
    (("escalat", "supervisor", "contact", "phone", "support hours"), "contact escalation"),
    (("refund", "money back"), "refund policy"),
    (("return", "send back", "send it back", "exchange"), "returns process window days"),
    (("shipping", "delivery time", "express", "ship"), "shipping times delivery"),
)  # fmt: skip


@dataclass
class Facts:
    """The task as the actor read it."""

    text: str
    order_ids: list[str] = field(default_factory=list)
    customer_ids: list[str] = field(default_factory=list)
    ticket_ids: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    amount: float | None = None
    reason: str | None = None
    intents: set[str] = field(default_factory=set)
    topic_query: str | None = None

    @property
    def identifies_someone(self) -> bool:
        return bool(self.order_ids or self.customer_ids or self.emails or self.names)

    @property
    def wants_refund(self) -> bool:
        return "refund" in self.intents or "return" in self.intents

    @property
    def policy_question(self) -> bool:
        """A general question about the policy, about nobody's order in particular ("I want a
        refund." is a request that needs an order, not a question)."""
        request = self.wants_refund and "?" not in self.text
        return self.topic_query is not None and not self.identifies_someone and not request


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _reason(lowered: str) -> str | None:
    for reason, words in REASON_WORDS.items():
        if any(word in lowered for word in words):
            return reason
    return None


def _amount(text: str) -> float | None:
    match = _AMOUNT.search(text)
    if match is None:
        return None
    return float(match.group(1) or match.group(2))


def _topic(lowered: str) -> str | None:
    return next((query for words, query in TOPICS if any(w in lowered for w in words)), None)


def read_task(text: str) -> Facts:
    """The ids, contacts, amount, refund reason, intents and knowledge topic of ``text``."""
    lowered = text.lower()
    facts = Facts(
        text=text,
        order_ids=_unique([m.upper() for m in ORDER_ID.findall(text)]),
        customer_ids=_unique([m.upper() for m in CUSTOMER_ID.findall(text)]),
        ticket_ids=_unique([m.upper() for m in TICKET_ID.findall(text)]),
        emails=_unique([m.lower() for m in EMAIL.findall(text)]),
        names=_unique(_NAME.findall(text)),
        amount=_amount(text),
        reason=_reason(lowered),
        topic_query=_topic(lowered),
    )
    facts.intents = {i for i, words in _INTENT_WORDS.items() if any(w in lowered for w in words)}
    if facts.reason and facts.order_ids and "status" not in facts.intents:
        facts.intents.add("refund")  # "ORD-1042 arrived broken": a complaint asks for a remedy
    if facts.order_ids and not facts.intents:
        facts.intents.add("status")
    return facts
