"""Numbers and dates as a caller says them or a reply spells them: "one two three four", "double five",
"nineteen eighty-five", "Tuesday, March 3rd", "the third of March", "2026-03-03", "3/14/1985".

Shared by verification (what the caller said must match the record) and grounding (what the bot says must match
the tool results), so both read the same words the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

UNITS = {"zero": 0, "oh": 0, "nought": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
         "seven": 7, "eight": 8, "nine": 9}
TEENS = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
         "seventeen": 17, "eighteen": 18, "nineteen": 19}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
SCALES = {"thousand": 1000, "million": 1_000_000}
REPEATS = {"double": 2, "triple": 3}
NUMBER_WORDS = set(UNITS) | set(TEENS) | set(TENS) | set(SCALES) | set(REPEATS) | {"hundred", "and"}

_ORDINAL_UNITS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
                  "eighth": 8, "ninth": 9}
_ORDINAL_ONLY = {"tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14, "fifteenth": 15,
                 "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19, "twentieth": 20,
                 "thirtieth": 30}


def _ordinal_words() -> dict[str, int]:
    """Day ordinals 1..31 as words: "third", "twenty-third", "twenty third", "thirty first"."""
    out = dict(_ORDINAL_UNITS) | _ORDINAL_ONLY
    for tens_word, tens in (("twenty", 20), ("thirty", 30)):
        for unit_word, unit in _ORDINAL_UNITS.items():
            if tens + unit <= 31:
                out[f"{tens_word}-{unit_word}"] = out[f"{tens_word} {unit_word}"] = tens + unit
    return out


ORDINALS = _ordinal_words()
MONTHS = {name: index for index, names in enumerate(
    [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
     ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
     ("december", "dec")], start=1) for name in names}
WEEKDAYS = {name: index for index, names in enumerate(
    [("monday", "mon"), ("tuesday", "tue", "tues"), ("wednesday", "wed"), ("thursday", "thu", "thurs"),
     ("friday", "fri"), ("saturday", "sat"), ("sunday", "sun")]) for name in names}


def _alternation(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


@dataclass(frozen=True)
class SpokenNumber:
    """A run of number words in a text. ``digits`` is what a caller dictating digits meant ("one zero four five
    two" -> "10452", "twelve thirty four" -> "1234"); ``value`` is the cardinal ("ten thousand four hundred
    fifty-two" -> 10452), None when the words only make sense as dictated digits."""

    start: int
    end: int
    text: str
    digits: str
    value: int | None


class _Groups:
    """Compose number words into groups: a new group starts where English composition cannot continue."""

    def __init__(self) -> None:
        self.groups: list[int] = []
        self.total = 0
        self.current: int | None = None
        self.last = ""

    def flush(self) -> None:
        if self.current is not None or self.total:
            self.groups.append(self.total + (self.current or 0))
        self.total, self.current, self.last = 0, None, ""

    def add(self, word: str) -> None:
        cur, last = self.current, self.last
        if word == "hundred":
            if cur is not None and cur < 100 and last != "hundred":
                self.current, self.last = cur * 100, "hundred"
            else:
                self.flush()
            return
        if word in SCALES:
            if cur is not None or self.total:
                self.total += (cur if cur is not None else 1) * SCALES[word]
                self.current, self.last = None, "scale"
            return
        value = UNITS.get(word, TEENS.get(word, TENS.get(word, 0)))
        kind = "unit" if word in UNITS else "tens" if word in TENS else "teen"
        if last == "scale":
            joins = True  # "two thousand and three": the part below the thousand
        elif last == "hundred":
            joins = value != 0  # "one hundred five"
        else:
            joins = last == "tens" and kind == "unit" and value != 0  # "twenty five", but "twenty oh five"
        if joins:
            self.current = (cur or 0) + value
        else:
            if cur is not None:
                self.flush()
            self.current = value
        self.last = kind

    def result(self) -> tuple[str, int | None]:
        self.flush()
        digits = "".join(str(g) for g in self.groups)
        return digits, (self.groups[0] if len(self.groups) == 1 else None)


def spoken_numbers(text: str) -> list[SpokenNumber]:
    """Every run of number words in ``text`` (hyphens and "and" inside a run are allowed; digits are not)."""
    found: list[SpokenNumber] = []
    tokens = [(m.group(0).lower(), m.start(), m.end()) for m in re.finditer(r"[A-Za-z]+", text)]
    i = 0
    while i < len(tokens):
        word, start, _ = tokens[i]
        if word not in NUMBER_WORDS or word == "and":
            i += 1
            continue
        groups, j, end = _Groups(), i, tokens[i][2]
        while j < len(tokens) and tokens[j][0] in NUMBER_WORDS:
            between = text[end:tokens[j][1]] if j > i else ""
            if between.strip(" -,") or "," in between and tokens[j][0] in REPEATS:
                break
            word = tokens[j][0]
            if word in REPEATS and j + 1 < len(tokens) and tokens[j + 1][0] in UNITS:
                for _ in range(REPEATS[word]):
                    groups.flush()
                    groups.add(tokens[j + 1][0])
                groups.flush()
                j += 1
            elif word != "and":
                groups.add(word)
            end = tokens[j][2]
            j += 1
        while text[start:end].lower().endswith(" and"):
            end -= 4
        digits, value = groups.result()
        if digits:
            found.append(SpokenNumber(start, end, text[start:end], digits, value))
        i = j
    return found


def digits_in(text: str) -> str:
    """All digits a caller keyed or said, in order, ignoring other words: "my PIN is one two 3 4#" -> "1234"."""
    out, pos = [], 0
    for number in spoken_numbers(text) + [None]:
        stop = number.start if number else len(text)
        out.append(re.sub(r"\D", "", text[pos:stop]))
        if number:
            out.append(number.digits)
            pos = number.end
    return "".join(out)


def numbers_in(text: str) -> list[str]:
    """Each number in a text (said or written) as digits, in order: a run with spaces, commas or hyphens inside
    once whole and once per piece, for a lookup that tries each ("555-010-2030 or 10452" -> "5550102030", "555",
    "010", "2030", "10452")."""
    found: list[str] = []
    for run in re.findall(r"\d(?:[\d ,\-]*\d)?", words_to_digits(text)):
        for digits in (re.sub(r"\D", "", run), *re.findall(r"\d+", run)):
            if digits not in found:
                found.append(digits)
    return found


def words_to_digits(text: str) -> str:
    """Replace each run of number words by its digits: "March fourteenth nineteen eighty-five" -> "March
    fourteenth 1985" (ordinals stay words: the date patterns read them)."""
    pieces, pos = [], 0
    for number in spoken_numbers(text):
        pieces += [text[pos:number.start], number.digits]
        pos = number.end
    return "".join(pieces) + text[pos:]


# ----------------------------------------------------------------------------------------------------- dates

_DAY = rf"(?P<day>\d{{1,2}})(?:st|nd|rd|th)?|(?P<dayword>{_alternation(ORDINALS)})"
_DAY2 = _DAY.replace("?P<day>", "?P<day2>").replace("?P<dayword>", "?P<dayword2>")
_MONTH = rf"(?P<month>{_alternation(MONTHS)})\.?"
_WEEKDAY = rf"(?:(?P<weekday>{_alternation(WEEKDAYS)})\.?,?\s+(?:the\s+)?)?"
_YEAR = r"(?:,?\s+(?:of\s+)?(?P<year>\d{4}))?"
_DATE_RES = [
    re.compile(r"\b(?P<iso_year>\d{4})-(?P<iso_month>\d{2})-(?P<iso_day>\d{2})(?:[T ][\d:.]+)?\b"),
    re.compile(rf"\b{_WEEKDAY}{_MONTH}\s+(?:the\s+)?(?:{_DAY}){_YEAR}\b", re.IGNORECASE),
    re.compile(rf"\b{_WEEKDAY}(?:{_DAY2})\s+(?:of\s+)?{_MONTH}{_YEAR}\b", re.IGNORECASE),
    re.compile(r"\b(?P<a>\d{1,2})[/.](?P<b>\d{1,2})(?:[/.](?P<nyear>\d{4}))?\b"),
]
DAY_FIRST_REGIONS = {"US": False, "CA": False, "PH": False}  # everywhere else writes 14/03/1985


@dataclass(frozen=True)
class DateMention:
    """A date in a text; ``year`` and ``weekday`` (0 = Monday) are None where the text leaves them out."""

    start: int
    end: int
    text: str
    month: int
    day: int
    year: int | None = None
    weekday: int | None = None

    def matches(self, other: date) -> bool:
        """Same day and month (and year and weekday, where this mention names them)."""
        return ((self.month, self.day) == (other.month, other.day)
                and self.year in (None, other.year) and self.weekday in (None, other.weekday()))


def _mention(m: re.Match, region: str) -> DateMention | None:
    g = m.groupdict()
    if g.get("iso_year"):
        year, month, day = int(g["iso_year"]), int(g["iso_month"]), int(g["iso_day"])
    elif g.get("a"):
        a, b = int(g["a"]), int(g["b"])
        month, day = (b, a) if DAY_FIRST_REGIONS.get(region.upper(), True) else (a, b)
        year = int(g["nyear"]) if g.get("nyear") else None
    else:
        month = MONTHS[g["month"].lower()]
        word = g.get("dayword") or g.get("dayword2")
        day = ORDINALS[word.lower()] if word else int(g.get("day") or g.get("day2"))
        year = int(g["year"]) if g.get("year") else None
    try:
        date(year or 2000, month, day)  # 2000 is a leap year: February 29 without a year stays possible
    except ValueError:
        return None
    weekday = WEEKDAYS[g["weekday"].lower()] if g.get("weekday") else None
    return DateMention(m.start(), m.end(), m.group(0), month, day, year, weekday)


def find_dates(text: str, region: str = "US") -> list[DateMention]:
    """Dates in ``text``, earliest pattern first where two overlap (ISO beats "3/14")."""
    found: list[DateMention] = []
    for pattern in _DATE_RES:
        for m in pattern.finditer(text):
            if any(m.start() < d.end and d.start < m.end() for d in found):
                continue
            mention = _mention(m, region)
            if mention:
                found.append(mention)
    return sorted(found, key=lambda d: d.start)


def parse_date(text: str, region: str = "US") -> date | None:
    """The one full date (with a year) a caller said or keyed, e.g. a date of birth; None if unclear."""
    full = [d for d in find_dates(words_to_digits(text), region) if d.year is not None]
    if len(full) != 1:
        return None
    return date(full[0].year, full[0].month, full[0].day)
