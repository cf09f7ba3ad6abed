"""The real support-desk MCP server, in this process.

The validation tests check Keel's verdicts against the server's own tool schemas and
answers. ``create_server`` builds exactly the server ``python -m mcp_servers.support_desk``
serves (on a fresh, seeded SQLite file), and the MCP SDK's ``Client`` talks to a server
object in memory, so ``list_tools`` and ``call_tool`` answer as over HTTP, without a process.
"""

from __future__ import annotations

import pytest
from mcp.server.mcpserver import MCPServer

from mcp_servers.support_desk.db import SupportDesk
from mcp_servers.support_desk.server import create_server


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> MCPServer:
    """A support-desk server on a fresh, seeded database; pass it to ``mcp.Client``."""
    support_desk = SupportDesk(tmp_path_factory.mktemp("desk") / "desk.db")
    support_desk.initialize()
    return create_server(support_desk)
