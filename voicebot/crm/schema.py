"""The CRM schema as an ordered list of sqlite-utils migrations, and opening a database at the latest version.

Each migration runs once, in order, and is recorded in ``_sqlite_migrations`` (sqlite-utils' own table), so an
existing database upgrades in place: ``migrate`` applies only what it has not seen. Never edit a migration that
has shipped; append a new one. The whole upgrade runs under ``BEGIN IMMEDIATE`` so two processes starting on
one file do not both try to create the same table.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from voicebot.db import open_sqlite

MIGRATIONS = Migrations("voicebot_crm")
MIGRATION_NAMES: list[str] = []


def _migration(fn):
    MIGRATION_NAMES.append(fn.__name__)
    return MIGRATIONS()(fn)


class SchemaError(Exception):
    """The database was written by a newer voicebot (it has migrations this code does not know)."""


@_migration
def m001_customers_orders_tickets(db: Database) -> None:
    db["customers"].create({"id": int, "name": str, "email": str, "pin_hash": str, "created_at": str},
                           pk="id", not_null={"name", "created_at"})
    db["customer_phones"].create({"id": int, "customer_id": int, "e164": str, "label": str}, pk="id",
                                 not_null={"customer_id", "e164"}, foreign_keys=[("customer_id", "customers", "id")])
    db["customer_phones"].create_index(["e164"], unique=True)
    db["customer_phones"].create_index(["customer_id"])
    db["orders"].create({"id": int, "number": str, "customer_id": int, "status": str, "placed_at": str,
                         "total_cents": int, "currency": str, "carrier": str, "tracking": str, "eta": str,
                         "delivered_at": str}, pk="id",
                        not_null={"number", "customer_id", "status", "placed_at", "total_cents", "currency"},
                        foreign_keys=[("customer_id", "customers", "id")])
    db["orders"].create_index(["number"], unique=True)
    db["orders"].create_index(["customer_id", "status"])
    db["order_items"].create({"id": int, "order_id": int, "sku": str, "description": str, "quantity": int,
                              "unit_price_cents": int}, pk="id",
                             not_null={"order_id", "description", "quantity", "unit_price_cents"},
                             foreign_keys=[("order_id", "orders", "id")])
    db["order_items"].create_index(["order_id"])
    db["tickets"].create({"id": int, "customer_id": int, "order_id": int, "phone": str, "subject": str,
                          "description": str, "status": str, "priority": str, "created_at": str}, pk="id",
                         not_null={"subject", "status", "priority", "created_at"},
                         foreign_keys=[("customer_id", "customers", "id"), ("order_id", "orders", "id")])
    db["tickets"].create_index(["customer_id", "status"])


@_migration
def m002_appointments(db: Database) -> None:
    db["appointment_slots"].create({"id": int, "service": str, "starts_at": str, "duration_min": int,
                                    "resource": str}, pk="id",
                                   not_null={"service", "starts_at", "duration_min", "resource"})
    db["appointment_slots"].create_index(["resource", "starts_at"], unique=True)
    db["appointment_slots"].create_index(["service", "starts_at"])
    # One booking per slot, enforced by the database: the last line of defence against double booking.
    db["bookings"].create({"id": int, "slot_id": int, "customer_id": int, "name": str, "phone": str, "notes": str,
                           "created_at": str}, pk="id", not_null={"slot_id", "name", "created_at"},
                          foreign_keys=[("slot_id", "appointment_slots", "id"), ("customer_id", "customers", "id")])
    db["bookings"].create_index(["slot_id"], unique=True)
    db["bookings"].create_index(["customer_id"])


@_migration
def m003_leads_callbacks_interactions(db: Database) -> None:
    db["leads"].create({"id": int, "customer_id": int, "name": str, "phone": str, "email": str, "interest": str,
                        "notes": str, "status": str, "created_at": str}, pk="id",
                       not_null={"name", "interest", "status", "created_at"},
                       foreign_keys=[("customer_id", "customers", "id")])
    db["callbacks"].create({"id": int, "customer_id": int, "phone": str, "reason": str, "preferred_time": str,
                            "status": str, "created_at": str}, pk="id",
                           not_null={"phone", "reason", "status", "created_at"},
                           foreign_keys=[("customer_id", "customers", "id")])
    db["callbacks"].create_index(["status", "created_at"])
    db["interactions"].create({"id": int, "customer_id": int, "phone": str, "call_id": str, "started_at": str,
                               "summary": str, "outcome": str, "sentiment": float}, pk="id",
                              not_null={"started_at", "summary", "outcome"},
                              foreign_keys=[("customer_id", "customers", "id")])
    db["interactions"].create_index(["customer_id", "started_at"])
    db["interactions"].create_index(["phone", "started_at"])


@_migration
def m004_verify_by_birth_date_and_postcode(db: Database) -> None:
    """Callers who forgot their PIN can verify with date of birth plus postcode."""
    db["customers"].add_column("date_of_birth", str)
    db["customers"].add_column("postcode", str)


@_migration
def m005_mask_secrets_in_free_text(db: Database) -> None:
    """Call summaries written before this could hold the PIN or date of birth a caller said, in clear, and the
    model reads them on later calls: mask them (and any in callback reasons, tickets and leads) the way new rows
    are masked when written (``voicebot.review.redact.mask_secrets``)."""
    import re

    from voicebot.review.redact import mask_secrets

    # The old summaries listed every number the caller said as what they asked about: "Asked about order 4815,
    # 10452: ...". Any of them may be a PIN, so the list goes (summaries now name only confirmed orders).
    numbers = re.compile(r"\bAsked about (?P<topic>(?:order|repair visit|billing|buying|callback) )?"
                         r"\d{3,}(?:, \d{3,})*: ")

    def clean(text: str) -> str:
        text = numbers.sub(lambda m: f"Asked about {m['topic'].strip()}: " if m["topic"] else "Asked: ", text)
        return mask_secrets(text)

    columns = {"interactions": ("summary",), "callbacks": ("reason", "preferred_time"),
               "tickets": ("subject", "description"), "leads": ("interest", "notes")}
    for table, names in columns.items():
        rows = db.execute(f"select id, {', '.join(names)} from {table}").fetchall()
        for row_id, *values in rows:
            masked = [clean(v) if isinstance(v, str) else v for v in values]
            if masked != values:
                db.execute(f"update {table} set {', '.join(f'{n} = ?' for n in names)} where id = ?",
                           [*masked, row_id])


@_migration
def m006_verification_failures(db: Database) -> None:
    """Wrong verification answers, kept across calls: a caller who used up their attempts must not get three
    fresh guesses by calling again. Only the customer and the time are kept, never what was said."""
    db["verification_failures"].create({"id": int, "customer_id": int, "at": str}, pk="id",
                                       foreign_keys=[("customer_id", "customers", "id")])
    db["verification_failures"].create_index(["customer_id", "at"])



@_migration
def m007_callback_attempts(db: Database) -> None:
    """The dialer (issue 18) calls callbacks back: each callback row says how often it was tried, when last and
    with what result, and when it was done; every attempt is also a row of its own (the history a supervisor
    reads: when, the result, the SIP status, the call). Statuses: pending, done, failed (attempts used up),
    opted_out (the callee asked never to be called again)."""
    db["callbacks"].add_column("attempts", int, not_null_default=0)
    db["callbacks"].add_column("last_attempt_at", str)
    db["callbacks"].add_column("last_result", str)
    db["callbacks"].add_column("done_at", str)
    db["callback_attempts"].create({"id": int, "callback_id": int, "at": str, "result": str, "sip_status": int,
                                    "call_id": str}, pk="id", not_null={"callback_id", "at", "result"},
                                   foreign_keys=[("callback_id", "callbacks", "id")])
    db["callback_attempts"].create_index(["callback_id", "at"])


@_migration
def m008_outbound_purposes_campaigns_checkins(db: Database) -> None:
    """The dialer's queue (``callbacks``) holds every outbound call, not only callbacks a caller asked for: its
    ``purpose`` (callback, reminder, checkin, message), what it is about (a booking, a ticket), the campaign it
    belongs to, its own attempt limit and the end of its window (``not_after``: a reminder after the visit is
    pointless). An attempt keeps a short ``detail`` (what the callee chose). Bookings record a confirmation,
    tickets when they were resolved (the next-morning check-in); check-in answers and campaigns get tables."""
    db["callbacks"].add_column("purpose", str, not_null_default="callback")
    db["callbacks"].add_column("booking_id", int)
    db["callbacks"].add_column("ticket_id", int)
    db["callbacks"].add_column("campaign_id", int)
    db["callbacks"].add_column("max_attempts", int)
    db["callbacks"].add_column("not_after", str)
    db["callbacks"].create_index(["purpose", "booking_id"])
    db["callbacks"].create_index(["purpose", "ticket_id"])
    db["callback_attempts"].add_column("detail", str)
    db["bookings"].add_column("confirmed_at", str)
    db["tickets"].add_column("resolved_at", str)
    db["campaigns"].create({"id": int, "name": str, "purpose": str, "message": str, "target": str,
                            "starts_at": str, "ends_at": str, "max_attempts": int, "status": str,
                            "created_at": str}, pk="id", not_null={"name", "purpose", "target", "status",
                                                                    "created_at"})
    db["campaigns"].create_index(["name"], unique=True)
    db["checkin_results"].create({"id": int, "callback_id": int, "customer_id": int, "phone": str,
                                  "booking_id": int, "ticket_id": int, "rating": int, "comment": str,
                                  "wants_call": int, "call_id": str, "at": str}, pk="id", not_null={"at"},
                                 foreign_keys=[("callback_id", "callbacks", "id")])
    db["checkin_results"].create_index(["at"])


@_migration
def m009_callback_not_before(db: Database) -> None:
    """A callback the caller asked for at a time ("tomorrow at ten") is not due before it: ``not_before`` is that
    time as code read it from their words (ISO 8601, the company's zone), which the dialer honours; the caller's
    own words stay in ``preferred_time``."""
    db["callbacks"].add_column("not_before", str)


SCHEMA_VERSION = len(MIGRATION_NAMES)


def schema_version(db: Database) -> int:
    """How many of the known migrations this database has (0 for an empty file)."""
    return len(MIGRATIONS.applied(db))


@contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """A write transaction that takes the write lock up front (``BEGIN IMMEDIATE``).

    A deferred ``BEGIN`` would read first and fail to upgrade its lock when another writer got there in between;
    IMMEDIATE makes the second writer wait (busy timeout) and then read the first one's committed rows. Inside an
    open transaction this nests as a savepoint.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.rollback()
        raise
    db.commit()


def migrate(db: Database, stop_before: str | None = None) -> int:
    """Bring ``db`` to the latest schema (or to just before migration ``stop_before``); return its version."""
    with write_transaction(db):
        unknown = [m.name for m in MIGRATIONS.applied(db) if m.name not in MIGRATION_NAMES]
        if unknown:
            raise SchemaError(f"the CRM database has migrations this voicebot does not know: {', '.join(unknown)}; "
                              "upgrade voicebot")
        MIGRATIONS.apply(db, stop_before=stop_before)
    return schema_version(db)


def connect(path: str | Path | None, busy_timeout_s: float = 10.0) -> Database:
    """A sqlite-utils Database on ``path`` (None: in memory), opened by ``voicebot.db.open_sqlite`` (foreign keys
    on, WAL for files, usable from a call's worker thread; the Repository serialises its own use of it), with
    Python's implicit transactions, which sqlite-utils expects.
    """
    return Database(open_sqlite(path, autocommit=False, busy_timeout_s=busy_timeout_s))


def open_database(path: str | Path | None) -> Database:
    """Connect and migrate to the latest schema."""
    db = connect(path)
    migrate(db)
    return db
