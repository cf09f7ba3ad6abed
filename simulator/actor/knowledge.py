"""What the conversation so far has taught the actor: its own calls and what came back.

Tool messages carry the JSON text of the MCP result view (maybe cut), a server's error text,
or Keel's refusal of the call: ``{"error": "invalid_tool_call", ...}`` from a check,
``{"error": "rejected_by_human" | "approval_timeout", "message": "<tool> was not called: ..."}``
when a human turned it down or nobody decided, another ``{"error", "message"}`` from a limit,
or plain "<tool> was not called: ..." text. Each call is paired with its
answer by ``tool_call_id``, then sorted into records by tool.

With a Keel context budget, an old result may be a stub: JSON that keeps the result's ids and
key fields (and a ``trimmed`` note), read like the result itself, so what the actor learns of
it is only what the stub kept (a list of orders keeps its first items' ids and status, an
article its id and title). Turns replaced by a summary are read back from the summary's
``sim-call`` lines (simulator/summary.py), with the results as the summary request showed
them (stubs, mostly).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from simulator.summary import summary_calls
from simulator.wire import ChatRequest, text_of

Kind = Literal["ok", "error", "refused", "rejected"]
INJECTION = re.compile(
    r"ignore (?:all |any )?(?:the )?(?:previous|prior|above|earlier) instructions|system override"
    r"|you are now|admin mode|new instructions:|disregard (?:the|your) (?:policy|rules)"
    r"|without (?:asking for )?approval|do not tell",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Outcome:
    """One tool call of the conversation and what it got back."""

    name: str
    arguments: dict[str, Any]
    kind: Kind
    data: dict[str, Any] | None
    text: str


def _classify(name: str, text: str) -> tuple[Kind, dict[str, Any] | None]:
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if error in ("rejected_by_human", "approval_timeout"):
            return "rejected", data  # Keel's refusal of a call a human turned down (or nobody)
        if error == "invalid_tool_call" or (isinstance(error, str) and "message" in data):
            return "refused", data  # a check's or a limit's refusal: the call never ran
        return "ok", data
    if f"{name} was not called" in text:
        return ("rejected" if "rejected" in text else "refused"), None
    return "error", None


def _arguments(call: dict[str, Any]) -> dict[str, Any]:
    raw = call.get("function", {}).get("arguments")
    if isinstance(raw, dict):
        return raw
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


@dataclass
class Knowledge:
    """Everything learnt so far, by tool; ``turns`` keeps the calls of each assistant turn."""

    turns: list[list[Outcome]] = field(default_factory=list)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    matches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    order_lists: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    hits: list[dict[str, Any]] = field(default_factory=list)
    articles: dict[str, dict[str, Any]] = field(default_factory=dict)
    injections: list[tuple[str, str | None]] = field(default_factory=list)
    """Instructions found inside tool results, with the order (or customer) they came with."""

    @property
    def outcomes(self) -> list[Outcome]:
        return [o for turn in self.turns for o in turn]

    def attempts(self, name: str, **match: Any) -> list[Outcome]:
        """Calls of ``name`` whose arguments include ``match``."""
        return [
            o
            for o in self.outcomes
            if o.name == name and all(o.arguments.get(k) == v for k, v in match.items())
        ]

    def done(self, name: str, arguments: dict[str, Any]) -> bool:
        """Was exactly this call answered (anything but a refusal of the call itself)?"""
        return any(o.arguments == arguments and o.kind != "refused" for o in self.attempts(name))

    def learn(self, outcome: Outcome) -> None:
        if outcome.kind == "error":
            self._learn_error(outcome)
        if outcome.kind != "ok" or outcome.data is None:
            return
        data = outcome.data
        source = data.get("order_id") or data.get("customer_id")
        found = [s for s in _strings(data) if INJECTION.search(s)]
        self.injections += [(text, None if source is None else str(source)) for text in found]
        if outcome.name == "get_order" and "order_id" in data:
            self.orders[str(data["order_id"])] = data
        elif outcome.name == "get_customer" and "customer_id" in data:
            self.customers[str(data["customer_id"])] = data
        elif outcome.name == "search_customers":
            self.matches[str(outcome.arguments.get("query", ""))] = list(data.get("customers", []))
        elif outcome.name == "list_orders":
            self.order_lists[str(data.get("customer_id"))] = list(data.get("orders", []))
        elif outcome.name == "search_knowledge":
            self.hits += [h for h in data.get("results", []) if isinstance(h, dict)]
        elif outcome.name == "get_article" and "article_id" in data:
            self.articles[str(data["article_id"])] = data

    def _learn_error(self, outcome: Outcome) -> None:
        if "does not exist" in outcome.text:
            for key in ("order_id", "customer_id"):
                if key in outcome.arguments:
                    self.missing.add(str(outcome.arguments[key]))

    def customer_ids(self) -> list[str]:
        """Customers known by id: looked up, or the only match of a search."""
        found = list(self.customers)
        found += [m[0]["customer_id"] for m in self.matches.values() if len(m) == 1]
        found += [str(o["customer_id"]) for o in self.orders.values() if "customer_id" in o]
        return list(dict.fromkeys(found))


def read_conversation(chat: ChatRequest) -> Knowledge:
    """The knowledge in ``chat``'s assistant tool calls and the tool messages answering them."""
    answers = {
        str((m.model_extra or {}).get("tool_call_id")): text_of(m.content)
        for m in chat.messages
        if m.role == "tool"
    }
    known = Knowledge()
    for message in chat.messages:
        if message.role == "user":
            _remember(known, summary_calls(text_of(message.content)))
        if message.role != "assistant" or not message.tool_calls:
            continue
        turn = []
        for call in message.tool_calls:
            name = str(call.get("function", {}).get("name", ""))
            text = answers.get(str(call.get("id")), "")
            kind, data = _classify(name, text)
            outcome = Outcome(name, _arguments(call), kind, data, text)
            known.learn(outcome)
            turn.append(outcome)
        known.turns.append(turn)
    return known


def _remember(known: Knowledge, entries: list[dict[str, Any]]) -> None:
    """The turns a summary replaced, from its ``sim-call`` entries (grouped by turn)."""
    turns: dict[Any, list[Outcome]] = {}
    for entry in entries:
        name, result = str(entry.get("name", "")), entry.get("result", "")
        text = result if isinstance(result, str) else json.dumps(result)
        arguments = entry.get("arguments")
        kind, data = _classify(name, text)
        outcome = Outcome(name, arguments if isinstance(arguments, dict) else {}, kind, data, text)
        known.learn(outcome)
        turns.setdefault(entry.get("turn"), []).append(outcome)
    known.turns += list(turns.values())
