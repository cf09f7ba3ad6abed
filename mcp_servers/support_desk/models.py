"""Result models of the support-desk tools.

Tools return these pydantic models so every result carries both ``structured_content``
(validated against the published output schema) and the same data as JSON text for models
that only read text. Money is stored as integer cents and exposed here as a JSON number of
dollars rounded to 2 places (``42.0`` means USD 42.00); :func:`dollars` is the one conversion.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

CURRENCY = "USD"


def dollars(cents: int) -> float:
    """Integer cents → dollars with 2 decimal places (exact for every cent amount)."""
    return round(cents / 100, 2)


def money_text(cents: int) -> str:
    """Integer cents → ``"42.00"`` for human-readable messages."""
    return f"{cents // 100}.{cents % 100:02d}" if cents >= 0 else f"-{money_text(-cents)}"


class CustomerSummary(BaseModel):
    customer_id: str
    name: str
    email: str
    tier: str


class CustomerSearch(BaseModel):
    query: str
    customers: list[CustomerSummary] = Field(description="Best matches first; empty if none.")


class Customer(BaseModel):
    customer_id: str
    name: str
    email: str
    phone: str | None
    tier: str = Field(description="Loyalty tier: standard, silver, gold or platinum.")
    customer_since: str
    order_count: int
    open_ticket_count: int
    open_ticket_ids: list[str]
    lifetime_spend: float = Field(description="Paid minus refunded over all orders, in USD.")
    currency: str = CURRENCY


class OrderSummary(BaseModel):
    order_id: str
    status: str
    total: float
    refunded: float
    item_count: int
    placed_at: str


class OrderList(BaseModel):
    customer_id: str
    status_filter: str | None
    orders: list[OrderSummary] = Field(description="Newest first.")
    currency: str = CURRENCY


class OrderItem(BaseModel):
    product_id: str
    name: str
    quantity: int
    unit_price: float
    line_total: float


class RefundLine(BaseModel):
    refund_id: str
    amount: float
    reason: str
    note: str | None
    status: str
    created_at: str


class Refund(BaseModel):
    refund_id: str
    order_id: str
    customer_id: str
    amount: float
    currency: str = CURRENCY
    reason: str
    note: str | None
    status: str = Field(description="'issued': sent to the original payment method.")
    created_at: str
    order_status: str = Field(description="Order status after this refund.")
    order_refunded_total: float = Field(description="All refunds on the order, this one included.")
    order_refundable_remaining: float


class Order(BaseModel):
    order_id: str
    customer_id: str
    status: str
    currency: str = CURRENCY
    items: list[OrderItem]
    subtotal: float
    shipping: float
    total: float
    paid: float = Field(description="Amount captured from the customer.")
    refunded: float = Field(description="Refunded so far.")
    refundable: float = Field(description="What refund_order still accepts for this order.")
    placed_at: str
    shipped_at: str | None
    delivered_at: str | None
    cancelled_at: str | None
    refunds: list[RefundLine]


class Email(BaseModel):
    email_id: str
    customer_id: str
    to: str
    subject: str
    body: str
    status: str = Field(description="'sent': accepted by the outbox.")
    sent_at: str


class Ticket(BaseModel):
    ticket_id: str
    customer_id: str | None = Field(description="None for a ticket opened without a customer.")
    order_id: str | None
    subject: str
    status: str
    previous_status: str | None = Field(description="Status before this call (update_ticket).")
    priority: str
    created_at: str
    updated_at: str
    note_count: int


class TicketNote(BaseModel):
    note_id: int
    ticket_id: str
    author: str
    body: str
    created_at: str
