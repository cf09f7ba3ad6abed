"""The idempotency ledger across processes: exactly-once tool effects under at-least-once calls.

The in-process protocol tests live in tests/unit/mcp_servers/shared/ledger. Here: a claim
left by a SIGKILLed process (the toy server of those tests, the claim taken in a real child
process), and the support desk as a subprocess over streamable HTTP, counting rows in its
SQLite file as Keel's worker would see it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from mcp import Client, MCPError
from mcp_types import CallToolResult

from keel.contracts.names import MCP_CALL_IN_PROGRESS
from keel.procs import Child, free_port, kill, python_argv, spawn, stop, wait_http
from mcp_servers.shared.ledger import TABLE, holder_state
from tests.auth import connect, server_env
from tests.helpers import REPO
from tests.unit.mcp_servers.shared.ledger.toy import LEASE, TTL, FakeClock, Toy, count, key, text


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def toy(tmp_path: Path, clock: FakeClock) -> Toy:
    return Toy(tmp_path / "toy.db", clock)


# ---- a claim held by a killed process ----------------------------------------------------------


# A process that claims a key with the toy's ledger settings, signals it, then hangs in the
# tool (before any effect) until it is SIGKILLed: a server killed mid-call.
CLAIM_AND_HANG = """
import sys
from pathlib import Path
import anyio
from mcp_servers.shared.ledger import Ledger
db, tool, key, item, qty, now, ttl, lease = sys.argv[1:]
ledger = Ledger(Path(db), ttl_seconds=float(ttl), lease_seconds=float(lease),
                clock=lambda: float(now))
async def hang():
    print("claimed", flush=True)
    await anyio.sleep(3600)
anyio.run(ledger.run, tool, key, {"item": item, "qty": float(qty)}, hang)
"""


def claim_in_killed_process(db: Path, idem: str, item: str, qty: float, now: float) -> int:
    """Leave a ``pending`` claim of ``add_item`` held by a SIGKILLed process; its pid."""
    argv = [sys.executable, "-c", CLAIM_AND_HANG, str(db), "add_item", idem, item, str(qty)]
    argv += [str(now), str(TTL), str(LEASE)]
    with subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None and child.stdout.readline().strip() == "claimed"
        child.kill()
        child.wait()
        return child.pid


async def test_claim_of_a_killed_server_does_not_block_short_timeout_retries(
    toy: Toy, clock: FakeClock
) -> None:
    """Regression (chaos run): the server was SIGKILLed mid-refund, leaving a ``pending``
    claim; every client attempt times out after 1 s and the tool takes 0.3 s.

    Before the fix each attempt waited for the dead holder; when its lease ran out late in
    an attempt's window (evenly spaced retries hit the same phase every lease) the waiting
    handler took over, was cancelled mid-tool by the client's timeout, and left a fresh
    ``pending`` claim with a fresh lease: the call never completed. Now the dead holder is
    recognised at once, and the first attempt completes, exactly once.
    """
    args = {"item": "sleepy", "qty": 2.0}
    dead = await anyio.to_thread.run_sync(
        claim_in_killed_process, toy.db, "k", "sleepy", 2.0, clock.now
    )
    claim = toy.claim("k")
    assert claim is not None and claim[0] == "pending" and f"/{dead}/" in claim[1]
    assert holder_state(claim[1]) == "dead"
    toy.delay = 0.3
    outcomes: list[str] = []
    loop = asyncio.get_running_loop()
    async with Client(toy.server) as client:
        for _ in range(4):
            # The dead holder's lease runs out 0.8 s into this attempt's 1 s window.
            expire = loop.call_later(0.8, lambda: setattr(clock, "now", clock.now + LEASE + 1))
            try:
                result = await client.call_tool(
                    "add_item", args, read_timeout_seconds=1.0, meta=key("k")
                )
            except MCPError as exc:
                outcomes.append(f"error {exc.code}: {exc}")
                continue
            finally:
                expire.cancel()
            outcomes.append("ok")
            break
        assert outcomes == ["ok"]
        assert not result.is_error and result.structured_content is not None
        replay = await client.call_tool("add_item", args, read_timeout_seconds=1.0, meta=key("k"))
    assert replay.structured_content == result.structured_content
    assert toy.effects("sleepy") == 1
    final = toy.claim("k")
    assert final is not None and final[0] == "done"


def test_holder_state_recognises_dead_holders(tmp_path: Path) -> None:
    host = socket.gethostname()
    with subprocess.Popen([sys.executable, "-c", "pass"]) as child:
        child.wait()
    own = f"{'0' * 32}/{os.getpid()}"
    assert holder_state(f"n/{child.pid}/boot/{host}") == "dead"  # exited (and reaped)
    assert holder_state(f"n/{os.getppid()}/boot/{host}") == "unknown"  # alive: the lease
    assert holder_state(f"{own}/an-earlier-boot/{host}") == "dead"  # this pid, restarted
    assert holder_state(f"n/{child.pid}/boot/elsewhere") == "unknown"  # another host
    assert holder_state("4f2e851e4e7b45b59dc25e706e09de68") == "unknown"  # old format


# ---- the support desk over HTTP ----------------------------------------------------------------

# These tests are about the ledger, so their desks require no approval grant for refund_order
# and send_email (SUPPORT_DESK_APPROVAL_TOOLS empty); grants: tests/integration/test_grants.py.
NO_GRANTS = {"SUPPORT_DESK_APPROVAL_TOOLS": ""}


def _serve(tmp: Path, name: str, env: dict[str, str]) -> Iterator[tuple[str, Path]]:
    port = free_port()
    db = tmp / f"{name}.db"
    argv = python_argv("-m", "mcp_servers.support_desk", "--port", str(port), "--db", str(db))
    env = {**server_env(), **NO_GRANTS, **env}
    child: Child = spawn(name, argv, tmp / f"{name}.log", env=env, cwd=REPO)
    try:
        wait_http(child, f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}/mcp", db
    finally:
        stop(child)


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A support desk whose calls take 150 ms, so concurrent duplicates really overlap."""
    env = {"SUPPORT_DESK_LATENCY_MS": "150"}
    yield from _serve(tmp_path_factory.mktemp("ledger-desk"), "desk", env)


@pytest.fixture(scope="module")
def short_ttl_desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    env = {"SUPPORT_DESK_LEDGER_TTL_SECONDS": "2"}
    yield from _serve(tmp_path_factory.mktemp("ledger-ttl"), "ttl_desk", env)


async def call(url: str, tool: str, arguments: dict[str, Any], idem: str | None) -> CallToolResult:
    async with connect(url) as client:
        return await client.call_tool(tool, arguments, meta=key(idem) if idem else None)


def refunds(db: Path, order_id: str) -> int:
    return count(db, "SELECT COUNT(*) FROM refunds WHERE order_id = ?", order_id)


def refund(order_id: str, amount: float) -> dict[str, Any]:
    return {"order_id": order_id, "amount": amount, "reason": "damaged"}


async def test_desk_replays_a_repeated_refund(desk: tuple[str, Path]) -> None:
    url, db = desk
    first = await call(url, "refund_order", refund("ORD-1042", 5), "wf-a:3:call_1_0")
    again = await call(url, "refund_order", refund("ORD-1042", 5), "wf-a:3:call_1_0")
    assert not first.is_error and first.structured_content is not None
    assert (again.structured_content, again.content) == (first.structured_content, first.content)
    assert refunds(db, "ORD-1042") == 1


async def test_desk_refuses_a_reused_key_with_other_arguments(desk: tuple[str, Path]) -> None:
    url, db = desk
    await call(url, "refund_order", refund("ORD-1043", 5), "wf-b:3:call_2_0")
    other = await call(url, "refund_order", refund("ORD-1043", 6), "wf-b:3:call_2_0")
    assert other.is_error
    assert (
        "idempotency key 'wf-b:3:call_2_0' was already used for refund_order with different"
        " arguments; use a new key for a new call" in text(other)
    )
    assert refunds(db, "ORD-1043") == 1


async def test_desk_calls_without_a_key_are_not_deduplicated(desk: tuple[str, Path]) -> None:
    url, db = desk
    for _ in range(2):
        assert not (await call(url, "refund_order", refund("ORD-1048", 1), None)).is_error
    assert refunds(db, "ORD-1048") == 2


async def test_desk_replays_a_domain_error_and_never_writes(desk: tuple[str, Path]) -> None:
    url, db = desk
    first = await call(url, "refund_order", refund("ORD-1050", 500), "wf-c:1:call_0")
    again = await call(url, "refund_order", refund("ORD-1050", 500), "wf-c:1:call_0")
    assert first.is_error and "exceeds the refundable amount" in text(first)
    assert again.is_error and again.content == first.content
    assert refunds(db, "ORD-1050") == 0


async def call_as_keel(url: str, tool: str, arguments: dict[str, Any], idem: str) -> CallToolResult:
    """``call``, repeated on the retryable "in progress" error as Keel's worker (Temporal) does:
    a machine slow enough to keep the first call past a twin's wait gets that answer."""
    for _ in range(20):
        try:
            return await call(url, tool, arguments, idem)
        except MCPError as exc:
            if exc.code != MCP_CALL_IN_PROGRESS:
                raise
    raise AssertionError(f"{tool} {idem} stayed in progress")


async def test_desk_concurrent_duplicates_refund_once(desk: tuple[str, Path]) -> None:
    url, db = desk
    results = await asyncio.gather(
        *(
            call_as_keel(url, "refund_order", refund("ORD-1052", 3), "wf-d:2:call_0")
            for _ in range(5)
        )
    )
    assert refunds(db, "ORD-1052") == 1
    assert not any(r.is_error for r in results)
    assert len({str(r.structured_content) for r in results}) == 1


async def test_desk_write_tool_schemas_do_not_show_the_context(desk: tuple[str, Path]) -> None:
    async with connect(desk[0]) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools["refund_order"].input_schema["properties"]) == {
        "order_id", "amount", "reason", "note"
    }  # fmt: skip
    assert tools["refund_order"].input_schema["required"] == ["order_id", "amount", "reason"]
    assert set(tools["add_ticket_note"].input_schema["properties"]) == {
        "ticket_id",
        "note",
        "author",
    }
    for name in ("refund_order", "send_email", "update_ticket", "add_ticket_note", "create_ticket"):
        assert tools[name].output_schema is not None


async def test_desk_key_executes_again_after_the_ttl(short_ttl_desk: tuple[str, Path]) -> None:
    url, db = short_ttl_desk
    email = {"customer_id": "CUS-1002", "subject": "Hello", "body": "Once"}
    first = await call(url, "send_email", email, "wf-e:1:call_0")
    again = await call(url, "send_email", email, "wf-e:1:call_0")
    assert again.structured_content == first.structured_content
    await asyncio.sleep(2.1)
    later = await call(url, "send_email", email, "wf-e:1:call_0")
    assert not later.is_error and later.structured_content != first.structured_content
    assert count(db, "SELECT COUNT(*) FROM emails WHERE body = 'Once'") == 2


async def test_desk_refund_completes_after_the_desk_is_killed_mid_call(tmp_path: Path) -> None:
    """The chaos run's failure over HTTP: the desk is SIGKILLed while a refund sleeps in its
    1 s latency (claim ``pending``), restarted on the same database, and the retry — with a
    read timeout far below the 60 s lease — refunds exactly once."""
    db = tmp_path / "desk.db"
    env = {"SUPPORT_DESK_LATENCY_MS": "1000", **NO_GRANTS}

    def start(name: str) -> tuple[Child, str]:
        port = free_port()
        argv = python_argv("-m", "mcp_servers.support_desk", "--port", str(port), "--db", str(db))
        child = spawn(name, argv, tmp_path / f"{name}.log", env={**server_env(), **env}, cwd=REPO)
        wait_http(child, f"http://127.0.0.1:{port}/healthz")
        return child, f"http://127.0.0.1:{port}/mcp"

    idem, args = "wf-k:2:call_1_0", refund("ORD-1050", 5)
    first, url = start("desk-1")
    try:
        in_flight = asyncio.ensure_future(call(url, "refund_order", args, idem))
        with anyio.fail_after(10):
            while count(db, f"SELECT COUNT(*) FROM {TABLE} WHERE state = 'pending'") == 0:
                await asyncio.sleep(0.02)
        kill(first)
        with pytest.raises(Exception):  # noqa: B017 - the connection dies with the server
            await in_flight
    finally:
        stop(first)
    second, url = start("desk-2")
    try:
        async with connect(url) as client:
            result = await client.call_tool(
                "refund_order", args, read_timeout_seconds=3, meta=key(idem)
            )
            replay = await client.call_tool(
                "refund_order", args, read_timeout_seconds=3, meta=key(idem)
            )
    finally:
        stop(second)
    assert not result.is_error and result.structured_content is not None
    assert replay.structured_content == result.structured_content
    assert refunds(db, "ORD-1050") == 1
