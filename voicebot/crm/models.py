"""Typed CRM records (frozen dataclasses) and the values that stand for "no such thing" at the tool boundary.

Times are the business's local wall-clock time, naive, stored as ISO text ("2026-03-03T10:00:00"); money is
stored in cents and shown as ``Decimal``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

ORDER_STATUSES = ("pending", "processing", "shipped", "out_for_delivery", "delayed", "delivered", "cancelled",
                  "returned")
OPEN_ORDER_STATUSES = ("pending", "processing", "shipped", "out_for_delivery", "delayed")
TICKET_STATUSES = ("open", "pending", "closed")
TICKET_PRIORITIES = ("low", "normal", "high")
OUTCOMES = ("resolved", "ticket", "booking", "callback", "lead", "transferred", "abandoned", "no_match")


@dataclass(frozen=True)
class NotFound:
    """Nothing matched: a value, so a tool can say so to the model instead of raising."""

    kind: str
    key: str

    @property
    def message(self) -> str:
        return f"no {self.kind.replace('_', ' ')} {self.key}".strip()


@dataclass(frozen=True)
class SlotTaken:
    """The slot was booked by someone else first (or is in the past)."""

    slot_id: int
    reason: str = "already booked"


@dataclass(frozen=True)
class Customer:
    id: int
    name: str
    phones: tuple[str, ...]
    email: str | None
    created_at: datetime

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.split() else self.name


@dataclass(frozen=True)
class VerificationRecord:
    """The secrets on file for one customer. Never shown to the model: only compared in code."""

    customer_id: int
    pin_hash: str | None
    date_of_birth: date | None
    postcode: str | None


@dataclass(frozen=True)
class OrderItem:
    sku: str
    description: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class Order:
    number: str
    customer_id: int
    status: str
    placed_at: date
    total: Decimal
    currency: str
    items: tuple[OrderItem, ...]
    carrier: str | None = None
    tracking: str | None = None
    eta: date | None = None
    delivered_at: date | None = None


@dataclass(frozen=True)
class Ticket:
    id: int
    subject: str
    description: str
    status: str
    priority: str
    created_at: datetime
    customer_id: int | None = None
    order_number: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Slot:
    id: int
    service: str
    starts_at: datetime
    duration_min: int
    resource: str


@dataclass(frozen=True)
class Booking:
    id: int
    slot: Slot
    name: str
    phone: str | None
    customer_id: int | None
    notes: str
    created_at: datetime


@dataclass(frozen=True)
class Lead:
    id: int
    name: str
    interest: str
    phone: str | None
    email: str | None
    notes: str
    customer_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class CallbackRequest:
    id: int
    phone: str
    reason: str
    preferred_time: str | None
    status: str
    customer_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class Interaction:
    id: int
    started_at: datetime
    phone: str | None
    summary: str
    outcome: str
    customer_id: int | None = None
    call_id: str | None = None
    sentiment: float | None = None


@dataclass(frozen=True)
class CallerProfile:
    """Everything the bot may know about a verified caller: what `crm show` prints."""

    customer: Customer
    open_orders: tuple[Order, ...]
    recent_orders: tuple[Order, ...]
    open_tickets: tuple[Ticket, ...]
    upcoming_bookings: tuple[Booking, ...]
    pending_callbacks: tuple[CallbackRequest, ...]
    recent_interactions: tuple[Interaction, ...]


def to_cents(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def from_cents(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


def iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds")
