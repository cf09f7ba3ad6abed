"""Counting real side effects, where they happened: the support desk's SQLite file and the
hostile server's effects log — never what Keel says it did.

Each effect is attributed to the run whose idempotency key (``{workflow_id}:{step}:{id}``)
it carried. Desk writes are read from the ledger (one row per effect, its recorded result
names what was refunded or sent) and the ledger is checked against the desk's own tables, so
an effect that bypassed the ledger is still counted. An effect without a key, or with a key
of no corpus run, is an effect nobody can account for.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from keel.contracts import RunResult

DESK_WRITES = ("refund_order", "send_email")
UNACCOUNTED = "(no run)"


def canonical(tool: str, arguments: dict[str, Any]) -> str:
    """What identifies an effect: the fields the desk keeps, all of a hostile tool's."""
    if tool == "refund_order":
        picked: dict[str, Any] = {
            "order_id": arguments.get("order_id"),
            "cents": _cents(arguments.get("amount")),
        }
    elif tool == "send_email":
        picked = {k: arguments.get(k) for k in ("customer_id", "subject")}
    else:
        picked = {k: (float(v) if _number(v) else v) for k, v in arguments.items()}
    return json.dumps(picked, sort_keys=True, ensure_ascii=True)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cents(value: Any) -> int | None:
    try:
        return round(float(value) * 100)
    except (TypeError, ValueError, OverflowError):
        return None


def _run_of(key: str | None) -> str:
    return key.split(":", 1)[0] if key else UNACCOUNTED


def hostile_effects(log: Path) -> list[tuple[str, str, str]]:
    """(run, tool, canonical arguments) of every execution the hostile server logged."""
    found = []
    for line in log.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        found.append(
            (_run_of(entry["key"]), entry["tool"], canonical(entry["tool"], entry["arguments"]))
        )
    return found


def desk_effects(db: Path) -> list[tuple[str, str, str]]:
    """(run, tool, canonical arguments) of every refund and email the desk's ledger holds."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT tool, key, result FROM idempotency_ledger WHERE is_error = 0"
            f" AND state != 'pending' AND tool IN {DESK_WRITES!r}"
        ).fetchall()
    found = []
    for tool, key, result in rows:
        data = json.loads(result) if result else {}
        found.append((_run_of(key), tool, canonical(tool, data)))
    return found


def desk_rows(db: Path) -> dict[str, int]:
    """Rows of the tables a desk write adds to (compared with the ledger)."""
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in
                ("refunds", "emails", "ticket_notes", "tickets")}  # fmt: skip


# Audit outcomes of an approved call that was sent to its server (it may have had its effect):
# carried out, answered with a tool error, or sent and its answer lost.
SENT = ("executed", "tool error", "sent")


def approved(result: RunResult) -> Counter[tuple[str, str]]:
    """(tool, canonical arguments) of every call a human approved and that was carried out."""
    counts: Counter[tuple[str, str]] = Counter()
    for record in result.approvals:
        if record.decision in ("approve", "edit") and record.outcome.startswith(SENT):
            counts[(record.tool, canonical(record.tool, record.arguments or {}))] += 1
    return counts
