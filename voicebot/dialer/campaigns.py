"""Campaigns and single calls: what ``voicebot campaign ...`` and ``voicebot dial`` put in the dialer's queue.

Why they only queue rows (``callbacks`` with a ``purpose``, m008) and never dial: the dialer inside ``voicebot
serve`` is the one owner of outbound calls, so the calling hours, the attempt limits and spacing, the
do-not-call list, the opt-out and the cap on lines hold for a campaign exactly as for a callback, and a campaign
started twice cannot call anyone twice at once.

A campaign has a purpose (``reminder``, ``checkin``, ``callback`` or ``message``), a target list (a CSV file
with a ``phone`` column, or a named CRM query: ``CRM_QUERIES``), a window (``starts_at``: no call before,
``ends_at``: none from then on) and its own attempt limit. Pausing it holds its rows (``ledger.pending`` skips
a paused campaign's rows); resuming lets them go on. Every row is checked first: a bad phone number or a reminder
without a booking stops the whole campaign before anything is queued.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from voicebot.crm.models import iso
from voicebot.crm.phone import normalize_phone
from voicebot.crm.repository import Repository
from voicebot.review.redact import mask_secrets

PURPOSES = ("reminder", "checkin", "callback", "message")
_PHONE = ("(select p.e164 from customer_phones p where p.customer_id = c.id order by p.id limit 1)")
CRM_QUERIES = {  # name: (sql giving phone, customer_id, booking_id, ticket_id, reason; what it is)
    "customers": (f"select {_PHONE} as phone, c.id as customer_id, null as booking_id, null as ticket_id, "
                  "'' as reason from customers c", "every customer with a phone number"),
    "upcoming-bookings": (f"select coalesce(b.phone, {_PHONE}) as phone, b.customer_id, b.id as booking_id, null as "
                          "ticket_id, s.service as reason from bookings b join appointment_slots s on s.id = "
                          "b.slot_id left join customers c on c.id = b.customer_id where s.starts_at > ?",
                          "every booking from now on (for reminders)"),
    "resolved-tickets": (f"select coalesce(t.phone, {_PHONE}) as phone, t.customer_id, null as booking_id, t.id as "
                         "ticket_id, '' as reason from tickets t left join customers c on c.id = t.customer_id "
                         "where t.status in ('resolved', 'closed')", "every resolved or closed ticket (for "
                         "check-ins)"),
}


class CampaignError(ValueError):
    """A campaign that cannot be queued as asked; nothing was written."""


@dataclass(frozen=True)
class Target:
    phone: str  # E.164
    reason: str = ""
    customer_id: int | None = None
    booking_id: int | None = None
    ticket_id: int | None = None


@dataclass(frozen=True)
class CampaignRow:
    id: int
    name: str
    purpose: str
    status: str
    target: str
    starts_at: str | None
    ends_at: str | None
    max_attempts: int | None
    counts: dict[str, int]  # the rows' statuses


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def targets_from_csv(path: Path, region: str) -> list[Target]:
    """Rows of a CSV with a ``phone`` column (optional: ``reason``, ``customer_id``, ``booking_id``,
    ``ticket_id``); every bad row is reported, and any stops the import."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if "phone" not in (reader.fieldnames or []):
            raise CampaignError(f"{path}: no 'phone' column (columns: {', '.join(reader.fieldnames or [])})")
        targets, errors = [], []
        for n, row in enumerate(reader, 2):
            phone = normalize_phone(row.get("phone") or "", region)
            try:
                ids = [_int(row.get(k)) for k in ("customer_id", "booking_id", "ticket_id")]
            except ValueError:
                errors.append(f"line {n}: an id that is not a number")
                continue
            if phone is None:
                errors.append(f"line {n}: {row.get('phone')!r} is not a phone number")
                continue
            targets.append(Target(phone, mask_secrets((row.get("reason") or "").strip()), *ids))
    if errors:
        raise CampaignError(f"{path}: {len(errors)} bad row(s), nothing queued: " + "; ".join(errors[:10]))
    return targets


def targets_from_crm(crm: Repository, query: str, region: str) -> list[Target]:
    if query not in CRM_QUERIES:
        raise CampaignError(f"unknown CRM query {query!r}; one of: {', '.join(CRM_QUERIES)}")
    sql = CRM_QUERIES[query][0]
    with crm.transaction():
        rows = list(crm.db.query(sql, [iso(crm.now())] if "?" in sql else []))
    return [Target(phone, r["reason"] or "", r["customer_id"], r["booking_id"], r["ticket_id"])
            for r in rows if (phone := normalize_phone(r["phone"] or "", region)) is not None]


def _check(purpose: str, targets: list[Target], message: str | None) -> None:
    if purpose not in PURPOSES:
        raise CampaignError(f"purpose must be one of {', '.join(PURPOSES)}, not {purpose!r}")
    if purpose == "message" and not message:
        raise CampaignError("a message campaign needs --message (what the bot says)")
    if purpose == "reminder" and any(t.booking_id is None for t in targets):
        raise CampaignError("a reminder needs a booking for every target (--crm upcoming-bookings, or a CSV "
                            "booking_id column)")
    if purpose == "checkin" and any(t.booking_id is None and t.ticket_id is None for t in targets):
        raise CampaignError("a check-in needs a booking or a ticket for every target")
    if not targets:
        raise CampaignError("the target list is empty")


def add_campaign(crm: Repository, name: str, purpose: str, targets: list[Target], target: str, *,
                 message: str | None = None, starts_at: datetime | None = None, ends_at: datetime | None = None,
                 max_attempts: int | None = None) -> int:
    """Write the campaign and one queued row per target (one per number: a number listed twice is called once);
    returns the campaign's id."""
    _check(purpose, targets, message)
    if starts_at and ends_at and ends_at <= starts_at:
        raise CampaignError("the window ends before it starts")
    message = mask_secrets(message) if message else None
    with crm.transaction():
        if crm.db.execute("select 1 from campaigns where name = ?", [name]).fetchone():
            raise CampaignError(f"a campaign named {name!r} exists already")
        now = iso(crm.now())
        campaign_id = crm.db["campaigns"].insert({
            "name": name, "purpose": purpose, "message": message, "target": target, "status": "active",
            "starts_at": iso(starts_at) if starts_at else None, "ends_at": iso(ends_at) if ends_at else None,
            "max_attempts": max_attempts, "created_at": now}).last_pk
        seen: set[str] = set()
        for t in targets:
            if t.phone in seen:
                continue
            seen.add(t.phone)
            crm.db["callbacks"].insert({
                "phone": t.phone, "customer_id": t.customer_id, "booking_id": t.booking_id, "ticket_id": t.ticket_id,
                "reason": message if purpose == "message" else (t.reason or f"campaign {name}"),
                "status": "pending", "purpose": purpose, "campaign_id": campaign_id, "max_attempts": max_attempts,
                "preferred_time": iso(starts_at) if starts_at else None,
                "not_after": iso(ends_at) if ends_at else None, "created_at": now, "attempts": 0})
    return campaign_id


def list_campaigns(crm: Repository) -> list[CampaignRow]:
    with crm.transaction():
        campaigns = list(crm.db.query("select * from campaigns order by id"))
        counts = list(crm.db.query("select campaign_id, status, count(*) as n from callbacks where campaign_id is "
                                   "not null group by campaign_id, status"))
    return [CampaignRow(c["id"], c["name"], c["purpose"], c["status"], c["target"], c["starts_at"], c["ends_at"],
                        c["max_attempts"], {r["status"]: r["n"] for r in counts if r["campaign_id"] == c["id"]})
            for c in campaigns]


def set_status(crm: Repository, name: str, status: str) -> None:
    """Pause (``paused``) or resume (``active``) the campaign named (or numbered) ``name``."""
    with crm.transaction():
        cur = crm.db.execute("update campaigns set status = ? where name = ? or cast(id as text) = ?",
                             [status, name, name])
        if cur.rowcount == 0:
            raise CampaignError(f"no campaign {name!r}")


def queue_call(crm: Repository, phone: str, purpose: str, region: str, *, reason: str = "",
               booking_id: int | None = None, ticket_id: int | None = None) -> int:
    """One call (``voicebot dial``): a row due now for the serving dialer; returns its id."""
    number = normalize_phone(phone, region)
    if number is None:
        raise CampaignError(f"{phone!r} is not a phone number")
    target = Target(number, reason, None, booking_id, ticket_id)
    _check(purpose, [target], reason if purpose == "message" else "-")
    customer = crm.find_customer_by_phone(number)
    with crm.transaction():
        return crm.db["callbacks"].insert({
            "phone": number, "customer_id": getattr(customer, "id", None), "reason": mask_secrets(reason or purpose),
            "status": "pending", "purpose": purpose, "booking_id": booking_id, "ticket_id": ticket_id,
            "created_at": iso(crm.now()), "attempts": 0}).last_pk
