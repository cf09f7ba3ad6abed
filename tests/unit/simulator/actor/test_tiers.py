"""Tiers, seeds and determinism: the same (seed, conversation, turn) gives the same turn, and
each tier's mistakes occur at about its configured rates (counted over fixed conversations)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.actor import TierError, load_tiers
from simulator.actor.dice import Dice
from simulator.actor.mistakes import WRONG_NAMES
from tests.unit.simulator.actor.loop import REFUND_TOOLS, converse, desk

TIERS = load_tiers()
TASK = "What is the status of ORD-1043 and when will it arrive?"
RUNS = 120


def test_same_seed_same_conversation_same_bodies(tmp_path: Path) -> None:
    store = desk(tmp_path)
    first = converse(store, TASK, model="sim/actor-small@5", conversation="c-9")
    again = converse(store, TASK, model="sim/actor-small@5", conversation="c-9")
    assert first.bodies == again.bodies and first.answer == again.answer


def test_the_seed_changes_the_draws() -> None:
    draws = {Dice(seed, "c", 0).uniform("loops") for seed in range(20)}
    assert len(draws) == 20 and all(0 <= d < 1 for d in draws)


def _first_turns(model: str, tmp_path: Path) -> list[list[str]]:
    store = desk(tmp_path)
    return [
        converse(store, TASK, model=model, conversation=f"rate-{n}", max_turns=1).names()
        for n in range(RUNS)
    ]


@pytest.mark.parametrize("tier", ["small", "medium", "large"])
def test_wrong_tools_occur_at_the_configured_rate(tier: str, tmp_path: Path) -> None:
    rate = TIERS.tier(tier).wrong_tool
    turns = _first_turns(f"sim/actor-{tier}", tmp_path)
    calls = [name for turn in turns for name in turn]
    wrong = sum(1 for name in calls if name in WRONG_NAMES.values())
    # Two calls per first turn (get_order, search_knowledge) unless answered prematurely.
    assert abs(wrong / max(1, len(calls)) - rate) <= max(0.08, rate / 2), (wrong, len(calls))
    if rate == 0:
        assert wrong == 0


def test_the_small_tier_makes_measurable_mistakes_and_the_large_none(tmp_path: Path) -> None:
    def mistakes(model: str) -> int:
        store = desk(tmp_path / model.replace("/", "_"))
        count = 0
        for n in range(40):
            talk = converse(store, TASK, model=model, conversation=f"m-{n}", tools=REFUND_TOOLS)
            answer = talk.answer or ""
            wrong = len(talk.calls) != 2 or "18.50 USD" not in answer
            count += wrong
        return count

    small, large = mistakes("sim/actor-small"), mistakes("sim/actor-large")
    assert large == 0
    assert small >= 10  # wrong tools, broken arguments, loops, premature answers at ~10-25 %


def test_the_small_tier_obeys_injections_about_half_the_time(tmp_path: Path) -> None:
    store = desk(tmp_path)
    obeyed = 0
    for n in range(40):
        talk = converse(store, "What's the status of ORD-1056?", model="sim/actor-small",
                        conversation=f"inj-{n}", tools=REFUND_TOOLS)  # fmt: skip
        obeyed += "refund_order" in talk.names() or "send_email" in talk.names()
    rate = TIERS.tier("small").follows_injection
    assert abs(obeyed / 40 - rate) <= 0.2, obeyed


def test_a_broken_tier_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "tiers.toml"
    text = (Path(load_tiers.__globals__["TIERS_FILE"])).read_text()
    bad.write_text(text.replace("wrong_tool = 0.15", "wrong_tool = 1.5"))
    with pytest.raises(TierError, match=r"tiers\.small\.wrong_tool: Input should be less"):
        load_tiers(bad)
    bad.write_text(text.replace("[tiers.small]", "[tiers.tiny]"))
    with pytest.raises(TierError, match="missing tier"):
        load_tiers(bad)
