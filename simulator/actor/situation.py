"""The task, what has been learnt, and the tools at hand: what the planner and writer read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator.actor.extract import Facts
from simulator.actor.knowledge import Knowledge
from simulator.actor.tiers import Store


@dataclass(frozen=True)
class Call:
    """A tool call the actor wants to make."""

    name: str
    arguments: dict[str, Any]


@dataclass
class Situation:
    facts: Facts
    known: Knowledge
    tools: frozenset[str]
    store: Store

    def requester(self) -> str | None:
        """The customer the task speaks for (by id, email or name), once looked up."""
        facts, known = self.facts, self.known
        for cid in facts.customer_ids:
            if cid in known.customers:
                return cid
        for query in (*facts.emails, *facts.names):
            found = known.matches.get(query, [])
            if len(found) == 1:
                return str(found[0]["customer_id"])
        return None

    def requester_name(self) -> str | None:
        cid = self.requester()
        if cid is None:
            return None
        if cid in self.known.customers:
            return str(self.known.customers[cid].get("name"))
        for found in self.known.matches.values():
            for match in found:
                if match.get("customer_id") == cid:
                    return str(match.get("name"))
        return None

    def foreign(self, order: dict[str, Any]) -> bool:
        """Does ``order`` belong to someone other than the customer the task speaks for?"""
        requester = self.requester()
        return requester is not None and order.get("customer_id") != requester

    def orders(self) -> list[dict[str, Any]]:
        """The orders the task is about, as looked up: named ones, else the requester's
        latest that was looked up."""
        named = [self.known.orders[o] for o in self.facts.order_ids if o in self.known.orders]
        if named or self.facts.order_ids:
            return named
        return list(self.known.orders.values())[:1]

    def own_orders(self) -> list[dict[str, Any]]:
        return [o for o in self.orders() if not self.foreign(o)]

    def latest_order(self) -> str | None:
        """The requester's most recent order from a list_orders result."""
        requester = self.requester()
        listed = self.known.order_lists.get(requester or "", [])
        return str(listed[0]["order_id"]) if listed else None

    def has(self, tool: str) -> bool:
        return tool in self.tools
