"""The two MCP servers, tested as real subprocesses over streamable HTTP (and once over stdio).

Each server starts once per module on a free port with its own temporary SQLite file; tests
talk to it with a real ``mcp.Client`` (with an access token for every scope, tests/auth.py)
and check side effects by reading the SQLite file directly. Tests that write use different
orders/tickets so their order does not matter.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import CallToolResult, Tool

from keel.procs import python_argv
from mcp_servers.support_desk.db import SupportDesk
from tests.auth import bearer, connect, mint, server_env
from tests.helpers import (
    DESK_TOOLS,
    REPO,
    mcp_server,
)

TABLES = (
    "customers",
    "products",
    "orders",
    "order_items",
    "refunds",
    "emails",
    "tickets",
    "ticket_notes",
)
LATENCY_MS = 400


def _start(
    name: str, module: str, tmp: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    """A server checking tokens against tests/auth.py's keys; yields its base URL."""
    with mcp_server(name, module, tmp, *args, env={**server_env(), **(env or {})}) as url:
        yield url.removesuffix("/mcp")


@pytest.fixture(scope="module")
def desk_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("desk") / "data" / "support_desk.db"


# These tests are about the tools' contract (schemas, domain errors, effects), so their desks
# require no approval grant for refund_order and send_email (SUPPORT_DESK_APPROVAL_TOOLS
# empty); grants are tested against the real desk in tests/integration/test_grants.py.
NO_GRANTS = {"SUPPORT_DESK_APPROVAL_TOOLS": ""}


@pytest.fixture(scope="module")
def desk(desk_db: Path) -> Iterator[str]:
    """Base URL of a support-desk server on a fresh database (created and seeded by it)."""
    yield from _start(
        "support_desk", "mcp_servers.support_desk", desk_db.parent.parent, "--db", str(desk_db),
        env=NO_GRANTS,
    )  # fmt: skip


@pytest.fixture(scope="module")
def slow_desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("slow-desk")
    env = {"SUPPORT_DESK_LATENCY_MS": str(LATENCY_MS), **NO_GRANTS}
    yield from _start(
        "slow_desk", "mcp_servers.support_desk", tmp, "--db", str(tmp / "d.db"), env=env
    )


@pytest.fixture(scope="module")
def knowledge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _start("knowledge", "mcp_servers.knowledge", tmp_path_factory.mktemp("kb"))


async def call(base: str, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    async with connect(f"{base}/mcp") as client:
        return await client.call_tool(tool, arguments)


async def tools_of(base: str) -> dict[str, Tool]:
    async with connect(f"{base}/mcp") as client:
        return {tool.name: tool for tool in (await client.list_tools()).tools}


def text(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def ok(result: CallToolResult) -> dict[str, Any]:
    """The structured content of a successful result (which the text content mirrors)."""
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    assert json.loads(text(result)) == result.structured_content
    return result.structured_content


def snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read straight from the SQLite file."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in TABLES}


# ---- support desk: contract ------------------------------------------------------------


async def test_desk_lists_exactly_the_documented_tools(desk: str) -> None:
    tools = await tools_of(desk)
    assert set(tools) == set(DESK_TOOLS)
    for tool in tools.values():
        props = tool.input_schema["properties"]
        assert tool.description and tool.title
        assert all(p.get("description") for p in props.values()), tool.name


def bounds(prop: dict[str, Any], *keys: str) -> tuple[Any, ...]:
    return tuple(prop.get(key) for key in keys)


async def test_desk_input_schemas_carry_patterns_enums_and_bounds(desk: str) -> None:
    props = {name: tool.input_schema["properties"] for name, tool in (await tools_of(desk)).items()}
    assert props["get_customer"]["customer_id"]["pattern"] == r"^CUS-\d{4}$"
    assert props["get_order"]["order_id"]["pattern"] == r"^ORD-\d{4}$"
    assert props["update_ticket"]["ticket_id"]["pattern"] == r"^TCK-\d{4}$"
    search = props["search_customers"]
    assert bounds(search["query"], "minLength", "maxLength") == (1, 100)
    assert bounds(search["limit"], "minimum", "maximum", "default") == (1, 20, 5)
    orders = props["list_orders"]
    assert orders["status"]["anyOf"][0]["enum"] == [
        "pending", "paid", "shipped", "delivered", "cancelled", "refunded"
    ]  # fmt: skip
    assert bounds(orders["limit"], "minimum", "maximum", "default") == (1, 50, 10)
    refund = props["refund_order"]
    assert bounds(refund["amount"], "type", "exclusiveMinimum", "maximum", "multipleOf") == (
        "number", 0, 10000, 0.01
    )  # fmt: skip
    assert refund["reason"]["enum"] == [
        "damaged", "not_received", "wrong_item", "changed_mind", "other"
    ]  # fmt: skip
    assert refund["note"]["anyOf"][0]["maxLength"] == 500
    email = props["send_email"]
    assert bounds(email["subject"], "minLength", "maxLength") == (1, 200)
    assert bounds(email["body"], "minLength", "maxLength") == (1, 5000)
    assert props["update_ticket"]["status"]["enum"] == ["open", "pending", "resolved", "closed"]
    note = props["add_ticket_note"]
    assert bounds(note["note"], "minLength", "maxLength") == (1, 2000)
    assert note["author"]["default"] == "agent"


# tool: (readOnlyHint, destructiveHint, idempotentHint, openWorldHint)
DESK_HINTS = {
    "search_customers": (True, None, None, False),
    "get_customer": (True, None, None, False),
    "list_orders": (True, None, None, False),
    "get_order": (True, None, None, False),
    "refund_order": (False, True, False, False),
    "send_email": (False, False, False, True),
    "update_ticket": (False, True, True, False),
    "add_ticket_note": (False, False, False, False),
    "create_ticket": (False, False, False, False),
}


async def test_desk_annotations_are_truthful(desk: str) -> None:
    hints = {}
    for name, tool in (await tools_of(desk)).items():
        a = tool.annotations
        assert a is not None, name
        hints[name] = (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint)
    assert hints == DESK_HINTS


def test_healthz_names_the_server(desk: str) -> None:
    response = httpx2.get(f"{desk}/healthz", timeout=5.0)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "server": "support-desk"}


def test_loopback_server_rejects_foreign_host_header(desk: str) -> None:
    """DNS-rebinding protection: localhost names pass the Host check, other names get 421."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        **bearer(mint(None, f"{desk}/mcp")),
    }
    port = desk.rsplit(":", 1)[1]
    codes = {}
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"attacker.example:{port}"):
        response = httpx2.post(f"{desk}/mcp", json=body, headers={**headers, "host": host})
        codes[host.split(":")[0]] = response.status_code
    assert codes["attacker.example"] == 421
    assert codes["localhost"] != 421 and codes["127.0.0.1"] != 421


# ---- support desk: seeded reads ----------------------------------------------------------


async def test_get_order_returns_the_seeded_demo_order(desk: str) -> None:
    order = ok(await call(desk, "get_order", {"order_id": "ORD-1042"}))
    assert order["customer_id"] == "CUS-1001"
    assert order["status"] == "delivered"
    assert (order["paid"], order["refunded"], order["refundable"]) == (42.0, 0.0, 42.0)
    assert order["total"] == 42.0 and order["currency"] == "USD"
    assert [(i["product_id"], i["name"], i["quantity"]) for i in order["items"]] == [
        ("PRD-201", "Trail Running Shoes", 1)
    ]
    assert (order["placed_at"], order["delivered_at"]) == ("2026-11-02", "2026-11-06")
    assert order["refunds"] == []

    james = ok(await call(desk, "get_order", {"order_id": "ORD-1050"}))
    assert (james["customer_id"], james["status"]) == ("CUS-1002", "delivered")
    assert james["paid"] == 129.99


async def test_customer_search_profile_and_orders(desk: str) -> None:
    found = ok(await call(desk, "search_customers", {"query": "LOPEZ"}))
    assert [c["customer_id"] for c in found["customers"]] == ["CUS-1001"]
    by_email = ok(await call(desk, "search_customers", {"query": "james.okafor@"}))
    assert [c["name"] for c in by_email["customers"]] == ["James Okafor"]
    none = ok(await call(desk, "search_customers", {"query": "nobody-here"}))
    assert none["customers"] == []

    maria = ok(await call(desk, "get_customer", {"customer_id": "CUS-1001"}))
    assert (maria["name"], maria["email"], maria["tier"]) == (
        "Maria Lopez",
        "maria.lopez@example.com",
        "gold",
    )
    assert maria["order_count"] == 2 and "TCK-5001" in maria["open_ticket_ids"]

    orders = ok(await call(desk, "list_orders", {"customer_id": "CUS-1001"}))
    assert [(o["order_id"], o["status"], o["total"]) for o in orders["orders"]] == [
        ("ORD-1043", "shipped", 18.5),
        ("ORD-1042", "delivered", 42.0),
    ]
    shipped = ok(await call(desk, "list_orders", {"customer_id": "CUS-1001", "status": "shipped"}))
    assert [o["order_id"] for o in shipped["orders"]] == ["ORD-1043"]


def test_seed_is_idempotent_on_restart(desk: str, desk_db: Path) -> None:
    """Starting again on a seeded file (as a restarted server would) adds no rows."""
    before = snapshot(desk_db)
    assert SupportDesk(desk_db).initialize() is False
    assert snapshot(desk_db) == before
    with closing(sqlite3.connect(desk_db)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        ticket = conn.execute("SELECT subject, status FROM tickets WHERE ticket_id = 'TCK-5001'")
        assert ticket.fetchone() == ("Shoes arrived damaged", "open")


# ---- support desk: writes and refusals ---------------------------------------------------


async def test_refund_within_bounds_is_recorded(desk: str, desk_db: Path) -> None:
    part = {"order_id": "ORD-1048", "amount": 10.25, "reason": "damaged"}
    first = ok(await call(desk, "refund_order", part))
    assert first["refund_id"].startswith("RFD-")
    remaining = first["order_refundable_remaining"]
    assert (first["amount"], first["order_status"], remaining) == (10.25, "delivered", 50.25)
    with closing(sqlite3.connect(desk_db)) as conn:
        row = conn.execute(
            "SELECT order_id, amount_cents, reason FROM refunds WHERE id = ?",
            (int(first["refund_id"].removeprefix("RFD-")),),
        ).fetchone()
        assert row == ("ORD-1048", 1025, "damaged")
        assert conn.execute(
            "SELECT refunded_cents, status FROM orders WHERE order_id = 'ORD-1048'"
        ).fetchone() == (1025, "delivered")

    rest = {"order_id": "ORD-1048", "amount": 50.25, "reason": "damaged", "note": "rest"}
    ok(await call(desk, "refund_order", rest))
    order = ok(await call(desk, "get_order", {"order_id": "ORD-1048"}))
    assert (order["status"], order["refunded"], order["refundable"]) == ("refunded", 60.5, 0.0)
    assert [r["amount"] for r in order["refunds"]] == [10.25, 50.25]


def refund(order_id: str, amount: float, reason: str = "other") -> dict[str, Any]:
    return {"order_id": order_id, "amount": amount, "reason": reason}


EXCEEDS = (
    "Refund of 50.00 exceeds the refundable amount 42.00 for ORD-1042"
    " (paid 42.00, already refunded 0.00)."
)
NO_CUSTOMER = "Customer CUS-9999 does not exist."
REFUSALS = [
    ("refund_order", refund("ORD-1042", 50, "damaged"), EXCEEDS),
    ("refund_order", refund("ORD-9999", 5), "Order ORD-9999 does not exist."),
    ("get_order", {"order_id": "ORD-9999"}, "Order ORD-9999 does not exist."),
    ("send_email", {"customer_id": "CUS-9999", "subject": "S", "body": "B"}, NO_CUSTOMER),
    ("get_customer", {"customer_id": "CUS-9999"}, NO_CUSTOMER),
    ("refund_order", refund("ORD-1045", 5), "Order ORD-1045 is pending: no payment"),
    ("refund_order", refund("ORD-1046", 5), "Order ORD-1046 was cancelled"),
    ("update_ticket", {"ticket_id": "TCK-9999", "status": "closed"}, "TCK-9999 does not exist."),
    # Schema violations are refused by the server before the tool runs.
    ("refund_order", refund("ORD-1042", 0.001), "multiple of 0.01"),
    ("refund_order", refund("ORD-1042", 10, "bored"), "reason"),
    ("get_order", {"order_id": "1042"}, "order_id"),
]


REFUSAL_IDS = [
    "exceeds-refundable", "refund-unknown-order", "unknown-order", "email-unknown-customer",
    "unknown-customer", "refund-pending", "refund-cancelled", "unknown-ticket",
    "amount-precision", "reason-enum", "order-id-pattern",
]  # fmt: skip


@pytest.mark.parametrize(("tool", "arguments", "message"), REFUSALS, ids=REFUSAL_IDS)
async def test_refusals_are_tool_errors_without_side_effects(
    desk: str, desk_db: Path, tool: str, arguments: dict[str, Any], message: str
) -> None:
    before = snapshot(desk_db)
    result = await call(desk, tool, arguments)
    assert result.is_error
    assert message in text(result)
    assert snapshot(desk_db) == before


async def test_send_email_writes_the_outbox(desk: str, desk_db: Path) -> None:
    arguments = {"customer_id": "CUS-1002", "subject": "About your watch", "body": "Hi James"}
    email = ok(await call(desk, "send_email", arguments))
    assert (email["to"], email["status"]) == ("james.okafor@example.com", "sent")
    with closing(sqlite3.connect(desk_db)) as conn:
        row = conn.execute(
            "SELECT customer_id, to_address, subject, body FROM emails WHERE id = ?",
            (int(email["email_id"].removeprefix("EML-")),),
        ).fetchone()
    assert row == ("CUS-1002", "james.okafor@example.com", "About your watch", "Hi James")


async def test_ticket_status_update_is_idempotent_and_notes_append(
    desk: str, desk_db: Path
) -> None:
    first = ok(await call(desk, "update_ticket", {"ticket_id": "TCK-5004", "status": "resolved"}))
    assert (first["previous_status"], first["status"]) == ("open", "resolved")
    before = snapshot(desk_db)
    again = ok(await call(desk, "update_ticket", {"ticket_id": "TCK-5004", "status": "resolved"}))
    assert again["previous_status"] == "resolved"
    assert snapshot(desk_db) == before  # same arguments, no further effect

    note = ok(await call(desk, "add_ticket_note", {"ticket_id": "TCK-5004", "note": "Retried."}))
    assert (note["author"], note["body"]) == ("agent", "Retried.")
    with closing(sqlite3.connect(desk_db)) as conn:
        notes = conn.execute(
            "SELECT author, body FROM ticket_notes WHERE ticket_id = 'TCK-5004' ORDER BY id"
        ).fetchall()
    assert notes[-1] == ("agent", "Retried.") and len(notes) == 2


async def test_create_ticket_opens_a_ticket_with_its_body_as_first_note(
    desk: str, desk_db: Path
) -> None:
    anyone = ok(await call(desk, "create_ticket", {"subject": "Run halted", "body": "Facts."}))
    assert (anyone["customer_id"], anyone["status"], anyone["priority"]) == (None, "open", "normal")
    assert anyone["note_count"] == 1
    arguments = {"subject": "Refund stuck", "body": "See run.", "order_id": "ORD-1042",
                 "priority": "urgent"}  # fmt: skip
    by_order = ok(await call(desk, "create_ticket", arguments))
    assert by_order["customer_id"] == "CUS-1001"  # the order's customer
    assert int(by_order["ticket_id"][4:]) == int(anyone["ticket_id"][4:]) + 1
    with closing(sqlite3.connect(desk_db)) as conn:
        note = conn.execute(
            "SELECT author, body FROM ticket_notes WHERE ticket_id = ?", (by_order["ticket_id"],)
        ).fetchall()
    assert note == [("keel", "See run.")]
    before = snapshot(desk_db)
    wrong = await call(desk, "create_ticket", {**arguments, "customer_id": "CUS-1002"})
    assert wrong.is_error and "belongs to CUS-1001" in text(wrong)
    assert snapshot(desk_db) == before


async def test_latency_env_delays_calls_but_concurrent_calls_overlap(slow_desk: str) -> None:
    async with connect(f"{slow_desk}/mcp") as client:
        started = time.monotonic()
        single = await client.call_tool("get_order", {"order_id": "ORD-1042"})
        single_s = time.monotonic() - started
        started = time.monotonic()
        results = await asyncio.gather(
            *(client.call_tool("get_order", {"order_id": "ORD-1042"}) for _ in range(4))
        )
        parallel_s = time.monotonic() - started
    assert not single.is_error and not any(r.is_error for r in results)
    assert single_s >= LATENCY_MS / 1000
    # Each call sleeps >= one latency, so four calls served one after another take >= 4
    # latencies: finishing sooner proves they overlapped (no speed claim beyond that bound).
    assert parallel_s < 4 * LATENCY_MS / 1000, parallel_s


async def test_stdio_transport_serves_the_same_tools(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_servers.support_desk", "--transport", "stdio", "--db", db],
        cwd=str(REPO),
    )
    async with Client(params) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        order = await client.call_tool("get_order", {"order_id": "ORD-1043"})
    assert names == set(DESK_TOOLS)
    assert order.structured_content is not None and order.structured_content["total"] == 18.5


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--port", "70000"], "port must be in 1..65535"),
        (["--transport", "tcp"], "invalid choice"),
        (["--db", "{tmp}"], "cannot use database"),
        (["--ledger-ttl-seconds", "0"], "must be > 0"),
    ],
)
def test_bad_cli_input_exits_2_with_one_line(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    argv = python_argv("-m", "mcp_servers.support_desk", *[a.format(tmp=tmp_path) for a in args])
    env = {**os.environ, **server_env()}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO, env=env)
    assert done.returncode == 2
    assert expected in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


# ---- knowledge -----------------------------------------------------------------------------


async def test_knowledge_tools_schemas_and_annotations(knowledge: str) -> None:
    tools = await tools_of(knowledge)
    assert set(tools) == {"search_knowledge", "get_article"}
    search = tools["search_knowledge"].input_schema["properties"]
    assert bounds(search["query"], "minLength", "maxLength") == (1, 200)
    assert bounds(search["limit"], "minimum", "maximum", "default") == (1, 10, 3)
    pattern = tools["get_article"].input_schema["properties"]["article_id"]["pattern"]
    assert pattern == "^[a-z0-9-]{1,64}$"
    for tool in tools.values():
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is True
        assert tool.annotations.idempotent_hint is True
        assert tool.annotations.open_world_hint is False


async def test_search_ranks_refund_articles_first(knowledge: str) -> None:
    found = ok(await call(knowledge, "search_knowledge", {"query": "refund damaged shoes"}))
    hits = found["results"]
    assert hits and hits[0]["article_id"] in {"refund-policy", "damaged-items"}
    assert len(hits) <= 3
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0
    assert all(h["title"] and h["snippet"] for h in hits)

    question = {"query": "how long does shipping take"}
    shipping = ok(await call(knowledge, "search_knowledge", question))
    assert shipping["results"][0]["article_id"] == "shipping-times"
    nothing = await call(knowledge, "search_knowledge", {"query": "xylophone quantum"})
    assert ok(nothing)["results"] == []


async def test_get_article_returns_policy_text_or_lists_valid_ids(knowledge: str) -> None:
    policy = ok(await call(knowledge, "get_article", {"article_id": "refund-policy"}))
    assert policy["title"] == "Refund policy"
    for fact in ("30 days of delivery", "original payment method", "100.00 USD", "5-7 business"):
        assert fact in policy["text"]
    damaged = ok(await call(knowledge, "get_article", {"article_id": "damaged-items"}))
    assert "14 days" in damaged["text"] and "under 50.00" in damaged["text"]

    missing = await call(knowledge, "get_article", {"article_id": "no-such-article"})
    assert missing.is_error
    assert "no-such-article" in text(missing) and "refund-policy" in text(missing)
    bad = await call(knowledge, "get_article", {"article_id": "Refund Policy"})
    assert bad.is_error and "article_id" in text(bad)
