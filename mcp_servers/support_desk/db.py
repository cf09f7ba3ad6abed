"""SQLite storage and the domain rules of the support desk.

Every operation opens its own short-lived connection (WAL mode, foreign keys on, a busy
timeout) so that concurrent tool calls, run in worker threads, never share a connection and
several server processes may share one file. Writes run in ``BEGIN IMMEDIATE`` transactions:
all checks happen inside the transaction and any :class:`DomainError` rolls it back, so a
rejected call has no side effect at all. Just before COMMIT every write calls the idempotency
ledger's ``fence``, so a keyed tool call's effect and its "applied" mark commit together.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from mcp_servers.shared.ledger import fence
from mcp_servers.shared.sandbox import routed
from mcp_servers.support_desk import seed
from mcp_servers.support_desk.migrate import nullable_ticket_customer
from mcp_servers.support_desk.models import (
    Customer,
    CustomerSearch,
    CustomerSummary,
    Email,
    Order,
    OrderItem,
    OrderList,
    OrderSummary,
    Refund,
    RefundLine,
    Ticket,
    TicketNote,
    dollars,
    money_text,
)

SCHEMA_VERSION = 1
REFUNDABLE_STATUSES = ("paid", "shipped", "delivered")

SCHEMA = (Path(__file__).parent / "schema.sql").read_text()


class DomainError(Exception):
    """A request the desk refuses (unknown record, business rule); the message is for the agent."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SupportDesk:
    """The support-desk database at ``path``; methods are blocking and thread-safe."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One connection per operation; ``write`` wraps it in BEGIN IMMEDIATE … COMMIT."""
        conn = sqlite3.connect(routed(self.path), timeout=10.0, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            if not write:
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                fence(conn)  # mark an idempotent call applied, atomically with its effect
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def initialize(self) -> bool:
        """Create the parent directory, the schema and (only if empty) the seed data.

        Idempotent: the emptiness check and the seed run in one IMMEDIATE transaction, so
        repeated or concurrent starts never duplicate rows. Returns True if it seeded.
        Raises ``OSError``/``sqlite3.Error`` if the path is unusable.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.executescript(SCHEMA)
            nullable_ticket_customer(conn, SCHEMA)
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("BEGIN IMMEDIATE")
            try:
                empty = bool(conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0] == 0)
                if empty:
                    seed.seed(conn)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return empty
        finally:
            conn.close()

    # ---- reads ---------------------------------------------------------------------------

    def search_customers(self, query: str, limit: int) -> CustomerSearch:
        """Case-insensitive substring match on name or email; exact-prefix matches first."""
        needle = query.strip().lower()
        pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT customer_id, name, email, tier FROM customers"
                " WHERE lower(name) LIKE ?1 ESCAPE '\\' OR lower(email) LIKE ?1 ESCAPE '\\'"
                " ORDER BY (lower(name) LIKE ?2 ESCAPE '\\' OR lower(email) LIKE ?2 ESCAPE '\\')"
                " DESC, name LIMIT ?3",
                (pattern, pattern[1:], limit),
            ).fetchall()
        return CustomerSearch(query=query, customers=[CustomerSummary(**dict(r)) for r in rows])

    def get_customer(self, customer_id: str) -> Customer:
        with self._connect() as conn:
            row = self._customer_row(conn, customer_id)
            stats = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(paid_cents - refunded_cents), 0)"
                " FROM orders WHERE customer_id = ?",
                (customer_id,),
            ).fetchone()
            open_ids = [
                r[0]
                for r in conn.execute(
                    "SELECT ticket_id FROM tickets WHERE customer_id = ?"
                    " AND status IN ('open', 'pending') ORDER BY ticket_id",
                    (customer_id,),
                )
            ]
        return Customer(
            customer_id=row["customer_id"],
            name=row["name"],
            email=row["email"],
            phone=row["phone"],
            tier=row["tier"],
            customer_since=row["created_at"],
            order_count=stats[0],
            open_ticket_count=len(open_ids),
            open_ticket_ids=open_ids,
            lifetime_spend=dollars(stats[1]),
        )

    def list_orders(self, customer_id: str, status: str | None, limit: int) -> OrderList:
        with self._connect() as conn:
            self._customer_row(conn, customer_id)
            rows = conn.execute(
                "SELECT o.order_id, o.status, o.total_cents, o.refunded_cents, o.placed_at,"
                " (SELECT COALESCE(SUM(quantity), 0) FROM order_items i"
                "  WHERE i.order_id = o.order_id) AS item_count"
                " FROM orders o WHERE o.customer_id = ?1 AND (?2 IS NULL OR o.status = ?2)"
                " ORDER BY o.placed_at DESC, o.order_id DESC LIMIT ?3",
                (customer_id, status, limit),
            ).fetchall()
        orders = [
            OrderSummary(
                order_id=r["order_id"],
                status=r["status"],
                total=dollars(r["total_cents"]),
                refunded=dollars(r["refunded_cents"]),
                item_count=r["item_count"],
                placed_at=r["placed_at"],
            )
            for r in rows
        ]
        return OrderList(customer_id=customer_id, status_filter=status, orders=orders)

    def get_order(self, order_id: str) -> Order:
        with self._connect() as conn:
            return self._order(conn, order_id)

    # ---- writes --------------------------------------------------------------------------

    def refund_order(
        self, order_id: str, amount_cents: int, reason: str, note: str | None
    ) -> Refund:
        """Issue a refund to the original payment method, within what was paid and not refunded."""
        with self._connect(write=True) as conn:
            row = self._order_row(conn, order_id)
            paid, refunded = row["paid_cents"], row["refunded_cents"]
            self._check_refundable(order_id, row["status"], paid, refunded, amount_cents)
            now = _now()
            cursor = conn.execute(
                "INSERT INTO refunds (order_id, amount_cents, reason, note, status, created_at)"
                " VALUES (?, ?, ?, ?, 'issued', ?)",
                (order_id, amount_cents, reason, note, now),
            )
            refunded += amount_cents
            status = "refunded" if refunded >= paid else row["status"]
            conn.execute(
                "UPDATE orders SET refunded_cents = ?, status = ? WHERE order_id = ?",
                (refunded, status, order_id),
            )
        return Refund(
            refund_id=f"RFD-{cursor.lastrowid}",
            order_id=order_id,
            customer_id=row["customer_id"],
            amount=dollars(amount_cents),
            reason=reason,
            note=note,
            status="issued",
            created_at=now,
            order_status=status,
            order_refunded_total=dollars(refunded),
            order_refundable_remaining=dollars(paid - refunded),
        )

    @staticmethod
    def _check_refundable(
        order_id: str, status: str, paid: int, refunded: int, amount: int
    ) -> None:
        """Raise the refusal the agent needs to read, or return if ``amount`` may be refunded."""
        if status == "pending":
            raise DomainError(
                f"Order {order_id} is pending: no payment has been captured, so there is nothing"
                " to refund."
            )
        if status == "cancelled":
            raise DomainError(
                f"Order {order_id} was cancelled before payment was captured, so there is"
                " nothing to refund."
            )
        refundable = paid - refunded
        if refundable <= 0:
            raise DomainError(
                f"Order {order_id} is already fully refunded (paid {money_text(paid)},"
                f" already refunded {money_text(refunded)})."
            )
        if amount > refundable:
            raise DomainError(
                f"Refund of {money_text(amount)} exceeds the refundable amount"
                f" {money_text(refundable)} for {order_id} (paid {money_text(paid)},"
                f" already refunded {money_text(refunded)})."
            )

    def send_email(self, customer_id: str, subject: str, body: str) -> Email:
        """Put an email to the customer's address of record into the outbox (= sent)."""
        with self._connect(write=True) as conn:
            customer = self._customer_row(conn, customer_id)
            now = _now()
            cursor = conn.execute(
                "INSERT INTO emails (customer_id, to_address, subject, body, status, sent_at)"
                " VALUES (?, ?, ?, ?, 'sent', ?)",
                (customer_id, customer["email"], subject, body, now),
            )
        return Email(
            email_id=f"EML-{cursor.lastrowid}",
            customer_id=customer_id,
            to=customer["email"],
            subject=subject,
            body=body,
            status="sent",
            sent_at=now,
        )

    def update_ticket(self, ticket_id: str, status: str) -> Ticket:
        """Set a ticket's status; setting the status it already has changes nothing."""
        with self._connect(write=True) as conn:
            row = self._ticket_row(conn, ticket_id)
            previous = row["status"]
            if previous != status:
                conn.execute(
                    "UPDATE tickets SET status = ?, updated_at = ? WHERE ticket_id = ?",
                    (status, _now(), ticket_id),
                )
            return self._ticket(conn, ticket_id, previous)

    def add_ticket_note(self, ticket_id: str, body: str, author: str) -> TicketNote:
        with self._connect(write=True) as conn:
            self._ticket_row(conn, ticket_id)
            now = _now()
            cursor = conn.execute(
                "INSERT INTO ticket_notes (ticket_id, author, body, created_at)"
                " VALUES (?, ?, ?, ?)",
                (ticket_id, author, body, now),
            )
            conn.execute("UPDATE tickets SET updated_at = ? WHERE ticket_id = ?", (now, ticket_id))
        assert cursor.lastrowid is not None
        return TicketNote(
            note_id=cursor.lastrowid, ticket_id=ticket_id, author=author, body=body, created_at=now
        )

    # ---- helpers -------------------------------------------------------------------------

    @staticmethod
    def _customer_row(conn: sqlite3.Connection, customer_id: str) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM customers WHERE customer_id = ?", (customer_id,)
        ).fetchone()
        if row is None:
            raise DomainError(
                f"Customer {customer_id} does not exist. Use search_customers to find the"
                " customer ID by name or email."
            )
        return row

    @staticmethod
    def _order_row(conn: sqlite3.Connection, order_id: str) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM orders WHERE order_id = ?", (order_id,)
        ).fetchone()
        if row is None:
            raise DomainError(
                f"Order {order_id} does not exist. Use list_orders with the customer ID to see"
                " that customer's orders."
            )
        return row

    @staticmethod
    def _ticket_row(conn: sqlite3.Connection, ticket_id: str) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM tickets WHERE ticket_id = ?", (ticket_id,)
        ).fetchone()
        if row is None:
            raise DomainError(f"Ticket {ticket_id} does not exist. Check the ticket ID (TCK-####).")
        return row

    def _order(self, conn: sqlite3.Connection, order_id: str) -> Order:
        row = self._order_row(conn, order_id)
        items = conn.execute(
            "SELECT i.product_id, p.name, i.quantity, i.unit_price_cents FROM order_items i"
            " JOIN products p ON p.product_id = i.product_id WHERE i.order_id = ? ORDER BY i.id",
            (order_id,),
        ).fetchall()
        refunds = conn.execute(
            "SELECT * FROM refunds WHERE order_id = ? ORDER BY id", (order_id,)
        ).fetchall()
        refundable = (
            row["paid_cents"] - row["refunded_cents"] if row["status"] in REFUNDABLE_STATUSES else 0
        )
        return Order(
            order_id=row["order_id"],
            customer_id=row["customer_id"],
            status=row["status"],
            items=[
                OrderItem(
                    product_id=i["product_id"],
                    name=i["name"],
                    quantity=i["quantity"],
                    unit_price=dollars(i["unit_price_cents"]),
                    line_total=dollars(i["unit_price_cents"] * i["quantity"]),
                )
                for i in items
            ],
            subtotal=dollars(row["subtotal_cents"]),
            shipping=dollars(row["shipping_cents"]),
            total=dollars(row["total_cents"]),
            paid=dollars(row["paid_cents"]),
            refunded=dollars(row["refunded_cents"]),
            refundable=dollars(refundable),
            placed_at=row["placed_at"],
            shipped_at=row["shipped_at"],
            delivered_at=row["delivered_at"],
            cancelled_at=row["cancelled_at"],
            refunds=[
                RefundLine(
                    refund_id=f"RFD-{r['id']}",
                    amount=dollars(r["amount_cents"]),
                    reason=r["reason"],
                    note=r["note"],
                    status=r["status"],
                    created_at=r["created_at"],
                )
                for r in refunds
            ],
        )

    def _ticket(self, conn: sqlite3.Connection, ticket_id: str, previous: str | None) -> Ticket:
        row = self._ticket_row(conn, ticket_id)
        notes = conn.execute(
            "SELECT COUNT(*) FROM ticket_notes WHERE ticket_id = ?", (ticket_id,)
        ).fetchone()[0]
        return Ticket(
            ticket_id=row["ticket_id"],
            customer_id=row["customer_id"],
            order_id=row["order_id"],
            subject=row["subject"],
            status=row["status"],
            previous_status=previous,
            priority=row["priority"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            note_count=notes,
        )
