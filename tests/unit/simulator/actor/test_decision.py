"""Decision mode: one tool named ``answer``; the actor fills its schema by keyword match."""

from __future__ import annotations

from typing import Any

import pytest

from simulator.actor import Actor, load_tiers, parse_model
from simulator.actor.decision import AMBIGUOUS, CLEAR, UNMATCHED, choose, decide
from simulator.actor.dice import Dice
from simulator.wire import ChatRequest

CATEGORIES = ["damaged", "not_delivered", "wrong_item", "changed_mind", "late", "other"]
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "category": {"type": "string", "enum": CATEGORIES},
        "order_id": {"type": "string"},
        "needs_human": {"type": "boolean"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["category", "confidence"],
}
TIERS = load_tiers()


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("The sole of my shoe is torn", "damaged"),
        ("The bottle arrived cracked", "damaged"),
        ("My parcel never arrived", "not_delivered"),
        ("You sent the wrong size", "wrong_item"),
        ("I changed my mind, I don't want it", "changed_mind"),
        ("It is two weeks late", "late"),
        ("Hello there", "other"),
    ],
)
def test_categories_by_keyword(text: str, category: str) -> None:
    assert choose(CATEGORIES, text, "")[0] == category


def test_confidence_follows_the_match_strength() -> None:
    assert choose(CATEGORIES, "it is broken", "")[1] == CLEAR
    assert choose(CATEGORIES, "it is broken and it was late", "")[1] == AMBIGUOUS
    assert choose(CATEGORIES, "hmm", "")[1] == UNMATCHED


def test_a_description_adds_synonyms() -> None:
    assert choose(["fragile", "other"], "the glass shattered", "fragile: shattered, split")[0] == (
        "fragile"
    )


def test_decide_fills_the_schema_and_the_large_tier_is_calibrated() -> None:
    large = TIERS.tier("large")
    args = decide(SCHEMA, "ORD-1042 arrived torn", Dice(0, "d", 0), large)
    assert args["category"] == "damaged" and args["order_id"] == "ORD-1042"
    assert args["needs_human"] is False
    assert abs(args["confidence"] - CLEAR) <= large.confidence_noise + 1e-9
    vague = decide(SCHEMA, "about my order", Dice(0, "d", 0), large)
    assert vague["confidence"] < args["confidence"]


def test_the_small_tier_gives_invalid_answers_at_its_rate() -> None:
    small = TIERS.tier("small")
    runs = [decide(SCHEMA, "it is broken", Dice(0, f"i-{n}", 0), small) for n in range(200)]
    invalid = sum(1 for a in runs if a.get("category") not in CATEGORIES or "confidence" not in a)
    assert abs(invalid / 200 - small.invalid_answer) <= 0.07, invalid


def test_a_request_with_only_the_answer_tool_is_a_decision() -> None:
    body = {
        "model": "sim/actor-large",
        "messages": [{"role": "system", "content": "Classify."},
                     {"role": "user", "content": "My order ORD-1050 never arrived"}],
        "tools": [{"type": "function", "function": {"name": "answer", "parameters": SCHEMA}}],
    }  # fmt: skip
    model = parse_model("sim/actor-large")
    assert model is not None
    turn = Actor(TIERS).turn(ChatRequest.model_validate(body), model, "dec", 0)
    [call] = turn.tool_calls
    assert call.name == "answer"
    assert call.arguments is not None and call.arguments["category"] == "not_delivered"
