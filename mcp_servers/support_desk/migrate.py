"""Migrations of support-desk databases made by earlier versions (schema.sql is applied with
``CREATE ... IF NOT EXISTS``, so a changed table needs one of these)."""

from __future__ import annotations

import re
import sqlite3


def nullable_ticket_customer(conn: sqlite3.Connection, schema: str) -> None:
    """Migrate a database made before ``create_ticket``: its ``tickets.customer_id`` is NOT
    NULL. SQLite cannot drop a constraint, so the table is rebuilt (the documented way: a new
    table, the rows copied, the old one dropped, the new one renamed) in one transaction,
    with foreign keys off (the connection's default) so ``ticket_notes`` keeps its rows."""
    columns = conn.execute("PRAGMA table_info(tickets)").fetchall()
    if not any(c[1] == "customer_id" and c[3] for c in columns):
        return
    create = re.search(r"CREATE TABLE IF NOT EXISTS tickets \((.*?)\n\);", schema, re.S)
    assert create is not None, "schema.sql defines the tickets table"
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(f"CREATE TABLE tickets_new ({create.group(1)}\n)")
        conn.execute("INSERT INTO tickets_new SELECT * FROM tickets")
        conn.execute("DROP TABLE tickets")
        conn.execute("ALTER TABLE tickets_new RENAME TO tickets")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
