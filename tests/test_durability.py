"""Durability: a worker killed mid-run resumes at the failed step; histories replay."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from keel.stack import Stack
from tests.helpers import sim_turns, start
from workflows.agent.workflow import AgentWorkflow

FIXTURES = Path(__file__).parent / "fixtures"


async def _wait_for_turn(stack: Stack, workflow_id: str, turn: int, timeout: float = 60) -> None:
    """Wait until the simulator has received the request for ``turn`` (it is in flight)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if sim_turns(stack, workflow_id).get(turn, {}).get("requests", 0) >= 1:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"turn {turn} of {workflow_id} never reached the simulator")


async def test_sigkill_worker_mid_run_resumes_without_repeating_model_turns(
    client: Client, stack: Stack
) -> None:
    handle = await start(client, "slow")
    # Turns 0 and 1 have completed and turn 2 (1.5 s of model latency) is in flight.
    await _wait_for_turn(stack, handle.id, 2)
    stack.kill("worker")
    stack.start("worker")

    result = await asyncio.wait_for(handle.result(), timeout=120)

    assert result.status == "completed", result.error
    turns = sim_turns(stack, handle.id)
    # Model turns that had completed before the crash were never requested again: the new
    # worker replayed them from history.
    assert turns[0] == {"requests": 1, "completed": 1}
    assert turns[1] == {"requests": 1, "completed": 1}
    # The turn that was in flight ran again (at-least-once), and the run went on from there.
    assert turns[2]["requests"] >= 1
    assert turns[3] == {"requests": 1, "completed": 1}
    assert [s.name for s in result.steps if s.kind == "tool"] == [
        "search_customers",
        "get_order",
        "search_knowledge",
    ]


# Histories recorded by earlier versions, by the profile that produced them. Each must keep
# replaying against the current workflow code (see tests/fixtures/README.md).
FIXTURE_FILES = {
    "support": "agent_workflow_history.json",  # walking skeleton: the demo run
    "guarded": "bounded_run_history.json",  # bounded runs: lookups, semantic refusals
}


@pytest.mark.parametrize("profile", sorted(FIXTURE_FILES))
async def test_fresh_history_replays_without_nondeterminism(client: Client, profile: str) -> None:
    handle = await start(client, profile)
    await handle.result()
    history = await handle.fetch_history()

    replayer = Replayer(workflows=[AgentWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None
    if os.environ.get("KEEL_RECORD_FIXTURE") == profile:
        (FIXTURES / FIXTURE_FILES[profile]).write_text(history.to_json())


@pytest.mark.parametrize("name", sorted(FIXTURE_FILES.values()))
async def test_recorded_fixture_history_replays(name: str) -> None:
    """A history recorded by an earlier version must keep replaying."""
    history = WorkflowHistory.from_json("fixture-run", json.loads((FIXTURES / name).read_text()))
    replayer = Replayer(workflows=[AgentWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None
    assert len(history.events) > 20
