"""The spend store's interface and the SQL both backends share.

A paid call is recorded once per idempotency key (the activity's workflow run, activity id
and attempt), so a retried activity whose answer was recorded before it failed is not
counted twice. An alert is recorded once per (budget key, period, threshold): the insert
that wins is the one worker that sends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

By = Literal["profile", "principal", "model", "day"]
BY: tuple[By, ...] = ("profile", "principal", "model", "day")
Owner = Literal["profile", "principal"]

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS spend_calls (
        key TEXT PRIMARY KEY, run_id TEXT NOT NULL, profile TEXT NOT NULL,
        principal TEXT NOT NULL, model TEXT NOT NULL, tier TEXT, day TEXT NOT NULL,
        month TEXT NOT NULL, usd DOUBLE PRECISION NOT NULL, tokens BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS spend_calls_profile ON spend_calls (profile, day)",
    "CREATE INDEX IF NOT EXISTS spend_calls_principal ON spend_calls (principal, day)",
    """CREATE TABLE IF NOT EXISTS spend_alerts (
        budget TEXT NOT NULL, period TEXT NOT NULL, threshold DOUBLE PRECISION NOT NULL,
        usd DOUBLE PRECISION NOT NULL, PRIMARY KEY (budget, period, threshold))""",
)
INSERT_CALL = (
    "INSERT INTO spend_calls (key, run_id, profile, principal, model, tier, day, month, usd,"
    " tokens) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
    " ON CONFLICT (key) DO NOTHING"
)
INSERT_ALERT = (
    "INSERT INTO spend_alerts (budget, period, threshold, usd) VALUES ({p}, {p}, {p}, {p})"
    " ON CONFLICT (budget, period, threshold) DO NOTHING"
)


def total_sql(owner: Owner, period: str, placeholder: str) -> str:
    """The sum of one owner's spend in a day (``YYYY-MM-DD``) or a month (``YYYY-MM``)."""
    column = "day" if len(period) == 10 else "month"
    return (
        f"SELECT COALESCE(SUM(usd), 0) FROM spend_calls"
        f" WHERE {owner} = {placeholder} AND {column} = {placeholder}"
    )


def rows_sql(by: By) -> str:
    """The ledger grouped by one column (a fixed name from ``BY``, never user text)."""
    if by not in BY:
        raise ValueError(f"cannot group spend by {by!r}")
    return (
        f"SELECT {by}, SUM(usd), SUM(tokens), COUNT(*) FROM spend_calls GROUP BY {by} ORDER BY {by}"
    )


def periods(at: datetime | None = None) -> tuple[str, str]:
    """The UTC day and month a call at ``at`` (default now) counts in."""
    now = (at or datetime.now(UTC)).astimezone(UTC)
    return now.strftime("%Y-%m-%d"), now.strftime("%Y-%m")


@dataclass(frozen=True)
class PaidCall:
    """One paid model call, as the ledger keeps it."""

    key: str
    run_id: str
    profile: str
    principal: str
    model: str
    tier: str | None
    day: str
    month: str
    usd: float
    tokens: int

    def values(self) -> tuple[object, ...]:
        return (self.key, self.run_id, self.profile, self.principal, self.model, self.tier,
                self.day, self.month, self.usd, self.tokens)  # fmt: skip


@dataclass(frozen=True)
class Total:
    """One group of the ledger: its name, USD, tokens and number of calls."""

    group: str
    usd: float
    tokens: int
    calls: int


class SpendStore(Protocol):
    """Where the spend ledger lives (keel/runtime/spend/sqlite.py, postgres.py)."""

    async def record(self, call: PaidCall) -> bool:
        """Add a paid call; False when its key was recorded already (a retry)."""
        ...

    async def total(self, owner: Owner, name: str, period: str) -> float:
        """What ``owner`` ``name`` spent in ``period`` (a UTC day or month)."""
        ...

    async def alert_once(self, budget: str, period: str, threshold: float, usd: float) -> bool:
        """Record an alert; True only for the one caller whose insert made it."""
        ...

    async def totals(self, by: By) -> list[Total]:
        """The whole ledger grouped by ``by``."""
        ...

    def describe(self) -> str:
        """Where the ledger is, for logs (no password)."""
        ...
