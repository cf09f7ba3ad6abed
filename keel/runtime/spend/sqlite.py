"""The default spend store: a SQLite file (``<KEEL_HOME>/spend.db``).

Each call opens a short connection in a thread (``asyncio.to_thread``), so the event loop never
waits on the file lock and several processes on one machine may share the file.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from keel.runtime.spend.store import (
    INSERT_ALERT,
    INSERT_CALL,
    SCHEMA,
    By,
    Owner,
    PaidCall,
    Total,
    rows_sql,
    total_sql,
)


class SQLiteSpendStore:
    """The ledger in one SQLite file; the schema is created on first use."""

    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            for statement in SCHEMA:
                db.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def _run(self, sql: str, args: Sequence[Any]) -> tuple[int, list[tuple[Any, ...]]]:
        db = self._connect()
        try:
            cursor = db.execute(sql, tuple(args))
            return cursor.rowcount, cursor.fetchall()
        finally:
            db.close()

    async def _exec(self, sql: str, *args: Any) -> tuple[int, list[tuple[Any, ...]]]:
        return await asyncio.to_thread(self._run, sql, args)

    async def record(self, call: PaidCall) -> bool:
        count, _ = await self._exec(INSERT_CALL.format(p="?"), *call.values())
        return count == 1

    async def total(self, owner: Owner, name: str, period: str) -> float:
        _, rows = await self._exec(total_sql(owner, period, "?"), name, period)
        return float(rows[0][0])

    async def alert_once(self, budget: str, period: str, threshold: float, usd: float) -> bool:
        count, _ = await self._exec(INSERT_ALERT.format(p="?"), budget, period, threshold, usd)
        return count == 1

    async def totals(self, by: By) -> list[Total]:
        _, rows = await self._exec(rows_sql(by))
        return [Total(str(g), float(u), int(t), int(c)) for g, u, t, c in rows]

    def describe(self) -> str:
        return str(self._path)
