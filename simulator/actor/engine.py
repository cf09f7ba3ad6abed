"""The actor: a chat-completions request in, the next turn out (tool calls or an answer).

Stateless like the scenarios: everything is derived from the request (the task, the tool
catalog, the calls so far and their results) and the dice (seed, conversation, turn), so a
retried request gets the identical turn.
"""

from __future__ import annotations

from typing import Any

from simulator.actor.decision import decide, is_decision
from simulator.actor.dice import Dice
from simulator.actor.extract import read_task
from simulator.actor.knowledge import read_conversation
from simulator.actor.mistakes import invented_order, repeated, spoil
from simulator.actor.planner import injected_call, next_actions, pending_lookups
from simulator.actor.situation import Call, Situation
from simulator.actor.tiers import ActorModel, Tier, TierFile
from simulator.actor.writer import premature_answer, write_answer
from simulator.scenarios import ToolCallSpec, TurnSpec
from simulator.wire import ChatRequest, text_of


def _tool_names(chat: ChatRequest) -> frozenset[str]:
    names = set()
    for tool in chat.tools or []:
        function = tool.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.add(function["name"])
    return frozenset(names)


def _turn(calls: list[Call], tier: Tier) -> TurnSpec:
    specs = [ToolCallSpec(name=c.name, arguments=c.arguments) for c in calls]
    return TurnSpec(tool_calls=specs, latency_ms=tier.latency_ms)


def _text(text: str, tier: Tier) -> TurnSpec:
    return TurnSpec(content=text, latency_ms=tier.latency_ms)


class Actor:
    """Serves the ``sim/actor*`` models with the tiers of one tier file."""

    def __init__(self, tiers: TierFile) -> None:
        self.tiers = tiers

    def turn(self, chat: ChatRequest, model: ActorModel, conversation: str, index: int) -> TurnSpec:
        tier = self.tiers.tier(model.tier)
        dice = Dice(model.seed, conversation, index)
        if is_decision(chat.tools):
            return self._decision(chat, dice, tier)
        task = next((text_of(m.content) for m in chat.messages if m.role == "user"), "")
        situation = Situation(
            read_task(task), read_conversation(chat), _tool_names(chat), self.tiers.store
        )
        # Whether this run obeys injected instructions is one draw for the whole conversation.
        whole = Dice(model.seed, conversation, 0)
        obeys = whole.chance("follows_injection", tier.follows_injection)
        calls = self._calls(situation, dice, tier, obeys)
        if calls is None:
            return _text(premature_answer(situation), tier)
        if calls:
            return _turn(calls, tier)
        return _text(write_answer(situation, obeys and bool(situation.known.injections)), tier)

    def _calls(self, s: Situation, dice: Dice, tier: Tier, obeys: bool) -> list[Call] | None:
        """The turn's calls; [] to answer, None for a premature answer."""
        again = repeated(s.known, dice, tier)
        if again:
            return again
        injected = injected_call(s) if obeys else None
        if injected is not None:
            return [injected]
        lookups = pending_lookups(s)
        if lookups and dice.chance("premature_answer", tier.premature_answer):
            return None
        first = lookups and not s.facts.order_ids and not s.known.turns and s.has("get_order")
        if first and dice.chance("invented_lookup", tier.invented_ids):
            lookups.append(Call("get_order", {"order_id": invented_order(dice)}))
        return spoil(lookups or next_actions(s), dice, tier)

    def _decision(self, chat: ChatRequest, dice: Dice, tier: Tier) -> TurnSpec:
        tool: dict[str, Any] = (chat.tools or [{}])[0]
        parameters = tool.get("function", {}).get("parameters") or {}
        users = [text_of(m.content) for m in chat.messages if m.role == "user"]
        arguments = decide(parameters, users[-1] if users else "", dice, tier)
        return _turn([Call("answer", arguments)], tier)
