"""The company's free times fitted to the caller's words: a bare hour said to the times offered, the half of the day
an hour without "am"/"pm" means, the earliest or the latest asked for, and a ``list_free_slots`` result narrowed to
the hour or part of the day the caller named (``slots.When.matches``: one reading for the list and the choice).

Why a module: parsing what the caller said (``slots``) and fitting the CRM's free times to it are two jobs; both
grew past one room.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from voicebot.crm.spoken import words_to_digits
from voicebot.crm.toolkit import to_jsonable
from voicebot.dialog.slots import HALF_OF_DAY, When, clock_time, parse_when


def _minutes(slot: dict[str, Any]) -> int:
    start = datetime.fromisoformat(str(slot["starts_at"]))
    return start.hour * 60 + start.minute


def near_offered(when: When, text: str, offered_hour: int) -> When:
    """A clock time said without "am"/"pm" to times offered: the half of the day nearer them ("Seven o'clock." to
    6 and 7 PM is 7 PM; "Half ten." to 8:30 and 9:30 AM is 10:30 AM)."""
    if when.hour is None or HALF_OF_DAY.search(text.lower()):
        return when
    both = (when.hour % 12, when.hour % 12 + 12)
    likely = [h for h in both if 7 <= h <= 21] or list(both)  # "two" is 2 PM whatever was offered
    return replace(when, hour=min(likely, key=lambda h: abs(h - offered_hour)))


def said_hour(text: str) -> When | None:
    """A bare hour said to times offered ("Eleven's fine.", "Ten?", "11 please"): a clock time, which alone it
    is not (``parse_when`` wants "at ten" or "ten o'clock"); None in a longer turn."""
    if len(text.split()) > 5:
        return None
    said = words_to_digits(text.lower().replace("'s", " is"))
    found = re.search(r"\b(\d{1,2})(?::(\d{2}))?\b", said)
    if found is None or not 1 <= int(found.group(1)) <= 12:
        return None
    if set(re.findall(r"[a-z']+", said)) - _AROUND_A_TIME:  # "2 chairs", "printer repair for 2": no time
        return None
    return When(hour=int(found.group(1)), minute=int(found.group(2) or 0), text=found.group(0))


_AROUND_A_TIME = frozenset("""is fine please ok okay then works would be great good thanks thank you at yes yeah how
    about what maybe perhaps o'clock oclock sounds that suits me perfect lovely and or around""".split())


_LATEST = re.compile(r"\b(latest|as late as (?:possible|you can|you have)|last (?:slot|time|appointment|opening) "
                     r"(?:you have|of the day|available)|last thing in the day|end of the day)\b", re.IGNORECASE)
_EARLIEST = re.compile(r"\b(earliest|soonest|first (?:available|free|possible|opening|slot|appointment|time)|"
                       r"as (?:early|soon) as (?:possible|you can)|asap)\b", re.IGNORECASE)


def extreme_asked(text: str) -> str | None:
    """"latest" or "earliest" when the caller asks for the one time at that end ("What's the latest you have on
    Friday?", "Book me the earliest printer repair"), else None: such a caller was offered the first two times."""
    return "latest" if _LATEST.search(text) else "earliest" if _EARLIEST.search(text) else None


def latest_first(args: dict[str, Any], said: str) -> dict[str, Any]:
    """``list_free_slots`` arguments, with ``latest`` when ``said`` asks for the latest time (the tool then reads
    the end of the day; its earliest-first six never held "the latest you have on Friday")."""
    return {**args, "latest": True} if extreme_asked(said) == "latest" else args


def _hour_free(when: When, slots: list[dict[str, Any]]) -> int | None:
    """The one half of the day in which a clock time said without "am"/"pm" is free ("at 7" to a restaurant's
    tables at noon and 6-8 PM: 7 PM), or None when both or neither are."""
    if when.hour is None:
        return None
    free = {h for h in (when.hour % 12, when.hour % 12 + 12) if any(_minutes(s) // 60 == h for s in slots)}
    return free.pop() if len(free) == 1 else None


def fitting_slots(result: dict[str, Any], said: str, today: date) -> dict[str, Any]:
    """A ``list_free_slots`` result narrowed to the hour or part of the day in the caller's words, when they name
    one and any slot fits ("next Tuesday morning" is never offered 1 PM beside 9 AM), with one slot per service and
    start time: two fitters free at 9 AM are one time to the caller, and "Tuesday at 9 AM or Tuesday at 9 AM" was
    offered. Asked for the earliest or the latest time (``extreme_asked``), the one slot first, and ``extreme``."""
    value = to_jsonable(result["result"])
    slots, seen = [], set()
    for slot in value.get("slots") or []:
        if (key := (slot.get("service"), str(slot["starts_at"]))) not in seen:
            seen.add(key)
            slots.append(slot)
    when = parse_when(said, today) or said_hour(said)  # "Eleven's fine." to the times offered
    if when is not None and when.has_time:
        if slots:
            when = near_offered(when, said, _hour_free(when, slots) or _minutes(slots[0]) // 60)
        fits = [s for s in slots if when.matches(datetime.fromisoformat(str(s["starts_at"])))]
        if not fits and when.hour is not None and slots:  # the time asked is taken: the nearest free ones, in order
            asked = when.hour * 60 + when.minute
            near = sorted(slots, key=lambda s: abs(_minutes(s) - asked))
            fits = sorted(near[:2], key=_minutes) + near[2:]
            value["time_taken"] = clock_time(when.hour, when.minute)  # "10:30 AM isn't free. I can offer ..."
        slots = fits or slots
    if (extreme := extreme_asked(said)) and slots and not value.get("time_taken"):
        slots, value["extreme"] = slots[:1], extreme  # the tool put that end first (``latest``)
    value["slots"] = slots
    return {**result, "result": value}
