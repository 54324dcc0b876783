"""`voicebot crm import`: customers.csv, orders.csv or slots.csv into the CRM, all or nothing.

Every row is validated before anything is committed; if any row is rejected the report lists each one with its
line and reason and the database is left as it was. The rows that pass are written in one transaction, so a
failure half-way (a disk error, a concurrent writer taking a phone number) also leaves nothing behind. Slots are
written inside that transaction as they are checked, so that the unique index judges clashes with slots already
there, and rolled back with the rest if any row is rejected.

customers.csv: name, phone (several separated by ";"), and optionally email, pin, date_of_birth (YYYY-MM-DD),
postcode. orders.csv: one row per item: order_number, customer_phone, status, placed_at, description, quantity,
unit_price, and optionally sku, currency, carrier, tracking, eta, delivered_at. Rows of one order must agree on
the order's own fields. slots.csv: one bookable appointment slot per row: service, starts_at (local time,
YYYY-MM-DD HH:MM or YYYY-MM-DDTHH:MM, in the future), and optionally duration_min (5 to 1440, default 60) and
resource (who or what is booked, default the service name; one resource has one slot per start time).
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from voicebot.crm.models import ORDER_STATUSES, NotFound, OrderItem, iso
from voicebot.crm.phone import normalize_phone
from voicebot.crm.repository import Repository

COLUMNS = {
    "customers": ({"name", "phone"}, {"email", "pin", "date_of_birth", "postcode"}),
    "orders": ({"order_number", "customer_phone", "status", "placed_at", "description", "quantity", "unit_price"},
               {"sku", "currency", "carrier", "tracking", "eta", "delivered_at"}),
    "slots": ({"service", "starts_at"}, {"duration_min", "resource"}),
}
ORDER_FIELDS = ("customer_phone", "status", "placed_at", "currency", "carrier", "tracking", "eta", "delivered_at")


@dataclass(frozen=True)
class RejectedRow:
    line: int
    reason: str


@dataclass(frozen=True)
class ImportReport:
    kind: str
    rows: int
    imported: int
    rejected: tuple[RejectedRow, ...]

    @property
    def ok(self) -> bool:
        return not self.rejected


class _Row:
    """One CSV row and the problems found in it."""

    def __init__(self, line: int, values: dict[str, str]):
        self.line, self.values, self.problems = line, values, []

    def get(self, name: str) -> str:
        return (self.values.get(name) or "").strip()

    def date(self, name: str, required: bool = False) -> date | None:
        text = self.get(name)
        if not text:
            if required:
                self.problems.append(f"{name} is empty")
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            self.problems.append(f"{name} {text!r} is not a date (YYYY-MM-DD)")
            return None


def detect_kind(columns: list[str]) -> str | None:
    for kind, (required, _) in COLUMNS.items():
        if required <= set(columns):
            return kind
    return None


def _read(text: str, kind: str | None) -> tuple[str | None, list[_Row], list[RejectedRow]]:
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    kind = kind or detect_kind(header)
    if kind is None:
        return None, [], [RejectedRow(1, "cannot tell customers, orders or slots: the header has none of "
                                         "name,phone / order_number,customer_phone,... / service,starts_at "
                                         "(see --kind)")]
    required, optional = COLUMNS[kind]
    problems = [f"missing column {c!r}" for c in sorted(required - set(header))]
    problems += [f"unknown column {c!r}" for c in header if c not in required | optional]
    if problems:
        return kind, [], [RejectedRow(1, "; ".join(problems))]
    rows, line = [], reader.line_num
    for values in reader:
        start, line = line + 1, reader.line_num
        if not any(v.strip() for v in values):
            continue
        row = _Row(start, dict(zip(header, values)))
        if len(values) != len(header):
            row.problems.append(f"{len(values)} fields, the header has {len(header)}")
        rows.append(row)
    return kind, rows, []


def _check_customers(repo: Repository, rows: list[_Row]) -> None:
    seen: dict[str, int] = {}
    for row in rows:
        if not row.get("name"):
            row.problems.append("name is empty")
        raw_phones = [p for p in re.split(r"[;|]", row.get("phone")) if p.strip()]
        if not raw_phones:
            row.problems.append("phone is empty")
        for raw in raw_phones:
            e164 = normalize_phone(raw, repo.region)
            if e164 is None:
                row.problems.append(f"phone {raw.strip()!r} is not a phone number")
            elif e164 in seen:
                row.problems.append(f"phone {e164} is also on line {seen[e164]}")
            elif not isinstance(owner := repo.find_customer_by_phone(e164), NotFound):
                row.problems.append(f"phone {e164} already belongs to {owner.name} (customer {owner.id})")
            else:
                seen[e164] = row.line
        email, pin = row.get("email"), row.get("pin")
        if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            row.problems.append(f"email {email!r} is not an email address")
        if pin and not re.fullmatch(r"\d{4,8}", pin):
            row.problems.append("pin must be 4 to 8 digits")
        birth = row.date("date_of_birth")
        if birth and not date(1900, 1, 1) <= birth <= repo.now().date():
            row.problems.append(f"date_of_birth {birth} is not a plausible birth date")
        if row.get("postcode") and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 -]{1,9}", row.get("postcode")):
            row.problems.append(f"postcode {row.get('postcode')!r} is not a postcode")


def _write_customers(repo: Repository, rows: list[_Row]) -> None:
    for row in rows:
        repo.add_customer(row.get("name"), [p for p in re.split(r"[;|]", row.get("phone")) if p.strip()],
                          email=row.get("email") or None, pin=row.get("pin") or None,
                          date_of_birth=row.date("date_of_birth"), postcode=row.get("postcode") or None)


def _price(row: _Row) -> Decimal:
    return Decimal(row.get("unit_price").lstrip("$£€"))


def _check_orders(repo: Repository, rows: list[_Row]) -> dict[str, list[_Row]]:
    orders: dict[str, list[_Row]] = {}
    for row in rows:
        number = row.get("order_number").lstrip("#")
        if not re.fullmatch(r"\d{3,10}", number):
            row.problems.append(f"order_number {number!r} must be 3 to 10 digits")
        elif not isinstance(repo.get_order(number), NotFound):
            row.problems.append(f"order {number} already exists")
        phone = normalize_phone(row.get("customer_phone"), repo.region)
        if phone is None:
            row.problems.append(f"customer_phone {row.get('customer_phone')!r} is not a phone number")
        elif isinstance(repo.find_customer_by_phone(phone), NotFound):
            row.problems.append(f"no customer has the phone {phone} (import customers first)")
        if row.get("status") not in ORDER_STATUSES:
            row.problems.append(f"status {row.get('status')!r} is not one of {', '.join(ORDER_STATUSES)}")
        for name in ("placed_at", "eta", "delivered_at"):
            row.date(name, required=name == "placed_at")
        if row.get("currency") and not re.fullmatch(r"[A-Z]{3}", row.get("currency")):
            row.problems.append(f"currency {row.get('currency')!r} is not a code such as USD")
        if not row.get("description"):
            row.problems.append("description is empty")
        if not re.fullmatch(r"[1-9]\d{0,4}", row.get("quantity")):
            row.problems.append(f"quantity {row.get('quantity')!r} is not a whole number from 1")
        try:
            price = _price(row)
            if not price.is_finite() or price < 0 or price != price.quantize(Decimal("0.01")):
                raise InvalidOperation
        except InvalidOperation:
            row.problems.append(f"unit_price {row.get('unit_price')!r} is not an amount such as 24.99")
        first = orders.setdefault(number, [row])[0]
        if first is not row:
            orders[number].append(row)
            differ = [f for f in ORDER_FIELDS if row.get(f) != first.get(f)]
            if differ:
                row.problems.append(f"order {number}: {', '.join(differ)} differ from line {first.line}")
    return orders


def _write_orders(repo: Repository, orders: dict[str, list[_Row]]) -> None:
    for number, rows in orders.items():
        head = rows[0]
        customer = repo.find_customer_by_phone(head.get("customer_phone"))
        items = [OrderItem(r.get("sku"), r.get("description"), int(r.get("quantity")), _price(r)) for r in rows]
        repo.add_order(number, customer.id, head.get("status"), head.date("placed_at"), items,
                       currency=head.get("currency") or "USD", carrier=head.get("carrier") or None,
                       tracking=head.get("tracking") or None, eta=head.date("eta"),
                       delivered_at=head.date("delivered_at"))


def _starts_at(row: _Row) -> datetime | None:
    text = row.get("starts_at")
    if not text:
        row.problems.append("starts_at is empty")
        return None
    try:
        if not re.fullmatch(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d)?", text):
            raise ValueError
        return datetime.fromisoformat(text)
    except ValueError:
        row.problems.append(f"starts_at {text!r} is not a date and time (YYYY-MM-DD HH:MM, local time)")
        return None


def _import_slots(repo: Repository, rows: list[_Row]) -> int:
    """Check each slot and write every one that passes its own checks, inside the caller's transaction: the
    unique index on (resource, starts_at) then reports a clash with a slot already in the database, as a
    problem of that row. The caller rolls all of them back if any row has a problem."""
    now = repo.now()
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        service = row.get("service")
        resource = row.get("resource") or service
        if not service:
            row.problems.append("service is empty")
        starts_at = _starts_at(row)
        if starts_at is not None and starts_at <= now:
            row.problems.append(f"starts_at {iso(starts_at)} is in the past (now is {iso(now)})")
        duration = row.get("duration_min") or "60"
        if not re.fullmatch(r"\d{1,4}", duration) or not 5 <= int(duration) <= 1440:
            row.problems.append(f"duration_min {duration!r} is not a whole number of minutes from 5 to 1440")
        if starts_at is None or not resource:
            continue
        key = (resource, iso(starts_at))
        if key in seen:
            row.problems.append(f"resource {resource!r} at {key[1]} is also on line {seen[key]}")
            continue
        seen[key] = row.line
        if not row.problems:
            try:
                repo.add_slot(service, starts_at, resource=resource, duration_min=int(duration))
            except sqlite3.IntegrityError:
                row.problems.append(f"resource {resource!r} already has a slot at {key[1]}")
    return len(rows)


class _Undo(Exception):
    """Raised inside the import's transaction to leave the database as it was (slots are written to check them)."""


def import_csv(repo: Repository, path: str | Path, kind: str | None = None) -> ImportReport:
    """Validate every row of ``path``; import all of them in one transaction, or none if any is rejected."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return ImportReport(kind or "?", 0, 0, (RejectedRow(0, f"cannot read the file: {exc}"),))
    kind, rows, rejected = _read(text, kind)
    if rejected:
        return ImportReport(kind or "?", 0, 0, tuple(rejected))
    try:
        with repo.transaction():  # the checks and the writes see one state of the database
            if kind == "slots":
                imported = _import_slots(repo, rows)
            else:
                orders = _check_orders(repo, rows) if kind == "orders" else _check_customers(repo, rows)
            rejected = [RejectedRow(r.line, "; ".join(r.problems)) for r in rows if r.problems]
            if rejected:
                raise _Undo
            if kind == "orders":
                _write_orders(repo, orders)
                imported = len(orders)
            elif kind == "customers":
                _write_customers(repo, rows)
                imported = len(rows)
    except _Undo:
        imported = 0
    return ImportReport(kind, len(rows), imported, tuple(rejected))
