"""Approval grants on the server side, in process: the run binding, the settings, and single
use under concurrency (a toy server on a temp SQLite file, a real ``mcp.Client`` in memory).
The real support desk over HTTP: tests/integration/test_grants.py."""

from __future__ import annotations

import argparse
import sqlite3
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any, cast

import anyio
import anyio.to_thread
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import CallToolResult, RequestParamsMeta
from pydantic import BaseModel

from keel.contracts import approval_digest, names
from keel.runtime.keys import TokenSigner, ensure_local_keys
from mcp_servers.shared.auth.grants import (
    GrantVerifier,
    grant_sources,
    key_in_run,
    server_audiences,
)
from mcp_servers.shared.auth.jwks import KeySet
from mcp_servers.shared.launcher import build_parser
from mcp_servers.shared.ledger import Ledger, fence
from mcp_servers.shared.ledger.grant_uses import GRANT_TABLE


@pytest.mark.parametrize(
    ("key", "run", "inside"),
    [
        ("wf-1:3:call_0", "wf-1", True),
        ("tenant:wf-1:3:call:0", "tenant:wf-1", True),  # colons in the workflow and call ids
        ("wf-1:3:call_0", "wf", False),
        ("wf-12:3:call_0", "wf-1", False),
        ("wf-1:x:call_0", "wf-1", False),
        ("wf-1:3:", "wf-1", False),
        ("wf-1:3:call_0", "", False),
    ],
)
def test_a_key_belongs_to_the_run_it_starts_with(key: str, run: str, inside: bool) -> None:
    assert key_in_run(key, run) is inside


def parse(*argv: str) -> argparse.Namespace:
    return build_parser("desk", "d", 8201).parse_args(list(argv))


def test_grant_keys_come_from_the_flag_then_the_variable_then_the_token_keys() -> None:
    assert grant_sources(parse("--grant-jwks", "a", "--grant-jwks", "b"), {}) == ["a", "b"]
    assert grant_sources(parse(), {"KEEL_GRANT_JWKS": "c, d"}) == ["c", "d"]
    assert grant_sources(parse(), {"KEEL_AUTH_JWKS": "e"}) == ["e"]
    # without access tokens, only explicit grant keys count
    assert grant_sources(parse(), {"KEEL_AUTH_JWKS": "e", "KEEL_INSECURE_NO_AUTH": "1"}) == []
    explicit = {"KEEL_GRANT_JWKS": "c", "KEEL_INSECURE_NO_AUTH": "1"}
    assert grant_sources(parse(), explicit) == ["c"]


def test_the_audience_is_the_servers_own_url_with_or_without_a_slash() -> None:
    assert server_audiences(parse("--port", "9"), {}) == [
        "http://127.0.0.1:9/mcp",
        "http://127.0.0.1:9/mcp/",
    ]
    assert server_audiences(parse("--host", "::1", "--port", "9"), {})[0] == "http://[::1]:9/mcp"
    extra = {"KEEL_AUTH_AUDIENCE": "http://desk:8201/mcp/"}
    assert "http://desk:8201/mcp" in server_audiences(parse(), extra)


# ---- single use, concurrently --------------------------------------------------------------


class Done(BaseModel):
    row_id: int


def toy(db: Path, jwks: Path) -> MCPServer:
    """One write tool that requires approval, fenced like the support desk's."""
    verifier = GrantVerifier(KeySet([str(jwks)]), audiences=["toy"])
    ledger = Ledger(db, grants=verifier)
    ledger.initialize()
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE effects (id INTEGER PRIMARY KEY, item TEXT)")

    def write(item: str) -> Done:
        with closing(sqlite3.connect(db, isolation_level=None)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            cursor = conn.execute("INSERT INTO effects (item) VALUES (?)", (item,))
            fence(conn)
            conn.execute("COMMIT")
        return Done(row_id=cursor.lastrowid or 0)

    server = MCPServer("toy")

    @server.tool(name="pay")
    @ledger.idempotent(approval=True)
    async def pay(item: str) -> Done:
        await anyio.sleep(0.05)  # long enough for the twins to overlap
        return await anyio.to_thread.run_sync(partial(write, item))

    return server


async def test_one_decision_lets_exactly_one_key_run_however_many_race(tmp_path: Path) -> None:
    keys = ensure_local_keys(tmp_path / "keys")
    signer = TokenSigner.from_file(keys.signing_key)
    server = toy(tmp_path / "toy.db", keys.jwks)
    claims = {
        "aud": "toy", names.CLAIM_RUN: "wf", names.CLAIM_SERVER: "toys", names.CLAIM_TOOL: "pay",
        names.CLAIM_DIGEST: approval_digest("toys", "pay", {"item": "x"}),
        names.CLAIM_APPROVER: "alice", names.CLAIM_DECISION: "apr-1",
    }  # fmt: skip
    grant = signer.sign(claims, typ=names.TYP_GRANT, ttl_seconds=60)
    results: list[CallToolResult] = []

    async def one(client: Client, n: int) -> None:
        meta = {names.META_IDEMPOTENCY_KEY: f"wf:1:call_{n}", names.META_GRANT: grant}
        results.append(
            await client.call_tool("pay", {"item": "x"}, meta=cast(RequestParamsMeta, meta))
        )

    async with Client(server) as client, anyio.create_task_group() as group:
        for n in range(6):
            group.start_soon(one, client, n)
    ran = [r for r in results if not r.is_error]
    assert len(ran) == 1
    assert all("already used for another call" in _text(r) for r in results if r.is_error)
    with closing(sqlite3.connect(tmp_path / "toy.db")) as conn:
        assert conn.execute("SELECT COUNT(*) FROM effects").fetchone()[0] == 1
        assert conn.execute(f"SELECT COUNT(*) FROM {GRANT_TABLE}").fetchone()[0] == 1


def _text(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)
