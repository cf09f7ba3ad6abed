"""The spend store for several workers: PostgreSQL (``KEEL_SPEND_URL=postgresql://…``).

psycopg 3's async connection, one per call: the ledger is written once per model call, so a
pool would buy little; the unique keys make concurrent workers safe without locks.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import psycopg

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


class PostgresSpendStore:
    """The ledger in a PostgreSQL database; ``create`` makes the schema."""

    def __init__(self, url: str) -> None:
        self._url = url

    @classmethod
    async def create(cls, url: str) -> PostgresSpendStore:
        store = cls(url)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as db:
            for statement in SCHEMA:
                await db.execute(statement)
        return store

    async def _exec(self, sql: str, *args: Any) -> tuple[int, list[tuple[Any, ...]]]:
        async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as db:
            cursor = await db.execute(sql, args)
            rows = await cursor.fetchall() if cursor.description else []
            return cursor.rowcount, rows

    async def record(self, call: PaidCall) -> bool:
        count, _ = await self._exec(INSERT_CALL.format(p="%s"), *call.values())
        return count == 1

    async def total(self, owner: Owner, name: str, period: str) -> float:
        _, rows = await self._exec(total_sql(owner, period, "%s"), name, period)
        return float(rows[0][0])

    async def alert_once(self, budget: str, period: str, threshold: float, usd: float) -> bool:
        count, _ = await self._exec(INSERT_ALERT.format(p="%s"), budget, period, threshold, usd)
        return count == 1

    async def totals(self, by: By) -> list[Total]:
        _, rows = await self._exec(rows_sql(by))
        return [Total(str(g), float(u), int(t), int(c)) for g, u, t, c in rows]

    def describe(self) -> str:
        parts = urlsplit(self._url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port or 5432}{parts.path}"
