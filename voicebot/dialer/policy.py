"""When the dialer may call whom: the rules as pure functions of the callbacks, the clock and the lines in use.

Why pure: every rule here protects a person (calls at night, a number called five times in an hour, a number
that asked never to be called, an inbound caller who gets a busy tone because the bot is busy dialling out), so
each one is tested with fixed clocks and counts, not through a running dialer.

Times are aware datetimes; the calling hours are read in ``dialer.timezone`` (the company's, which is the
callees' for a local business). A callback's preferred time is used when it is a date and time the code can
read (ISO 8601, e.g. ``2026-03-02T14:00``, in that zone when it has no offset), and so is ``not_before``, the
time code read from the caller's words when the bot took the callback ("tomorrow morning": 8 AM tomorrow, or the
next opening when the company is closed then, ``dialog/callback_time.py``); free text alone is kept for the person
reading the row but is no constraint: the callback is due now.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from voicebot.config import WEEKDAYS, DialerConfig

E164 = re.compile(r"\+[1-9]\d{6,14}")  # what the CRM stores for a number it could read; anything else is not dialled


@dataclass(frozen=True)
class DueCallback:
    """A pending callback as the dialer sees it (``ledger.CallbackLedger.pending``)."""

    id: int
    phone: str  # E.164 as the CRM holds it; never logged in full (``review.redact.mask_phone``)
    reason: str
    preferred_time: str | None = None
    attempts: int = 0
    last_attempt_at: datetime | None = None
    number_last_called_at: datetime | None = None  # the latest attempt on any callback for this number
    customer_id: int | None = None
    purpose: str = "callback"  # callback, reminder, checkin, message (m008)
    booking_id: int | None = None  # a reminder's or a visit check-in's booking
    ticket_id: int | None = None  # a check-in's resolved ticket
    campaign_id: int | None = None
    max_attempts: int | None = None  # the campaign's limit; None: dialer.max_attempts
    not_after: datetime | None = None  # the end of its window: never dialled from then on (closed as expired)
    not_before: datetime | None = None  # the time the caller asked for, read by code (m009): not dialled before


@dataclass(frozen=True)
class Lines:
    """The worker's calls in progress: all of them (inbound and outbound), and the dialer's own."""

    busy: int
    outbound: int


class CallingHours:
    """The weekly calling hours of ``dialer.hours`` in ``dialer.timezone``."""

    def __init__(self, hours: dict[str, str], zone: str):
        self.zone = ZoneInfo(zone)
        self.spans: dict[int, list[tuple[time, time | None]]] = {}
        for day, text in hours.items():
            spans = []
            if text.strip() != "closed":
                for span in text.split(","):
                    start, end = (part.strip() for part in span.split("-"))
                    spans.append((time.fromisoformat(start), None if end == "24:00" else time.fromisoformat(end)))
            self.spans[WEEKDAYS.index(day)] = spans

    @classmethod
    def of(cls, config: DialerConfig) -> CallingHours:
        return cls(config.hours, config.timezone or "UTC")  # set from hours.yaml when the whole config is read

    def open_at(self, now: datetime) -> bool:
        """Whether ``now`` (aware) is inside the calling hours, read on the local clock of the zone (so a change
        to or from daylight saving time moves nothing: 09:00 stays 09:00 there)."""
        local = now.astimezone(self.zone)
        clock = local.time().replace(tzinfo=None)
        return any(start <= clock and (end is None or clock < end) for start, end in self.spans.get(local.weekday(), []))


def aware(value: datetime, zone: ZoneInfo | None = None) -> datetime:
    """A naive time as local time of ``zone`` (default: this machine's, as the CRM's own clock writes them)."""
    if value.tzinfo is not None:
        return value
    return value.replace(tzinfo=zone) if zone is not None else value.astimezone()


def preferred_at(text: str | None, zone: ZoneInfo) -> datetime | None:
    """The callback's preferred time when it is machine-readable (see the module docstring), else None."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return aware(value, zone)


class DialPolicy:
    """``dialer``'s rules: ``why_not`` for one callback, ``room`` for the lines, ``choose`` for a round."""

    def __init__(self, config: DialerConfig, max_lines: int):
        self.config = config
        self.hours = CallingHours.of(config)
        self.max_lines = max_lines
        self.spacing = timedelta(minutes=config.spacing_min)

    def why_not(self, callback: DueCallback, now: datetime, dnc: Container[str]) -> str | None:
        """Why ``callback`` may not be dialled at ``now``, or None when it may. Checked in this order: the
        number itself (E.164), the do-not-call list, the attempts, the window's end, the calling hours, the preferred
        time, the spacing."""
        if not E164.fullmatch(callback.phone or ""):
            return "no number to call"
        if callback.phone in dnc:
            return "do-not-call"
        if callback.attempts >= (callback.max_attempts or self.config.max_attempts):
            return "attempts used up"
        if callback.not_after is not None and now >= aware(callback.not_after, self.hours.zone):
            return "window closed"
        if not self.hours.open_at(now):
            return "outside calling hours"
        preferred = callback.not_before or preferred_at(callback.preferred_time, self.hours.zone)
        if preferred is not None and now < aware(preferred, self.hours.zone):
            return "preferred time not reached"
        for last in (callback.last_attempt_at, callback.number_last_called_at):
            if last is not None and now - aware(last) < self.spacing:
                return "too soon after the last call"
        return None

    def room(self, lines: Lines) -> int:
        """How many calls may go out now: under the dialer's cap, and each one leaving ``free_lines`` of the
        worker's ``max_lines`` free for inbound callers."""
        by_cap = self.config.max_concurrent - lines.outbound
        by_inbound = self.max_lines - lines.busy - self.config.free_lines
        return max(0, min(by_cap, by_inbound))

    def choose(self, callbacks: Iterable[DueCallback], now: datetime, lines: Lines,
               dnc: Container[str], busy_numbers: Container[str] = ()) -> list[DueCallback]:
        """The callbacks to dial now, oldest first as given, at most ``room(lines)``, one per number (a number
        with two pending callbacks gets one call; ``busy_numbers`` are being called already)."""
        room = self.room(lines)
        chosen: list[DueCallback] = []
        numbers: set[str] = set()
        for callback in callbacks:
            if len(chosen) >= room:
                break
            if callback.phone in numbers or callback.phone in busy_numbers:
                continue
            if self.why_not(callback, now, dnc) is None:
                chosen.append(callback)
                numbers.add(callback.phone)
        return chosen


def result_of(sip_status: int) -> str:
    """An unanswered call's result, from its SIP status: no_answer (408/480, or CANCELled after the ring
    timeout), busy (486, 600), declined (603), failed (anything else, 0: the INVITE could not be sent)."""
    if sip_status in (408, 480, 487):
        return "no_answer"
    if sip_status in (486, 600):
        return "busy"
    if sip_status == 603:
        return "declined"
    return "failed"
