"""The idempotency ledger on one caller: replay, refusals, expiry, the unchanged schema.

A toy server in-process (see ``toy.py``); no processes, no sleeping.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from mcp import Client
from mcp.server.mcpserver import Context, MCPServer

from keel.contracts.names import META_IDEMPOTENCY_KEY
from mcp_servers.shared.config import ServerConfigError
from mcp_servers.shared.ledger import TABLE, ttl_from_env
from tests.unit.mcp_servers.shared.ledger.toy import TTL, FakeClock, Toy, key, text


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
    assert bad.is_error and META_IDEMPOTENCY_KEY in text(bad)
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
        with pytest.raises(ServerConfigError, match="LEDGER_TTL"):
            ttl_from_env("LEDGER_TTL")
