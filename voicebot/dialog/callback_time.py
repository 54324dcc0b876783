"""When a callback the caller asked for may be made: the caller's words read against the opening hours.

Why: "call me back on Sunday" was read back as "I'll ask a colleague to call you back Sunday, December 6th" while
the company is closed on Sundays, a promise nobody keeps; and the dialer, which could read only an ISO time,
took the callback as due at once, so "tomorrow at ten" could ring two minutes later. Here the caller's day and
time (``slots.When``) become the earliest moment a call may come (``not_before``, kept in the callback's row and
honoured by the dialer), and when the company is closed then (``hours.yaml``), the next opening instead, said as
such in the read-back; a clock time or a part of the day the caller named is kept, on the next day open then
("Sunday at 3 PM": Monday at 3 PM). A time of day without a day ("in the afternoon") means today, a time from now
("in an hour") is read on the clock; nothing named: no limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from voicebot.dialog.slots import PARTS, When, spoken_date, spoken_when
from voicebot.knowledge.hours import OpeningHours


@dataclass(frozen=True)
class CallbackTime:
    """``spoken``: what the read-back says ("Monday, December 7th at 8 AM"); ``closed``: the caller's time the
    company is closed at, as said back ("on Sunday, December 6th", "at that time on ..."), or "";
    ``not_before``: the earliest call."""

    spoken: str
    not_before: datetime | None
    closed: str = ""


class HoursSource(Protocol):
    """Where the opening hours and the time now come from (``dialog.knowledge_step.KnowledgeStep``)."""

    clock: Callable[[], datetime]

    def opening_hours(self) -> OpeningHours | None: ...


def callback_time(when: When, today: date, hours: OpeningHours | None, now: datetime | None = None) -> CallbackTime:
    """The callback time for ``when`` (the caller's words, read relative to ``today``); ``hours`` None: no check.
    A time without a day that has gone by ``now`` today ("at 7 in the morning", said at 10) is tomorrow's; a time
    from now ("in an hour") is read on ``now`` (rounded up to 5 minutes), and kept as words alone without it."""
    zone = hours.zone if hours is not None else None
    if when.in_minutes is not None and not (when.has_day or when.has_time):
        if now is None:
            return CallbackTime(when.text, None)
        local = _local(now, zone)
        at = local + timedelta(minutes=when.in_minutes + 4)
        at -= timedelta(minutes=at.minute % 5, seconds=at.second, microseconds=at.microsecond)
        day = None if at.date() == local.date() else at.date()  # today's: "at 11:30 AM"
        when = replace(when, first_day=day, last_day=day, hour=at.hour, minute=at.minute)
    day = when.first_day or (today if when.hour is not None or when.part is not None else None)
    if day is None:
        return CallbackTime(spoken_when(when), None)
    start = time(when.hour, when.minute) if when.hour is not None else \
        time(PARTS[when.part][0]) if when.part is not None else time(0)
    earliest = datetime.combine(day, start, tzinfo=zone)
    if when.first_day is None and now is not None and earliest <= _local(now, zone):
        day, earliest = day + timedelta(days=1), earliest + timedelta(days=1)
        when = replace(when, first_day=day, last_day=day)
    if hours is None or _open_in(hours, when, day, start):
        return CallbackTime(spoken_when(when), earliest)
    closing = hours.on(day)
    named = f"{closing.holiday}, {spoken_date(day)}" if closing.holiday else spoken_date(day)
    closed = f"on {named}" if not closing.spans or (when.hour is None and when.part is None) else \
        "at that time today" if day == today else f"at that time on {named}"
    if (later := _same_time_later(hours, when, day, start)) is not None:
        return CallbackTime(spoken_when(replace(when, first_day=later, last_day=later)),
                            datetime.combine(later, start, tzinfo=zone), closed)
    opening = hours.next_opening(earliest)
    if opening is None:  # closed for two weeks: keep the caller's time, the person reading the row decides
        return CallbackTime(spoken_when(when), earliest)
    open_day, open_at = opening
    return CallbackTime(spoken_when(When(open_day, open_day, open_at.hour, open_at.minute)),
                        datetime.combine(open_day, open_at, tzinfo=zone), closed)


def _same_time_later(hours: OpeningHours, when: When, day: date, start: time, days: int = 7) -> date | None:
    """The first day after ``day`` (within ``days``) open at the clock time or part of the day the caller named:
    "Sunday at 3 PM" is Monday at 3 PM, as a person would offer, not Monday's opening at 8 AM (the caller may be
    at work then; the hour is what they chose). None: no time named, or never open then (7 PM: the next opening)."""
    if when.hour is None and when.part is None:
        return None
    return next((later for offset in range(1, days + 1)
                 if _open_in(hours, when, later := day + timedelta(days=offset), start)), None)


def _local(now: datetime, zone: ZoneInfo | None) -> datetime:
    """``now`` on the company's clock, or (no ``hours.yaml``) naive on this machine's, as the CRM's own times are."""
    if zone is not None:
        return now.astimezone(zone)
    return now.astimezone().replace(tzinfo=None) if now.tzinfo else now


def _open_in(hours: OpeningHours, when: When, day: date, start: time) -> bool:
    """Whether the company is open at some point of what the caller named: the clock time, the part of the day,
    or (a day alone) the day; a span of days ("next week") is never checked."""
    if when.last_day not in (None, when.first_day):
        return True
    spans = hours.on(day).spans
    if when.hour is not None:
        return any(low <= start < high for low, high in spans)
    if when.part is not None:
        low_h, high_h = PARTS[when.part]
        return any(low < time(high_h - 1, 59) and high > time(low_h) for low, high in spans)
    return bool(spans)

