"""Decision mode: the request offers exactly one tool, ``answer``; fill its schema.

Enums are chosen by keyword match of the user's message against each value, its synonyms
and what the property's description says about it; ``confidence`` is the match strength
(clear, ambiguous or none), then shifted by the tier's bias and noise. See interfaces A.
"""

from __future__ import annotations

import re
from typing import Any

from simulator.actor.dice import Dice
from simulator.actor.extract import CUSTOMER_ID, EMAIL, ORDER_ID, REASON_WORDS
from simulator.actor.tiers import Tier

_NOT_DELIVERED = REASON_WORDS["not_received"]
SYNONYMS: dict[str, tuple[str, ...]] = {
    "damaged": (*REASON_WORDS["damaged"], "defect", "sole", "seam", "stopped working"),
    "not_delivered": _NOT_DELIVERED,
    "not_received": _NOT_DELIVERED,
    "wrong_item": (*REASON_WORDS["wrong_item"], "wrong one", "not the one", "sent me"),
    "changed_mind": (*REASON_WORDS["changed_mind"], "mind", "return it unused"),
    "late": ("late", "delayed", "taking too long", "still waiting", "overdue", "slow",
             "weeks", "days late"),
}  # fmt: skip
CLEAR, AMBIGUOUS, UNMATCHED, NO_ENUM = 0.9, 0.5, 0.3, 0.8
_NUMBER = re.compile(r"\d+(?:\.\d{1,2})?")


def is_decision(tools: list[dict[str, Any]] | None) -> bool:
    return bool(tools) and len(tools or []) == 1 and _name(tools[0]) == "answer"  # type: ignore[index]


def _name(tool: dict[str, Any]) -> str:
    function = tool.get("function")
    return str(function.get("name")) if isinstance(function, dict) else ""


def _hits(text: str, words: tuple[str, ...] | list[str]) -> int:
    return sum(1 for w in words if w and re.search(rf"\b{re.escape(w)}", text))


def _described(value: str, description: str) -> list[str]:
    """Synonyms a description gives a value: ``damaged: broken, torn; late (...)``."""
    match = re.search(rf"\b{re.escape(value)}\b\s*[:=(]\s*([^;)\n]+)", description.lower())
    return [w.strip() for w in re.split(r",|/|\bor\b", match.group(1))] if match else []


def choose(values: list[Any], text: str, description: str) -> tuple[Any, float]:
    """The enum value the text matches best, and the strength of that match."""
    lowered = text.lower()
    scores = []
    for value in values:
        words = [str(value).replace("_", " "), *SYNONYMS.get(str(value), ())]
        scores.append(_hits(lowered, words + _described(str(value), description)))
    top = max(scores, default=0)
    if top == 0:
        fallback = "other" if "other" in values else values[0]
        return fallback, UNMATCHED
    matched = sum(1 for score in scores if score > 0)
    return values[scores.index(top)], CLEAR if matched == 1 else AMBIGUOUS


def _string(name: str, schema: dict[str, Any], text: str) -> str:
    for key, pattern in (("order", ORDER_ID), ("customer", CUSTOMER_ID), ("email", EMAIL)):
        if key in name and (found := pattern.search(text)):
            return found.group(0).upper() if key != "email" else found.group(0)
    first = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    return first[: int(schema.get("maxLength", 200))] or "n/a"


def _value(name: str, schema: dict[str, Any], text: str) -> tuple[Any, float | None]:
    if "enum" in schema:
        return choose(list(schema["enum"]), text, str(schema.get("description", "")))
    kind = schema.get("type")
    if kind == "boolean":
        words = [w for w in name.split("_") if len(w) > 2 and w not in {"is", "has", "needs"}]
        return _hits(text.lower(), words) > 0, None
    if kind in ("number", "integer"):
        found = _NUMBER.search(ORDER_ID.sub("", text))
        number = float(found.group(0)) if found else float(schema.get("minimum", 0))
        return (int(number) if kind == "integer" else number), None
    return _string(name, schema, text), None


def decide(parameters: dict[str, Any], text: str, dice: Dice, tier: Tier) -> dict[str, Any]:
    """The arguments of the one ``answer`` call for ``text`` (the user's message)."""
    properties: dict[str, Any] = dict(parameters.get("properties") or {})
    arguments: dict[str, Any] = {}
    strengths: list[float] = []
    for name, schema in properties.items():
        if name == "confidence" or not isinstance(schema, dict):
            continue
        arguments[name], strength = _value(name, schema, text)
        if strength is not None:
            strengths.append(strength)
    base = min(strengths) if strengths else NO_ENUM
    noise = tier.confidence_noise * (2 * dice.uniform("confidence") - 1)
    arguments["confidence"] = round(min(1.0, max(0.0, base + tier.confidence_bias + noise)), 2)
    if dice.chance("invalid_answer", tier.invalid_answer):
        return _spoiled(arguments, parameters, properties, dice)
    return arguments


def _spoiled(
    arguments: dict[str, Any], parameters: dict[str, Any], properties: dict[str, Any], dice: Dice
) -> dict[str, Any]:
    """An invalid answer: an out-of-enum value if there is an enum, else a required field
    left out."""
    enums = [n for n, s in properties.items() if isinstance(s, dict) and "enum" in s]
    if enums:
        return {**arguments, dice.pick("invalid_field", enums): "unknown"}
    required = list(parameters.get("required") or ["confidence"])
    dropped = dice.pick("invalid_field", required)
    return {k: v for k, v in arguments.items() if k != dropped}
