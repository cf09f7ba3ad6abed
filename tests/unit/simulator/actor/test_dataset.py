"""evals/support.toml is achievable by sim/actor-large: every task of the agent and refunds
configs, played through the actor against a freshly seeded desk (loop.py), meets its
expectations. (The hybrid config is the refund_triage pipeline: its runs are the eval's.)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO
from tests.unit.simulator.actor.loop import (
    REFUND_TOOLS,
    SUPPORT_TOOLS,
    Conversation,
    converse,
    desk,
)

DATASET = tomllib.loads((REPO / "evals" / "support.toml").read_text())
TOOLS = {"agent": SUPPORT_TOOLS, "refunds": REFUND_TOOLS}
CASES = [
    pytest.param(task, config, id=f"{task['id']}@{config}")
    for task in DATASET["tasks"]
    for config in task.get("configs", list(DATASET["configs"]))
    if config in TOOLS
]


def test_the_dataset_is_big_enough_and_well_formed() -> None:
    tasks = DATASET["tasks"]
    assert len(tasks) >= 50
    assert sum("adversarial" in t["tags"] for t in tasks) >= 10
    assert len({t["id"] for t in tasks}) == len(tasks)
    assert {c for t in tasks for c in t["configs"]} <= set(DATASET["configs"])
    assert {t["approve"] for t in tasks} <= {"approve", "reject", "none"}


def _state(talk_desk: Any, check: dict[str, Any]) -> Any:
    assert check["tool"] == "get_order"
    value = getattr(talk_desk.get_order(check["arguments"]["order_id"]), check["path"])
    return value


def _check(talk: Conversation, expect: dict[str, Any], approved: bool) -> list[str]:
    """The dataset's checks as `keel eval` applies them (keel/eval/checks.py): a write a human
    rejected never reached the desk, so it was not called; an approval is a write proposed."""
    answer = (talk.answer or "").lower()
    problems = [f"answer lacks {w!r}" for w in expect.get("answer_contains", [])
                if w.lower() not in answer]  # fmt: skip
    problems += [f"answer has {w!r}" for w in expect.get("answer_not_contains", [])
                 if w.lower() in answer]  # fmt: skip
    if "answer_matches" in expect and not re.search(expect["answer_matches"], talk.answer or ""):
        problems.append("answer does not match")
    proposed = talk.names()
    names = [n for n in proposed if approved or n not in ("refund_order", "send_email")]
    problems += [f"{t} not called" for t in expect.get("tools_called", []) if t not in names]
    problems += [f"{t} called" for t in expect.get("tools_not_called", []) if t in names]
    approvals = sum(1 for n in proposed if n in ("refund_order", "send_email"))
    if "approvals" in expect and approvals != expect["approvals"]:
        problems.append(f"{approvals} approvals, expected {expect['approvals']}")
    return problems


@pytest.mark.parametrize(("task", "config"), CASES)
def test_the_large_actor_meets_the_task(task: dict[str, Any], config: str, tmp_path: Path) -> None:
    store = desk(tmp_path)
    talk = converse(store, task["task"], tools=TOOLS[config], conversation=task["id"],
                    approve=task["approve"] == "approve")  # fmt: skip
    expect = task["expect"]
    problems = _check(talk, expect, task["approve"] == "approve")
    for check in expect.get("state", []):
        value = _state(store, check)
        if "equals" in check and value != check["equals"]:
            problems.append(f"{check['path']} = {value}, expected {check['equals']}")
    assert not problems, (problems, talk.answer, talk.names())
