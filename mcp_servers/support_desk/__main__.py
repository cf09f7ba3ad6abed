"""``python -m mcp_servers.support_desk`` — serve the support desk over HTTP or stdio.

Usage::

    python -m mcp_servers.support_desk [--transport http|stdio] [--host 127.0.0.1]
                                       [--port 8201] [--db PATH] [--allowed-host HOST:*]
                                       [--ledger-ttl-seconds SECONDS] [--grant-jwks SRC]

Environment:

* ``SUPPORT_DESK_DB`` — database file when ``--db`` is not given (default
  ``.keel/support_desk.db``, relative to the working directory; the parent is created).
  The schema is created and seeded on start if the database is empty; restarting never
  duplicates rows.
* ``SUPPORT_DESK_LATENCY_MS`` — integer >= 0 (default 0): an artificial delay
  (``asyncio.sleep``) added to every tool call, so tests and benchmarks can show that
  concurrent calls overlap instead of queueing.
* ``SUPPORT_DESK_LEDGER_TTL_SECONDS`` — number > 0 (default 604800 = 7 days), used when
  ``--ledger-ttl-seconds`` is not given: how long a write tool call's result is kept under its
  ``io.keel/idempotency-key`` for replay (see :mod:`mcp_servers.shared.ledger`).
* ``SUPPORT_DESK_APPROVAL_TOOLS`` — comma-separated write tools that run only with an approval
  grant (default ``refund_order,send_email``; empty: none). Grants are verified against
  ``--grant-jwks`` / ``KEEL_GRANT_JWKS`` (:mod:`mcp_servers.shared.auth.grants`).

HTTP serves MCP at ``/mcp`` and a health check at ``GET /healthz``; every MCP request needs an
access token (``--jwks`` / ``KEEL_AUTH_JWKS``, docs/security.md) unless ``--insecure-no-auth``
is given. Bad input (port out of
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

from mcp_servers.shared.auth.grants import grant_verifier_from
from mcp_servers.shared.config import ServerConfigError, latency_ms_from_env
from mcp_servers.shared.launcher import serve
from mcp_servers.shared.ledger import Ledger, ttl_from_env
from mcp_servers.support_desk.db import SupportDesk
from mcp_servers.support_desk.server import SERVER_NAME, approval_tools_from_env, create_server

DEFAULT_PORT = 8201
DEFAULT_DB = Path(".keel") / "support_desk.db"


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help=f"SQLite file (default: $SUPPORT_DESK_DB or {DEFAULT_DB})",
    )
    parser.add_argument(
        "--ledger-ttl-seconds",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="keep idempotency records this long (default: $SUPPORT_DESK_LEDGER_TTL_SECONDS"
        " or 7 days)",
    )


def _positive_seconds(text: str) -> float:
    """argparse type for a duration: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _build(args: argparse.Namespace) -> MCPServer:
    """Open (create, seed) the database named by the arguments and build the server."""
    path: Path = args.db or Path(os.environ.get("SUPPORT_DESK_DB") or DEFAULT_DB)
    latency = latency_ms_from_env("SUPPORT_DESK_LATENCY_MS")
    ttl = args.ledger_ttl_seconds or ttl_from_env("SUPPORT_DESK_LEDGER_TTL_SECONDS")
    approvals = approval_tools_from_env()
    desk = SupportDesk(path)
    ledger = Ledger(path, ttl_seconds=ttl, grants=grant_verifier_from(args))
    try:
        desk.initialize()
        ledger.initialize()
    except (OSError, sqlite3.Error) as exc:
        raise ServerConfigError(f"cannot use database {str(path)!r}: {exc}") from None
    return create_server(
        desk, latency_ms=latency, ledger=ledger, approval_tools=approvals,
        resource_auth=getattr(args, "resource_auth", None),
    )  # fmt: skip


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
