"""Semantic lookups as the workflow reads them (``lookup_result``), from real MCP answers.

Two servers answer in this process through the MCP SDK's in-memory client: the support desk
(structured results) and a third-party ``get_order`` that answers in plain text only, as many
servers do. A plain-text answer has no data a check could use: an ``exists`` check on it
fails (an invented id must not pass), and an approver is shown the text, never ``{}``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from keel.contracts import Check, Lookup, Principal, ServerSettings, ToolCall, ToolPolicy, ToolSpec
from workflows.tools.check import CheckedCall
from workflows.tools.mcp_calls import identity, lookup_result
from workflows.tools.validation import LookupResult, PreparedCall, Rejection, check_semantics

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
REFUND = ToolSpec(server="desk", name="refund_order", input_schema={"type": "object"})
POLICY = ToolPolicy(
    lookups=[Lookup(name="order", tool="get_order", arguments={"order_id": "$order_id"})],
    checks=[Check(argument="order_id", exists="order", message="use an order id you looked up")],
)
TEXT = "Order ORD-7777: we could not find that one, sorry!\nTry again later."


@pytest.fixture(scope="module")
def plain_text_server() -> MCPServer:
    server = MCPServer("plain")

    @server.tool(annotations=ToolAnnotations(read_only_hint=True), structured_output=False)
    def get_order(order_id: str) -> str:
        return TEXT.replace("ORD-7777", order_id)

    return server


async def looked_up(server: MCPServer, order_id: str) -> LookupResult:
    async with Client(server) as client:
        return lookup_result(await client.call_tool("get_order", {"order_id": order_id}))


def refund(order_id: str) -> PreparedCall:
    arguments = {"order_id": order_id, "amount": 10.0}
    return PreparedCall(ToolCall(id="c1", name="refund_order", arguments=json.dumps(arguments)),
                        REFUND, arguments)  # fmt: skip


async def test_a_plain_text_lookup_fails_the_exists_check(plain_text_server: MCPServer) -> None:
    result = await looked_up(plain_text_server, "ORD-7777")
    outcome = check_semantics(refund("ORD-7777"), POLICY, {"order": result}, NOW)
    assert isinstance(outcome, Rejection), "an id nobody could verify passed the exists check"
    assert outcome.layer == "semantic"
    assert outcome.field == "order_id"
    assert "ORD-7777 could not be verified: get_order answered without structured data" in (
        outcome.message
    )
    assert "we could not find that one, sorry! Try again later." in outcome.message  # one line
    assert outcome.hint == "order_id: use an order id you looked up"
    assert (result.ok, result.data, result.failed) == (True, None, True)


async def test_an_approver_sees_the_raw_text_of_a_plain_text_lookup(
    plain_text_server: MCPServer,
) -> None:
    result = await looked_up(plain_text_server, "ORD-1042")
    checked = CheckedCall(refund("ORD-1042"), {"order": result})
    assert checked.context() == {"order": TEXT.replace("ORD-7777", "ORD-1042")}


async def test_a_structured_lookup_still_passes_and_is_the_context(desk: MCPServer) -> None:
    async with Client(desk) as client:
        result = lookup_result(await client.call_tool("get_order", {"order_id": "ORD-1042"}))
    assert result.ok and not result.failed and result.data is not None
    assert check_semantics(refund("ORD-1042"), POLICY, {"order": result}, NOW) is None
    context = CheckedCall(refund("ORD-1042"), {"order": result}).context()
    assert context["order"]["order_id"] == "ORD-1042"  # type: ignore[index]


async def test_a_lookup_that_failed_is_still_not_found(desk: MCPServer) -> None:
    async with Client(desk) as client:
        result = lookup_result(await client.call_tool("get_order", {"order_id": "ORD-9999"}))
    assert not result.ok and result.failed
    outcome = check_semantics(refund("ORD-9999"), POLICY, {"order": result}, NOW)
    assert isinstance(outcome, Rejection) and "ORD-9999 does not exist" in outcome.message


def test_only_a_server_with_an_identity_gets_the_principal() -> None:
    """The factory argument is the principal (plain data: it is in history), never a token;
    the profile's scopes ride along; servers without ``identity`` get None (pooled)."""
    principal = Principal(id="alice", roles=["agent"])
    desk = ServerSettings(name="desk", identity=True)
    assert identity(desk, principal) == {"id": "alice", "roles": ["agent"]}
    scoped = ServerSettings(name="desk", identity=True, scopes=["desk:read"])
    assert identity(scoped, principal) == {
        "id": "alice",
        "roles": ["agent"],
        "scopes": ["desk:read"],
    }
    assert identity(ServerSettings(name="desk"), principal) is None  # recorded before: None
    assert identity(ServerSettings(name="desk", identity=False), principal) is None
