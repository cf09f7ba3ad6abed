"""Scenario placeholders filled from the run's task (``from_task``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.scenarios import BUNDLED_DIR, ScenarioError, load_scenario


def test_chaos_scenario_acts_on_the_order_named_in_the_task() -> None:
    scenario = load_scenario(BUNDLED_DIR / "chaos_refund.toml")

    for order in ("ORD-2000", "ORD-2087"):
        task = f"chaos run 7: the strap of the watch from order {order} broke"
        lookup, _ = scenario.turn(0, task)
        refund, scripted = scenario.turn(1, task)
        assert scripted
        assert json.loads(lookup.tool_calls[0].arguments_json()) == {"order_id": order}
        arguments = [json.loads(call.arguments_json()) for call in refund.tool_calls]
        assert arguments[0] == {"order_id": order, "amount": 5.0, "reason": "damaged"}
        assert arguments[1]["subject"] == f"Chaos refund {order}"
        assert order in arguments[1]["body"]


def test_unmatched_placeholders_stay_and_other_scenarios_are_unchanged(tmp_path: Path) -> None:
    chaos = load_scenario(BUNDLED_DIR / "chaos_refund.toml")
    turn, _ = chaos.turn(0, "no order here")
    assert json.loads(turn.tool_calls[0].arguments_json()) == {"order_id": "{order_id}"}

    demo = load_scenario(BUNDLED_DIR / "support_demo.toml")
    assert demo.turn(0, "ORD-9999")[0] == demo.turns[0]


def test_group_and_content_placeholders(tmp_path: Path) -> None:
    path = tmp_path / "greet.toml"
    path.write_text(
        'from_task = { who = "name is (\\\\w+)" }\n[[turns]]\ncontent = "Hello {who}, {who}!"\n'
    )
    turn, _ = load_scenario(path).turn(0, "my name is Ada")
    assert turn.content == "Hello Ada, Ada!"


def test_invalid_pattern_fails_loading(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('from_task = { x = "(" }\n[[turns]]\ncontent = "hi"\n')
    with pytest.raises(ScenarioError, match=r"from_task\.x: invalid regular expression"):
        load_scenario(path)


def test_turn_number_placeholder_makes_every_repeated_turn_new() -> None:
    scenario = load_scenario(BUNDLED_DIR / "history_pages.toml")
    pages = []
    for index in (0, 1, 2, 499):
        turn, scripted = scenario.turn(index, "page through")
        assert scripted == (index == 0)
        pages.append(json.loads(turn.tool_calls[0].arguments_json())["page"])
    assert pages == [1, 2, 3, 500]
    # Scenarios without the setting keep a literal "{turn}".
    demo = load_scenario(BUNDLED_DIR / "support_demo.toml")
    assert demo.turn(3, "x")[0] == demo.turn(3, "x")[0]
    assert demo.turn_number is None
