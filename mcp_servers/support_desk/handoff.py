"""``create_ticket``: how work is handed to a person (a fallback's ticket, docs/architecture.md
"Fallbacks"). A write deduplicated by the idempotency ledger like the other four; it needs no
approval grant by default (work handed to a human must not wait for one), and its own scope,
``desk:handoff``. Kept apart from server.py and db.py, which hold the agent's tools.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import Field

from mcp_servers.shared.ledger import Ledger
from mcp_servers.shared.server import STRICT
from mcp_servers.support_desk.db import DomainError, SupportDesk, _now
from mcp_servers.support_desk.models import Ticket

TicketPriority = Literal["low", "normal", "high", "urgent"]


def open_ticket(
    desk: SupportDesk,
    customer_id: str | None,
    order_id: str | None,
    subject: str,
    body: str,
    priority: str,
) -> Ticket:
    """Open a ticket (channel ``keel``) with ``body`` as its first note; the order's
    customer when only the order is known. Runs in the desk's write transaction (fenced for
    the ledger) with its row helpers, as the desk's own writes do."""
    with desk._connect(write=True) as conn:
        if order_id is not None:
            owner = desk._order_row(conn, order_id)["customer_id"]
            if customer_id is not None and owner != customer_id:
                raise DomainError(f"Order {order_id} belongs to {owner}, not {customer_id}.")
            customer_id = owner
        if customer_id is not None:
            desk._customer_row(conn, customer_id)
        last = conn.execute("SELECT MAX(ticket_id) FROM tickets").fetchone()[0]
        ticket_id = f"TCK-{int(last[4:]) + 1 if last else 5001:04d}"
        now = _now()
        conn.execute(
            "INSERT INTO tickets VALUES (?, ?, ?, ?, 'open', ?, 'keel', ?, ?)",
            (ticket_id, customer_id, order_id, subject, priority, now, now),
        )
        conn.execute(
            "INSERT INTO ticket_notes (ticket_id, author, body, created_at)"
            " VALUES (?, 'keel', ?, ?)",
            (ticket_id, body, now),
        )
        return desk._ticket(conn, ticket_id, None)


def add_create_ticket(
    server: MCPServer,
    desk: SupportDesk,
    run: Callable[[Callable[[], Ticket]], Awaitable[Ticket]],
    ledger: Ledger,
    approval: bool,
) -> None:
    """``create_ticket``: open a ticket for a person, deduplicated by the ledger; ``run`` is
    the server's way of running a domain call (latency, a worker thread, refusals), and
    ``approval`` whether the tool needs an approval grant (server.py ``_Calls``)."""

    @server.tool(
        name="create_ticket",
        title="Create ticket",
        description="Open a support ticket for a person to work on, with the body as its first"
        " internal note. The customer (and order) are optional.",
        annotations=ToolAnnotations(
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=False,
        ),
    )
    @ledger.idempotent(approval=approval)
    async def create_ticket(
        subject: Annotated[
            str, STRICT, Field(min_length=1, max_length=200, description="Subject line.")
        ],
        body: Annotated[
            str,
            STRICT,
            Field(min_length=1, max_length=10000, description="What the person needs to know."),
        ],
        priority: Annotated[TicketPriority, Field(description="How urgent it is.")] = "normal",
        customer_id: Annotated[
            str | None,
            STRICT,
            Field(pattern=r"^CUS-\d{4}$", description="Customer ID, if known, e.g. CUS-1001."),
        ] = None,
        order_id: Annotated[
            str | None,
            STRICT,
            Field(pattern=r"^ORD-\d{4}$", description="Order ID, if known, e.g. ORD-1042."),
        ] = None,
    ) -> Ticket:
        return await run(partial(open_ticket, desk, customer_id, order_id, subject, body, priority))
