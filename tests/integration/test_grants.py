"""Server-enforced approval grants, against the real support desk (a subprocess over HTTP).

The desk requires a grant for ``refund_order`` and ``send_email`` (its default). Every call
below that lacks a valid grant for exactly it is an ``is_error`` result with one line, adds no
row to the desk's database and leaves no ledger claim; the approved call refunds once, its
retry replays, and its grant cannot be reused under another idempotency key. Effects are
counted in the desk's SQLite file (refunds by their note, emails by their subject, both
unique per test). Grants are minted here with the same ``TokenSigner``/``GrantMinter`` the
worker uses; the end-to-end tests at the bottom go through the worker of the test stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from mcp import Client
from mcp_types import CallToolResult, RequestParamsMeta
from temporalio.client import Client as TemporalClient

from activities.grants import GrantMinter
from keel.contracts import approval_digest, names
from keel.procs import Child, free_port, python_argv, spawn, stop, wait_http
from keel.runtime.config import MCPServerTarget
from keel.runtime.keys import TokenSigner, ensure_local_keys
from keel.stack import Stack
from mcp_servers.shared.ledger import TABLE
from mcp_servers.shared.ledger.grant_uses import GRANT_TABLE
from tests.helpers import REPO, start
from tests.integration.test_approvals import decide, pending

RUN = "wf-grants"
SERVER = "support_desk"  # the server's name in a profile, as the worker signs it


@dataclass(frozen=True)
class Desk:
    url: str
    db: Path
    signer: TokenSigner  # the worker's key: its JWKS is the desk's --grant-jwks
    stranger: TokenSigner  # a key the desk does not know
    log: Path


@contextlib.contextmanager
def _serve(tmp: Path, name: str, args: list[str], env: dict[str, str]) -> Iterator[Desk]:
    keys = ensure_local_keys(tmp / "keys")
    stranger = ensure_local_keys(tmp / "stranger")
    port = free_port()
    db = tmp / f"{name}.db"
    argv = python_argv("-m", "mcp_servers.support_desk", "--port", str(port), "--db", str(db))
    argv += [a.replace("{jwks}", str(keys.jwks)) for a in args]
    child: Child = spawn(name, argv, tmp / f"{name}.log", env=env, cwd=REPO)
    try:
        wait_http(child, f"http://127.0.0.1:{port}/healthz")
        yield Desk(f"http://127.0.0.1:{port}/mcp", db, TokenSigner.from_file(keys.signing_key),
                   TokenSigner.from_file(stranger.signing_key), tmp / f"{name}.log")  # fmt: skip
    finally:
        stop(child)


# Access tokens off, grant keys given explicitly (which still enforces grants): the one place
# this module's server is started, to switch when the servers' access tokens are tested here.
NO_TOKENS = {"KEEL_INSECURE_NO_AUTH": "1", "KEEL_AUTH_JWKS": "", "KEEL_GRANT_JWKS": ""}


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    tmp = tmp_path_factory.mktemp("grant-desk")
    with _serve(tmp, "desk", ["--grant-jwks", "{jwks}"], NO_TOKENS) as started:
        yield started


def refund(note: str, amount: float = 1.0) -> dict[str, Any]:
    return {"order_id": "ORD-1042", "amount": amount, "reason": "damaged", "note": note}


def email(subject: str) -> dict[str, Any]:
    return {"customer_id": "CUS-1001", "subject": subject, "body": "Your refund is on its way."}


def grant(
    desk: Desk, tool: str, arguments: dict[str, Any], *, run: str = RUN,
    decision: str = "apr-test", signer: TokenSigner | None = None, typ: str = names.TYP_GRANT,
    aud: str | None = None, now: float | None = None, grant_tool: str | None = None,
) -> str:  # fmt: skip
    """A grant as the worker signs it, with one thing changed at a time."""
    claims = {
        "aud": aud or desk.url,
        names.CLAIM_RUN: run,
        names.CLAIM_SERVER: SERVER,
        names.CLAIM_TOOL: grant_tool or tool,
        names.CLAIM_DIGEST: approval_digest(SERVER, tool, arguments),
        names.CLAIM_APPROVER: "alice",
        names.CLAIM_DECISION: decision,
    }
    return (signer or desk.signer).sign(claims, typ=typ, ttl_seconds=120, now=now)


def minted(desk: Desk, tool: str, arguments: dict[str, Any], decision: str) -> str:
    """A grant minted by the worker's own code (activities/grants.py)."""
    minter = GrantMinter(desk.signer, {SERVER: MCPServerTarget(name=SERVER, url=desk.url)})
    approval = {"id": decision, "digest": approval_digest(SERVER, tool, arguments), "by": "alice"}
    return minter.mint(SERVER, RUN, {"name": tool, "arguments": arguments}, approval)


async def call(
    url: str, tool: str, arguments: dict[str, Any], key: str | None, token: str | None
) -> CallToolResult:
    meta: dict[str, Any] = {}
    if key is not None:
        meta[names.META_IDEMPOTENCY_KEY] = key
    if token is not None:
        meta[names.META_GRANT] = token
    async with Client(url) as client:
        return await client.call_tool(tool, arguments, meta=cast(RequestParamsMeta, meta))


def text(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def count(db: Path, sql: str, *params: Any) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute(sql, params).fetchone()[0])


def refunds(desk: Desk, note: str) -> int:
    return count(desk.db, "SELECT COUNT(*) FROM refunds WHERE note = ?", note)


def emails(desk: Desk, subject: str) -> int:
    return count(desk.db, "SELECT COUNT(*) FROM emails WHERE subject = ?", subject)


def claims(desk: Desk, key: str) -> int:
    return count(desk.db, f"SELECT COUNT(*) FROM {TABLE} WHERE key = ?", key)


def refused(result: CallToolResult, tool: str, reason: str) -> None:
    assert result.is_error
    message = text(result)
    assert "\n" not in message
    assert f"{tool} needs an approval grant: " in message, message
    assert reason in message, message


# (case, the grant sent for (tool, arguments) — another body for an email's "other
# arguments" —, whether the call has an idempotency key, the reason the desk gives)
Make = Callable[[Desk, str, dict[str, Any]], str | None]


def _other(desk: Desk, tool: str, arguments: dict[str, Any]) -> str:
    changed = {"amount": 9.0} if tool == "refund_order" else {"body": "Something else."}
    return grant(desk, tool, {**arguments, **changed})


REFUSED: list[tuple[str, Make, bool, str]] = [
    ("no grant", lambda d, t, a: None, True, "no grant in _meta 'io.keel/grant'"),
    ("other arguments", _other, True, "the grant approves other arguments"),
    ("another run", lambda d, t, a: grant(d, t, a, run="wf-other"), True, "run 'wf-other'"),
    ("expired", lambda d, t, a: grant(d, t, a, now=time.time() - 600), True, "token expired"),
    ("access token as grant", lambda d, t, a: grant(d, t, a, typ=names.TYP_ACCESS_TOKEN), True,
     "wrong token type 'at+jwt'"),
    ("unknown key", lambda d, t, a: grant(d, t, a, signer=d.stranger), True,
     "unknown signing key"),
    ("another tool", lambda d, t, a: grant(d, t, a, grant_tool="update_ticket"), True,
     "the grant is for 'update_ticket'"),
    ("another server", lambda d, t, a: grant(d, t, a, aud="http://127.0.0.1:1/mcp"), True,
     "another audience"),
    ("no idempotency key", lambda d, t, a: grant(d, t, a), False, "no idempotency key"),
]  # fmt: skip
IDS = [case for case, *_ in REFUSED]


@pytest.mark.parametrize(("case", "make", "keyed", "reason"), REFUSED, ids=IDS)
@pytest.mark.parametrize("tool", ["refund_order", "send_email"])
async def test_a_call_without_a_valid_grant_has_no_effect(
    desk: Desk, tool: str, case: str, make: Make, keyed: bool, reason: str
) -> None:
    label = f"refused: {case}"
    arguments = refund(label) if tool == "refund_order" else email(label)
    key = f"{RUN}:1:{tool}-{case.replace(' ', '-')}" if keyed else None
    result = await call(desk.url, tool, arguments, key, make(desk, tool, arguments))
    refused(result, tool, reason)
    assert (refunds(desk, label) if tool == "refund_order" else emails(desk, label)) == 0
    assert key is None or claims(desk, key) == 0  # refused before any claim


async def test_the_approved_refund_runs_once_and_its_grant_only_for_its_call(desk: Desk) -> None:
    arguments = refund("approved")
    key = f"{RUN}:3:call_ok"

    def fresh() -> str:  # each attempt of the worker mints a new grant for the decision
        return minted(desk, "refund_order", arguments, "apr-ok")

    first = await call(desk.url, "refund_order", arguments, key, fresh())
    assert not first.is_error, text(first)
    assert refunds(desk, "approved") == 1
    # A retry (Temporal's, or a human's resolve): a fresh grant for the same decision and key.
    again = await call(desk.url, "refund_order", arguments, key, fresh())
    assert again.structured_content == first.structured_content
    assert refunds(desk, "approved") == 1
    # The same decision under another idempotency key: a replayed or copied grant.
    other = f"{RUN}:4:call_copy"
    reused = await call(desk.url, "refund_order", arguments, other, fresh())
    refused(reused, "refund_order", "decision 'apr-ok' was already used for another call")
    assert refunds(desk, "approved") == 1
    assert claims(desk, other) == 0
    uses = count(desk.db, f"SELECT COUNT(*) FROM {GRANT_TABLE} WHERE decision = 'apr-ok'"
                          " AND key = ? AND approver = 'alice'", key)  # fmt: skip
    assert uses == 1
    lines = [json.loads(line) for line in desk.log.read_text().splitlines() if "grant." in line]
    assert any(line["event"] == "grant.accepted" and line.get("decision") == "apr-ok"
               and line.get("idempotency_key") == key for line in lines)  # fmt: skip


async def test_the_approved_email_is_sent_once(desk: Desk) -> None:
    arguments = email("approved email")
    key = f"{RUN}:5:call_mail"
    for _ in range(2):
        token = minted(desk, "send_email", arguments, "apr-mail")
        result = await call(desk.url, "send_email", arguments, key, token)
        assert not result.is_error, text(result)
    assert emails(desk, "approved email") == 1


async def test_tools_that_need_no_approval_run_without_a_grant(desk: Desk) -> None:
    arguments = {"ticket_id": "TCK-5001", "note": "grant-free note", "author": "agent"}
    result = await call(desk.url, "add_ticket_note", arguments, f"{RUN}:6:call_note", None)
    assert not result.is_error, text(result)
    assert count(desk.db, "SELECT COUNT(*) FROM ticket_notes WHERE body = 'grant-free note'") == 1


async def test_a_desk_without_grant_keys_refuses_every_grant(tmp_path: Path) -> None:
    """--insecure-no-auth and no explicit grant keys: the tools that require approval refuse
    every call, also one with a grant the worker's key signed."""
    with _serve(tmp_path, "keyless", [], NO_TOKENS) as desk:
        arguments = refund("keyless")
        token = minted(desk, "refund_order", arguments, "apr-keyless")
        result = await call(desk.url, "refund_order", arguments, f"{RUN}:7:call_0", token)
        refused(result, "refund_order", "this server has no grant keys")
        assert refunds(desk, "keyless") == 0


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--grant-jwks", "/nonexistent/jwks.json"], {}, "grant keys: cannot read JWKS"),
        ([], {"SUPPORT_DESK_APPROVAL_TOOLS": "refund_order,get_order"},
         "get_order is not a write tool"),
    ],
)  # fmt: skip
def test_bad_grant_settings_exit_2_with_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    argv = python_argv("-m", "mcp_servers.support_desk", "--port", str(free_port()),
                       "--db", str(tmp_path / "d.db"), *args)  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={**_env(), **NO_TOKENS, **env})  # fmt: skip
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("support-desk: error: ") and expected in line


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SUPPORT_DESK_")}


# ---- end to end: the worker of the test stack mints the grant of a human's decision --------


def desk_rows(stack: Stack, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(stack.config.support_desk_db)) as conn:
        return [tuple(row) for row in conn.execute(sql, params).fetchall()]


def refunds_of(stack: Stack, order_id: str) -> list[tuple[Any, ...]]:
    return desk_rows(stack, "SELECT amount_cents FROM refunds WHERE order_id = ? ORDER BY id",
                     order_id)  # fmt: skip


def accepted_in_log(stack: Stack, decision: str) -> list[dict[str, Any]]:
    lines = stack.log_path("support_desk").read_text().splitlines()
    events = [json.loads(line) for line in lines if '"grant.' in line]
    return [e for e in events if e["event"] == "grant.accepted" and e.get("decision") == decision]


async def test_a_human_approval_reaches_the_desk_as_a_grant(
    client: TemporalClient, stack: Stack
) -> None:
    before = refunds_of(stack, "ORD-1041")
    handle = await start(client, "approvals_grant")
    [request] = await pending(handle)
    outcome = await decide(handle, request, decision="approve")
    assert outcome.status == "executed"
    result = await handle.result()
    assert result.status == "completed"
    assert refunds_of(stack, "ORD-1041")[len(before) :] == [(200,)]
    step = next(s for s in result.steps if s.name == "refund_order")
    assert step.outcome == "ok"
    uses = desk_rows(stack, f"SELECT run, tool, key, approver FROM {GRANT_TABLE}"
                            " WHERE decision = ?", request.approval_id)  # fmt: skip
    assert uses == [(handle.id, "refund_order", step.idempotency_key, "alice")]
    [line] = accepted_in_log(stack, request.approval_id)
    assert (line["tool"], line["run"], line["approver"]) == ("refund_order", handle.id, "alice")


async def test_an_edited_approval_grants_the_edited_arguments(
    client: TemporalClient, stack: Stack
) -> None:
    before = refunds_of(stack, "ORD-1041")
    handle = await start(client, "approvals_grant")
    [request] = await pending(handle)
    edited = {**request.arguments, "amount": 1.5}
    outcome = await decide(handle, request, decision="edit", arguments=edited)
    assert outcome.status == "executed with edited arguments"
    await handle.result()
    assert refunds_of(stack, "ORD-1041")[len(before) :] == [(150,)]
    assert len(accepted_in_log(stack, request.approval_id)) == 1


async def test_a_refund_no_human_approved_is_refused_by_the_desk(
    client: TemporalClient, stack: Stack
) -> None:
    """A profile that waves the refund through stands in for a buggy workflow path: the
    worker sends it without a grant, and the desk refuses it."""
    before = refunds_of(stack, "ORD-1041")
    handle = await start(client, "grant_unapproved")
    result = await handle.result()
    step = next(s for s in result.steps if s.name == "refund_order")
    assert step.outcome == "tool_error"
    assert "refund_order needs an approval grant: no grant" in (step.detail or "")
    assert refunds_of(stack, "ORD-1041") == before
