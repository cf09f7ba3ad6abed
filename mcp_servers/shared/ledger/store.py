"""The ledger's SQLite records: claim a key, fence an effect, record or release the outcome.

Every operation is one short-lived connection and, when it writes, one ``BEGIN IMMEDIATE``
transaction, run by the caller in a worker thread — so several server processes may share
the file, and the claim decision (purge, read, insert or take over) is atomic. The row of
(tool, key) moves ``pending`` → ``applied`` (fenced, inside the tool's own transaction) →
``done`` (result recorded); see :mod:`mcp_servers.shared.ledger` for why. For a tool that
requires approval the same transaction binds the grant's decision to the key
(:mod:`.grant_uses`).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mcp.server.mcpserver.exceptions import ToolError

from mcp_servers.shared.auth.grants import GrantUse
from mcp_servers.shared.ledger.grant_uses import (
    GRANT_SCHEMA,
    purge_uses,
    record_use,
    used_elsewhere,
)
from mcp_servers.shared.ledger.holders import holder_state
from mcp_servers.shared.sandbox import routed

TABLE = "idempotency_ledger"
# The logger of the ledger's events (ledger.replay, ledger.busy, ledger.takeover): the name
# log lines have always carried, kept stable for log queries when the module moved.
LOGGER_NAME = "mcp_servers.ledger"

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    tool TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'applied', 'done')),
    token TEXT NOT NULL,
    claimed_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    is_error INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    PRIMARY KEY (tool, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {TABLE}_expiry ON {TABLE}(expires_at);
"""

logger = logging.getLogger(LOGGER_NAME)


class ClaimLost(ToolError):
    """Raised by ``fence`` when a newer attempt took the key over; rolls the effect back."""


@dataclass(frozen=True)
class Claim:
    """The key one attempt holds while its tool runs (``fence`` finds it via a contextvar)."""

    store: LedgerStore
    tool: str
    key: str
    token: str


@dataclass(frozen=True)
class Decision:
    """What the claim transaction found: run the tool, replay, refuse, or wait for a holder
    (``grant_used``: the call's approval decision already let another call run)."""

    action: Literal["run", "replay", "mismatch", "applied", "wait", "grant_used"]
    is_error: bool = False
    result: str | None = None


def event(event: str, tool: str, key: str, level: int = logging.INFO, **fields: Any) -> None:
    """One structured log event (the servers' JSON lines put the ``keel`` extra's fields at
    the top level; any other logging setup still shows the event name)."""
    logger.log(level, event, extra={"keel": {"tool": tool, "idempotency_key": key, **fields}})


class LedgerStore:
    """The idempotency records of one SQLite database (usually the server's own).

    ``ttl_seconds`` is how long a completed call's record is kept for replay;
    ``lease_seconds`` how long a claim whose holder may still be alive blocks its key;
    ``clock`` (wall-clock seconds, since records outlive restarts) is injectable for tests.
    """

    def __init__(
        self,
        path: Path,
        *,
        ttl_seconds: float,
        lease_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        if ttl_seconds <= 0 or lease_seconds <= 0:
            raise ValueError("ttl_seconds and lease_seconds must be > 0")
        self.path = path
        self.ttl_seconds = ttl_seconds
        self.lease_seconds = lease_seconds
        self.clock = clock

    def initialize(self) -> None:
        """Create the ledger table (idempotent). Raises ``OSError``/``sqlite3.Error``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.executescript(SCHEMA + GRANT_SCHEMA)

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(routed(self.path), timeout=10.0, isolation_level=None)
        try:
            if not write:
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def claim(self, claim: Claim, digest: str, grant: GrantUse | None = None) -> Decision:
        """Purge expired records, then claim the key, find its record, or find its holder.

        With ``grant`` (an approval-requiring tool), the grant's decision is bound to this
        call in the same transaction; one already bound to another call runs nothing."""
        now = self.clock()
        with self._connect(write=True) as conn:
            conn.execute(f"DELETE FROM {TABLE} WHERE expires_at <= ?", (now,))
            if grant is None:
                return self._claim(conn, claim, digest, now)
            purge_uses(conn, now)
            if used_elsewhere(conn, grant, claim.tool, claim.key):
                return Decision("grant_used")
            decision = self._claim(conn, claim, digest, now)
            if decision.action != "mismatch":
                record_use(conn, grant, claim.tool, claim.key, now, self._hold_until(now))
            return decision

    def _claim(self, conn: sqlite3.Connection, claim: Claim, digest: str, now: float) -> Decision:
        """The claim decision, inside the caller's write transaction."""
        row = conn.execute(
            f"SELECT fingerprint, state, token, claimed_at, is_error, result FROM {TABLE}"
            " WHERE tool = ? AND key = ?",
            (claim.tool, claim.key),
        ).fetchone()
        if row is None:
            conn.execute(
                f"INSERT INTO {TABLE} (tool, key, fingerprint, state, token, claimed_at,"
                " expires_at) VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                (claim.tool, claim.key, digest, claim.token, now, self._hold_until(now)),
            )
            return Decision("run")
        stored, state, token, claimed_at, is_error, result = row
        if stored != digest:
            return Decision("mismatch")
        if state == "done":
            return Decision("replay", bool(is_error), result)
        holder = holder_state(token)
        if state == "applied":
            # The effect committed. While its holder lives and its lease runs, the
            # record is a thread hop away: wait for it. Otherwise it never comes.
            if holder != "dead" and now - claimed_at < self.lease_seconds:
                return Decision("wait")
            return Decision("applied")
        if holder == "dead":
            why = "its holder is gone"
        elif now - claimed_at >= self.lease_seconds:
            why = f"its lease of {self.lease_seconds:g} s ran out"
        else:
            return Decision("wait")
        event("ledger.takeover", claim.tool, claim.key, logging.WARNING, why=why)
        conn.execute(
            f"UPDATE {TABLE} SET token = ?, claimed_at = ?, expires_at = ?"
            " WHERE tool = ? AND key = ?",
            (claim.token, now, self._hold_until(now), claim.tool, claim.key),
        )
        return Decision("run")

    def _hold_until(self, now: float) -> float:
        """A claim's own expiry: never purged before its lease could be taken over."""
        return now + self.lease_seconds + self.ttl_seconds

    def fence_claim(self, conn: sqlite3.Connection, claim: Claim) -> None:
        """See ``fence``; ``conn`` must be inside a write transaction on this database."""
        main = conn.execute("PRAGMA database_list").fetchone()[2]
        mine = routed(self.path)  # a sandboxed call's effect and record share its sandbox
        if main and Path(main).resolve() != mine.resolve():
            raise RuntimeError(f"fence() on {main}, but the ledger of this tool is {mine}")
        updated = conn.execute(
            f"UPDATE {TABLE} SET state = 'applied' WHERE tool = ? AND key = ? AND token = ?"
            " AND state IN ('pending', 'applied')",
            (claim.tool, claim.key, claim.token),
        ).rowcount
        if updated != 1:
            raise ClaimLost(
                f"idempotency key {claim.key!r} for {claim.tool} was taken over by a newer"
                " attempt; this attempt changed nothing"
            )

    def record(self, claim: Claim, is_error: bool, result: str) -> None:
        """Store the outcome, if this attempt still holds the claim (else a newer one does)."""
        now = self.clock()
        with self._connect(write=True) as conn:
            conn.execute(
                f"UPDATE {TABLE} SET state = 'done', is_error = ?, result = ?, expires_at = ?"
                " WHERE tool = ? AND key = ? AND token = ?",
                (int(is_error), result, now + self.ttl_seconds, claim.tool, claim.key, claim.token),
            )

    def release(self, claim: Claim) -> None:
        """Forget a claim whose tool stopped before applying, so a retry can run at once."""
        with self._connect(write=True) as conn:
            conn.execute(
                f"DELETE FROM {TABLE} WHERE tool = ? AND key = ? AND token = ?"
                " AND state = 'pending'",
                (claim.tool, claim.key, claim.token),
            )
