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

* ``SUPPORT_DESK_SANDBOX`` — ``off`` (default) or ``per-run``, used when ``--sandbox`` is not
  given. ``per-run`` is for evals only (``keel eval``): every tool call whose ``_meta`` names
  a run (``io.keel/run``) is served from that run's own copy of a freshly seeded database,
  under ``<db>.sandboxes/`` (emptied at start; see :mod:`mcp_servers.shared.sandbox`).
* ``SUPPORT_DESK_SANDBOX_MAX`` — integer >= 1 (default 5000): at most this many sandboxes.

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
from mcp_servers.shared.sandbox import DEFAULT_LIMIT, SANDBOX_MODES, Sandboxes
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
        "--sandbox",
        choices=SANDBOX_MODES,
        default=None,
        help="per-run: each run (_meta io.keel/run) gets its own copy of the seeded database;"
        " for evals only (default: $SUPPORT_DESK_SANDBOX or off)",
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
    sandboxes = _sandboxes(args, path)
    try:
        desk.initialize()
        ledger.initialize()
        if sandboxes is not None:
            sandboxes.reset()
    except (OSError, sqlite3.Error) as exc:
        raise ServerConfigError(f"cannot use database {str(path)!r}: {exc}") from None
    return create_server(
        desk, latency_ms=latency, ledger=ledger, approval_tools=approvals,
        resource_auth=getattr(args, "resource_auth", None), sandboxes=sandboxes,
    )  # fmt: skip


def _seed(path: Path) -> None:
    """A freshly seeded desk database with its ledger tables: a sandbox's template."""
    SupportDesk(path).initialize()
    Ledger(path).initialize()


def _sandboxes(args: argparse.Namespace, path: Path) -> Sandboxes | None:
    """``--sandbox`` / ``SUPPORT_DESK_SANDBOX`` (off or per-run) and the limit."""
    mode = args.sandbox or os.environ.get("SUPPORT_DESK_SANDBOX", "").strip() or "off"
    if mode not in SANDBOX_MODES:
        raise ServerConfigError(f"SUPPORT_DESK_SANDBOX must be off or per-run, got {mode!r}")
    if mode == "off":
        return None
    raw = os.environ.get("SUPPORT_DESK_SANDBOX_MAX", "").strip() or str(DEFAULT_LIMIT)
    if not raw.isdigit() or int(raw) < 1:
        raise ServerConfigError(f"SUPPORT_DESK_SANDBOX_MAX must be an integer >= 1, got {raw!r}")
    return Sandboxes(path, _seed, int(raw))


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
