"""Eval datasets: what loads, and every mistake as one readable line."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.contracts.errors import InputError
from keel.eval.dataset import load_dataset, parse_config_option, parse_dataset

REPO = Path(__file__).resolve().parents[4]

MINIMAL = """
name = "mini"
default_config = "agent"
[configs.agent]
spec = "profile:support"
[configs.hybrid]
spec = "pipeline:refund_triage@triage"
[[tasks]]
id = "t1"
task = "Refund ORD-1042?"
[tasks.expect]
status = "completed"
"""


def test_the_small_dataset_loads() -> None:
    dataset = load_dataset(REPO / "tests" / "evals" / "small.toml")
    assert [t.id for t in dataset.tasks][:2] == ["quick-answer", "quick-wrong-answer"]
    assert dataset.configs["approvals"].profile == "approvals"
    refund = next(t for t in dataset.tasks if t.id == "refund-approved")
    assert refund.expect.state[0].equals == 20.0
    assert refund.approve == "approve"


def test_specs_name_their_kind_target_and_profile() -> None:
    dataset = parse_dataset(MINIMAL)
    agent, hybrid = dataset.configs["agent"], dataset.configs["hybrid"]
    assert (agent.kind, agent.target, agent.profile) == ("profile", "support", "support")
    assert (hybrid.kind, hybrid.target, hybrid.profile) == ("pipeline", "refund_triage", "triage")
    assert dataset.tasks[0].principal.id == "eval"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("[tasks.expect]", "[tasks.expect]\nanswer_contain = ['x']"), "answer_contain"),
        (('status = "completed"', 'status = "done"'), "tasks.0.expect.status"),
        (('spec = "profile:support"', 'spec = "agent:support"'), "configs.agent.spec"),
        (('default_config = "agent"', 'default_config = "nope"'), "default_config 'nope'"),
        (("[tasks.expect]", "approve = 'maybe'\n[tasks.expect]"), "tasks.0.approve"),
        (("[tasks.expect]", "configs = ['other']\n[tasks.expect]"), "unknown config(s) other"),
        (("[tasks.expect]", "[tasks.expect]\nanswer_matches = '('"), "not a regular expression"),
        (("[tasks.expect]", "[tasks.expect]\napprovals = -1"), "tasks.0.expect.approvals"),
        (('id = "t1"', 'id = "has space"'), "tasks.0.id"),
        (
            ('status = "completed"', "status = 'completed'\n[[tasks.expect.state]]\ntool = 'x'"),
            "needs equals, contains, at_least or at_most",
        ),
        (("name = ", "x = 1\nname = "), "x: Extra inputs"),
        (("[tasks.expect]", "[tasks.expect"), "not valid TOML"),
    ],
)
def test_a_bad_dataset_is_one_readable_line(change: tuple[str, str], message: str) -> None:
    text = MINIMAL.replace(*change, 1)
    with pytest.raises(InputError) as raised:
        parse_dataset(text, "bad.toml")
    line = str(raised.value)
    assert "\n" not in line
    assert line.startswith("bad.toml: ")
    assert message in line


def test_a_task_id_may_appear_once() -> None:
    text = MINIMAL + '[[tasks]]\nid = "t1"\ntask = "again"\n'
    with pytest.raises(InputError, match="task id 't1' appears twice"):
        parse_dataset(text)


def test_several_problems_are_counted_on_the_one_line() -> None:
    text = MINIMAL.replace('status = "completed"', 'status = "done"\nbogus = 1')
    with pytest.raises(InputError, match=r"\(and 1 more problem\(s\)\)$"):
        parse_dataset(text)


def test_an_unreadable_dataset_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read dataset"):
        load_dataset(tmp_path / "missing.toml")


def test_config_options_select_or_define() -> None:
    dataset = parse_dataset(MINIMAL)
    assert parse_config_option("hybrid", dataset)[1].target == "refund_triage"
    name, config = parse_config_option("mine=pipeline:refund_triage", dataset)
    assert (name, config.kind, config.profile) == ("mine", "pipeline", None)
    with pytest.raises(InputError, match="no such config"):
        parse_config_option("other", dataset)
    with pytest.raises(InputError, match="SPEC must be"):
        parse_config_option("mine=support", dataset)
