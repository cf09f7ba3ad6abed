"""The tier's mistakes, applied to a correct plan: each is one draw of the dice.

A broken call is refused by Keel (schema, semantic check, unknown tool) or fails at the
server; the next turn's plan still wants the correct call, so the actor recovers the way a
model reading the refusal would — at the cost of steps, tokens and sometimes the run.
"""

from __future__ import annotations

import re

from simulator.actor.dice import Dice
from simulator.actor.knowledge import Knowledge
from simulator.actor.situation import Call
from simulator.actor.tiers import Tier

WRONG_NAMES = {
    "get_order": "lookup_order",
    "search_customers": "find_customer",
    "get_customer": "customer_info",
    "list_orders": "get_orders",
    "search_knowledge": "search_policies",
    "get_article": "read_article",
    "refund_order": "issue_refund",
    "send_email": "email_customer",
}
_ID = re.compile(r"^(ORD|CUS|TCK)-\d{4}$")


def broken(call: Call) -> Call:
    """``call`` with the arguments a careless model sends."""
    arguments = dict(call.arguments)
    if isinstance(arguments.get("amount"), float | int):
        arguments["amount"] = round(float(arguments["amount"]) * 1.5 + 10, 2)
    elif "query" in arguments:
        arguments["query"] = ""
    else:
        for key, value in arguments.items():
            if isinstance(value, str) and _ID.match(value):
                arguments[key] = value.split("-")[1]  # the number without its prefix
                break
    return Call(call.name, arguments)


def invented_order(dice: Dice) -> str:
    """An order id that looks right and does not exist (the demo store ends below 1060)."""
    return f"ORD-{1060 + int(dice.uniform('invented_id') * 40)}"


def spoil(calls: list[Call], dice: Dice, tier: Tier) -> list[Call]:
    """The planned calls with this tier's wrong tools, broken arguments and invented ids."""
    out: list[Call] = []
    for index, call in enumerate(calls):
        if dice.chance(f"wrong_tool:{index}", tier.wrong_tool):
            call = Call(WRONG_NAMES.get(call.name, f"{call.name}_v2"), call.arguments)
        elif dice.chance(f"wrong_arguments:{index}", tier.wrong_arguments):
            call = broken(call)
        elif "order_id" in call.arguments and dice.chance(f"invented:{index}", tier.invented_ids):
            call = Call(call.name, {**call.arguments, "order_id": invented_order(dice)})
        out.append(call)
    return out


def repeated(known: Knowledge, dice: Dice, tier: Tier) -> list[Call] | None:
    """The previous turn's calls again, unchanged, when the tier loops this turn."""
    if not known.turns or not dice.chance("loops", tier.loops):
        return None
    return [Call(o.name, o.arguments) for o in known.turns[-1]]
