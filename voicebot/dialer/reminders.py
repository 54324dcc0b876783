"""Appointment reminders the day before: queued from the CRM's bookings, then a short scripted call.

Why queued as rows of the dialer's table (``callbacks``, purpose ``reminder``, m008): the calling hours, attempt
limits, spacing, do-not-call list, opt-out and the cap then hold for reminders exactly as for callbacks, and
every attempt lands in ``callback_attempts``. ``queue_reminders`` runs at each dialer round: every booking whose
slot is on the next day (in the calling hours' zone) gets one reminder row, once; the row's window ends when the
appointment starts.

Why a reminder row is keyed by the booking *and* its time (``not_after`` is the slot's ``starts_at``): a booking
can move (``crm.bookings.reschedule``, by the caller or on this very call). The row for the old time is then
closed before it is dialled (``ledger.STALE``: by ``close_stale`` each round, and again in the transaction that
marks a row as dialled), and the new time gets its own row the day before it, like any booking; a cancelled
booking's rows are closed by ``crm.bookings.cancel`` itself. What the call says is read from the booking when it is
answered, never from the row. One exception, so nobody is called back about a time they have just said: no
reminder is queued for a booking whose time was chosen or confirmed on the reminder day itself (``confirmed_at``).

The call (``ReminderScript``) says who calls and the booking's service, date and time, all read from the CRM
(nothing else is said about the booking), then: 1 or "yes" confirms, 2 or "cancel" cancels, 3 or "reschedule"
offers the next free slots of the same service (from the CRM) to pick by number. Each choice is read back and
only a "yes" to the read-back writes to the CRM (``BookingDesk``); the attempt's result says what happened
(confirmed, cancelled, rescheduled, or answered when the callee hung up undecided).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from voicebot.config_dialer import RemindersConfig
from voicebot.crm import bookings
from voicebot.crm.models import Booking, Slot, iso
from voicebot.crm.phone import normalize_phone
from voicebot.crm.repository import Repository
from voicebot.dialer.ledger import STALE
from voicebot.dialer.scripted import Answer, Say

log = logging.getLogger(__name__)


def spoken_when(moment: datetime) -> str:
    """``Tuesday, March 3 at 10:00``: a booking's time as the bot says it."""
    return f"{moment:%A}, {moment:%B} {moment.day} at {moment:%H:%M}"


class BookingDesk:
    """The CRM writes a reminder may make, each in one transaction."""

    def __init__(self, crm: Repository):
        self.crm = crm

    def booking(self, booking_id: int) -> Booking | None:
        with self.crm.transaction():
            found = self.crm._bookings("b.id = ?", [booking_id])
        return found[0] if found else None

    def confirm(self, booking_id: int) -> None:
        with self.crm.transaction():
            self.crm.db["bookings"].update(booking_id, {"confirmed_at": iso(self.crm.now())})

    def cancel(self, booking_id: int) -> bool:
        """Free the slot (``crm.bookings.cancel``: the booking row goes); False when it was already gone."""
        return isinstance(bookings.cancel(self.crm, booking_id, None), Booking)

    def offers(self, booking: Booking, count: int) -> list[Slot]:
        """The next free slots of the booking's service, other than its own."""
        return [s for s in self.crm.list_free_slots(service=booking.slot.service, limit=count + 1)
                if s.id != booking.slot.id][:count]

    def move(self, booking_id: int, slot_id: int) -> bool:
        """Move the booking to ``slot_id`` unless someone took it meanwhile (``crm.bookings.reschedule``; the
        callee was called on the booking's own number, so no owner is checked)."""
        return isinstance(bookings.reschedule(self.crm, booking_id, slot_id, None), Booking)


# rows closed because their booking went away or moved: they stand for nothing (an id SQLite reuses, a time the
# booking moves back to), so they never hold a new reminder back
_CLOSED_FOR_THE_BOOKING = ("booking gone", "booking moved", "booking cancelled")


def queue_reminders(crm: Repository, now: datetime, zone: ZoneInfo, region: str = "US") -> int:
    """Queue one reminder for each booking on the day after ``now`` (local date in ``zone``) that has none for its
    current time (a campaign's reminder counts for any time); returns how many were queued. A booking without a
    dialable number is skipped, and so is one whose time was chosen or confirmed today (see the module docstring)."""
    today = now.astimezone(zone).date()
    tomorrow = today + timedelta(days=1)
    closed = ", ".join(f"'{why}'" for why in _CLOSED_FOR_THE_BOOKING)
    sql = ("select b.id, b.phone, b.customer_id, s.service, s.starts_at, (select p.e164 from customer_phones p "
           "where p.customer_id = b.customer_id order by p.id limit 1) as customer_phone from bookings b "
           "join appointment_slots s on s.id = b.slot_id where s.starts_at >= ? and s.starts_at < ? and "
           "(b.confirmed_at is null or b.confirmed_at < ?) and not exists (select 1 from callbacks c where "
           "c.purpose = 'reminder' and c.booking_id = b.id and (c.campaign_id is not null or c.not_after = "
           f"s.starts_at) and coalesce(c.last_result, '') not in ({closed}))")
    queued = 0
    with crm.transaction():
        rows = list(crm.db.query(sql, [tomorrow.isoformat(), (tomorrow + timedelta(days=1)).isoformat(),
                                       today.isoformat()]))
        for r in rows:
            phone = normalize_phone(r["phone"] or r["customer_phone"] or "", region)
            if phone is None:
                continue
            starts = datetime.fromisoformat(r["starts_at"])
            crm.db["callbacks"].insert({
                "customer_id": r["customer_id"], "phone": phone, "status": "pending", "purpose": "reminder",
                "reason": f"Appointment reminder: {r['service']} on {starts:%Y-%m-%d %H:%M}",
                "booking_id": r["id"], "not_after": r["starts_at"], "created_at": iso(now.astimezone(zone)
                                                                                          .replace(tzinfo=None)),
                "attempts": 0})
            queued += 1
    if queued:
        log.info("reminders: %d queued for %s", queued, tomorrow)
    return queued


def close_stale(crm: Repository, now: datetime) -> int:
    """Close the pending reminders and check-ins that must not call any more (``ledger.STALE``): the booking is
    gone (deleted since they were queued: the call would be about nothing), or a reminder's booking has moved (the
    call would be about a time that is no longer booked; the new time gets its own reminder). Status ``expired``,
    the reason as the result; returns how many."""
    stamp = now.isoformat(timespec="seconds")
    with crm.transaction():
        return sum(crm.db.execute(
            "update callbacks set status = 'expired', last_result = ?, done_at = ? where id in (select c.id from "
            f"callbacks c where c.status = 'pending' and {where})", [why, stamp]).rowcount for why, where in STALE)


@dataclass
class ReminderScript:
    """The reminder conversation (see the module docstring); ``result``/``detail`` for the attempt."""

    desk: BookingDesk
    booking: Booking
    offer_count: int = 3
    result: str = "answered"
    detail: str | None = None
    stage: str = "choose"  # choose, read_back, pick
    pending: tuple[str, Slot | None] | None = None  # the choice awaiting its read-back
    offered: tuple[Slot, ...] = ()

    def what(self) -> str:
        return f"your appointment for {self.booking.slot.service} on {spoken_when(self.booking.slot.starts_at)}"

    def question(self) -> str:
        if self.stage == "read_back":
            return "Press 1 or say yes if that is right, 2 or no if it is not."
        if self.stage == "pick":
            return self._offer_text()
        return "Press 1 or say yes to confirm your appointment, 2 to cancel it, 3 to choose another time."

    def _offer_text(self) -> str:
        choices = "; ".join(f"{n}: {spoken_when(s.starts_at)}" for n, s in enumerate(self.offered, 1))
        return f"I can offer {choices}. Press or say the number of the time you want."

    def step(self, answer: Answer) -> Say | None:
        if self.stage == "choose":
            return self._choose(answer)
        if self.stage == "pick":
            return self._pick(answer)
        return self._read_back(answer)

    def _choose(self, answer: Answer) -> Say | None:
        number = answer.number()
        if number == 3 or answer.said("reschedule", "another time", "other time", "change", "move it", "different"):
            self.offered = tuple(self.desk.offers(self.booking, self.offer_count))
            if not self.offered:
                return Say(f"I am sorry, there is no other free time for {self.booking.slot.service} at the moment. "
                           + self.question())
            self.stage = "pick"
            return Say(self._offer_text())
        if number == 2 or answer.said("cancel", "cancel it"):
            self.stage, self.pending = "read_back", ("cancel", None)
            return Say(f"You want to cancel {self.what()}. {self.question_after()}")
        if number == 1 or answer.yes_no() is True:
            self.stage, self.pending = "read_back", ("confirm", None)
            return Say(f"You will come to {self.what()}. {self.question_after()}")
        return None

    def question_after(self) -> str:
        return "Is that right? Press 1 or say yes, 2 or say no."

    def _pick(self, answer: Answer) -> Say | None:
        number = answer.number()
        if number is None or not 1 <= number <= len(self.offered):
            return None
        slot = self.offered[number - 1]
        self.stage, self.pending = "read_back", ("move", slot)
        return Say(f"You want to move {self.what()} to {spoken_when(slot.starts_at)}. {self.question_after()}")

    def _read_back(self, answer: Answer) -> Say | None:
        yes = answer.yes_no()
        if yes is None:
            return None
        assert self.pending is not None
        action, slot = self.pending
        self.pending = None
        if not yes:
            self.stage = "choose"
            return Say("Nothing has been changed. " + self.question())
        booking = self.booking
        if action == "confirm":
            self.desk.confirm(booking.id)
            self.result, self.detail = "confirmed", f"booking {booking.id} confirmed"
            return Say(f"Thank you, {self.what()} is confirmed. Goodbye.", end=True)
        if action == "cancel":
            self.desk.cancel(booking.id)
            self.result, self.detail = "cancelled", f"booking {booking.id} cancelled (slot {booking.slot.id} freed)"
            return Say(f"{self.what()[0].upper()}{self.what()[1:]} is cancelled. Goodbye.", end=True)
        assert slot is not None
        if not self.desk.move(booking.id, slot.id):
            self.offered = tuple(self.desk.offers(booking, self.offer_count))
            self.stage = "pick" if self.offered else "choose"
            return Say("I am sorry, that time was just taken. " + self.question())
        self.result = "rescheduled"
        self.detail = f"booking {booking.id} moved from slot {booking.slot.id} to slot {slot.id}"
        return Say(f"Done: your appointment for {booking.slot.service} is now on {spoken_when(slot.starts_at)}. "
                   "Goodbye.", end=True)


def reminder_opening(config: RemindersConfig, company: str, booking: Booking, key: str) -> str:
    return config.opening.format(company=company, service=booking.slot.service,
                                 when=spoken_when(booking.slot.starts_at), key=key)


__all__ = ["BookingDesk", "ReminderScript", "close_stale", "queue_reminders", "reminder_opening", "spoken_when"]
