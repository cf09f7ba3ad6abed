"""A tiny agent loop for the actor's unit tests: the actor's turns against the support desk and
knowledge base in this process (their Python APIs over a temporary SQLite file), with tool
messages shaped as Keel sends them (compact JSON, error text, refusals). No process, no HTTP:
tests/integration/test_actor.py runs the same behaviour through the real stack."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp_servers.knowledge.server import KnowledgeBase, load_articles
from mcp_servers.support_desk.db import DomainError, SupportDesk
from simulator.actor import Actor, load_tiers, parse_model
from simulator.wire import ChatRequest

READS = ("search_customers", "get_customer", "list_orders", "get_order")
KNOWLEDGE = ("search_knowledge", "get_article")
SUPPORT_TOOLS = (*READS, *KNOWLEDGE)
REFUND_TOOLS = (*SUPPORT_TOOLS, "refund_order", "send_email")
ACTOR = Actor(load_tiers())
BASE = KnowledgeBase(load_articles())


@dataclass
class Conversation:
    answer: str | None = None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    results: list[str] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def desk(tmp: Path) -> SupportDesk:
    store = SupportDesk(tmp / "desk.sqlite")
    store.initialize()
    return store


def _execute(store: SupportDesk, name: str, args: dict[str, Any], approve: bool) -> str:
    if name not in REFUND_TOOLS:
        return json.dumps({"error": "invalid_tool_call", "layer": "schema",
                           "message": f"Unknown tool {name!r}."})  # fmt: skip
    if name in ("refund_order", "send_email") and not approve:
        # as Keel sends it (workflows/approvals/wait.py): JSON naming the error
        message = f"{name} was not called: bob rejected it: not today"
        fix = "do not repeat this call unchanged; a new call needs a new approval"
        return json.dumps({"error": "rejected_by_human", "message": message, "fix": fix})
    try:
        return _run(store, name, args)
    except DomainError as exc:
        return str(exc)
    except (TypeError, KeyError, ValueError) as exc:
        return json.dumps({"error": "invalid_tool_call", "layer": "schema", "message": str(exc)})


def _run(store: SupportDesk, name: str, a: dict[str, Any]) -> str:
    if name == "search_knowledge":
        hits = [h.model_dump() for h in BASE.search(a["query"], 3)] if a["query"] else None
        if hits is None:
            raise ValueError("query: too short")
        return json.dumps({"query": a["query"], "results": hits}, separators=(",", ":"))
    if name == "get_article":
        article = BASE.articles.get(a["article_id"])
        if article is None:
            raise DomainError(f"Article {a['article_id']} does not exist.")
        return json.dumps({"article_id": article.article_id, "title": article.title,
                           "text": article.text})  # fmt: skip
    calls = {
        "search_customers": lambda: store.search_customers(a["query"] or "", 5),
        "get_customer": lambda: store.get_customer(a["customer_id"]),
        "list_orders": lambda: store.list_orders(a["customer_id"], None, 10),
        "get_order": lambda: store.get_order(a["order_id"]),
        "refund_order": lambda: store.refund_order(
            a["order_id"], round(a["amount"] * 100), a["reason"], a.get("note")
        ),
        "send_email": lambda: store.send_email(a["customer_id"], a["subject"], a["body"]),
    }
    return calls[name]().model_dump_json()


def converse(
    store: SupportDesk,
    task: str,
    model: str = "sim/actor-large",
    tools: tuple[str, ...] = SUPPORT_TOOLS,
    conversation: str = "unit",
    approve: bool = True,
    max_turns: int = 8,
) -> Conversation:
    """Play the actor until it answers (or ``max_turns``)."""
    parsed = parse_model(model)
    assert parsed is not None
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a support agent."},
        {"role": "user", "content": task},
    ]
    specs = [{"type": "function", "function": {"name": t, "parameters": {}}} for t in tools]
    out = Conversation()
    for index in range(max_turns):
        body = {"model": model, "messages": messages, "tools": specs}
        out.bodies.append(body)
        turn = ACTOR.turn(ChatRequest.model_validate(body), parsed, conversation, index)
        if not turn.tool_calls:
            out.answer = turn.content
            return out
        calls = [
            {"id": f"call_{index}_{i}", "type": "function",
             "function": {"name": c.name, "arguments": c.arguments_json()}}
            for i, c in enumerate(turn.tool_calls)
        ]  # fmt: skip
        messages.append({"role": "assistant", "content": None, "tool_calls": calls})
        for call, spec in zip(calls, turn.tool_calls, strict=True):
            args = json.loads(spec.arguments_json())
            result = _execute(store, spec.name, args, approve)
            out.calls.append((spec.name, args))
            out.results.append(result)
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
    return out
