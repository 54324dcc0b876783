"""Moving and cancelling a booked appointment: the CRM side of "I need to move my technician visit".

Why functions over a ``Repository`` and not methods of it: these are two writes with rules of their own, and the
repository is the one data-access module for everything else (it stays under its line limit this way). The
dialer's reminder call (``voicebot.dialer.reminders.BookingDesk``) moves and cancels through the same two
functions, so a booking is changed by one piece of code whichever call changes it.

The rules:

- Only the customer's own booking: another customer's booking id is ``NotFound``, exactly like an id that does not
  exist, so a caller cannot learn which bookings there are. Only upcoming bookings change (the visit in the past
  happened or did not; a person sorts that out).
- A move goes to a free, future slot of the same service (``SlotTaken`` otherwise: a printer repair does not
  become a furniture fitting by a wrong id), checked and written under one ``BEGIN IMMEDIATE`` like
  ``Repository.book_slot``: a second writer waits, then sees the first one's booking, and the UNIQUE index on
  ``bookings.slot_id`` refuses a double booking even if that were bypassed. The booking keeps its id, name,
  phone and notes; ``confirmed_at`` is set, since the caller has just chosen the new time. A reminder queued for
  the old time is never dialled: the dialer checks the booking's time before it dials (``dialer.ledger.STALE``)
  and queues one for the new time the day before it (``dialer.reminders``).
- A cancellation deletes the booking row. A row kept and marked "cancelled" would still hold its slot through the
  UNIQUE index (and every query of bookings would have to skip it); deleted, the slot is free again at once and
  ``upcoming_bookings`` no longer lists it. The calls queued about it (reminder, check-in) are closed in the same
  transaction (``expired``, "booking cancelled"), not left for the dialer to notice: SQLite gives a deleted row's
  id to the next booking, and a reminder still pending under that id would call this customer about that booking.
"""

from __future__ import annotations

import sqlite3

from voicebot.crm.models import Booking, NotFound, Slot, SlotTaken, iso
from voicebot.crm.repository import Repository


def _own_upcoming(repo: Repository, booking_id: int, customer_id: int | None) -> Booking | NotFound:
    """The booking when it is ``customer_id``'s (any customer's when None) and still to come; call inside a
    transaction."""
    found = repo._bookings("b.id = ?", [booking_id])
    if not found or (customer_id is not None and found[0].customer_id != customer_id) \
            or found[0].slot.starts_at <= repo.now():
        return NotFound("booking", str(booking_id))
    return found[0]


def reschedule(repo: Repository, booking_id: int, new_slot_id: int, customer_id: int | None) -> \
        Booking | SlotTaken | NotFound:
    """Move the customer's booking to ``new_slot_id`` (see the module docstring); the booking as it is now.

    ``customer_id`` None skips the owner check: only for a caller whose right to the booking is settled otherwise
    (the dialer's reminder, called on the booking's own number)."""
    try:
        with repo.transaction():
            booking = _own_upcoming(repo, booking_id, customer_id)
            if isinstance(booking, NotFound):
                return booking
            slot = repo.free_slot(new_slot_id)
            if not isinstance(slot, Slot):
                return slot
            if slot.service != booking.slot.service:
                return SlotTaken(new_slot_id, f"not {booking.slot.service}")
            repo.db["bookings"].update(booking_id, {"slot_id": new_slot_id, "confirmed_at": iso(repo.now())})
    except sqlite3.IntegrityError:
        return SlotTaken(new_slot_id)
    return repo._bookings("b.id = ?", [booking_id])[0]


def cancel(repo: Repository, booking_id: int, customer_id: int | None) -> Booking | NotFound:
    """Cancel the customer's booking: its row goes and its slot is free again. Returns the booking as it was (what
    the caller is told was cancelled). ``customer_id`` None: as for ``reschedule``."""
    with repo.transaction():
        booking = _own_upcoming(repo, booking_id, customer_id)
        if isinstance(booking, Booking):
            repo.db.execute("delete from bookings where id = ?", [booking_id])
            repo.db.execute("update callbacks set status = 'expired', last_result = 'booking cancelled', done_at = ? "
                            "where booking_id = ? and status = 'pending' and purpose in ('reminder', 'checkin')",
                            [iso(repo.now()), booking_id])
        return booking
