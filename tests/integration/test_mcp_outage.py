"""A short MCP outage with the circuit open: attempts wait out the cool-down, the run goes on.

The knowledge server is SIGKILLed just before the run's ``search_knowledge`` call and started
again 6 s later; the tool has 3 attempts and the worker's circuit opens after 1 failure with a
4 s cool-down. Failing each attempt at once on ``CircuitOpen`` spends the 3 attempts (the
first fails, the second is refused by the open circuit, the third probes at 4 s while the
server is still down) and fails the run; waiting out the cool-down inside the attempt leaves
the third attempt for a server that is back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from temporalio.client import Client

from keel.stack import Stack
from tests.helpers import sim_turns, start

OUTAGE_SECONDS = 6.0
BREAKER_ENV = {"KEEL_BREAKER_FAILURES": "1", "KEEL_BREAKER_COOLDOWN_SECONDS": "4"}


@pytest.fixture
def quick_breaker(stack: Stack) -> Iterator[None]:
    """The session's worker, restarted with a circuit that opens at the first failure."""
    saved = dict(stack.config.extra_worker_env)
    stack.config.extra_worker_env.update(BREAKER_ENV)
    stack.stop("worker")
    stack.start("worker")
    try:
        yield
    finally:
        stack.config.extra_worker_env.clear()
        stack.config.extra_worker_env.update(saved)
        stack.stop("worker")
        stack.start("worker")
        if stack.running_pid("knowledge") is None:
            stack.start("knowledge")


async def _wait_for_turn(stack: Stack, workflow_id: str, turn: int) -> None:
    for _ in range(1200):
        if sim_turns(stack, workflow_id).get(turn, {}).get("requests", 0) >= 1:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"turn {turn} of {workflow_id} never reached the simulator")


async def test_a_six_second_mcp_outage_does_not_spend_the_retries(
    client: Client, stack: Stack, quick_breaker: None
) -> None:
    handle = await start(client, "mcp_outage")
    # Turn 2 (1.5 s of model latency) answers with the search_knowledge call.
    await _wait_for_turn(stack, handle.id, 2)
    stack.kill("knowledge")
    await asyncio.sleep(OUTAGE_SECONDS)
    stack.start("knowledge")

    result = await asyncio.wait_for(handle.result(), timeout=120)

    assert result.status == "completed", result.error
    [search] = [s for s in result.steps if s.name == "search_knowledge"]
    assert search.outcome == "ok"
    assert 2 <= search.attempts <= 3  # it failed during the outage, then succeeded
