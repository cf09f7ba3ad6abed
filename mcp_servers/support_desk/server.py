"""The support-desk MCP server: tool schemas, annotations and the error contract.

The input schemas are the first line of defence (Keel validates tool calls against them
before they fire), so every parameter has a pattern, enum or bound plus a description.
Annotations are truthful, because Keel's approval policy reads them: ``refund_order`` is
destructive and not idempotent, ``send_email`` reaches the outside world.

Domain refusals (unknown IDs, refunds above what is refundable) come back as ``is_error``
results whose text tells the agent what to do next; they are raised as ``ToolError`` after
the transaction was rolled back, so an error never leaves a side effect.

Database work runs in a worker thread (one SQLite connection per call), and the artificial
latency from ``SUPPORT_DESK_LATENCY_MS`` is an ``asyncio.sleep`` — so concurrent calls overlap.

The five write tools are wrapped by the idempotency ledger (:mod:`mcp_servers.shared.ledger`, in the
same SQLite file): a call repeated with the same ``io.keel/idempotency-key`` in ``_meta``
replays the recorded result instead of refunding, emailing or writing twice. Their parameters
are strict (``STRICT``): ``amount: "5"`` is refused, never coerced into a refund of 5.00.
``refund_order`` and ``send_email`` also require an approval grant (a human's decision for
exactly that call, :mod:`mcp_servers.shared.auth.grants`); ``SUPPORT_DESK_APPROVAL_TOOLS``
(comma-separated write tools, empty for none) changes which.

Over HTTP every call needs an access token with the tool's scope (:data:`TOOL_SCOPES`, checked
by :mod:`mcp_servers.shared.auth.scopes`): ``desk:read`` for the lookups, ``desk:refund``,
``desk:email`` and ``desk:tickets`` for the writes, ``desk:handoff`` for ``create_ticket`` (how
a fallback hands a run to a person, docs/architecture.md "Fallbacks": it needs no approval
grant, since work handed to a human must not wait for one).

One prompt, ``handle_refund_request``, gives an MCP client the workflow the instructions
describe (look up, check the refundable amount, refund, confirm).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Collection, Mapping
from functools import partial
from typing import Annotated, Literal, TypeVar

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from mcp_servers.shared.auth.resource import ResourceAuth
from mcp_servers.shared.config import ServerConfigError
from mcp_servers.shared.ledger import Ledger
from mcp_servers.shared.sandbox import Sandboxes
from mcp_servers.shared.server import STRICT, KeelMCPServer
from mcp_servers.support_desk.db import DomainError, SupportDesk
from mcp_servers.support_desk.handoff import add_create_ticket
from mcp_servers.support_desk.models import (
    Customer,
    CustomerSearch,
    Email,
    Order,
    OrderList,
    Refund,
    Ticket,
    TicketNote,
)

SERVER_NAME = "support-desk"
T = TypeVar("T")

CustomerId = Annotated[
    str, STRICT, Field(pattern=r"^CUS-\d{4}$", description="Customer ID, e.g. CUS-1001.")
]
OrderId = Annotated[
    str, STRICT, Field(pattern=r"^ORD-\d{4}$", description="Order ID, e.g. ORD-1042.")
]
TicketId = Annotated[
    str, STRICT, Field(pattern=r"^TCK-\d{4}$", description="Ticket ID, e.g. TCK-5001.")
]
OrderStatus = Literal["pending", "paid", "shipped", "delivered", "cancelled", "refunded"]
# Literals match exactly already (pydantic cannot make them stricter).
RefundReason = Literal["damaged", "not_received", "wrong_item", "changed_mind", "other"]
TicketStatus = Literal["open", "pending", "resolved", "closed"]

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE_TOOLS = ("refund_order", "send_email", "update_ticket", "add_ticket_note", "create_ticket")
APPROVAL_TOOLS_ENV = "SUPPORT_DESK_APPROVAL_TOOLS"
# The tools that run only with an approval grant unless SUPPORT_DESK_APPROVAL_TOOLS says others.
DEFAULT_APPROVAL_TOOLS = frozenset({"refund_order", "send_email"})


def approval_tools_from_env(env: Mapping[str, str] | None = None) -> frozenset[str]:
    """``SUPPORT_DESK_APPROVAL_TOOLS`` (comma-separated write tools; empty: none), else the
    default; an unknown name is a :class:`ServerConfigError`."""
    env = os.environ if env is None else env
    if APPROVAL_TOOLS_ENV not in env:
        return DEFAULT_APPROVAL_TOOLS
    names = frozenset(n.strip() for n in env[APPROVAL_TOOLS_ENV].split(",") if n.strip())
    unknown = sorted(names - set(WRITE_TOOLS))
    if unknown:
        raise ServerConfigError(
            f"{APPROVAL_TOOLS_ENV}: {', '.join(unknown)} is not a write tool of the support desk"
            f" ({', '.join(WRITE_TOOLS)})"
        )
    return names


# The scope an access token needs for each tool (docs/security.md).
TOOL_SCOPES = {
    "search_customers": "desk:read",
    "get_customer": "desk:read",
    "list_orders": "desk:read",
    "get_order": "desk:read",
    "refund_order": "desk:refund",
    "send_email": "desk:email",
    "update_ticket": "desk:tickets",
    "add_ticket_note": "desk:tickets",
    "create_ticket": "desk:handoff",
}


def create_server(
    desk: SupportDesk,
    latency_ms: int = 0,
    ledger: Ledger | None = None,
    approval_tools: Collection[str] = DEFAULT_APPROVAL_TOOLS,
    resource_auth: ResourceAuth | None = None,
    sandboxes: Sandboxes | None = None,
) -> MCPServer:
    """Build the server over an initialized :class:`SupportDesk`.

    ``ledger`` must use the desk's database file (the write transactions fence it); by
    default one with the default TTL (and no grant keys) is created there.
    ``approval_tools`` run only with an approval grant the ledger's verifier accepts.
    ``resource_auth`` (the launcher's, over HTTP) makes every call need an access token with
    the tool's scope. ``sandboxes`` (evals only) serves each run from its own database copy.
    Tools are listed in the order they are added here.
    """
    if ledger is None:
        ledger = Ledger(desk.path)
        ledger.initialize()
    server: MCPServer = KeelMCPServer(
        SERVER_NAME,
        title="Support desk",
        description="Customers, orders, refunds, outbound email and tickets of an outdoor shop.",
        instructions=(
            "Look customers up with search_customers, then inspect orders with get_order before"
            " refunding: refund_order accepts at most the order's 'refundable' amount."
            " Money is in USD with 2 decimals."
        ),
        log_level="WARNING",
        tool_scopes=TOOL_SCOPES,
        resource_auth=resource_auth,
        sandboxes=sandboxes,
    )
    run = _Calls(latency_ms, frozenset(approval_tools))
    _add_customer_tools(server, desk, run)
    _add_order_tools(server, desk, run)
    _add_refund_tool(server, desk, run, ledger)
    _add_email_tool(server, desk, run, ledger)
    _add_ticket_tools(server, desk, run, ledger)
    add_create_ticket(server, desk, run, ledger, run.needs_grant("create_ticket"))
    _add_prompts(server)
    return server


class _Calls:
    """How every tool runs its domain call: the artificial latency (an ``asyncio.sleep``, so
    concurrent calls overlap), then the blocking SQLite work in a worker thread, with domain
    refusals mapped to ``ToolError``; and which tools need an approval grant."""

    def __init__(self, latency_ms: int, approval_tools: frozenset[str] = frozenset()) -> None:
        self.latency_ms = latency_ms
        self.approval_tools = approval_tools

    def needs_grant(self, tool: str) -> bool:
        return tool in self.approval_tools

    async def __call__(self, fn: Callable[[], T]) -> T:
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        try:
            return await anyio.to_thread.run_sync(fn)
        except DomainError as exc:
            raise ToolError(str(exc)) from None


def _add_customer_tools(server: MCPServer, desk: SupportDesk, run: _Calls) -> None:
    """The customer lookups: search by name or email, one customer's profile."""

    @server.tool(
        name="search_customers",
        title="Search customers",
        description="Find customers whose name or email contains the query (case-insensitive).",
        annotations=READ,
    )
    async def search_customers(
        query: Annotated[
            str,
            Field(
                min_length=1,
                max_length=100,
                description="Part of a name or email address, e.g. 'lopez' or 'maria.lopez@'.",
            ),
        ],
        limit: Annotated[int, Field(ge=1, le=20, description="Maximum matches to return.")] = 5,
    ) -> CustomerSearch:
        return await run(partial(desk.search_customers, query, limit))

    @server.tool(
        name="get_customer",
        title="Get customer",
        description="A customer's profile, loyalty tier, order count, lifetime spend and open"
        " tickets.",
        annotations=READ,
    )
    async def get_customer(customer_id: CustomerId) -> Customer:
        return await run(partial(desk.get_customer, customer_id))


def _add_order_tools(server: MCPServer, desk: SupportDesk, run: _Calls) -> None:
    """The order lookups: a customer's orders, one order with what is still refundable."""

    @server.tool(
        name="list_orders",
        title="List orders",
        description="A customer's orders, newest first, optionally filtered by status.",
        annotations=READ,
    )
    async def list_orders(
        customer_id: CustomerId,
        status: Annotated[
            OrderStatus | None, Field(description="Only orders in this status; omit for all.")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=50, description="Maximum orders to return.")] = 10,
    ) -> OrderList:
        return await run(partial(desk.list_orders, customer_id, status, limit))

    @server.tool(
        name="get_order",
        title="Get order",
        description="An order's items, totals, amount paid, amount refunded so far, amount still"
        " refundable, status, dates and customer.",
        annotations=READ,
    )
    async def get_order(order_id: OrderId) -> Order:
        return await run(partial(desk.get_order, order_id))


def _add_refund_tool(server: MCPServer, desk: SupportDesk, run: _Calls, ledger: Ledger) -> None:
    """``refund_order``: destructive, not idempotent, so deduplicated by the ledger."""

    @server.tool(
        name="refund_order",
        title="Refund order",
        description="Refund money to the customer's original payment method. Irreversible."
        " The amount must not exceed the order's refundable amount (see get_order); an order"
        " refunded in full gets status 'refunded'.",
        annotations=ToolAnnotations(
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=False,
            open_world_hint=False,
        ),
    )
    @ledger.idempotent(approval=run.needs_grant("refund_order"))
    async def refund_order(
        order_id: OrderId,
        amount: Annotated[
            float,
            STRICT,
            Field(
                gt=0,
                le=10000,
                multiple_of=0.01,
                description="Amount in USD, at most 2 decimals, e.g. 42.00.",
            ),
        ],
        reason: Annotated[RefundReason, Field(description="Why the customer is refunded.")],
        note: Annotated[
            str | None,
            STRICT,
            Field(max_length=500, description="Optional internal note kept with the refund."),
        ] = None,
    ) -> Refund:
        cents = round(amount * 100)
        return await run(partial(desk.refund_order, order_id, cents, reason, note))


def _add_email_tool(server: MCPServer, desk: SupportDesk, run: _Calls, ledger: Ledger) -> None:
    """``send_email``: reaches the outside world, deduplicated by the ledger."""

    @server.tool(
        name="send_email",
        title="Send email",
        description="Send an email to the customer's address of record. It leaves the"
        " building: it cannot be unsent.",
        annotations=ToolAnnotations(
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=True,
        ),
    )
    @ledger.idempotent(approval=run.needs_grant("send_email"))
    async def send_email(
        customer_id: CustomerId,
        subject: Annotated[
            str, STRICT, Field(min_length=1, max_length=200, description="Subject line.")
        ],
        body: Annotated[
            str,
            STRICT,
            Field(min_length=1, max_length=5000, description="Plain-text message body."),
        ],
    ) -> Email:
        return await run(partial(desk.send_email, customer_id, subject, body))


def _add_ticket_tools(server: MCPServer, desk: SupportDesk, run: _Calls, ledger: Ledger) -> None:
    """Ticket writes: set a status (idempotent by nature), append a note; both deduplicated."""

    @server.tool(
        name="update_ticket",
        title="Update ticket status",
        description="Set a support ticket's status. Setting the current status again changes"
        " nothing.",
        annotations=ToolAnnotations(
            read_only_hint=False,
            destructive_hint=True,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
    @ledger.idempotent(approval=run.needs_grant("update_ticket"))
    async def update_ticket(
        ticket_id: TicketId,
        status: Annotated[TicketStatus, Field(description="The new status.")],
    ) -> Ticket:
        return await run(partial(desk.update_ticket, ticket_id, status))

    @server.tool(
        name="add_ticket_note",
        title="Add ticket note",
        description="Append an internal note to a support ticket (not visible to the customer).",
        annotations=ToolAnnotations(
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=False,
            open_world_hint=False,
        ),
    )
    @ledger.idempotent(approval=run.needs_grant("add_ticket_note"))
    async def add_ticket_note(
        ticket_id: TicketId,
        note: Annotated[
            str, STRICT, Field(min_length=1, max_length=2000, description="The note text.")
        ],
        author: Annotated[
            str, STRICT, Field(min_length=1, max_length=100, description="Who writes the note.")
        ] = "agent",
    ) -> TicketNote:
        return await run(partial(desk.add_ticket_note, ticket_id, note, author))


def _add_prompts(server: MCPServer) -> None:
    """``handle_refund_request``: the refund workflow the server's instructions describe."""

    @server.prompt(
        name="handle_refund_request",
        title="Handle a refund request",
        description="Check an order and refund it within what is refundable, then confirm to"
        " the customer by email.",
    )
    def handle_refund_request(order_id: str, problem: str = "") -> str:
        told = f" The customer says: {problem}" if problem else ""
        return (
            f"A customer asks for a refund on order {order_id}.{told}\n"
            f"1. Call get_order with order_id {order_id}; check its status and 'refundable'.\n"
            "2. If a refund is justified, call refund_order with at most the refundable amount"
            " (USD, 2 decimals) and the reason that fits: damaged, not_received, wrong_item,"
            " changed_mind or other.\n"
            "3. Confirm with send_email to the order's customer: the amount and when it arrives"
            " (5-7 business days).\n"
            "Refunds are irreversible: never refund more than once for one request."
        )
