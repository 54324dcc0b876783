"""The CRM's data access for the dialogue, the tools, the seed and the importer: typed results, no SQL outside.

"Not found" is a ``NotFound`` value and a lost booking race is a ``SlotTaken`` value: a phone call goes on
after either, so neither is an exception. One Repository may be shared by threads: it serialises its use of the
connection with a lock. Each process should open its own.

Free text written from a call (ticket subject and description, lead interest and notes, callback reason and
preferred time, call summaries) passes through ``voicebot.review.redact.mask_secrets`` first: PINs, dates of
birth and card numbers are never stored in clear. Call history and callback reasons are masked again when read,
since the model is given them on later calls.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Protocol

from sqlite_utils import Database

from voicebot.crm.models import (
    OPEN_ORDER_STATUSES, Booking, CallbackRequest, CallerProfile, Customer, Interaction, Lead, NotFound, Order,
    OrderItem, SlotTaken, Slot, Ticket, VerificationRecord, from_cents, iso, to_cents,
)
from voicebot.crm.phone import normalize_phone
from voicebot.crm.pins import hash_pin
from voicebot.crm.schema import open_database, write_transaction
from voicebot.review.redact import mask_secrets


class _CrmSettings(Protocol):
    """The ``crm`` section's fields ``from_config`` reads."""

    database: str
    default_region: str


class _Config(Protocol):
    """What ``from_config`` needs of ``voicebot.config.Config``, typed without importing it: the config imports
    the menu schema, which checks node tools against the CRM's tool names (an import would close a circle)."""

    @property
    def crm(self) -> _CrmSettings: ...

    def path(self, value: str) -> Path: ...


def _locked(method):
    @functools.wraps(method)
    def wrapper(self: Repository, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return wrapper


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


class Repository:
    def __init__(self, db: Database, *, region: str = "US", clock: Callable[[], datetime] = datetime.now):
        self.db = db
        self.region = region
        self.clock = clock
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: str | Path | None, *, region: str = "US",
             clock: Callable[[], datetime] = datetime.now) -> Repository:
        """Open (creating folders and file if needed) and migrate; ``None`` is a fresh in-memory database."""
        return cls(open_database(path), region=region, clock=clock)

    @classmethod
    def from_config(cls, config: _Config) -> Repository:
        """The company's CRM on the company's clock (``knowledge.hours.company_clock``: hours.yaml's zone)."""
        from voicebot.knowledge.hours import company_clock

        return cls.open(config.path(config.crm.database), region=config.crm.default_region,
                        clock=company_clock(config))

    def with_clock(self, clock: Callable[[], datetime]) -> Repository:
        """The same database and lock, another clock (the seed writes history "as of" a given day)."""
        other = Repository(self.db, region=self.region, clock=clock)
        other._lock = self._lock
        return other

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[Repository]:
        """All writes inside commit together or not at all (nests as a savepoint)."""
        with self._lock, write_transaction(self.db):
            yield self

    def now(self) -> datetime:
        return self.clock().replace(microsecond=0)

    def _one(self, sql: str, params: Sequence = ()) -> dict | None:
        return next(self.db.query(sql, params), None)

    def _insert(self, table: str, row: dict) -> int:
        with self.transaction():
            return self.db[table].insert(row).last_pk

    # ------------------------------------------------------------------------------------------- customers

    def add_customer(self, name: str, phones: Iterable[str], *, email: str | None = None, pin: str | None = None,
                     date_of_birth: date | None = None, postcode: str | None = None,
                     created_at: datetime | None = None, pin_salt: bytes | None = None) -> Customer:
        """Add a customer; ``phones`` in any format the region reads. Raises ValueError for a bad number and
        sqlite3.IntegrityError for a number another customer already has (importers validate first)."""
        numbers = []
        for raw in phones:
            e164 = normalize_phone(raw, self.region)
            if e164 is None:
                raise ValueError(f"not a phone number: {raw!r}")
            numbers.append(e164)
        with self.transaction():
            customer_id = self.db["customers"].insert({
                "name": name.strip(), "email": email or None, "created_at": iso(created_at or self.now()),
                "pin_hash": hash_pin(pin, pin_salt) if pin else None,
                "date_of_birth": date_of_birth.isoformat() if date_of_birth else None,
                "postcode": postcode or None,
            }).last_pk
            self.db["customer_phones"].insert_all(
                {"customer_id": customer_id, "e164": e164, "label": "mobile" if i == 0 else "other"}
                for i, e164 in enumerate(numbers))
        return self.get_customer(customer_id)

    def _customer(self, row: dict) -> Customer:
        phones = tuple(r["e164"] for r in self.db["customer_phones"].rows_where(
            "customer_id = ?", [row["id"]], order_by="id"))
        return Customer(row["id"], row["name"], phones, row["email"], datetime.fromisoformat(row["created_at"]))

    @_locked
    def get_customer(self, customer_id: int) -> Customer | NotFound:
        row = self._one("select * from customers where id = ?", [customer_id])
        return self._customer(row) if row else NotFound("customer", str(customer_id))

    @_locked
    def find_customer_by_phone(self, raw: str | None) -> Customer | NotFound:
        """The customer a caller ID (or a number the caller says) belongs to, in any common format."""
        e164 = normalize_phone(raw, self.region)
        if e164 is None:
            return NotFound("customer", f"with phone {raw!r}" if raw else "(no caller ID)")
        row = self._one("select c.* from customers c join customer_phones p on p.customer_id = c.id "
                        "where p.e164 = ?", [e164])
        return self._customer(row) if row else NotFound("customer", f"with phone {e164}")

    @_locked
    def verification_record(self, customer_id: int) -> VerificationRecord | NotFound:
        row = self._one("select id, pin_hash, date_of_birth, postcode from customers where id = ?", [customer_id])
        if row is None:
            return NotFound("customer", str(customer_id))
        return VerificationRecord(row["id"], row["pin_hash"], _date(row["date_of_birth"]), row["postcode"])

    # ---------------------------------------------------------------------------------------------- orders

    def add_order(self, number: str, customer_id: int, status: str, placed_at: date, items: Sequence[OrderItem],
                  *, currency: str = "USD", carrier: str | None = None, tracking: str | None = None,
                  eta: date | None = None, delivered_at: date | None = None) -> Order:
        total = sum(to_cents(item.unit_price) * item.quantity for item in items)
        with self.transaction():
            order_id = self.db["orders"].insert({
                "number": number, "customer_id": customer_id, "status": status, "placed_at": placed_at.isoformat(),
                "total_cents": total, "currency": currency, "carrier": carrier, "tracking": tracking,
                "eta": eta.isoformat() if eta else None,
                "delivered_at": delivered_at.isoformat() if delivered_at else None,
            }).last_pk
            self.db["order_items"].insert_all(
                {"order_id": order_id, "sku": item.sku, "description": item.description, "quantity": item.quantity,
                 "unit_price_cents": to_cents(item.unit_price)} for item in items)
        return self.get_order(number)

    def _order(self, row: dict) -> Order:
        items = tuple(OrderItem(r["sku"], r["description"], r["quantity"], from_cents(r["unit_price_cents"]))
                      for r in self.db["order_items"].rows_where("order_id = ?", [row["id"]], order_by="id"))
        return Order(row["number"], row["customer_id"], row["status"], date.fromisoformat(row["placed_at"]),
                     from_cents(row["total_cents"]), row["currency"], items, row["carrier"], row["tracking"],
                     _date(row["eta"]), _date(row["delivered_at"]))

    @_locked
    def get_order(self, number: str, customer_id: int | None = None) -> Order | NotFound:
        """An order by its number; with ``customer_id``, only if it is that customer's (else NotFound, so a
        caller cannot learn about someone else's order)."""
        number = str(number).strip().lstrip("#")
        row = self._one("select * from orders where number = ?", [number])
        if row is None or (customer_id is not None and row["customer_id"] != customer_id):
            return NotFound("order", number)
        return self._order(row)

    @_locked
    def open_orders(self, customer_id: int) -> list[Order]:
        marks = ",".join("?" * len(OPEN_ORDER_STATUSES))
        return [self._order(r) for r in self.db.query(
            f"select * from orders where customer_id = ? and status in ({marks}) order by placed_at desc, id desc",
            [customer_id, *OPEN_ORDER_STATUSES])]

    @_locked
    def recent_orders(self, customer_id: int, limit: int = 5) -> list[Order]:
        return [self._order(r) for r in self.db.query(
            "select * from orders where customer_id = ? order by placed_at desc, id desc limit ?",
            [customer_id, limit])]

    # --------------------------------------------------------------------------------------------- tickets

    def create_ticket(self, subject: str, description: str, *, customer_id: int | None = None,
                      order_number: str | None = None, phone: str | None = None, priority: str = "normal",
                      status: str = "open", created_at: datetime | None = None) -> Ticket | NotFound:
        order_id = None
        with self.transaction():
            if order_number:
                order = self._one("select id, customer_id from orders where number = ?", [order_number])
                if order is None or (customer_id is not None and order["customer_id"] != customer_id):
                    return NotFound("order", order_number)
                order_id = order["id"]
            ticket_id = self.db["tickets"].insert({
                "customer_id": customer_id, "order_id": order_id, "phone": phone, "subject": mask_secrets(subject),
                "description": mask_secrets(description), "status": status, "priority": priority,
                "created_at": iso(created_at or self.now())}).last_pk
            return self._tickets("t.id = ?", [ticket_id])[0]

    def _tickets(self, where: str, params: Sequence) -> list[Ticket]:
        return [Ticket(r["id"], r["subject"], r["description"], r["status"], r["priority"],
                       datetime.fromisoformat(r["created_at"]), r["customer_id"], r["number"], r["phone"])
                for r in self.db.query("select t.*, o.number from tickets t left join orders o on o.id = t.order_id "
                                       f"where {where} order by t.created_at desc, t.id desc", params)]

    @_locked
    def open_tickets(self, customer_id: int) -> list[Ticket]:
        return self._tickets("t.customer_id = ? and t.status != 'closed'", [customer_id])

    # ---------------------------------------------------------------------------------------- appointments

    def add_slot(self, service: str, starts_at: datetime, *, resource: str, duration_min: int = 60) -> Slot:
        slot_id = self._insert("appointment_slots", {"service": service, "starts_at": iso(starts_at),
                                                     "duration_min": duration_min, "resource": resource})
        return Slot(slot_id, service, starts_at, duration_min, resource)

    @staticmethod
    def _slot(row: dict) -> Slot:
        return Slot(row["id"], row["service"], datetime.fromisoformat(row["starts_at"]), row["duration_min"],
                    row["resource"])

    @_locked
    def order_number_lengths(self) -> frozenset[int]:
        """The lengths the CRM's order numbers have ("10452": 5): a number that long at the end of a turn is said
        whole, not dictated in groups (``speech.dictation.partial_kind``)."""
        return frozenset(r[0] for r in self.db.execute("select distinct length(number) from orders").fetchall())

    @_locked
    def services(self) -> list[str]:
        return [r["service"] for r in self.db.query("select distinct service from appointment_slots order by 1")]

    @_locked
    def list_free_slots(self, *, service: str | None = None, start: date | None = None, end: date | None = None,
                        hours: tuple[int, int] | None = None, limit: int = 10, latest: bool = False) -> list[Slot]:
        """Unbooked slots from now on (``start``/``end``: days, inclusive; ``hours``: start hour from, before), earliest
        first (``latest``: latest first). ``service`` matches part of the name, case-insensitively ("repair" finds
        "printer repair")."""
        where, params = ["s.starts_at > ?", "b.id is null"], [iso(self.now())]
        if service:
            where.append("s.service like ?")
            params.append(f"%{service.strip()}%")
        if start:
            where.append("s.starts_at >= ?")
            params.append(start.isoformat())
        if end:
            where.append("s.starts_at < date(?, '+1 day')")
            params.append(end.isoformat())
        if hours:
            where.append("cast(strftime('%H', s.starts_at) as integer) between ? and ?")
            params += [hours[0], hours[1] - 1]
        sql = ("select s.* from appointment_slots s left join bookings b on b.slot_id = s.id "
               f"where {' and '.join(where)} order by s.starts_at{' desc' if latest else ''}, s.resource limit ?")
        return [self._slot(r) for r in self.db.query(sql, [*params, limit])]

    def free_slot(self, slot_id: int) -> Slot | SlotTaken | NotFound:
        """The slot if it can be booked now; inside the writer's transaction, so no one books it in between."""
        row = self._one("select * from appointment_slots where id = ?", [slot_id])
        if row is None:
            return NotFound("appointment slot", str(slot_id))
        slot = self._slot(row)
        if slot.starts_at <= self.now():
            return SlotTaken(slot_id, "in the past")
        return SlotTaken(slot_id) if self._one("select id from bookings where slot_id = ?", [slot_id]) else slot

    def book_slot(self, slot_id: int, *, name: str, phone: str | None = None, customer_id: int | None = None,
                  notes: str = "") -> Booking | SlotTaken | NotFound:
        """Book a slot unless someone has it. Safe across threads and processes: the check and the insert run
        under one ``BEGIN IMMEDIATE`` (a second booker waits, then sees the first booking), and the UNIQUE index
        on ``bookings.slot_id`` refuses a double booking even if that were bypassed."""
        try:
            with self.transaction():
                slot = self.free_slot(slot_id)
                if not isinstance(slot, Slot):
                    return slot
                booking_id = self.db["bookings"].insert({
                    "slot_id": slot_id, "customer_id": customer_id, "name": name.strip(), "phone": phone,
                    "notes": notes, "created_at": iso(self.now())}).last_pk
        except sqlite3.IntegrityError:
            return SlotTaken(slot_id)
        return self._bookings("b.id = ?", [booking_id])[0]

    def _bookings(self, where: str, params: Sequence) -> list[Booking]:
        sql = ("select b.*, s.service, s.starts_at, s.duration_min, s.resource from bookings b "
               f"join appointment_slots s on s.id = b.slot_id where {where} order by s.starts_at")
        return [Booking(r["id"], self._slot(r | {"id": r["slot_id"]}), r["name"], r["phone"], r["customer_id"],
                        r["notes"] or "", datetime.fromisoformat(r["created_at"]))
                for r in self.db.query(sql, params)]

    @_locked
    def upcoming_bookings(self, customer_id: int) -> list[Booking]:
        return self._bookings("b.customer_id = ? and s.starts_at > ?", [customer_id, iso(self.now())])

    # ------------------------------------------------------------------------ leads, callbacks, interactions

    def create_lead(self, name: str, interest: str, *, phone: str | None = None, email: str | None = None,
                    notes: str = "", customer_id: int | None = None, created_at: datetime | None = None) -> Lead:
        when = created_at or self.now()
        interest, notes = mask_secrets(interest), mask_secrets(notes)
        lead_id = self._insert("leads", {"customer_id": customer_id, "name": name.strip(), "phone": phone,
                                         "email": email, "interest": interest, "notes": notes, "status": "new",
                                         "created_at": iso(when)})
        return Lead(lead_id, name.strip(), interest, phone, email, notes, customer_id, when)

    def request_callback(self, phone: str, reason: str, *, preferred_time: str | None = None,
                         customer_id: int | None = None, status: str = "pending", created_at: datetime | None = None,
                         not_before: datetime | None = None) -> CallbackRequest:
        when = created_at or self.now()
        reason = mask_secrets(reason)
        preferred_time = mask_secrets(preferred_time) if preferred_time is not None else None
        callback_id = self._insert("callbacks", {"customer_id": customer_id, "phone": phone, "reason": reason,
                                                 "preferred_time": preferred_time, "status": status,
                                                 "created_at": iso(when), "not_before": not_before and iso(not_before)})
        return CallbackRequest(callback_id, phone, reason, preferred_time, status, customer_id, when)

    @_locked
    def pending_callbacks(self, customer_id: int) -> list[CallbackRequest]:
        return [CallbackRequest(r["id"], r["phone"], mask_secrets(r["reason"]), r["preferred_time"], r["status"],
                                r["customer_id"], datetime.fromisoformat(r["created_at"]))
                for r in self.db["callbacks"].rows_where("customer_id = ? and status = 'pending' and "
                                                         "purpose in ('callback', 'person')", [customer_id],
                                                         order_by="created_at desc")]

    def add_interaction(self, summary: str, outcome: str, *, phone: str | None = None,
                        customer_id: int | None = None, call_id: str | None = None,
                        started_at: datetime | None = None, sentiment: float | None = None) -> Interaction:
        """Record a call in the caller's history (the dialogue calls this when a call ends). The summary is
        stored with PINs, dates of birth and card numbers masked: the model reads it on the caller's next call."""
        when = started_at or self.now()
        summary = mask_secrets(summary)
        interaction_id = self._insert("interactions", {
            "customer_id": customer_id, "phone": phone, "call_id": call_id, "started_at": iso(when),
            "summary": summary, "outcome": outcome, "sentiment": sentiment})
        return Interaction(interaction_id, when, phone, summary, outcome, customer_id, call_id, sentiment)

    @_locked
    def recent_interactions(self, customer_id: int, limit: int = 5) -> list[Interaction]:
        return [Interaction(r["id"], datetime.fromisoformat(r["started_at"]), r["phone"], mask_secrets(r["summary"]),
                            r["outcome"], r["customer_id"], r["call_id"], r["sentiment"])
                for r in self.db["interactions"].rows_where("customer_id = ?", [customer_id],
                                                            order_by="started_at desc, id desc", limit=limit)]

    @_locked
    def caller_profile(self, customer_id: int) -> CallerProfile | NotFound:
        """What the bot may know about a customer once verified."""
        customer = self.get_customer(customer_id)
        if isinstance(customer, NotFound):
            return customer
        return CallerProfile(customer, tuple(self.open_orders(customer_id)), tuple(self.recent_orders(customer_id)),
                             tuple(self.open_tickets(customer_id)), tuple(self.upcoming_bookings(customer_id)),
                             tuple(self.pending_callbacks(customer_id)), tuple(self.recent_interactions(customer_id)))

    @_locked
    def counts(self) -> dict[str, int]:
        """Rows per CRM table (for `crm seed` / `crm import` reports and tests)."""
        names = ("customers", "customer_phones", "orders", "order_items", "tickets", "appointment_slots", "bookings",
                 "leads", "callbacks", "interactions")
        return {name: self.db[name].count for name in names}
