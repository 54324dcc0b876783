"""Moving or cancelling the caller's booked appointment, in code: which booking, which new time, the read-back.

Why a step of its own: "I need to move my technician visit to another day" was placed as a booking and offered new
slots of whatever service came first, and nothing could move or cancel a booking. The request is now recognised
(intents ``reschedule`` and ``cancel_booking``, or the model choosing ``reschedule_appointment`` or
``cancel_appointment``, which it may only when the caller's words ask for it: ``writes.choosable``), and from there
code leads, since every part of it is a CRM record or the caller's own words:

1. The caller's bookings are account data, so ``list_my_appointments`` runs through the agent's tool runner: an
   unverified caller is asked for the PIN, the agent runs the tool again once they are verified
   (``DialogueAgent._identified``), and its result comes back here (``after_tool``).
2. The booking: the one the caller's words name (its service, or its day: "my Tuesday visit"), else the next one.
   A day after "to" or "for" ("move it to next week") is the new day, not the booking's.
3. A move offers two free times of the same service, on the caller's new day or part of the day when they said
   one (``slots.parse_when``, ``slots.fitting_slots``), else the next free ones. The caller picks one with the
   words ``answers.pick_slot`` reads ("the second one", "Thursday at 9"), or names another day to hear its times.
4. The move or the cancellation is read back and waits for a yes like any write (``writes.PendingWrite``: the agent
   runs the tool on "yes"; "no" writes nothing).

No booking on record: the caller hears so and is offered a new one. Every day and time the step says comes from a
CRM record (``rendered.appointment_phrase``, ``slots.spoken_time``), never from the model. The step drives the
agent's own tool runner and reply (``Dialogue``), so tool events, the facts for grounding and the history stay in
one place, and agent.py only hooks it in. The new booking's pieces live here too, beside the move: ``placed`` (a
"booking" whose words ask to move or cancel one is that), a pick among the times offered for a new booking
(``answer``) and ``picked_booking`` (that time as ``book_appointment``'s arguments).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from voicebot.crm.toolkit import ToolRegistry
from voicebot.crm.verification import CallerContext
from voicebot.dialog.agent_events import AgentEvent, ToolCalled
from voicebot.dialog.answers import pick_slot
from voicebot.dialog.rendered import appointment_phrase, offered_times, slot_length
from voicebot.dialog.intents import Intent
from voicebot.dialog.names import introduced_name
from voicebot.dialog.prompting import compact_result
from voicebot.dialog.offered_times import fitting_slots, latest_first, near_offered, said_hour
from voicebot.dialog.slots import When, parse_when, spoken_time
from voicebot.dialog.write_asks import CANT_MAKE
from voicebot.dialog.writes import PendingWrite, answer_to_readback, asked_for, booking_note, readback
from voicebot.llm.base import ChatMessage
from voicebot.text import normalize, words

MOVE, CANCEL, LIST = "reschedule_appointment", "cancel_appointment", "list_my_appointments"
CHANGES = frozenset({MOVE, CANCEL})
NONE_BOOKED = "I don't see any upcoming appointments on your account. Would you like to book one?"
_TO = re.compile(r"\b(to|for|until|till|into)\b", re.IGNORECASE)  # "move it to next week": the new day follows
_NONE = re.compile(r"^(no|none|neither|nope|not (those|them|either|really))\b")  # no offered time suits
_KEEP = re.compile(r"\b(leave|keep|as it is|stay)\b")  # ... and the booking stays
_SOONER = re.compile(r"\b(anything|something|any \w+|nothing|is that|are those|are they) (earlier|sooner)\b|"
                     r"\b(earlier|sooner) than\b|\bthe (earliest|soonest) you (have|can)\b")
_ORDERED = re.compile(r"\b(order|orders|delivery|parcel|package|shipment|arrive|заказ)\b")
EARLIEST = "Those are the earliest free times I have. Would one of them suit you?"


class Dialogue(Protocol):
    """What the step uses of ``DialogueAgent`` (typed here, since agent.py imports this module)."""

    tools: ToolRegistry
    context: CallerContext
    today: date
    facts: list[Any]
    history: list[ChatMessage]
    caller_words: list[str]
    offered_slots: list[dict[str, Any]]  # the times last offered for a new booking

    def _propose_write(self, name: str, evidence: bool = False) -> Iterator[AgentEvent]: ...

    def _tool(self, name: str, args: dict[str, Any], seen: set[str] | None = None) -> Iterator[AgentEvent]: ...

    def _reply(self, sentences: list[str]) -> Iterator[AgentEvent]: ...

    def _read_back(self, write: PendingWrite) -> Iterator[AgentEvent]: ...


@dataclass
class AppointmentStep:
    """One call's move or cancellation in progress (see the module docstring). Generators return True when they
    have answered the caller's turn."""

    wanted: str | None = None  # MOVE or CANCEL: asked for, until the caller's bookings are found
    request: str = ""  # the caller's words that asked for it
    booking: dict[str, Any] | None = None  # the booking being moved, as the CRM tools return it
    offered: list[dict[str, Any]] = field(default_factory=list)  # the new times read out for it
    day_asked: bool = False  # none of them suited: which day would?
    day_said: str = ""  # the words that named the day of the times offered ("Can I move it to Friday?")
    offer_new: bool = False  # NONE_BOOKED was said: a yes books a new visit
    not_before: str = ""  # "I can't make it tomorrow": the day after the booking's, where the new times begin

    @property
    def waiting(self) -> bool:
        """The bot asked something of this step: the caller's next words may answer it (``answer``)."""
        return bool(self.offered) or self.day_asked or self.offer_new

    def start(self, agent: Dialogue, tool: str) -> Iterator[AgentEvent]:
        """The caller asked to move (``MOVE``) or cancel (``CANCEL``) a booking: find their bookings first."""
        self.wanted, self.booking, self.offered, self.day_asked, self.offer_new = tool, None, [], False, False
        self.request = _request(agent.caller_words, tool)
        return (yield from agent._tool(LIST, {}))

    def after_tool(self, agent: Dialogue, name: str, result: dict[str, Any]) -> Iterator[AgentEvent]:
        """Go on from one of the agent's tool results (before its template speaks it)."""
        if name == LIST and self.wanted is not None:
            wanted, self.wanted = self.wanted, None
            if result.get("ok"):
                return (yield from self._found(agent, wanted, list(result["result"])))
        elif name == MOVE and result.get("error") == "slot_taken" and self.booking is not None:
            return (yield from self._offer(agent, "I'm sorry, that time was just taken.", ""))
        elif name in CHANGES:
            self.booking = None
        return False

    def answer(self, agent: Dialogue, text: str, allowed: Sequence[str]) -> Iterator[AgentEvent]:
        """The caller's words after times were offered or this step asked something: a time for a move picked or
        another day asked for, a no, a yes to ``NONE_BOOKED``, or one of the times offered for a new booking
        picked ("Tuesday at 10": read back as ``book_appointment``). False: none of these (the agent goes on)."""
        if self.offer_new:
            self.offer_new = False
            if answer_to_readback(text) is not True:
                return False
            services = agent.context.repo.services()
            service = next((s for s in services if _names(self.request, s)), None)
            return (yield from agent._tool("list_free_slots", {"service": service}))
        if self.booking is not None and (self.offered or self.day_asked):
            return (yield from self._moving(agent, text))
        if agent.offered_slots and "book_appointment" in allowed and _SOONER.search(normalize(text)):
            return (yield from _sooner(agent))  # "Do you have anything earlier?" is no pick of the first time
        if agent.offered_slots and (length := slot_length(text, agent.offered_slots)):  # "How long does it take?"
            yield from agent._reply([length, "Which would suit you?" if len(agent.offered_slots) > 1 else
                                     "Would that suit you?"])
            return True
        if (agent.offered_slots and "book_appointment" in allowed
                and pick_slot(text, agent.offered_slots, agent.today) is not None):
            return (yield from agent._propose_write("book_appointment"))
        when = (parse_when(text, agent.today) or said_hour(text)) if agent.offered_slots and "book_appointment" \
            in allowed else None
        if when is not None and (when.has_day or when.hours) and len(text.split()) <= 8:  # "Friday morning." or
            offered = datetime.fromisoformat(str(agent.offered_slots[0]["starts_at"]))  # "Half ten." to the times
            when = near_offered(when, text, offered.hour)  # offered: that day's (or the offered day's) times instead
            first = when.first_day or offered.date()
            args = {"service": agent.offered_slots[0].get("service"), "date_from": first.isoformat(),
                    "date_to": (when.last_day or first).isoformat()}
            if when.hours is not None:
                args["from_hour"], args["to_hour"] = when.hours
            if when.hour is not None and (exact := _free_at(agent, args, when)):
                agent.offered_slots = exact  # "Eleven." to 9 and 10 AM, 11 free: read back at once, not offered
                if (yield from agent._propose_write("book_appointment")):  # and asked "Would that suit you?" first
                    return True
                # the words pick no time free then ("Tomorrow at 10." on a closed Sunday: Monday at 10 was free):
                # offered, as any other day and time asked for; the turn had ended with nothing said
            return (yield from agent._tool("list_free_slots", args))
        if len(agent.offered_slots) > 1 and "book_appointment" in allowed and answer_to_readback(text) is True:
            times = offered_times(agent.offered_slots)
            yield from agent._reply([f"Which would you like: {times}?"])  # "Yes." to two times picks neither
            return True
        if agent.offered_slots and "book_appointment" in allowed and (named := introduced_name([text])):
            if len(agent.offered_slots) == 1:  # "Bob Smith." to "Would that suit you?": the read-back, which is
                slot = agent.offered_slots[0]  # the question (it was asked three times: the time again, then it)
                args = {"slot_id": slot["id"], "name": named, "notes": booking_note(slot, agent.caller_words)}
                yield from agent._read_back(PendingWrite("book_appointment", args,
                                                         readback("book_appointment", args, slot, True)))
                return True
            times = offered_times(agent.offered_slots)
            yield from agent._reply([f"Thank you, {named}. Which would you like: {times}?"])  # "It's Jack Turner."
            return True  # over two times: his name is kept for the booking (agent._caller_name), the times asked again
        return False

    def _moving(self, agent: Dialogue, text: str) -> Iterator[AgentEvent]:
        """The caller's words after times for a move were offered, or after "which day would suit you better?"."""
        offered, booking, said = self.offered, self.booking, normalize(text)
        self.offered, self.day_asked = [], False
        assert booking is not None
        slot_id = pick_slot(text, offered, agent.today) if offered else None
        if slot_id is not None:
            slot = next(s for s in offered if s["id"] == slot_id)
            sentence = (f"I'll move your {booking['slot']['service']} from {spoken_time(booking['slot']['starts_at'])}"
                        f" to {spoken_time(slot['starts_at'])}. Shall I do that?")
            return (yield from _read_back(agent, PendingWrite(MOVE, {"booking_id": booking["id"], "slot_id": slot_id},
                                                              sentence)))
        if (when := parse_when(text, agent.today)) is not None:  # "have you got anything on Friday?"
            # "The afternoon." to Friday's morning times: Friday afternoon (it offered Tuesday's and Wednesday's)
            day = self.day_said if offered and when.first_day is None else ""
            return (yield from self._offer(agent, "", f"{day} {text}".strip()))
        if asked_for(CANCEL, [text]) and not _KEEP.search(said):  # "No, just cancel it." to the new times
            return (yield from _cancel(agent, booking, ""))
        declined = answer_to_readback(text) is False or bool(_NONE.match(said))
        if offered and declined and not _KEEP.search(said):
            self.day_asked = True  # "none of those": another day may suit
            yield from agent._reply(["All right. Which day would suit you better?"])
            return True
        if declined:
            self.booking = None
            yield from agent._reply([f"All right, your {appointment_phrase(booking, False)} stays as it is.",
                                     "What else can I help you with?"])
            return True
        return False

    def _found(self, agent: Dialogue, wanted: str, bookings: list[dict[str, Any]]) -> Iterator[AgentEvent]:
        if not bookings:
            self.offer_new = True
            yield from agent._reply([NONE_BOOKED])
            return True
        cant = re.search(CANT_MAKE, normalize(self.request))  # "I won't be able to come on Tuesday": no new day
        about, new_time = _split(normalize(self.request).replace(cant.group(), " ") if cant else self.request,
                                 agent.today)
        booking, named, named_day = _which(bookings, about, agent.today)
        several = len(bookings) > 1 and not named
        lead = f"You have {len(bookings)} upcoming appointments. " if several else ""
        if wanted == CANCEL:
            return (yield from _cancel(agent, booking, lead))
        self.booking = booking
        self.not_before = (date.fromisoformat(str(booking["slot"]["starts_at"])[:10]) + timedelta(days=1)
                           ).isoformat() if cant and not new_time else ""
        said = new_time or ("" if named_day else about)  # a day that named no booking is the new one
        return (yield from self._offer(agent, f"{lead}Your {'next ' if several else ''}appointment is "
                                              f"{appointment_phrase(booking)}.", said))

    def _offer(self, agent: Dialogue, lead: str, said: str) -> Iterator[AgentEvent]:
        """Offer free times of the booking's service: on the day and part of the day in ``said``, if it names
        any and any is free then, else the next free times."""
        assert self.booking is not None
        service = self.booking["slot"]["service"]
        when = parse_when(said, agent.today) if said else None
        times: list[dict[str, Any]] = []
        self.day_said = said if when is not None and when.first_day is not None else ""
        if when is not None and when.first_day is not None:
            last = when.last_day or when.first_day
            times = yield from _free(agent, {"service": service, "date_from": when.first_day.isoformat(),
                                             "date_to": last.isoformat()}, said)
            if not times:
                lead = f"{lead} I have no free time for {service} then.".strip()
        if when is not None and when.first_day is None and when.has_time:  # "to 8 o'clock": that day, first
            day = str(self.booking["slot"]["starts_at"])[:10]
            times = yield from _free(agent, {"service": service, "date_from": day, "date_to": day}, said)
        if not times:  # after the day the caller cannot make, if they said so
            times = yield from _free(agent, {"service": service, **({"date_from": self.not_before}
                                                                     if self.not_before else {})}, said)
        if not times:
            self.booking = None
            sorry = f"I'm sorry, there is no other free time for {service} at the moment."
            yield from agent._reply([f"{lead} {sorry}".strip(), "Shall I ask a colleague to call you?"])
            return True
        self.offered = times
        offer = offered_times(times)
        question = "Which would suit you?" if len(times) > 1 else "Would that suit you?"
        yield from agent._reply([f"{lead} I can move it to {offer}.".strip(), question])
        return True


_BOOK = re.compile(r"\b((book|schedule|arrange|reserve) (me |us |him |her |it |them |my \w+ )?(in|an?|for|the "
                   r"(earliest|"
                   r"soonest|first|next|latest|last))|"
                   r"(make|get|need|want|like|have) an? (appointment|visit)|(can|could) (you|someone|somebody) see "
                   r"(me|us)|see (someone|somebody) (today|tomorrow|soon|as soon)|(can|could|may) (i|we) come in|"
                   r"(can|could|may) (i|we) (book|schedule)|(book|schedule|arrange) (that|this|one)$)\b")
"""Words that ask for a new booking. "Can I book that?" after a price was the caller's own bookings by 0.015."""


def _cancel(agent: Dialogue, booking: dict[str, Any], lead: str) -> Iterator[AgentEvent]:
    """Read back the cancellation of ``booking``."""
    return (yield from _read_back(agent, PendingWrite(CANCEL, {"booking_id": booking["id"]}, (
        f"{lead}I'll cancel your {appointment_phrase(booking, False)}. Shall I do that?"))))


def _free_at(agent: Dialogue, args: dict[str, Any], when: When) -> list[dict[str, Any]]:
    """The free slot (as the tool returns it, in a list) that starts exactly at the clock time the caller named,
    else []; the lookup is evidence for what is read back."""
    found = agent.tools.call("list_free_slots", args, agent.context)
    slots = found.get("result", {}).get("slots", []) if found.get("ok") else []
    exact = [s for s in slots if (at := datetime.fromisoformat(str(s["starts_at"]))).hour == when.hour
             and at.minute == when.minute]
    if exact:
        agent.facts.append(found)
    return exact[:1]


def _sooner(agent: Dialogue) -> Iterator[AgentEvent]:
    """The caller asks for a time before the ones offered: the earliest free times of that service when there
    are earlier ones (the offer was for a day the caller named), else ``EARLIEST``, the offer still open."""
    first = agent.offered_slots[0]
    service = str(first.get("service") or "")
    free = agent.context.repo.list_free_slots(service=service or None, limit=1)
    if free and free[0].starts_at < datetime.fromisoformat(str(first["starts_at"])):
        return (yield from agent._tool("list_free_slots", {"service": service}))
    yield from agent._reply([EARLIEST])
    return True


_MINE_BOOKED = re.compile(r"\b(?:(?:have|did) (?:i|we)(?: got)?|do (?:i|we) have|what have (?:i|we) got)\b.{0,25}"
                          r"\b(?:booked|appointments?|bookings?|coming up)\b|\bwhen(?:s| is) (?:my|our) (?:next )?"
                          r"(?:appointment|booking|reservation|visit)\b|\b(?:im sure|i think|i thought) (?:i|we) "
                          r"(?:had )?"
                          r"(?:booked|made a booking|have an appointment)\b")
"""Asking after one's own bookings: "Have I got any appointments coming up?" was a new booking by 0.018."""
_MY_VISIT = re.compile(r"\b(?:my|our|the) (?:\w+ ){0,2}(?:appointment|booking|reservation|visit|fitting|setup|"
                       r"repair)\b")
"""A booking of the caller's ("my appointment", "the printer repair"): moved or cancelled, no new one, even unpicked."""


def placed(found: Intent | None, text: str) -> Intent | None:
    """The intent classifier's reading of ``text``, unless it is a new booking while the words ask to move or cancel
    one: then that. "Could I reschedule the printer repair?" sat nearer "I want to schedule a repair" and "can
    someone come and fix my printer" than most examples of a move, and was offered new slots; the words decide."""
    said = normalize(text)
    if (_SOONER.search(said) and not _ORDERED.search(said) and (found is None or found.name in (
            "order_status", "order_history", "my_appointments"))):  # "Do you have anything earlier?" was the
        return Intent("booking", 0.0, 1.0, "(the words ask for an earlier time)")  # order history: a PIN
    if ((found is None or found.name in ("my_appointments", "reschedule", "cancel_booking")) and _BOOK.search(said)
            and not any(asked_for(t, [text]) for t in CHANGES)):  # "I'm a new patient, can I book a checkup next
        return Intent("booking", 0.0, 1.0, "(the words ask for a booking)")  # week?": my appointments by 0.011
    if (found is None or found.name in ("booking", "reschedule")) and _MINE_BOOKED.search(said) and not any(
            asked_for(t, [text]) for t in CHANGES):
        return Intent("my_appointments", 0.0, 1.0, "(the words ask after the caller's bookings)")
    if found is None and not _MY_VISIT.search(said):
        return None
    if found is not None and found.name != "booking":
        return found
    for name, tool in (("reschedule", MOVE), ("cancel_booking", CANCEL)):  # no pick: "I want to change my
        # appointment to Friday" (nearest the moves by too little) heard the knowledge base's "Call us ... we move it"
        if asked_for(tool, [text]):
            return Intent(name, found.score if found else 0.0, found.margin if found else 1.0,
                          f"(the words ask for {tool}; nearest: {found.example if found else 'none'})")
    return found


def picked_booking(caller_words: Sequence[str], offered: list[dict[str, Any]], today: date, name: str | None) -> \
        tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """A new booking: the offered time the caller's last words pick (``answers.pick_slot``) and
    ``book_appointment``'s arguments for it (the caller's name, the service as the note), or (None, None) when the
    words pick none."""
    slot_id = pick_slot(caller_words[-1] if caller_words else "", offered, today=today)
    slot = next((s for s in offered if s["id"] == slot_id), None)
    if slot is None:
        return None, None
    return slot, {"slot_id": slot["id"], "name": name or "Caller", "notes": booking_note(slot, caller_words)}


def _request(caller_words: Sequence[str], tool: str, last: int = 3) -> str:
    """The caller's turn that asked for ``tool`` (the latest of the last ``last`` whose words ask for it, else the
    latest): the words that say which booking and which new day."""
    recent = list(caller_words[-last:])
    return next((t for t in reversed(recent) if asked_for(tool, [t])), recent[-1] if recent else "")


def _split(said: str, today: date) -> tuple[str, str]:
    """``said`` cut into the words about the booking and the words of the new time ("move my Tuesday visit" | "to
    Thursday afternoon"); the second is empty when no "to"/"for" is followed by a day or time."""
    for match in reversed(list(_TO.finditer(said))):
        if parse_when(said[match.end():], today) is not None:
            return said[:match.start()], said[match.end():]
    return said, ""


def _names(text: str, service: str) -> bool:
    """Whether the words name the service ("my printer repair", "the laptop one"): a word of its name."""
    said = set(words(text))
    return any(word in said for word in words(service) if len(word) > 3)


def _which(bookings: list[dict[str, Any]], about: str, today: date) -> tuple[dict[str, Any], bool, bool]:
    """The booking the words name, else the next one (bookings come earliest first); whether the words named it,
    and whether a day did."""
    candidates = [b for b in bookings if _names(about, b["slot"]["service"])] or bookings
    when = parse_when(about, today)
    if when is not None and when.first_day is not None:
        last = when.last_day or when.first_day
        on_day = [b for b in candidates
                  if when.first_day <= datetime.fromisoformat(str(b["slot"]["starts_at"])).date() <= last]
        if on_day:
            return on_day[0], True, True
    return candidates[0], len(candidates) < len(bookings), False


def _free(agent: Dialogue, args: dict[str, Any], said: str) -> Iterator[AgentEvent]:
    """Up to two free times for ``args`` (a ``list_free_slots`` call, recorded as the agent records its calls, not
    spoken), at the hour or part of the day in ``said`` when any fits, two different times of that very service;
    one, the end of the day, for "the latest you have" (``extreme_asked``)."""
    args = latest_first(args, said)
    started = time.perf_counter()
    result = agent.tools.call("list_free_slots", args, agent.context)
    agent.facts.append(result)
    yield ToolCalled("list_free_slots", args, result, time.perf_counter() - started)
    agent.history.append(ChatMessage("system", f"Result of list_free_slots: {compact_result(result)}"))
    if not result.get("ok"):
        return []
    slots = fitting_slots(result, said, agent.today)["result"].get("slots") or []  # one per service and time
    return [slot for slot in slots if slot["service"] == args["service"]][:2]


def _read_back(agent: Dialogue, write: PendingWrite) -> Iterator[AgentEvent]:
    yield from agent._read_back(write)  # the agent's own: it keeps the write pending and says the read-back
    return True
