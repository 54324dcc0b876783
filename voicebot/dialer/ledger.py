"""The dialer's side of the CRM: the pending callbacks in, every attempt and its result out.

Why the result is written twice: the callback row (``attempts``, ``last_attempt_at``, ``last_result``,
``done_at``, ``status``) is what the dialer and a supervisor need at a glance; ``callback_attempts`` keeps each
attempt (when, result, SIP status, the call's id in the call store) so "it was tried three times" can be shown,
not just claimed. Both are written in one transaction. Statuses: ``pending`` (due, or waiting for its next
attempt), ``done`` (the callee answered and the dialogue ran), ``failed`` (attempts used up), ``opted_out``
(the callee asked never to be called again), ``do_not_call`` (the number was on the list before any call) and
``no_number`` (no number the dialer could dial: an anonymous caller's callback is for a person to handle),
``expired`` (its window closed before it was reached: a reminder after the visit). Since m008 the rows are every
outbound call, each with its ``purpose``; a paused campaign's rows wait (``pending`` skips them), and so do rows
for a person to call (purpose ``person``, from a check-in): the dialer never dials those.

Why ``dialling`` looks at the booking once more: a reminder or a check-in is about a booking, and the booking may
be cancelled or moved between the round that read the queue and the moment the phone would ring (by the caller on
another line, by a person in the CRM). The ``STALE`` rules are read in the same transaction that marks the row as
dialled, so a call about a booking that is gone, or a reminder for a time the booking no longer has, is closed
instead of placed, whichever path changed the booking.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from voicebot.crm.repository import Repository
from voicebot.dialer.policy import DueCallback

FINAL = ("done", "failed", "opted_out", "do_not_call", "no_number", "expired")
UNANSWERED = ("no_answer", "busy", "declined", "failed", "machine", "hung_up")  # retried after the spacing, up to the limit

STALE = (  # (why, SQL over the row ``c``): a pending row that must not be called any more, closed as expired
    ("booking gone", "c.purpose in ('reminder', 'checkin') and c.booking_id is not null and c.booking_id not in "
                     "(select id from bookings)"),
    # a day-before reminder stands for one appointment time (``not_after``, written from the slot's ``starts_at``):
    # once the booking has another, the row is about a time that is no longer booked. A campaign's reminder has
    # its own window and reads the booking when it calls, so only the day-before ones are keyed by the time.
    ("booking moved", "c.purpose = 'reminder' and c.campaign_id is null and c.booking_id is not null and "
                      "c.not_after is not (select s.starts_at from bookings b join appointment_slots s on "
                      "s.id = b.slot_id where b.id = c.booking_id)"),
)


@dataclass(frozen=True)
class Attempt:
    callback_id: int
    at: datetime
    result: str  # answered (or what the callee chose: confirmed, cancelled, rescheduled, rated, ...),
    # voicemail (a message left), opted_out; unanswered: no_answer, busy, declined, failed, machine
    sip_status: int | None = None
    call_id: str | None = None
    detail: str | None = None  # what was done, e.g. "booking 5 moved to slot 12"; never the callee's words


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class CallbackLedger:
    """Reads and writes the callbacks through the Repository's connection and lock."""

    def __init__(self, crm: Repository, max_attempts: int):
        self.crm = crm
        self.max_attempts = max_attempts

    def pending(self) -> list[DueCallback]:
        """Every pending callback, oldest first, with the latest attempt on its number."""
        sql = ("select c.*, (select max(a.at) from callback_attempts a join callbacks o on o.id = a.callback_id "
               "where o.phone = c.phone) as number_last from callbacks c left join campaigns k on k.id = "
               "c.campaign_id where c.status = 'pending' and c.purpose != 'person' and (k.id is null or k.status = "
               "'active') "
               "order by c.created_at, c.id")
        with self.crm.transaction():
            rows = list(self.crm.db.query(sql))
        return [DueCallback(r["id"], r["phone"], r["reason"], r["preferred_time"], r["attempts"] or 0,
                            _time(r["last_attempt_at"]), _time(r["number_last"]), r["customer_id"],
                            r["purpose"] or "callback", r["booking_id"], r["ticket_id"], r["campaign_id"],
                            r["max_attempts"], _time(r["not_after"]), _time(r["not_before"])) for r in rows]

    def dialling(self, callback_id: int, at: datetime) -> str | None:
        """Mark the callback as tried at ``at`` before the call is placed: should the process die during the call,
        the spacing still holds after the restart (the attempt itself is counted when its result is known).

        Unless it must not be called any more: a row closed since the round read it, or one a ``STALE`` rule
        matches (closed now as ``expired`` with that reason, no attempt). Returns why it is not to be dialled, or
        None when the call may go out."""
        stamp = at.isoformat(timespec="seconds")
        with self.crm.transaction():
            row = self.crm.db["callbacks"].get(callback_id)
            if row["status"] != "pending":
                return row["last_result"] or row["status"]
            for why, where in STALE:
                if list(self.crm.db.query(f"select 1 from callbacks c where c.id = ? and {where}", [callback_id])):
                    self.crm.db["callbacks"].update(callback_id, {"status": "expired", "last_result": why,
                                                                  "done_at": stamp})
                    return why
            self.crm.db["callbacks"].update(callback_id, {"last_attempt_at": stamp, "last_result": "dialling"})
        return None

    def record(self, attempt: Attempt) -> str:
        """Write one attempt and return the callback's new status: done when answered, opted_out on an
        opt-out, failed once ``max_attempts`` are used up, else still pending (retried after the spacing)."""
        at = attempt.at.isoformat(timespec="seconds")
        with self.crm.transaction():
            row = self.crm.db["callbacks"].get(attempt.callback_id)
            attempts = (row["attempts"] or 0) + 1
            if attempt.result == "opted_out":
                status = "opted_out"
            elif attempt.result not in UNANSWERED:
                status = "done"
            elif attempts >= (row.get("max_attempts") or self.max_attempts):
                status = "failed"
            else:
                status = "pending"
            self.crm.db["callback_attempts"].insert({"callback_id": attempt.callback_id, "at": at,
                                                     "result": attempt.result, "sip_status": attempt.sip_status,
                                                     "call_id": attempt.call_id, "detail": attempt.detail})
            self.crm.db["callbacks"].update(attempt.callback_id, {
                "attempts": attempts, "last_attempt_at": at, "last_result": attempt.result, "status": status,
                "done_at": at if status in FINAL else None})
        return status

    def close_unreachable(self, callback_id: int, status: str, at: datetime) -> None:
        """A callback that will never be dialled (do-not-call, no number, its window closed): closed, no attempt."""
        with self.crm.transaction():
            self.crm.db["callbacks"].update(callback_id, {"status": status, "last_result": status,
                                                          "done_at": at.isoformat(timespec="seconds")})

    def opt_out_number(self, phone: str, at: datetime) -> int:
        """Every other pending callback for ``phone`` is closed as opted_out; returns how many."""
        with self.crm.transaction():
            cur = self.crm.db.execute("update callbacks set status = 'opted_out', last_result = 'opted_out', "
                                      "done_at = ? where phone = ? and status = 'pending'",
                                      [at.isoformat(timespec="seconds"), phone])
            return cur.rowcount

    def attempts(self, callback_id: int) -> list[Attempt]:
        with self.crm.transaction():
            rows = list(self.crm.db["callback_attempts"].rows_where("callback_id = ?", [callback_id],
                                                                    order_by="at, id"))
        return [Attempt(r["callback_id"], datetime.fromisoformat(r["at"]), r["result"], r["sip_status"],
                        r["call_id"], r.get("detail")) for r in rows]
