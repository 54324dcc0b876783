"""Slots read in code from the caller's own words: when ("next Tuesday morning", "the day after tomorrow at
ten", "on the 3rd"), and the words a CRM write may carry.

Why code and not the model: the 1.5B model copied its few-shot example ("call back tomorrow morning") into
callbacks the caller never asked for, and answered "next Tuesday" with Monday's slots. A date the bot acts on must
come from what the caller said, computed against the call's "today", so it is parsed here; dateparser (a
well-kept parser) reads the forms the rules below do not ("in a fortnight", "December the 3rd 2027"). Rules come
first because dateparser alone reads "Tuesday at 10" as October and "on the 3rd" as March.

``When`` is a day or a span of days, optionally an hour (or a part of the day). ``matches`` says whether a slot's
start fits it, so the slot list and the caller's choice use one reading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from voicebot.crm.spoken import MONTHS, ORDINALS, TEENS, TENS, UNITS, WEEKDAYS
from voicebot.review.redact import mask_secrets

PARTS = {"morning": (8, 12), "lunchtime": (12, 14), "afternoon": (12, 17), "evening": (17, 21)}
"""Parts of the day as hours [start, end): what a service desk means by them (a callback "in the morning" from 8)."""
_OPEN_PARTS = {**PARTS, "morning": (5, 12), "evening": (17, 24)}
"""The same parts for a company's free times: "tomorrow morning" at a garage that opens at 7 was offered 9 AM over
its free 7 AM, and a gym's 9:30 PM class is in the evening. A callback keeps the desk's hours (``PARTS``)."""
HALF_OF_DAY = re.compile(r"\b(a\.? ?m|p\.? ?m|morning|afternoon|evening|tonight|night)\b")
_PART_WORDS = {"morning": "morning", "lunchtime": "lunchtime", "lunch": "lunchtime", "afternoon": "afternoon",
               "evening": "evening", "tonight": "evening", "night": "evening"}
_HOUR_WORDS = {**{k: v for k, v in UNITS.items() if v}, **{k: v for k, v in TEENS.items() if v <= 12}}
_MINUTE_WORDS = {"fifteen": 15, "thirty": 30, "forty-five": 45, "forty five": 45, "oh five": 5}
_WORD_TIME = (r"(" + "|".join(sorted(_HOUR_WORDS, key=len, reverse=True)) + r")"
              r"(?: (fifteen|thirty|forty-five|forty five))?(?: ?(a\.? ?m\b\.?|p\.? ?m\b\.?|o'?clock))")
"""An hour in words: after "at"/"from" the meridiem is optional ("at ten"), alone it is not ("three pm")."""
_SPAN_UNITS = {"day": 1, "days": 1, "week": 7, "weeks": 7, "fortnight": 14}


@dataclass(frozen=True)
class When:
    """A time the caller named. ``first_day``..``last_day`` (inclusive) is the span of days; ``hour``/``minute``
    a clock time, ``part`` a part of the day; ``text`` the caller's words for it (kept in the CRM as said);
    ``bound`` "after" or "before" the clock time ("after 5 PM", "nothing before 10", "by noon")."""

    first_day: date | None = None
    last_day: date | None = None
    hour: int | None = None
    minute: int = 0
    part: str | None = None
    text: str = ""
    in_minutes: int | None = None
    """A time from now ("in an hour", "in 20 minutes"): only a clock can place it (``callback_time``); a day,
    a clock time or a part of the day said with it comes first."""
    bound: str | None = None

    def matches(self, start: datetime) -> bool:
        """True when a slot starting at ``start`` fits what the caller said."""
        if self.first_day is not None and not (self.first_day <= start.date() <= (self.last_day or self.first_day)):
            return False
        if self.hour is not None and self.bound is not None:
            return ((start.hour, start.minute) >= (self.hour, self.minute)) == (self.bound == "after")
        if self.hour is not None:
            return start.hour == self.hour and (self.minute == 0 or start.minute == self.minute)
        if self.part is not None:
            low, high = _OPEN_PARTS[self.part]
            return low <= start.hour < high
        return True

    @property
    def hours(self) -> tuple[int, int] | None:
        """The hours (from, to: exclusive) to look for free times in: the part of the day, or a few hours around a
        clock time (its neighbours are offered when it is taken), or all after or before it; None when no time was
        named."""
        if self.hour is not None and self.bound is not None:
            return (self.hour, 24) if self.bound == "after" else (0, self.hour + (self.minute > 0))
        if self.hour is not None and 7 <= self.hour <= 11 and self.part is None and not HALF_OF_DAY.search(
                self.text.lower()):  # "Saturday at 7": 7 AM or 7 PM (a restaurant's tables were "nothing free
            return self.hour - 2, min(24, self.hour + 15)  # then" at 7 PM); the times found say which (near_offered)
        if self.hour is not None:
            return max(0, self.hour - 2), min(24, self.hour + 3)
        return _OPEN_PARTS[self.part] if self.part is not None else None

    @property
    def has_day(self) -> bool:
        return self.first_day is not None

    @property
    def has_time(self) -> bool:
        return self.hour is not None or self.part is not None


def _clean(text: str) -> str:
    text = mask_secrets(text).lower().replace("’", "'")  # "on Saturdays": the next one ("Do you do MOTs on ...?")
    return re.sub(r"\b(mon|tues|wednes|thurs|fri|satur|sun)days\b", r"\1day", re.sub(r"[^\w:'\- ]+", " ", text))


def _next_weekday(today: date, weekday: int, skip_today: bool = True) -> date:
    ahead = (weekday - today.weekday()) % 7
    return today + timedelta(days=ahead or (7 if skip_today else 0))


def _day_of_month(today: date, day: int) -> date | None:
    """The next date (today or later) whose day of the month is ``day``."""
    year, month = today.year, today.month
    for _ in range(13):
        try:
            candidate = date(year, month, day)
        except ValueError:
            candidate = None
        if candidate is not None and candidate >= today:
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return None


def _month_day(today: date, month: int, day: int) -> date | None:
    for year in (today.year, today.year + 1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            return None
        if candidate >= today:
            return candidate
    return None


_WEEKDAY_RE = "|".join(sorted((w for w in WEEKDAYS if len(w) > 3), key=len, reverse=True))
_MONTH_RE = "|".join(sorted((m for m in MONTHS if len(m) > 3 or m == "may"), key=len, reverse=True))
_ORDINAL_RE = "|".join(sorted((re.escape(o) for o in ORDINALS), key=len, reverse=True))
_DAY_NUM = rf"(?:(\d{{1,2}})(?:st|nd|rd|th)?|({_ORDINAL_RE}))"


def _day_value(digits: str | None, word: str | None) -> int | None:
    if digits:
        return int(digits)
    return ORDINALS.get(word or "")


def _days(text: str, today: date) -> tuple[date, date, str] | None:
    """The span of days named in ``text`` (already cleaned), with the words that named it."""
    if m := re.search(r"\b(?:the )?day after tomorrow\b", text):
        d = today + timedelta(days=2)
        return d, d, m.group(0)
    if m := re.search(r"\btomorrow\b", text):
        d = today + timedelta(days=1)
        return d, d, m.group(0)
    if m := re.search(r"\b(today|tonight|this (?:morning|afternoon|evening))\b", text):
        return today, today, m.group(0)
    if m := re.search(rf"\b(?:(next|this|coming|on) )?({_WEEKDAY_RE})( after next| next week| week| fortnight)?\b",
                      text):
        d = _next_weekday(today, WEEKDAYS[m.group(2)], skip_today=m.group(1) != "this")
        later = m.group(3) or (f := re.search(rf"\b(week|fortnight) (?:on|from) {m.group(2)}\b", text)) and f.group(1)
        if later:  # "Tuesday week", "a week on Tuesday": 7 days on; "Tuesday fortnight": 14 (British usage)
            d += timedelta(days=14 if "fortnight" in later else 7)
        return d, d, m.group(0).removeprefix("on ")
    if m := re.search(rf"\b{_DAY_NUM}(?: of)? ({_MONTH_RE})\b", text):
        d = _month_day(today, MONTHS[m.group(3)], _day_value(m.group(1), m.group(2)) or 0)
        if d:
            return d, d, m.group(0)
    if m := re.search(rf"\b({_MONTH_RE})(?: the)? {_DAY_NUM}\b", text):
        d = _month_day(today, MONTHS[m.group(1)], _day_value(m.group(2), m.group(3)) or 0)
        if d:
            return d, d, m.group(0)
    if m := re.search(rf"\bthe {_DAY_NUM}\b(?! (one|option|time|slot)s?\b)(?! ?(?:o'?clock|[ap]\.?m\b)|:\d)", text):
        # not "the first one", nor "the 10 o'clock" (to 8 and 10 AM on Thursday: it read back the 10th at 10 AM)
        value = _day_value(m.group(1), m.group(2))
        d = _day_of_month(today, value) if value and 1 <= value <= 31 else None
        if d:
            return d, d, m.group(0)
    if m := re.search(r"\b(next|this|the) (week|weekend)\b", text):
        monday = today - timedelta(days=today.weekday())
        if m.group(2) == "weekend":
            saturday = monday + timedelta(days=5 + (7 if m.group(1) == "next" and today.weekday() >= 5 else 0))
            return max(saturday, today), saturday + timedelta(days=1), m.group(0)
        if m.group(1) == "next":
            return monday + timedelta(days=7), monday + timedelta(days=13), m.group(0)
        return today, monday + timedelta(days=6), m.group(0)
    if m := re.search(r"\bin (a|an|one|two|three|four|five|six|seven|\d{1,2}) (days?|weeks?|fortnight)\b", text):
        count = 1 if m.group(1) in ("a", "an") else int(m.group(1)) if m.group(1).isdigit() else UNITS[m.group(1)]
        d = today + timedelta(days=count * _SPAN_UNITS[m.group(2)])
        return d, d, m.group(0)
    return _dateparser_day(text, today)


def _dateparser_day(text: str, today: date) -> tuple[date, date, str] | None:
    """What the rules miss, read by dateparser; only a day with a month or a relative word is taken, never a bare
    number (dateparser reads "at 10" as October)."""
    if not re.search(rf"\b({_MONTH_RE}|fortnight|week|weeks|days|month)\b", text):
        return None
    from dateparser.search import search_dates  # slow to import (~0.5 s): only when needed

    base = datetime.combine(today, datetime.min.time()).replace(hour=12)
    found = search_dates(text, languages=["en"], settings={"PREFER_DATES_FROM": "future", "RELATIVE_BASE": base})
    for words, when in found or []:
        if re.fullmatch(r"[\d\s:]+", words):
            continue
        if today <= when.date() <= today + timedelta(days=366):
            return when.date(), when.date(), words
    return None


def _time(text: str) -> tuple[int | None, int, str | None, str]:
    """(hour, minute, part of day, the words) from cleaned ``text``; hour None when no clock time is named."""
    part_match = re.search(r"\b(morning|lunchtime|lunch|afternoon|evening|tonight|(?<!last )night)\b", text)
    part = _PART_WORDS[part_match.group(1)] if part_match else None
    hour = minute = None
    said = ""
    if m := re.search(r"\b(noon|midday)\b", text):
        hour, minute, said = 12, 0, m.group(0)
    elif m := re.search(r"\bhalf (?:past )?(\d{1,2}|" + "|".join(_HOUR_WORDS) + r")\b", text):
        hour, minute, said = _with_meridiem(_hour_value(m.group(1)), None, part), 30, m.group(0)  # UK "half ten"
    elif m := re.search(r"\bquarter (past|to) (\d{1,2}|" + "|".join(_HOUR_WORDS) + r")\b", text):
        hour = _hour_value(m.group(2)) - (m.group(1) == "to") or 12
        hour, minute, said = _with_meridiem(hour, None, part), 15 if m.group(1) == "past" else 45, m.group(0)
    elif m := re.search(r"\b(" + "|".join(sorted(_HOUR_WORDS, key=len, reverse=True)) + r") (fifteen|thirty|"
                        r"forty-five|forty five)\b", text):  # "ten thirty": a time without "at" or "am"
        hour, minute, said = _with_meridiem(_hour_value(m.group(1)), None, part), _MINUTE_WORDS[m.group(2)], m.group(0)
    elif m := re.search(r"\b(?:(?:at|from|around|about|after|before|by|until|till) )?(\d{1,2})(?::(\d{2}))? ?"
                        r"(a\.? ?m\b\.?|p\.? ?m\b\.?|o'clock)", text) \
            or re.search(r"\b(?:at|from|around|about|after|before|by|until|till) (\d{1,2})(?::(\d{2}))?\b()", text):
        hour, minute, said = int(m.group(1)), int(m.group(2) or 0), m.group(0)
        hour = _with_meridiem(hour, m.group(3), part)
    elif m := (re.search(r"\b(?:at|from|around|about|after|before|by|until|till) " + _WORD_TIME + r"?(?! of\b)",
                         text)  # "at one of"
               or re.search(r"\b" + _WORD_TIME, text)):
        hour, said = _hour_value(m.group(1)), m.group(0)
        minute = _MINUTE_WORDS.get(m.group(2) or "", 0)
        hour = _with_meridiem(hour, m.group(3), part)
    if hour is not None and not (0 <= hour <= 23 and 0 <= (minute or 0) <= 59):
        hour = minute = None
    words = " ".join(w for w in (said.strip(), part_match.group(0) if part_match and not said else "") if w)
    return hour, minute or 0, part, words


def _hour_value(word: str) -> int:
    return int(word) if word.isdigit() else _HOUR_WORDS[word]


def _with_meridiem(hour: int, meridiem: str | None, part: str | None) -> int:
    meridiem = (meridiem or "").replace(".", "").replace(" ", "")
    if meridiem == "pm" and hour < 12:
        return hour + 12
    if meridiem == "am" and hour == 12:
        return 0
    if not meridiem.endswith("m") and hour < 12 and (part in ("afternoon", "evening") or 1 <= hour <= 6):
        return hour + 12  # "at two" on a service desk is the afternoon
    return hour


def parse_when(text: str, today: date) -> When | None:
    """The day(s) and time the caller named, relative to ``today`` (the call's date in the company's time zone);
    None when the words name neither."""
    cleaned = _clean(text)
    days = _days(cleaned, today)
    hour, minute, part, time_words = _time(cleaned)
    later = _from_now(cleaned) if days is None and hour is None and part is None else None
    if later is not None:
        return When(text=later[1], in_minutes=later[0])
    if days is None and hour is None and part is None:
        return None
    first, last, day_words = days if days else (None, None, "")
    if "this morning" in day_words or "this afternoon" in day_words or "this evening" in day_words:
        part = part or day_words.split()[-1]
    said = " ".join([day_words] + ([time_words] if time_words and time_words not in day_words else [])).strip()
    return When(first, last, hour, minute, part, said, bound=_bound(cleaned, time_words) if hour is not None else None)


_BOUNDS = re.compile(r"(?:\b(?P<no>not|nothing|no|none|anything but)\s+)?(?:(?P<after>after|from|later than|no earlier "
                     r"than)|(?P<before>before|by|until|till|earlier than|no later than))$")


def _bound(text: str, time_words: str) -> str | None:
    """"after" or "before" when the words just before the clock time bound it: "after 5 PM", "from 3", "nothing
    before 10" (after), "by noon", "until 2", "earlier than 11" (before). "After 5 PM?" to the times offered looked
    for 3 to 8 PM around 5, and "Nothing before 10 works for me." went to the model."""
    if re.match(r"(?:at|around|about)\b", time_words):
        return None  # "Drop by at 10": the time itself
    head = re.match(r"(after|from|before|by|until|till)\b\s*", time_words)
    start = text.find(time_words)
    before = (text[:start] + (head.group(0) if head else "")).strip() if start >= 0 else ""
    found = _BOUNDS.search(" ".join(before.split()[-4:]))
    if found is None or (found.group("after") == "from" and found.group("no")):
        return None
    after = found.group("after") is not None
    return "after" if after != bool(found.group("no")) else "before"


_COUNT_WORDS = {**{w: n for w, n in UNITS.items() if n}, **TEENS, **TENS, "a": 1, "an": 1, "forty-five": 45,
                "forty five": 45, "a couple of": 2, "a couple": 2, "couple of": 2}
_FROM_NOW = re.compile(
    r"\b(?:in|within) (?:about |around |roughly |maybe |like |an? )?(?:(half an hour|an hour and a half|the hour)|"
    r"(\d{1,3}|" + "|".join(sorted((re.escape(w) for w in _COUNT_WORDS), key=len, reverse=True))
    + r")(?: or so)? (hours?|minutes?|mins?)\b)")


def _from_now(text: str) -> tuple[int, str] | None:
    """(minutes, the words) for a time from now in cleaned ``text``: "in an hour", "in 20 minutes", "in half an
    hour", "within the hour", "in a couple of hours"; at most a day ahead."""
    m = _FROM_NOW.search(text)
    if m is None:
        return None
    if m.group(1):
        minutes = {"half an hour": 30, "an hour and a half": 90, "the hour": 60}[m.group(1)]
    else:
        count = int(m.group(2)) if m.group(2).isdigit() else _COUNT_WORDS[m.group(2)]
        minutes = count * (60 if m.group(3).startswith("hour") else 1)
    return (minutes, m.group(0)) if 0 < minutes <= 24 * 60 else None


def spoken_when(when: When) -> str:
    """``when`` as the bot reads it back ("Tuesday, December 1st in the morning")."""
    parts = []
    if when.first_day is not None:
        parts.append(spoken_date(when.first_day) if when.last_day in (None, when.first_day)
                     else f"between {spoken_date(when.first_day)} and {spoken_date(when.last_day)}")
    if when.hour is not None:
        clock = datetime(2000, 1, 1, when.hour, when.minute)
        parts.append(f"at {clock:%I}".replace(" 0", " ") + (f":{when.minute:02d}" if when.minute else "")
                     + (" AM" if when.hour < 12 else " PM"))
    elif when.part is not None:
        parts.append(f"in the {when.part}" if when.part != "lunchtime" else "at lunchtime")
    return " ".join(parts)


def spoken_date(value: str | date) -> str:
    d = date.fromisoformat(value) if isinstance(value, str) else value
    suffix = "th" if 10 <= d.day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(d.day % 10, "th")
    return f"{d:%A}, {d:%B} {d.day}{suffix}"


def spoken_time(value: str) -> str:
    start = datetime.fromisoformat(value)
    return f"{spoken_date(start.date())} at {clock_time(start.hour, start.minute)}"


def clock_time(hour: int, minute: int) -> str:
    """"10:30 AM", "7 PM"."""
    return f"{hour % 12 or 12}{'' if minute == 0 else f':{minute:02d}'} {'AM' if hour < 12 else 'PM'}"
