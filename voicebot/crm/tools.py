"""The CRM tools the language model may call during a phone call (``CRM_TOOLS``).

Tools marked ``requires_verification`` reveal or change account data (orders, the caller's own appointments)
and refuse until ``verify_caller`` succeeded on this call. The others act on what the caller asks (a ticket, a
booking, a lead, a callback) and attach the account only when the caller is verified.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from voicebot.crm import bookings
from voicebot.crm.models import Booking, NotFound, Order, Slot, SlotTaken, Ticket
from voicebot.crm.phone import normalize_phone
from voicebot.crm.spoken import digits_in, numbers_in
from voicebot.crm.toolkit import ToolError, ToolRegistry
from voicebot.crm.verification import CallerContext

CRM_TOOLS = ToolRegistry(hidden_fields=frozenset({"customer_id", "pin_hash"}))

Text = Annotated[str, Field(min_length=1, max_length=500)]


@dataclass(frozen=True)
class Verified:
    verified: bool
    outcome: str
    attempts_left: int
    message: str
    first_name: str | None = None


@dataclass(frozen=True)
class Done:
    """A confirmation for actions whose record holds nothing the model needs."""

    message: str
    reference: int | None = None


def _phone(ctx: CallerContext, spoken: str | None) -> str | None | ToolError:
    """The number to use: the one the caller gave (normalised), else the caller ID, else the account's. A number
    as heard that cannot be a phone number is taken as the recogniser first heard it (``heard_also``) when that
    holds exactly one whole phone number, else asked again: never written as heard."""
    if spoken:
        e164 = normalize_phone(spoken, ctx.repo.region)
        if e164 is None:
            heard = {e164 for text in ctx.heard_also for digits in numbers_in(text) if len(digits) >= 7
                     and (e164 := normalize_phone(digits, ctx.repo.region))}
            e164 = heard.pop() if len(heard) == 1 else None
        return e164 if e164 else ToolError("invalid_arguments", f"{spoken!r} is not a phone number; ask again.")
    if ctx.caller_id:
        return ctx.caller_id
    customer = ctx.verified_customer
    return customer.phones[0] if customer and customer.phones else None


@CRM_TOOLS.tool()
def verify_caller(ctx: CallerContext, pin: str | None = None, date_of_birth: str | None = None,
                  postcode: str | None = None) -> Verified:
    """Check the caller's identity; needed before any account detail is shared. Pass what the caller said or
    keyed, unchanged: either the PIN, or the date of birth together with the postcode.

    Args:
        pin: The account PIN as said or keyed, e.g. "1234" or "one two three four".
        date_of_birth: The caller's date of birth as said, e.g. "March 14, 1985"; needs postcode too.
        postcode: The postcode or ZIP code on the account; goes with date_of_birth.
    """
    result = ctx.verify(pin=pin, date_of_birth=date_of_birth, postcode=postcode)
    name = ctx.verified_customer.first_name if result.verified and ctx.verified_customer else None
    return Verified(result.verified, result.outcome.value, result.attempts_left, result.message, name)


@CRM_TOOLS.tool()
def identify_caller(ctx: CallerContext, phone_number: Text) -> Done | NotFound:
    """Find the caller's account by the phone number on it, when they call from another number. It does not
    verify them: call verify_caller next.

    Args:
        phone_number: The phone number the caller says is on their account.
    """
    found = ctx.repo.find_customer_by_phone(phone_number)
    if isinstance(found, NotFound):
        return found
    ctx.identify(found)
    return Done("Account found. Ask for the PIN, or the date of birth and postcode, then call verify_caller.")


@CRM_TOOLS.tool(requires_verification=True)
def list_open_orders(ctx: CallerContext) -> list[Order]:
    """The verified caller's orders that are not yet delivered or closed, newest first."""
    return ctx.repo.open_orders(ctx.verified_customer.id)


@CRM_TOOLS.tool(requires_verification=True)
def get_order(ctx: CallerContext, order_number: Text) -> Order | NotFound:
    """One of the verified caller's orders: status, carrier, tracking number, delivery estimate, items, total.

    Args:
        order_number: The order number as the caller said it, e.g. "10452".
    """
    # a number not among the caller's orders is tried as the recogniser first heard it (CallerContext.heard_also):
    # only the verified caller's own orders can match, and the answer reads the number back
    number, customer_id = digits_in(order_number) or order_number, ctx.verified_customer.id
    found = asked = ctx.repo.get_order(number, customer_id=customer_id)
    others = (n for text in ctx.heard_also for n in numbers_in(text) if len(n) >= 3 and n != number)
    while isinstance(found, NotFound) and (other := next(others, None)) is not None:
        found = ctx.repo.get_order(other, customer_id=customer_id)
    return asked if isinstance(found, NotFound) else found


@CRM_TOOLS.tool(requires_verification=True)
def list_recent_orders(ctx: CallerContext) -> list[Order]:
    """The verified caller's last orders of any status (delivered ones too), newest first: "what did I order
    last time?"."""
    return ctx.repo.recent_orders(ctx.verified_customer.id, limit=3)


@CRM_TOOLS.tool(requires_verification=True)
def get_caller_history(ctx: CallerContext) -> dict[str, Any] | NotFound:
    """The verified caller's open tickets, upcoming appointments, pending callbacks and their last calls."""
    profile = ctx.repo.caller_profile(ctx.verified_customer.id)
    if isinstance(profile, NotFound):
        return profile
    return {"name": profile.customer.name, "open_tickets": profile.open_tickets,
            "upcoming_appointments": profile.upcoming_bookings, "pending_callbacks": profile.pending_callbacks,
            "recent_orders": ctx.repo.recent_orders(ctx.verified_customer.id, limit=3),
            "recent_calls": profile.recent_interactions[:3]}


@CRM_TOOLS.tool()
def create_ticket(ctx: CallerContext, subject: Annotated[str, Field(min_length=3, max_length=120)],
                  description: Text, order_number: str | None = None,
                  priority: Literal["low", "normal", "high"] = "normal") -> Ticket | NotFound:
    """Open a service ticket for a problem the caller reports (damaged item, wrong item, invoice, repair...).

    Args:
        subject: A short title, e.g. "Damaged chair on delivery".
        description: What the caller said happened, in one or two sentences.
        order_number: The order it is about, if any.
        priority: high only if the caller cannot work or something is unsafe.
    """
    customer = ctx.verified_customer
    if order_number and customer is None:
        # An unverified caller must not learn whether an order exists: note the number, link nothing.
        description, order_number = f"{description} (order {order_number} as given by the caller)", None
    number = digits_in(order_number) or order_number if order_number else None
    return ctx.repo.create_ticket(subject, description, customer_id=customer.id if customer else None,
                                  order_number=number, phone=ctx.caller_id, priority=priority)


@CRM_TOOLS.tool()
def list_free_slots(ctx: CallerContext, service: str | None = None, date_from: date | None = None,
                    date_to: date | None = None, from_hour: int | None = None,
                    to_hour: int | None = None, latest: bool = False) -> dict[str, Any]:
    """Free service-desk appointment slots, earliest first (at most 6), and the services on offer. When nothing is
    free between date_from and date_to (and the hours), the earliest slots after it, with none_in_range true.
    With latest, the latest free times of the first day that has any, latest first.

    Args:
        service: Part of a service name, e.g. "repair"; leave out for any.
        date_from: First day to look at (YYYY-MM-DD).
        date_to: Last day to look at (YYYY-MM-DD).
        from_hour: Earliest start hour (0-23), e.g. 17 for the evening.
        to_hour: Start before this hour (1-24).
        latest: True when the caller asks for the latest time ("What's the latest you have on Friday?").
    """
    hours = (from_hour or 0, to_hour or 24) if from_hour is not None or to_hour is not None else None
    slots: list[Slot] = ctx.repo.list_free_slots(service=service, start=date_from, end=date_to, hours=hours, limit=6)
    if latest and slots:  # "the latest you have" is the end of a day, never the last slot of the calendar
        day = slots[0].starts_at.date()
        slots = ctx.repo.list_free_slots(service=service, start=day, end=day, hours=hours, limit=6, latest=True)
    if slots or (date_to is None and hours is None):
        return {"slots": slots, "services": ctx.repo.services()}
    # nothing free on the caller's days or hours: the earliest times from then on (at those hours first), said as
    # such ("nothing then; the earliest is ..."), rather than "no free times" and a callback for a caller who could
    # take Wednesday evening instead of Tuesday evening ("Thursday evening" was offered Thursday at 9 and 10 AM:
    # the first six slots of the day, before any hour was looked at)
    later = (ctx.repo.list_free_slots(service=service, start=date_from, end=None, hours=hours, limit=6)
             or ctx.repo.list_free_slots(service=service, start=date_from, end=None, limit=6))
    return {"slots": later, "services": ctx.repo.services(), "none_in_range": True}


@CRM_TOOLS.tool()
def book_appointment(ctx: CallerContext, slot_id: int, name: str | None = None,
                     notes: Annotated[str, Field(max_length=500)] = "") -> Booking | SlotTaken | NotFound | ToolError:
    """Book a free slot from list_free_slots for the caller. Confirm the day and time with the caller first.

    Args:
        slot_id: The id of the slot, from list_free_slots.
        name: The caller's name (not needed once verified).
        notes: What the appointment is for, in a few words.
    """
    customer = ctx.verified_customer
    who = customer.name if customer else (name or "").strip()
    if not who:
        return ToolError("invalid_arguments", "Ask for the caller's name, then book again.")
    phone = _phone(ctx, None)
    return ctx.repo.book_slot(slot_id, name=who, phone=phone, customer_id=customer.id if customer else None,
                              notes=notes)


@CRM_TOOLS.tool(requires_verification=True)
def list_my_appointments(ctx: CallerContext) -> list[Booking]:
    """The verified caller's upcoming service appointments (repair visits, setups, fittings), earliest first."""
    return ctx.repo.upcoming_bookings(ctx.verified_customer.id)


@CRM_TOOLS.tool(requires_verification=True)
def reschedule_appointment(ctx: CallerContext, booking_id: int, slot_id: int) -> Booking | SlotTaken | NotFound:
    """Move one of the verified caller's appointments to a free slot of the same service. Read the move back to
    the caller and get their yes first.

    Args:
        booking_id: The appointment's id, from list_my_appointments.
        slot_id: The new slot's id, from list_free_slots (same service).
    """
    return bookings.reschedule(ctx.repo, booking_id, slot_id, ctx.verified_customer.id)


@CRM_TOOLS.tool(requires_verification=True)
def cancel_appointment(ctx: CallerContext, booking_id: int) -> Booking | NotFound:
    """Cancel one of the verified caller's appointments; its slot is free again. Read it back to the caller and
    get their yes first.

    Args:
        booking_id: The appointment's id, from list_my_appointments.
    """
    return bookings.cancel(ctx.repo, booking_id, ctx.verified_customer.id)


@CRM_TOOLS.tool()
def create_lead(ctx: CallerContext, name: Text, interest: Text, phone_number: str | None = None,
                email: str | None = None, notes: Annotated[str, Field(max_length=1000)] = "") -> Done | ToolError:
    """Record a sales enquiry from a prospective or existing customer (what they want to buy or know).

    Args:
        name: The caller's name.
        interest: What they are interested in, e.g. "20 office chairs for a new branch".
        phone_number: A number to reach them, if not the one they call from.
        email: Their email address, if they give one.
        notes: Anything else useful for sales: budget, timing, quantities.
    """
    phone = _phone(ctx, phone_number)
    if isinstance(phone, ToolError):
        return phone
    customer = ctx.verified_customer
    lead = ctx.repo.create_lead(name, interest, phone=phone, email=email, notes=notes,
                                customer_id=customer.id if customer else None)
    return Done("The sales team has the enquiry and will get in touch.", lead.id)


@CRM_TOOLS.tool()
def request_callback(ctx: CallerContext, reason: Text, preferred_time: str | None = None,
                     phone_number: str | None = None, not_before: datetime | None = None) -> Done | ToolError:
    """Ask a person from the team to call the caller back.

    Args:
        reason: Why they want a call, in a few words.
        preferred_time: When suits them, as they said it, e.g. "tomorrow morning".
        phone_number: The number to call, if not the one they call from.
        not_before: The earliest time to call (ISO 8601), as code read it from the caller's words.
    """
    phone = _phone(ctx, phone_number)
    if isinstance(phone, ToolError):
        return phone
    if phone is None:
        return ToolError("invalid_arguments", "There is no caller ID: ask for a number to call back.")
    customer = ctx.verified_customer
    callback = ctx.repo.request_callback(phone, reason, preferred_time=preferred_time, not_before=not_before,
                                         customer_id=customer.id if customer else None)
    return Done("A callback is requested; someone from the team will call.", callback.id)
