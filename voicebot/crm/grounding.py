"""Is every number, date and amount in the bot's reply backed by this turn's tool results or the caller's words?

``find_ungrounded(reply, tool_results, caller_words)`` lists the ones that are not: the "never invent order numbers,
dates or amounts" rule, checked in code. The reply and the sources are read by one extractor, so "March 3" in a
reply matches "2026-03-03" in a result, "$25.99" matches 25.99, "555 010 2030" matches "+15550102030", and
"one zero four five two" said by the caller matches "10452" in the reply. Spelled numbers below ten in the reply
("one moment", "two orders") are not checked: they are too common in plain speech to flag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from voicebot.crm.spoken import DateMention, find_dates, spoken_numbers

Kind = Literal["date", "time", "amount", "number", "digits", "identifier"]

_CURRENCY_WORDS = r"dollars?|bucks|usd|pounds?|gbp|euros?|eur"
_AMOUNT_RES = [re.compile(r"(?<![\w.])[$£€]\s?(?P<v>\d[\d,]*(?:\.\d{1,2})?)(?![\d])"),
               re.compile(rf"(?<![\w.])(?P<v>\d[\d,]*(?:\.\d{{1,2}})?)\s*(?:{_CURRENCY_WORDS})\b", re.IGNORECASE)]
_SPELLED_CURRENCY = re.compile(rf"\s*(?:{_CURRENCY_WORDS})\b(?:,?\s*(?:and\s+)?)?", re.IGNORECASE)
_CENTS = re.compile(r"\s*(?:cents?|pence|p)\b", re.IGNORECASE)
_TIME_RES = [re.compile(r"\b(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ap>[ap])\.?\s?m\b\.?", re.IGNORECASE),
             re.compile(r"\b(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)\b")]
_DIGIT_GROUPS = re.compile(r"(?<![\w.])\+?\(?\d{1,4}\)?(?:[ .-]\(?\d{2,5}\)?){2,}(?![\w])")
_IDENTIFIER = re.compile(r"\b(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9-]*\b")
_ORDINAL_OR_UNIT = re.compile(r"^\d+(?:st|nd|rd|th|am|pm|k|m|s)?$", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?(?:st|nd|rd|th)?(?![\w])", re.IGNORECASE)


@dataclass(frozen=True)
class Ungrounded:
    """A figure in the reply that neither the tool results nor the caller gave."""

    kind: Kind
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class _Mention(Ungrounded):
    value: Any = None


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(re.sub(r"(st|nd|rd|th)$", "", text.replace(",", ""), flags=re.IGNORECASE))
    except InvalidOperation:
        return None


def _spelled_amounts(text: str) -> list[tuple[int, int, Decimal]]:
    """"twenty-five dollars and ninety-nine cents" -> (start, end, 25.99)."""
    numbers, out = spoken_numbers(text), []
    for i, number in enumerate(numbers):
        whole = _SPELLED_CURRENCY.match(text, number.end)
        if number.value is None or not whole:
            continue
        value, end = Decimal(number.value), whole.end()
        if i + 1 < len(numbers) and numbers[i + 1].start == whole.end() and numbers[i + 1].value is not None:
            cents = _CENTS.match(text, numbers[i + 1].end)
            if cents:
                value, end = value + Decimal(numbers[i + 1].value) / 100, cents.end()
        out.append((number.start, end if end > whole.start() else whole.end(), value))
    return out


def extract(text: str, region: str = "US", spelled_minimum: int = 0) -> list[_Mention]:
    """Every date, time, amount, phone-like digit run, identifier and number in ``text``, left to right; a span
    taken by an earlier kind is not read again (the "3" of "March 3" is no number of its own)."""
    found: list[_Mention] = []

    def add(kind: Kind, start: int, end: int, value: Any) -> None:
        if value is not None and not any(start < m.end and m.start < end for m in found):
            found.append(_Mention(kind, text[start:end].strip(), start, end, value))

    for d in find_dates(text, region):
        add("date", d.start, d.end, d)
    for pattern in _TIME_RES:
        for m in pattern.finditer(text):
            hour, minute, ap = int(m["h"]), int(m["m"] or 0), (m.groupdict().get("ap") or "").lower()
            if ap:
                hours = {hour % 12 + (12 if ap == "p" else 0)}
            else:  # "2:00" may be 14:00
                hours = {hour, hour + 12} if 0 < hour < 12 else {hour}
            add("time", m.start(), m.end(), frozenset((h, minute) for h in hours) if hour < 24 else None)
    for pattern in _AMOUNT_RES:
        for m in pattern.finditer(text):
            add("amount", m.start(), m.end(), _decimal(m["v"]))
    for start, end, value in _spelled_amounts(text):
        add("amount", start, end, value)
    for m in _DIGIT_GROUPS.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        add("digits", m.start(), m.end(), digits if len(digits) >= 7 else None)
    for m in _IDENTIFIER.finditer(text):
        if not _ORDINAL_OR_UNIT.match(m.group(0)):
            add("identifier", m.start(), m.end(), m.group(0).replace("-", "").upper())
    for m in _NUMBER.finditer(text):
        add("number", m.start(), m.end(), _decimal(m.group(0)))
    for n in spoken_numbers(text):
        if n.value is None or n.value >= spelled_minimum:
            add("digits" if n.value is None else "number", n.start, n.end, n.digits if n.value is None
                else Decimal(n.value))
    return sorted(found, key=lambda m: m.start)


@dataclass
class _Facts:
    """What this turn's sources say: the values a reply may use."""

    numbers: set[Decimal] = field(default_factory=set)
    digits: set[str] = field(default_factory=set)
    dates: list[tuple[int | None, int, int]] = field(default_factory=list)
    times: set[tuple[int, int]] = field(default_factory=set)
    identifiers: set[str] = field(default_factory=set)

    def add_date(self, year: int | None, month: int, day: int) -> None:
        self.dates.append((year, month, day))
        if year:
            self.numbers.add(Decimal(year))

    def add_text(self, text: str, region: str) -> None:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            moment = None
        if moment is not None and re.match(r"\d{4}-\d{2}-\d{2}", text.strip()):
            self.add_date(moment.year, moment.month, moment.day)
            if "T" in text or " " in text.strip():
                self.times.add((moment.hour, moment.minute))
            return
        for m in extract(text, region):
            if m.kind == "date":
                self.add_date(m.value.year, m.value.month, m.value.day)
            elif m.kind == "time":
                self.times |= m.value
            elif m.kind == "identifier":
                self.identifiers.add(m.value)
            elif m.kind == "digits":
                self.digits.add(m.value)
            else:
                self.numbers.add(m.value)
                self.digits.add(re.sub(r"\D", "", m.text) if m.kind == "number" and m.text[:1].isdigit()
                                else str(m.value))

    def add_value(self, value: Any, region: str) -> None:
        if isinstance(value, bool) or value is None:
            return
        if isinstance(value, (int, float, Decimal)):
            self.numbers.add(Decimal(str(value)))
            self.digits.add(str(value))
        elif isinstance(value, datetime):
            self.add_date(value.year, value.month, value.day)
            self.times.add((value.hour, value.minute))
        elif isinstance(value, date):
            self.add_date(value.year, value.month, value.day)
        elif isinstance(value, str):
            self.add_text(value, region)
        elif isinstance(value, dict):
            for item in value.values():
                self.add_value(item, region)
        elif isinstance(value, (list, tuple, set)):
            self.numbers.add(Decimal(len(value)))  # "you have 2 open orders"
            for item in value:
                self.add_value(item, region)

    def grounds(self, m: _Mention) -> bool:
        if m.kind == "date":
            d: DateMention = m.value
            return any(
                (month, day) == (d.month, d.day) and (d.year is None or year in (None, d.year))
                and (d.weekday is None or year is None or date(year, month, day).weekday() == d.weekday)
                for year, month, day in self.dates)
        if m.kind == "time":
            return bool(m.value & self.times)
        if m.kind == "identifier":
            return m.value in self.identifiers or m.value in self.digits
        if m.kind == "digits":
            return m.value in self.digits or (len(m.value) >= 7 and any(k.endswith(m.value) for k in self.digits))
        return m.value in self.numbers or (m.kind == "number" and re.sub(r"\D", "", m.text) in self.digits)


def find_ungrounded(reply: str, tool_results: Any = (), caller_words: str | list[str] = "",
                    region: str = "US") -> list[Ungrounded]:
    """The numbers, dates, times, amounts and identifiers in ``reply`` found in neither ``tool_results`` (the
    turn's tool result dicts/lists, or their JSON values) nor ``caller_words`` (what the caller said)."""
    facts = _Facts()
    facts.add_value(tool_results, region)
    for text in [caller_words] if isinstance(caller_words, str) else caller_words:
        facts.add_text(text, region)
    return [Ungrounded(m.kind, m.text, m.start, m.end)
            for m in extract(reply, region, spelled_minimum=10) if not facts.grounds(m)]
