"""A toy MCP server for the ledger's tests: two write tools that insert and fence.

In-process (a real ``mcp.Client`` over memory streams, real ``_meta``), on a temp SQLite
file, with a fake clock, so lease and TTL expiry need no sleeping.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Annotated, Any, cast

import anyio
import anyio.to_thread
import pytest
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, RequestParamsMeta
from pydantic import BaseModel, Field

from keel.contracts.names import META_IDEMPOTENCY_KEY
from mcp_servers.shared.ledger import LOGGER_NAME, TABLE, Ledger, fence

TTL = 60.0
LEASE = 30.0


def key(value: object) -> RequestParamsMeta:
    """The ``_meta`` Keel sends with every tool call."""
    return cast(RequestParamsMeta, {META_IDEMPOTENCY_KEY: value})


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


def ledger_events(caplog: pytest.LogCaptureFixture) -> list[tuple[str, dict[str, Any]]]:
    return [
        (r.getMessage(), dict(r.keel))  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == LOGGER_NAME
    ]
