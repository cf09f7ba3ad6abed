"""The MCP contract of both servers, in process (the MCP SDK's in-memory client).

Side-effecting tools validate strictly: a string where the schema says number is refused
before the tool runs, never coerced into a refund. ``prompts/get`` errors are JSON-RPC
-32602, the prompts capability comes with real prompts, and ``serverInfo.version`` is Keel's.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from mcp_servers.knowledge.server import create_server as create_knowledge
from mcp_servers.support_desk.db import SupportDesk
from mcp_servers.support_desk.seed import REFUNDS
from mcp_servers.support_desk.server import create_server as create_desk


@pytest.fixture
def desk_db(tmp_path: Path) -> Path:
    path = tmp_path / "desk.db"
    SupportDesk(path).initialize()
    return path


def refunds(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM refunds").fetchone()[0])


COERCIBLE: list[tuple[str, dict[str, Any], str]] = [
    ("refund_order", {"order_id": "ORD-1042", "amount": "5", "reason": "damaged"}, "amount"),
    ("refund_order", {"order_id": "ORD-1042", "amount": "5.00", "reason": "damaged"}, "amount"),
    ("refund_order", {"order_id": "ORD-1042", "amount": True, "reason": "damaged"}, "amount"),
    ("refund_order", {"order_id": "ORD-1042", "amount": "1e1", "reason": "damaged"}, "amount"),
    ("send_email", {"customer_id": "CUS-1001", "subject": 5, "body": "x"}, "subject"),
]


@pytest.mark.parametrize(("tool", "arguments", "field"), COERCIBLE)
async def test_write_tools_refuse_coercible_arguments(
    desk_db: Path, tool: str, arguments: dict[str, Any], field: str
) -> None:
    before = refunds(desk_db)
    async with Client(create_desk(SupportDesk(desk_db))) as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error
    text = "".join(getattr(block, "text", "") for block in result.content)
    assert field in text and "validation error" in text
    assert refunds(desk_db) == before


async def test_a_number_is_still_a_valid_amount(desk_db: Path) -> None:
    # About argument validation, not approvals: this desk requires no grant for refund_order
    # (grants are tested against the real server in tests/integration/test_grants.py).
    async with Client(create_desk(SupportDesk(desk_db), approval_tools=())) as client:
        for amount in (5, 5.5):
            arguments = {"order_id": "ORD-1042", "amount": amount, "reason": "damaged"}
            result = await client.call_tool("refund_order", arguments)
            assert not result.is_error, result.content
    assert refunds(desk_db) == len(REFUNDS) + 2  # the seeded refunds, two new


def servers(desk_db: Path) -> dict[str, Any]:
    return {"support-desk": create_desk(SupportDesk(desk_db)), "knowledge": create_knowledge()}


async def test_server_info_version_is_keels_package_version(desk_db: Path) -> None:
    for name, server in servers(desk_db).items():
        async with Client(server) as client:
            info = client.server_info
            assert info is not None
            assert (info.name, info.version) == (name, metadata.version("keel"))


async def test_prompts_capability_comes_with_real_prompts(desk_db: Path) -> None:
    expected = {"support-desk": "handle_refund_request", "knowledge": "answer_from_policy"}
    for name, server in servers(desk_db).items():
        async with Client(server) as client:
            assert client.server_capabilities.prompts is not None
            prompts = [p.name for p in (await client.list_prompts()).prompts]
            assert prompts == [expected[name]]
    async with Client(create_desk(SupportDesk(desk_db))) as client:
        got = await client.get_prompt("handle_refund_request", {"order_id": "ORD-1042"})
    assert "get_order" in str(got.messages[0].content) and "ORD-1042" in str(got.messages)


async def test_unknown_prompt_and_missing_argument_are_invalid_params(desk_db: Path) -> None:
    for server in servers(desk_db).values():
        async with Client(server) as client:
            with pytest.raises(MCPError) as unknown:
                await client.get_prompt("no_such_prompt")
            assert unknown.value.error.code == INVALID_PARAMS
            assert "Unknown prompt: 'no_such_prompt'" in unknown.value.error.message
            [prompt] = (await client.list_prompts()).prompts
            with pytest.raises(MCPError) as missing:
                await client.get_prompt(prompt.name, {})
            assert missing.value.error.code == INVALID_PARAMS
