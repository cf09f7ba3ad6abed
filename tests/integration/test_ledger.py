"""The idempotency ledger: exactly-once tool effects under at-least-once delivery.

Two layers. Unit tests drive :class:`Ledger` through a toy MCPServer in-process (a real
``mcp.Client``, real ``_meta``, a temp SQLite file, a fake clock: no sleeping). Integration
tests run the support desk as a subprocess over streamable HTTP and count rows in its
SQLite file, as Keel's worker would see it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Annotated, Any, cast

import anyio
import anyio.to_thread
import pytest
from mcp import Client, MCPError
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, RequestParamsMeta
from pydantic import BaseModel, Field

from keel.procs import Child, free_port, kill, python_argv, spawn, stop, wait_http
from mcp_servers.common import CliError
from mcp_servers.ledger import (
    CALL_IN_PROGRESS,
    IDEMPOTENCY_META_KEY,
    TABLE,
    Ledger,
    fence,
    holder_state,
    ttl_from_env,
)
from tests.helpers import REPO

TTL = 60.0
LEASE = 30.0


def key(value: object) -> RequestParamsMeta:
    """The ``_meta`` Keel sends with every tool call."""
    return cast(RequestParamsMeta, {IDEMPOTENCY_META_KEY: value})


def text(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def count(db: Path, sql: str, *params: Any) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute(sql, params).fetchone()[0])


# ---- unit: the helper on a toy server --------------------------------------------------------


class Added(BaseModel):
    row_id: int
    item: str
    qty: float


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Toy:
    """An MCP server with two write tools that insert into ``effects`` and fence.

    Item ``slow`` waits for ``gate`` before its effect, ``late`` after it (before the
    record); item ``sleepy`` sleeps ``delay`` seconds first (the support desk's artificial
    latency), so a short client timeout can cut it off.
    """

    def __init__(self, db: Path, clock: FakeClock, wait_seconds: float = 2.0) -> None:
        self.db = db
        self.ledger = Ledger(
            db, ttl_seconds=TTL, lease_seconds=LEASE, wait_seconds=wait_seconds, clock=clock
        )
        self.ledger.initialize()
        with closing(sqlite3.connect(db)) as conn:
            conn.execute("CREATE TABLE effects (id INTEGER PRIMARY KEY, item TEXT, qty REAL)")
        self.gate = anyio.Event()
        self.entered = anyio.Event()
        self.crashes = 0
        self.delay = 0.0
        self.server = MCPServer("toy")
        self.server.tool(name="add_item")(self.ledger.idempotent(self.add_item))
        self.server.tool(name="add_other")(self.ledger.idempotent(self.add_item))

    async def add_item(
        self, item: Annotated[str, Field(description="What to add.")], qty: float = 1
    ) -> Added:
        if qty > 10:
            raise ToolError(f"at most 10 {item}")
        if item == "crash" and self.crashes == 0:
            self.crashes += 1
            raise RuntimeError("crashed before any effect")
        if item == "slow":
            self.entered.set()
            await self.gate.wait()
        if item == "sleepy":
            await anyio.sleep(self.delay)
        added = await anyio.to_thread.run_sync(partial(self.write, item, qty))
        if item == "late":  # the effect is committed and fenced; the record is not yet
            self.entered.set()
            await self.gate.wait()
        return added

    def write(self, item: str, qty: float) -> Added:
        with closing(sqlite3.connect(self.db, isolation_level=None)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cursor = conn.execute("INSERT INTO effects (item, qty) VALUES (?, ?)", (item, qty))
                fence(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        assert cursor.lastrowid is not None
        return Added(row_id=cursor.lastrowid, item=item, qty=qty)

    def effects(self, item: str) -> int:
        return count(self.db, "SELECT COUNT(*) FROM effects WHERE item = ?", item)

    def records(self) -> int:
        return count(self.db, f"SELECT COUNT(*) FROM {TABLE}")

    def claim(self, idem: str) -> tuple[str, str] | None:
        """(state, token) of the ledger row of ``add_item`` with key ``idem``, if any."""
        with closing(sqlite3.connect(self.db)) as conn:
            row = conn.execute(
                f"SELECT state, token FROM {TABLE} WHERE tool = 'add_item' AND key = ?", (idem,)
            ).fetchone()
        return None if row is None else (row[0], row[1])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def toy(tmp_path: Path, clock: FakeClock) -> Toy:
    return Toy(tmp_path / "toy.db", clock)


async def test_repeated_key_replays_without_running_again(toy: Toy) -> None:
    async with Client(toy.server) as client:
        first = await client.call_tool("add_item", {"item": "a", "qty": 2}, meta=key("k1"))
        again = await client.call_tool("add_item", {"item": "a", "qty": 2.0}, meta=key("k1"))
    assert not first.is_error and first.structured_content is not None
    assert (again.structured_content, again.content) == (first.structured_content, first.content)
    assert toy.effects("a") == 1


async def test_same_key_with_other_arguments_is_refused(toy: Toy) -> None:
    async with Client(toy.server) as client:
        await client.call_tool("add_item", {"item": "b"}, meta=key("wf:3:call_2_0"))
        other = await client.call_tool(
            "add_item", {"item": "b", "qty": 3}, meta=key("wf:3:call_2_0")
        )
    assert other.is_error
    assert (
        "idempotency key 'wf:3:call_2_0' was already used for add_item with different"
        " arguments; use a new key for a new call" in text(other)
    )
    assert toy.effects("b") == 1


async def test_no_key_runs_every_time_and_keys_count_per_tool(toy: Toy) -> None:
    async with Client(toy.server) as client:
        await client.call_tool("add_item", {"item": "c"})
        await client.call_tool("add_item", {"item": "c"})
        await client.call_tool("add_item", {"item": "d"}, meta=key("shared"))
        await client.call_tool("add_other", {"item": "d"}, meta=key("shared"))
    assert (toy.effects("c"), toy.effects("d"), toy.records()) == (2, 2, 2)


async def test_tool_error_is_recorded_and_replayed(toy: Toy) -> None:
    async with Client(toy.server) as client:
        first = await client.call_tool("add_item", {"item": "e", "qty": 11}, meta=key("k"))
        again = await client.call_tool("add_item", {"item": "e", "qty": 11}, meta=key("k"))
    assert first.is_error and "at most 10 e" in text(first)
    assert again.is_error and again.content == first.content
    assert toy.effects("e") == 0


async def test_records_expire_after_the_ttl_and_are_purged(toy: Toy, clock: FakeClock) -> None:
    async with Client(toy.server) as client:
        await client.call_tool("add_item", {"item": "f"}, meta=key("k"))
        clock.now += TTL - 1
        await client.call_tool("add_item", {"item": "f"}, meta=key("k"))
        assert toy.effects("f") == 1
        clock.now += 2  # TTL has passed since the call completed
        await client.call_tool("add_item", {"item": "g"}, meta=key("other"))
        assert toy.records() == 1  # the expired record was purged lazily
        await client.call_tool("add_item", {"item": "f"}, meta=key("k"))
    assert toy.effects("f") == 2


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


def ledger_events(caplog: pytest.LogCaptureFixture) -> list[tuple[str, dict[str, Any]]]:
    return [
        (r.getMessage(), dict(r.keel))  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "mcp_servers.ledger"
    ]


async def test_stale_claim_is_taken_over_and_the_old_attempt_rolls_back(
    toy: Toy, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A holder that outlives its lease loses the key; its fence rolls its effect back."""
    caplog.set_level(logging.INFO, logger="mcp_servers.ledger")
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
CLAIM_AND_HANG = """
import sys
from pathlib import Path
import anyio
from mcp_servers.ledger import Ledger
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

    caplog.set_level(logging.INFO, logger="mcp_servers.ledger")
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
        assert busy.value.code == CALL_IN_PROGRESS and "still in progress" in str(busy.value)
        assert CALL_IN_PROGRESS not in _NON_RETRYABLE_PROTOCOL_ERRORS  # retried by Temporal
        assert CALL_IN_PROGRESS not in _UNUSABLE_CONNECTION_ERROR_CODES  # keeps the connection
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


async def test_applied_but_unrecorded_call_is_reported_not_repeated(toy: Toy) -> None:
    """A server killed between the effect's commit and the record: never run it again."""
    async with Client(toy.server) as client:
        await client.call_tool("add_item", {"item": "h"}, meta=key("k"))
        with closing(sqlite3.connect(toy.db)) as conn, conn:
            conn.execute(f"UPDATE {TABLE} SET state = 'applied', result = NULL")
        again = await client.call_tool("add_item", {"item": "h"}, meta=key("k"))
    assert again.is_error and "was applied, but its result was not recorded" in text(again)
    assert toy.effects("h") == 1


async def test_malformed_key_is_refused(toy: Toy) -> None:
    async with Client(toy.server) as client:
        bad = await client.call_tool("add_item", {"item": "i"}, meta=key(7))
    assert bad.is_error and IDEMPOTENCY_META_KEY in text(bad)
    assert toy.effects("i") == 0


async def test_decorator_leaves_the_tool_schema_unchanged(toy: Toy, tmp_path: Path) -> None:
    plain = MCPServer("plain")
    plain.tool(name="add_item")(toy.add_item)

    async def with_ctx(item: str, ctx: Context) -> str:
        assert ctx.request_id
        return item

    toy.server.tool(name="with_ctx")(toy.ledger.idempotent(with_ctx))
    plain.tool(name="with_ctx")(with_ctx)
    async with Client(toy.server) as wrapped_client, Client(plain) as plain_client:
        wrapped = {t.name: t for t in (await wrapped_client.list_tools()).tools}
        bare = {t.name: t for t in (await plain_client.list_tools()).tools}
        echoed = await wrapped_client.call_tool("with_ctx", {"item": "x"}, meta=key("k"))
    for name in ("add_item", "with_ctx"):
        assert wrapped[name].input_schema == bare[name].input_schema
        assert wrapped[name].output_schema == bare[name].output_schema
    assert set(wrapped["add_item"].input_schema["properties"]) == {"item", "qty"}
    assert text(echoed) == "x"  # an existing Context parameter is reused, still injected


def test_ttl_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEDGER_TTL", raising=False)
    assert ttl_from_env("LEDGER_TTL") == 7 * 24 * 3600
    monkeypatch.setenv("LEDGER_TTL", "1.5")
    assert ttl_from_env("LEDGER_TTL") == 1.5
    for bad in ("0", "-1", "soon", "inf"):
        monkeypatch.setenv("LEDGER_TTL", bad)
        with pytest.raises(CliError, match="LEDGER_TTL"):
            ttl_from_env("LEDGER_TTL")


# ---- integration: the support desk over HTTP ---------------------------------------------------


def _serve(tmp: Path, name: str, env: dict[str, str]) -> Iterator[tuple[str, Path]]:
    port = free_port()
    db = tmp / f"{name}.db"
    argv = python_argv("-m", "mcp_servers.support_desk", "--port", str(port), "--db", str(db))
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
    async with Client(url) as client:
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
            if exc.code != CALL_IN_PROGRESS:
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
    async with Client(desk[0]) as client:
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
    for name in ("refund_order", "send_email", "update_ticket", "add_ticket_note"):
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
    env = {"SUPPORT_DESK_LATENCY_MS": "1000"}

    def start(name: str) -> tuple[Child, str]:
        port = free_port()
        argv = python_argv("-m", "mcp_servers.support_desk", "--port", str(port), "--db", str(db))
        child = spawn(name, argv, tmp_path / f"{name}.log", env=env, cwd=REPO)
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
        async with Client(url) as client:
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
