"""Recorded histories keep replaying against the current workflow code (non-determinism
guard), and a fresh run's history replays too. See histories/README.md for how to record."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.helpers import start
from workflows.agent import AgentWorkflow

HISTORIES = Path(__file__).parent / "histories"


# Histories recorded by earlier versions, by the profile that produced them. Each must keep
# replaying against the current workflow code (see histories/README.md).
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
        (HISTORIES / FIXTURE_FILES[profile]).write_text(history.to_json())


@pytest.mark.parametrize("name", sorted(FIXTURE_FILES.values()))
async def test_recorded_fixture_history_replays(name: str) -> None:
    """A history recorded by an earlier version must keep replaying."""
    history = WorkflowHistory.from_json("fixture-run", json.loads((HISTORIES / name).read_text()))
    replayer = Replayer(workflows=[AgentWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None
    assert len(history.events) > 20
