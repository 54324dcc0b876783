"""CRM results spoken from templates, without the model.

Why: on a 2-core CPU each model pass costs seconds, and the commonest results (an order's status, free times, a
booking, the caller's history) have one right sentence. Templates say only what the record says, so they are
grounded by construction (rule 8: every number, date and amount from the CRM or code). ``render`` returns None
for a result it has no template for, and the model phrases it.
"""

from __future__ import annotations

import re
from typing import Any

from voicebot.dialog.slots import spoken_date, spoken_time
from voicebot.review.redact import mask_secrets

STATUS_PHRASES = {
    "pending": "has been received and is waiting to be prepared",
    "processing": "is being prepared",
    "shipped": "has shipped",
    "delayed": "is delayed",
    "out_for_delivery": "is out for delivery",
    "delivered": "was delivered",
    "cancelled": "was cancelled",
    "returned": "was returned",
}


def order_sentence(order: dict[str, Any], contents: bool = False) -> str:
    """Where an order is, from its CRM record; with ``contents`` what it holds too (orders not asked for by number:
    a caller who asked about "my desk" heard "Order 10452 has shipped" and could not tell it was the chair)."""
    status = str(order.get("status", "")).lower()
    items, text = order.get("items") or [], f"Order {order['number']}"
    if contents and items:  # the first line as the CRM has it (up to its first comma), and how many more
        more = len(items) - 1
        text += f", for {items[0]['quantity']} {str(items[0]['description']).split(',')[0]}" + (
            f" and {more} other item{'s' * (more > 1)}," if more else ",")
    text += f" {STATUS_PHRASES.get(status, 'is ' + status.replace('_', ' '))}"
    if order.get("carrier") and status in ("shipped", "delayed", "out_for_delivery"):
        text += f" with {order['carrier']}"
    if order.get("delivered_at") and status == "delivered":
        text += f" on {spoken_date(order['delivered_at'])}"
    elif order.get("eta") and status not in ("cancelled", "returned", "delivered"):
        text += f", and should arrive on {spoken_date(order['eta'])}"
    return text + "."


def past_order_sentence(order: dict[str, Any], latest: bool = False) -> str:
    """An order as history: when it was placed, what was in it (at most three lines), where it is now."""
    items = order.get("items") or []
    said = [f"{i['quantity']} {i['description']}" for i in items[:3]]
    what = (", ".join(said[:-1]) + " and " + said[-1]) if len(said) > 1 else (said[0] if said else "")
    head = f"Your most recent order, number {order['number']}," if latest else f"Before that, order {order['number']}"
    text = f"{head} was placed on {spoken_date(order['placed_at'])}"
    text += f" for {what}." if what else "."
    return f"{text} {order_sentence(order)}"


def history_sentences(history: dict[str, Any]) -> list[str]:
    """What is open on the verified caller's account, from the CRM record only: tickets first ("what's the status of
    my ticket?" is the usual question), then a booked visit and a pending callback."""
    tickets = history.get("open_tickets") or []
    out = [f"You have {len(tickets)} open tickets." if len(tickets) > 1 else ""] if tickets else [
        "I don't see any open tickets on your account."]
    for ticket in tickets[:2]:
        opened = spoken_date(str(ticket["created_at"])[:10])
        out.append(f"Ticket {ticket['id']}, opened on {opened}, is {str(ticket['status']).replace('_', ' ')}: "
                   f"{mask_secrets(str(ticket['subject'])).rstrip('.!?')}.")
    if history.get("upcoming_appointments"):
        out.append(f"Your next appointment is {appointment_phrase(history['upcoming_appointments'][0])}.")
    if history.get("pending_callbacks"):
        out.append("A callback to you is also pending.")
    return [s for s in out if s] + ["Is there anything else I can help with?"]


def appointment_phrase(booking: dict[str, Any], article: bool = True) -> str:
    """A booking as the bot says it, from the CRM record only: "a printer repair on Tuesday, December 1st at 10 AM"
    (without ``article`` after "your")."""
    service = booking["slot"]["service"]
    return f"{a_service(service) if article else service} on {spoken_time(str(booking['slot']['starts_at']))}"


_AN_LETTERS = frozenset("AEFHILMNORSX")  # letters whose names start with a vowel sound: "an MOT", "an HR review"
_MASS = re.compile(r"(?:therapy|physio|care|advice|training|tuition|coaching|support|maintenance|cleaning|"
                   r"removal|repairs|servicing)$", re.IGNORECASE)


def a_service(name: str) -> str:
    """A CRM service name as said in a sentence: "a haircut", "an engineer visit", "an MOT", "a table"; as it is
    for a name that takes no article ("physiotherapy", "gel nails", "the usual"). Why: CRM services are nouns
    ("checkup", "table", "engineer visit"), and "I can offer checkup on Monday", "You're booked for haircut" were
    said as written."""
    name = name.strip()
    first = name.split(" ", 1)[0]
    if not name or re.match(r"(?:a|an|the|my|your|our)\b", name, re.IGNORECASE) or _MASS.search(name) or \
            (name.lower().endswith("s") and not name.lower().endswith(("ss", "us", "is"))):
        return name
    if first.isupper() and first.isalpha() and len(first) > 1:
        return f"{'an' if first[0] in _AN_LETTERS else 'a'} {name}"
    if first[0].isdigit():  # "an 8-week course", "an 11 AM class"
        vowel = re.match(r"(?:8|11|18)(?:\D|$)", first) is not None
    else:
        vowel = (first[0].lower() in "aeiou" and not re.match(r"(?:uni|use|usu|eu|one|ur[aeiou])", first, re.I)) or \
            re.match(r"(?:hour|honest|heir)", first, re.I) is not None
    return f"{'an' if vowel else 'a'} {name}"


def offered_times(slots: list[dict[str, Any]]) -> str:
    """Two free times as said: "Tuesday, December 1st at 8 AM or 1 PM" when they share a day (the day was said
    twice), else each whole."""
    times = [spoken_time(str(s["starts_at"])) for s in slots[:2]]
    if len(times) == 2 and times[0].rpartition(" at ")[0] == times[1].rpartition(" at ")[0] and " at " in times[1]:
        return f"{times[0]} or {times[1].rpartition(' at ')[2]}"
    return " or ".join(times)


def render(tool: str, args: dict[str, Any], result: dict[str, Any]) -> list[str] | None:
    """Sentences for a tool result the bot can speak without the model, or None to let the model phrase it."""
    value = result.get("result")
    if tool == "get_order":
        if result.get("ok") and isinstance(value, dict):
            return [order_sentence(value), "Is there anything else I can help with?"]
        if result.get("error") == "not_found":
            return [f"I couldn't find order {args.get('order_number', '')}. Could you check the number for me?"]
    if tool == "list_free_slots" and result.get("ok") and isinstance(value, dict):
        slots = value.get("slots") or []
        if not slots:
            return ["I'm sorry, I don't see any free times for that right now. Shall I ask a colleague to call you?"]
        times, service = offered_times(slots), a_service(str(slots[0]["service"]))
        question = "Which would suit you?" if len(slots) > 1 else "Would that suit you?"
        if value.get("none_in_range"):
            return [f"I have nothing free then. The earliest I can offer is {service} on {times}.", question]
        if value.get("extreme"):  # "What's the latest you have on Friday?"
            return [f"The {value['extreme']} I have is {service} on {times}.", question]
        taken = f"{value['time_taken']} isn't free. " if value.get("time_taken") else ""
        return [f"{taken}I can offer {service} on {times}.", question]
    if tool == "book_appointment" and result.get("ok") and isinstance(value, dict) and value.get("slot"):
        slot = value["slot"]
        return [f"You're booked for {a_service(slot['service'])} on {spoken_time(str(slot['starts_at']))}.",
                "Is there anything else I can help with?"]
    if tool == "book_appointment" and result.get("error") == "slot_taken":
        return ["I'm sorry, that time was just taken. Shall I offer you other times?"]
    if tool == "list_my_appointments" and result.get("ok") and isinstance(value, list):
        if not value:
            return ["I don't see any upcoming appointments on your account. Would you like to book one?"]
        return [f"You have {' and '.join(appointment_phrase(b) for b in value[:3])}.",
                "Is there anything else I can help with?"]
    if tool in ("reschedule_appointment", "cancel_appointment") and result.get("ok") and isinstance(value, dict):
        when = spoken_time(str(value["slot"]["starts_at"]))
        done = f"is now on {when}" if tool == "reschedule_appointment" else f"on {when} is cancelled"
        return [f"Done. Your {value['slot']['service']} {done}.", "Is there anything else I can help with?"]
    if tool in ("reschedule_appointment", "cancel_appointment") and result.get("error") == "not_found":
        return ["I'm sorry, I can't find that appointment on your account any more. Is there anything else I can "
                "help with?"]
    if tool == "create_lead" and result.get("ok"):
        return ["Thank you. I've passed your request to our sales team, and they will contact you shortly.",
                "Is there anything else I can help with?"]
    if tool == "request_callback" and result.get("ok"):
        return ["Done. A colleague will call you back. Is there anything else I can help with?"]
    if tool == "create_ticket" and result.get("ok") and isinstance(value, dict) and value.get("id"):
        return [f"I have opened a ticket for you, number {value['id']}. "
                "A colleague will follow up. Is there anything else?"]
    if tool == "get_caller_history" and result.get("ok") and isinstance(value, dict):
        return history_sentences(value)
    if tool == "list_recent_orders" and result.get("ok") and isinstance(value, list):
        if not value:
            return ["I don't see any orders on your account yet. Is there anything else I can help with?"]
        return [past_order_sentence(value[0], latest=True), *(past_order_sentence(o) for o in value[1:2]),
                "Is there anything else I can help with?"]
    if tool == "list_open_orders" and result.get("ok") and isinstance(value, list):
        if not value:
            return ["I don't see any open orders on your account. Is there anything else I can help with?"]
        head = [f"You have {len(value)} open orders."] if len(value) > 1 else []
        return [*head, *(order_sentence(o, contents=True) for o in value[:3]),
                "Is there anything else I can help with?"]
    return None


_HOW_LONG = re.compile(r"\b(?:how long (?:does|will|would|is|do|are)|how much time (?:does|will|would|is)|how many "
                       r"(?:minutes|hours)|duration)\b", re.IGNORECASE)
_THE_VISIT = re.compile(r"\b(?:it|that|this|they|appointments?|visits?|slots?|sessions?|bookings?)\b", re.IGNORECASE)


def asks_how_long(text: str) -> bool:
    """Whether the words ask how long something takes ("How long does it take?", "how many minutes")."""
    return bool(_HOW_LONG.search(text))


def slot_length(text: str, slots: list[dict[str, Any]]) -> str | None:
    """How long the service offered takes, from its slots' ``duration_min``, when ``text`` asks it ("How long does
    it take?" to laptop setup times was answered with the delivery times entry, and the setup entry that came
    next has no length in it); None for any other question ("How long does delivery take?")."""
    minutes = {int(s["duration_min"]) for s in slots if s.get("duration_min")}
    service = str(slots[0].get("service") or "") if slots else ""
    if len(minutes) != 1 or not _HOW_LONG.search(text) or len(text.split()) > 10 or not (
            _THE_VISIT.search(text) or any(w in text.lower() for w in service.lower().split())):
        return None
    hours, rest = divmod(minutes.pop(), 60)
    whole = "" if not hours else "an hour" if hours == 1 else f"{hours} hours"
    part = "" if not rest else "a half" if (hours, rest) == (1, 30) else f"{rest} minutes"
    return f"The {service} appointment takes {' and '.join(p for p in (whole, part) if p)}."
