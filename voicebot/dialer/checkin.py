"""The next-morning check-in: after a visit (a booking now past) or a resolved ticket, a short scripted call.

Queued like reminders (rows of ``callbacks``, purpose ``checkin``, m008) by ``queue_checkins`` at each dialer
round: a booking whose slot was yesterday, or a ticket resolved yesterday (``tickets.resolved_at``, in the calling
hours' zone), gets one check-in, not before ``checkin.from_hour`` today and never after today. So the limits, the
do-not-call list and the opt-out hold as for every outbound call.

The call (``CheckinScript``): a rating from 1 to 5 (key or voice), a free comment (what the callee says, masked
like every caller text: ``review.redact.mask_secrets``; # skips it), then "would you like someone to call you?":
yes creates a callback row for a person (purpose ``person``: the dialer never dials those, a person does). Each
answer is written as soon as it is given (``checkin_results``, one row per call), so a callee who hangs up after
the rating still counts. ``checkin_counts`` is what the dashboard reads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from voicebot.config_dialer import CheckinConfig
from voicebot.crm.models import iso
from voicebot.crm.phone import normalize_phone
from voicebot.crm.repository import Repository
from voicebot.dialer.policy import DueCallback
from voicebot.dialer.scripted import Answer, Say
from voicebot.review.redact import mask_secrets

log = logging.getLogger(__name__)

RATING_QUESTION = "How satisfied were you, from 1 to 5? Press or say a number."
COMMENT_QUESTION = "Thank you. Is there anything you would like to tell us? Please say it now, or press # to skip."
CALL_QUESTION = "Would you like someone from our team to call you? Press 1 or say yes, 2 or say no."


def _phone(row: dict, region: str) -> str | None:
    return normalize_phone(row["phone"] or row["customer_phone"] or "", region)


_CUSTOMER_PHONE = ("(select p.e164 from customer_phones p where p.customer_id = {t}.customer_id order by p.id "
                   "limit 1) as customer_phone")


def queue_checkins(crm: Repository, now: datetime, zone: ZoneInfo, config: CheckinConfig,
                   region: str = "US") -> int:
    """Queue the check-ins for yesterday's visits and resolved tickets (see the module docstring)."""
    today = now.astimezone(zone).date()
    yesterday = (today - timedelta(days=1)).isoformat()
    visits = ("select b.id, b.phone, b.customer_id, s.service, " + _CUSTOMER_PHONE.format(t="b") + " from bookings "
              "b join appointment_slots s on s.id = b.slot_id where s.starts_at >= ? and s.starts_at < ? and not "
              "exists (select 1 from callbacks c where c.purpose = 'checkin' and c.booking_id = b.id)")
    tickets = ("select t.id, t.phone, t.customer_id, " + _CUSTOMER_PHONE.format(t="t") + " from tickets t where "
               "t.status in ('resolved', 'closed') and t.resolved_at >= ? and t.resolved_at < ? and not exists "
               "(select 1 from callbacks c where c.purpose = 'checkin' and c.ticket_id = t.id)")
    start = datetime.combine(today, datetime.min.time()).replace(hour=config.from_hour)
    row = {"status": "pending", "purpose": "checkin", "preferred_time": start.isoformat(timespec="minutes"),
           "not_after": (datetime.combine(today, datetime.min.time()) + timedelta(days=1)).isoformat(),
           "created_at": iso(now.astimezone(zone).replace(tzinfo=None)), "attempts": 0}
    queued = 0
    with crm.transaction():
        for r in crm.db.query(visits, [yesterday, today.isoformat()]):
            if (phone := _phone(r, region)) is not None:
                crm.db["callbacks"].insert(row | {"phone": phone, "customer_id": r["customer_id"], "booking_id": r["id"],
                                                  "reason": f"Check-in after the visit for {r['service']}"})
                queued += 1
        for r in crm.db.query(tickets, [yesterday, today.isoformat()]):
            if (phone := _phone(r, region)) is not None:
                crm.db["callbacks"].insert(row | {"phone": phone, "customer_id": r["customer_id"], "ticket_id": r["id"],
                                                  "reason": f"Check-in after ticket {r['id']} was resolved"})
                queued += 1
    if queued:
        log.info("check-ins: %d queued for %s", queued, today)
    return queued


def about(callback: DueCallback, crm: Repository) -> str:
    """What the opening says the call is about: the visit's service (from the CRM) or "your recent request"."""
    if callback.booking_id is not None:
        with crm.transaction():
            row = crm.db.execute("select s.service from bookings b join appointment_slots s on s.id = b.slot_id "
                                 "where b.id = ?", [callback.booking_id]).fetchone()
        if row is not None:
            return f"your visit for {row[0]} yesterday"
    return "your recent request, which we have marked as resolved"


@dataclass
class CheckinScript:
    """The check-in conversation; every answer is written at once (``checkin_results``)."""

    crm: Repository
    callback: DueCallback
    call_id: str
    result: str = "answered"
    detail: str | None = None
    stage: str = "rating"  # rating, comment, call, done
    row_id: int | None = None
    rating: int | None = None  # also on the call's row in the call store (calls.rating): the dashboard's mean
    facts: list[str] = field(default_factory=list)

    def question(self) -> str:
        return {"rating": RATING_QUESTION, "comment": COMMENT_QUESTION}.get(self.stage, CALL_QUESTION)

    def _write(self, values: dict) -> None:
        with self.crm.transaction():
            if self.row_id is None:
                cb = self.callback
                self.row_id = self.crm.db["checkin_results"].insert({
                    "callback_id": cb.id, "customer_id": cb.customer_id, "phone": cb.phone,
                    "booking_id": cb.booking_id, "ticket_id": cb.ticket_id, "call_id": self.call_id,
                    "at": iso(self.crm.now())} | values).last_pk
            else:
                self.crm.db["checkin_results"].update(self.row_id, values)

    def step(self, answer: Answer) -> Say | None:
        if self.stage == "rating":
            rating = answer.number()
            if rating is None or not 1 <= rating <= 5:
                return None
            self._write({"rating": rating})
            self.rating = rating
            self.result, self.stage = "rated", "comment"
            self.facts.append(f"rating {rating}")
            self.detail = ", ".join(self.facts)
            return Say(COMMENT_QUESTION)
        if self.stage == "comment":
            if answer.digit is not None and answer.digit != "#":
                return None
            if answer.digit is None and answer.text.strip():
                self._write({"comment": mask_secrets(answer.text.strip())})
                self.facts.append("comment")
            self.stage = "call"
            self.detail = ", ".join(self.facts)
            return Say(CALL_QUESTION)
        wants = answer.yes_no()
        if wants is None:
            return None
        self.stage = "done"
        if not wants:
            self._write({"wants_call": 0})
            return Say("Thank you for your answers. Goodbye.", end=True)
        reason = f"Check-in: asked for a person to call ({self.facts[0] if self.facts else 'no rating'})"
        with self.crm.transaction():
            callback_id = self.crm.db["callbacks"].insert({
                "customer_id": self.callback.customer_id, "phone": self.callback.phone, "reason": reason,
                "status": "pending", "purpose": "person", "created_at": iso(self.crm.now()), "attempts": 0}).last_pk
            self._write({"wants_call": 1})
        self.facts.append(f"callback {callback_id} for a person")
        self.detail = ", ".join(self.facts)
        return Say("Thank you. Someone from our team will call you. Goodbye.", end=True)


def checkin_opening(config: CheckinConfig, company: str, about_text: str, key: str) -> str:
    return config.opening.format(company=company, about=about_text, key=key)


@dataclass(frozen=True)
class CheckinCounts:
    """What the dashboard shows: check-ins answered, the mean rating, ratings 1-5, and calls asked for."""

    answered: int
    mean_rating: float | None
    ratings: dict[int, int]
    want_call: int


def checkin_counts(crm: Repository, first_day: date, last_day: date) -> CheckinCounts:
    with crm.transaction():
        rows = list(crm.db.query("select rating, wants_call from checkin_results where at >= ? and at < ?",
                                 [first_day.isoformat(), (last_day + timedelta(days=1)).isoformat()]))
    ratings = {n: sum(1 for r in rows if r["rating"] == n) for n in range(1, 6)}
    rated = [r["rating"] for r in rows if r["rating"] is not None]
    return CheckinCounts(len(rows), sum(rated) / len(rated) if rated else None, ratings,
                         sum(1 for r in rows if r["wants_call"]))
