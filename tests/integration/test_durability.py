"""Durability: a worker killed mid-run resumes at the failed step (replay: tests/replay)."""

from __future__ import annotations

import asyncio

from temporalio.client import Client

from keel.stack import Stack
from tests.helpers import sim_turns, start


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
