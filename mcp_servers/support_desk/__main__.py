"""``python -m mcp_servers.support_desk`` — serve the support desk over HTTP or stdio.

Usage::

    python -m mcp_servers.support_desk [--transport http|stdio] [--host 127.0.0.1]
                                       [--port 8201] [--db PATH] [--allowed-host HOST:*]

Environment:

* ``SUPPORT_DESK_DB`` — database file when ``--db`` is not given (default
  ``.keel/support_desk.db``, relative to the working directory; the parent is created).
  The schema is created and seeded on start if the database is empty; restarting never
  duplicates rows.
* ``SUPPORT_DESK_LATENCY_MS`` — integer >= 0 (default 0): an artificial delay
  (``asyncio.sleep``) added to every tool call, so tests and benchmarks can show that
  concurrent calls overlap instead of queueing.

HTTP serves MCP at ``/mcp`` and a health check at ``GET /healthz``. Bad input (port out of
range, unusable database path, malformed env var) prints one error line and exits with 2.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from mcp.server.mcpserver import MCPServer

from mcp_servers.common import CliError, latency_ms_from_env, serve
from mcp_servers.support_desk.db import SupportDesk
from mcp_servers.support_desk.server import SERVER_NAME, create_server

DEFAULT_PORT = 8201
DEFAULT_DB = Path(".keel") / "support_desk.db"


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help=f"SQLite file (default: $SUPPORT_DESK_DB or {DEFAULT_DB})",
    )


def _build(args: argparse.Namespace) -> MCPServer:
    """Open (create, seed) the database named by the arguments and build the server."""
    path: Path = args.db or Path(os.environ.get("SUPPORT_DESK_DB") or DEFAULT_DB)
    latency = latency_ms_from_env("SUPPORT_DESK_LATENCY_MS")
    desk = SupportDesk(path)
    try:
        desk.initialize()
    except (OSError, sqlite3.Error) as exc:
        raise CliError(f"cannot use database {str(path)!r}: {exc}") from None
    return create_server(desk, latency_ms=latency)


def main(argv: Sequence[str] | None = None) -> int:
    return serve(
        _build,
        argv,
        DEFAULT_PORT,
        prog=SERVER_NAME,
        description="Support-desk MCP server (customers, orders, refunds, emails, tickets).",
        add_arguments=_add_arguments,
    )


if __name__ == "__main__":
    sys.exit(main())
