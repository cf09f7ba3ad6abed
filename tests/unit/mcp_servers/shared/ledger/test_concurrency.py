"""The idempotency ledger under concurrency: duplicates in flight, takeovers, cancellation.

A toy server in-process (see ``toy.py``), a fake clock for leases; the only waits are for
the toy's own events (a duplicate reaching its claim), never timing assertions.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import anyio
import pytest
from mcp import Client, MCPError

from keel.contracts.names import MCP_CALL_IN_PROGRESS
from mcp_servers.shared.ledger import LOGGER_NAME, holder_state
from tests.unit.mcp_servers.shared.ledger.toy import (
    LEASE,
    FakeClock,
    Toy,
    key,
    ledger_events,
    text,
)


async def test_concurrent_calls_with_one_key_run_once(toy: Toy) -> None:
    async with Client(toy.server) as client:
        calls = [client.call_tool("add_item", {"item": "slow"}, meta=key("k")) for _ in range(5)]
        pending = asyncio.gather(*calls)
        await toy.entered.wait()
        await anyio.sleep(0.05)  # let the duplicates find the claim and start waiting
        toy.gate.set()
        results = await pending
    assert toy.effects("slow") == 1
    assert len({str(r.structured_content) for r in results}) == 1 and not results[0].is_error


async def test_duplicate_of_an_applied_live_call_waits_for_its_record(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Between the effect's commit and its record the row is ``applied``: a duplicate that
    arrives then waits for the live holder and replays, it is not told the call was lost."""
    toy = Toy(tmp_path / "toy.db", clock, wait_seconds=60)  # however slow the machine
    async with Client(toy.server) as client:
        holder = asyncio.ensure_future(
            client.call_tool("add_item", {"item": "late"}, meta=key("k"))
        )
        await toy.entered.wait()
        assert (toy.claim("k") or ("", ""))[0] == "applied"
        duplicate = asyncio.ensure_future(
            client.call_tool("add_item", {"item": "late"}, meta=key("k"))
        )
        await anyio.sleep(0.1)  # the duplicate has found the applied row and is waiting
        assert not duplicate.done()
        toy.gate.set()
        first, again = await holder, await duplicate
    assert not first.is_error and not again.is_error
    assert again.structured_content == first.structured_content
    assert toy.effects("late") == 1


async def test_stale_claim_is_taken_over_and_the_old_attempt_rolls_back(
    toy: Toy, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A holder that outlives its lease loses the key; its fence rolls its effect back."""
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    async with Client(toy.server) as client:
        holder = asyncio.ensure_future(
            client.call_tool("add_item", {"item": "slow"}, meta=key("k"))
        )
        await toy.entered.wait()
        clock.now += LEASE + 1  # the holder hangs past its lease: a retry may take over
        retry_task = asyncio.ensure_future(
            client.call_tool("add_item", {"item": "slow"}, meta=key("k"))
        )
        await anyio.sleep(0.05)
        toy.gate.set()  # both attempts run their write; only the newer claim may commit
        old, new = await holder, await retry_task
    assert new.structured_content is not None and not new.is_error
    assert old.is_error and "was taken over by a newer attempt" in text(old)
    assert toy.effects("slow") == 1
    async with Client(toy.server) as client:
        replay = await client.call_tool("add_item", {"item": "slow"}, meta=key("k"))
    assert replay.structured_content == new.structured_content
    which = {"tool": "add_item", "idempotency_key": "k"}
    assert ledger_events(caplog) == [
        ("ledger.takeover", {**which, "why": "its lease of 30 s ran out"}),
        ("ledger.replay", {**which, "is_error": False}),
    ]


async def test_unexpected_crash_releases_the_claim_for_a_retry(toy: Toy) -> None:
    async with Client(toy.server) as client:
        crashed = await client.call_tool("add_item", {"item": "crash"}, meta=key("k"))
        retried = await client.call_tool("add_item", {"item": "crash"}, meta=key("k"))
    assert crashed.is_error and not retried.is_error
    assert toy.effects("crash") == 1


# A process that claims a key with the toy's ledger settings, signals it, then hangs in the
# tool (before any effect) until it is SIGKILLed: a server killed mid-call.


async def test_a_cancelled_attempt_leaves_no_claim_behind(toy: Toy) -> None:
    """A client that times out mid-tool cancels its handler: the claim is released (no
    effect happened), so the next attempt runs at once instead of waiting for a lease."""
    toy.delay = 0.5
    async with Client(toy.server) as client:
        with pytest.raises(MCPError, match="Timed out"):
            await client.call_tool(
                "add_item", {"item": "sleepy"}, read_timeout_seconds=0.1, meta=key("k")
            )
        with anyio.fail_after(2):
            while toy.claim("k") is not None:  # the server handles the client's cancel
                await anyio.sleep(0.01)
        toy.delay = 0.0
        retried = await client.call_tool(
            "add_item", {"item": "sleepy"}, read_timeout_seconds=1.0, meta=key("k")
        )
    assert not retried.is_error
    assert toy.effects("sleepy") == 1


async def test_waiting_is_bounded_and_busy_is_a_retryable_protocol_error(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """While a live attempt holds the key, a duplicate waits at most ``wait_seconds`` and
    then fails with a JSON-RPC error Keel's worker retries (not an ``is_error`` result);
    a waiter whose client has gone neither holds the key nor takes it over later."""
    from temporalio.mcp._activities import _NON_RETRYABLE_PROTOCOL_ERRORS
    from temporalio.mcp._pool import _UNUSABLE_CONNECTION_ERROR_CODES

    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    toy = Toy(tmp_path / "toy.db", clock, wait_seconds=0.2)
    async with Client(toy.server) as client:
        holder = asyncio.ensure_future(
            client.call_tool("add_item", {"item": "slow"}, meta=key("k"))
        )
        await toy.entered.wait()
        held = toy.claim("k")
        assert held is not None and holder_state(held[1]) == "live"
        with pytest.raises(MCPError) as busy:  # the holder is parked: only the bound ends this
            await client.call_tool("add_item", {"item": "slow"}, meta=key("k"))
        assert busy.value.code == MCP_CALL_IN_PROGRESS and "still in progress" in str(busy.value)
        assert MCP_CALL_IN_PROGRESS not in _NON_RETRYABLE_PROTOCOL_ERRORS  # retried by Temporal
        assert MCP_CALL_IN_PROGRESS not in _UNUSABLE_CONNECTION_ERROR_CODES  # keeps the connection
        assert ("ledger.busy", {"tool": "add_item", "idempotency_key": "k", "waited_s": 0.2}) in (
            ledger_events(caplog)
        )
        with pytest.raises(MCPError, match="Timed out"):  # this waiter's client gives up
            await client.call_tool(
                "add_item", {"item": "slow"}, read_timeout_seconds=0.05, meta=key("k")
            )
        clock.now += LEASE + 1  # the holder's lease has run out, but nobody is waiting
        await anyio.sleep(0.4)
        assert toy.claim("k") == held  # no orphaned waiter took the key over
        toy.gate.set()
        first = await holder
        again = await client.call_tool("add_item", {"item": "slow"}, meta=key("k"))
    assert not first.is_error and again.structured_content == first.structured_content
    assert toy.effects("slow") == 1
