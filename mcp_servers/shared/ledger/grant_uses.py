"""Which call each approval decision was used for: a grant's single use, in the ledger's DB.

One row per (run, decision), written in the claim transaction of the call it lets run
(:meth:`~.store.LedgerStore.claim`), so a decision carried out under one idempotency key can
never let another key run, even by two concurrent requests; the same key retried (a
Temporal retry, a human's ``resolve retry``) finds its own row and replays as before. Rows
are kept as long as the claim's record, and at least until the grant itself has expired.
"""

from __future__ import annotations

import sqlite3

from mcp_servers.shared.auth.grants import GrantUse
from mcp_servers.shared.auth.jwks import LEEWAY_SECONDS

GRANT_TABLE = "approval_grant_uses"

GRANT_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {GRANT_TABLE} (
    run TEXT NOT NULL,
    decision TEXT NOT NULL,
    tool TEXT NOT NULL,
    key TEXT NOT NULL,
    approver TEXT NOT NULL,
    server TEXT NOT NULL,
    jti TEXT NOT NULL,
    used_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (run, decision)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {GRANT_TABLE}_expiry ON {GRANT_TABLE}(expires_at);
"""


def purge_uses(conn: sqlite3.Connection, now: float) -> None:
    conn.execute(f"DELETE FROM {GRANT_TABLE} WHERE expires_at <= ?", (now,))


def used_elsewhere(conn: sqlite3.Connection, use: GrantUse, tool: str, key: str) -> bool:
    """Whether the decision of ``use`` already let another call (tool, key) run."""
    row = conn.execute(
        f"SELECT tool, key FROM {GRANT_TABLE} WHERE run = ? AND decision = ?",
        (use.run, use.decision),
    ).fetchone()
    return row is not None and tuple(row) != (tool, key)


def record_use(
    conn: sqlite3.Connection, use: GrantUse, tool: str, key: str, now: float, keep_until: float
) -> None:
    """Bind the decision to (tool, key) unless it is already (to this call)."""
    expires = max(keep_until, use.expires_at + LEEWAY_SECONDS)
    conn.execute(
        f"INSERT OR IGNORE INTO {GRANT_TABLE} (run, decision, tool, key, approver, server, jti,"
        " used_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (use.run, use.decision, tool, key, use.approver, use.server, use.jti, now, expires),
    )
