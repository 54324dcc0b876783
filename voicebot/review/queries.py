"""The call list's filters and paging, as SQL over the call store (calls joined with their analysis).

Filters come from the query string; ``ListFilter.parse`` turns every bad value into a message for the page
instead of an error, so a hand-edited URL never breaks the list.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from voicebot.events import TransferReason
from voicebot.review.analysis import FLAGS, TOPICS
from voicebot.review.outbound import outbound_ids
from voicebot.review.redact import SUPERVISOR, can_see_raw, mask_phone, redact_text
from voicebot.store import Call, CallStore, Outcome

SENTIMENTS = {"negative": "Negative", "neutral": "Neutral", "positive": "Positive"}
# Transfer reasons as the session records them (voicebot.events.TransferReason); others show as their name.
REASON_LABELS = {TransferReason.OPERATOR_REQUEST: "Asked for a person", TransferReason.DTMF: "Pressed 0",
                 TransferReason.FRUSTRATION: "Caller frustrated", TransferReason.NO_MATCH: "Not understood",
                 TransferReason.NO_INPUT: "No answer", TransferReason.MODEL: "Assistant handed over",
                 TransferReason.ERROR: "Assistant error"}
NEUTRAL_BAND = 0.05  # VADER's usual band: compound within ±0.05 is neutral
_DIGITS = "REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(c.caller_id, '+', ''), ' ', ''), '-', ''), '(', ''), ')', ''), '.', '')"
# outcome_reason of a failed transfer reads "operator_request; callback 12": the reason is before the ";"
REASON_SQL = ("CASE WHEN instr(c.outcome_reason, ';') > 0 THEN trim(substr(c.outcome_reason, 1, "
              "instr(c.outcome_reason, ';') - 1)) ELSE c.outcome_reason END")
TRANSFER_OUTCOMES = (Outcome.TRANSFERRED.value, Outcome.TRANSFER_FAILED.value)
TEST_CHOICES = {"include": "Shown with the others", "only": "Only test calls"}  # default: hidden
REVIEWED_CHOICES = {"yes": "Reviewed", "no": "Not reviewed"}
DIRECTIONS = {"in": "Inbound", "out": "Outbound (dialer)"}


@dataclass(frozen=True)
class Marks:
    """Call ids from the review database for the tag and reviewed filters (see ``ListFilter.sql``)."""

    tagged: list[str] = field(default_factory=list)
    reviewed: list[str] = field(default_factory=list)
    outbound: list[str] = field(default_factory=list)  # calls the dialer placed (outbound.py)

    @classmethod
    def for_filter(cls, filters: ListFilter, notes: Any, crm_path: Path | None = None) -> Marks:
        """Only the lists the filter needs are read (``notes``: an ``annotations.Annotations`` or None)."""
        return cls(notes.ids_tagged(filters.tag) if filters.tag and notes else [],
                   notes.ids_reviewed() if filters.reviewed and notes else [],
                   outbound_ids(crm_path) if filters.direction and crm_path else [])


def utc_iso(moment: datetime) -> str:
    """The store's text form of a time (fixed-width UTC), so SQL string comparison compares times."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def day_bounds(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start of ``first``, start of the day after ``last``) in ``tz``, as UTC datetimes."""
    start = datetime.combine(first, time(0), tz).astimezone(timezone.utc)
    end = datetime.combine(last + timedelta(days=1), time(0), tz).astimezone(timezone.utc)
    return start, end


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass(frozen=True)
class ListFilter:
    """What the call list shows. Dates are days in the app's time zone, both ends included."""

    since: date | None = None
    until: date | None = None
    outcome: str | None = None
    reason: str | None = None
    topic: str | None = None
    sentiment: str | None = None
    flag: str | None = None
    caller: str | None = None
    qa_min: float | None = None
    qa_max: float | None = None
    q: str | None = None
    tests: str | None = None  # test calls (chat, simulate, bench): hidden (None), "include" or "only"
    tag: str | None = None  # a reviewer's tag (annotations.py)
    reviewed: str | None = None  # "yes" or "no": marked reviewed or not
    direction: str | None = None  # "in" or "out" (placed by the dialer)
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> tuple[ListFilter, list[str]]:
        """A filter from query parameters, and a message for each value that was ignored."""
        values: dict[str, Any] = {}
        problems: list[str] = []
        for f in fields(cls):
            raw = (params.get(f.name) or "").strip()
            if not raw:
                continue
            try:
                values[f.name] = _parse_field(f.name, raw)
            except ValueError as exc:
                problems.append(f"{f.name}: {exc}")
        return cls(**values), problems

    def link(self, **changes: Any) -> str:
        """The query string of this filter with ``changes`` (paging links, chart links)."""
        merged = replace(self, **changes)
        pairs = [(f.name, getattr(merged, f.name)) for f in fields(merged)]
        return urlencode([(k, v.isoformat() if isinstance(v, date) else v) for k, v in pairs
                          if v not in (None, "") and not (k == "page" and v == 1)])

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) not in (None, "") for f in fields(self) if f.name != "page")

    def sql(self, tz: ZoneInfo, raw: bool = False, marks: Marks | None = None) -> tuple[str, list[Any]]:
        """The WHERE clause. ``marks``: the call ids the tag and reviewed filters match (they live in the review
        database, not in the call store this SQL runs on); without them those filters match nothing. Unless ``raw`` (a role that sees clear text), the caller filter and the text search
        match what the reader is shown (``vb_seen_*``, see ``list_calls``), never the stored digits: a masked card
        number, PIN or phone number must not be recoverable digit by digit through the search box."""
        seen = (lambda expr: expr) if raw else (lambda expr: f"vb_seen_text({expr})")
        caller_digits = _DIGITS if raw else "vb_seen_digits(c.caller_id)"
        clauses: list[str] = []
        params: list[Any] = []
        if self.since or self.until:
            start, end = day_bounds(self.since or date(1970, 1, 1), self.until or date(9998, 12, 30), tz)
            clauses.append("c.started_at >= ? AND c.started_at < ?")
            params += [utc_iso(start), utc_iso(end)]
        if self.outcome:
            clauses.append("c.outcome = ?")
            params.append(self.outcome)
        if self.reason:
            clauses.append(f"c.outcome IN (?, ?) AND {REASON_SQL} = ?")
            params += [*TRANSFER_OUTCOMES, self.reason]
        if self.topic:
            clauses.append("a.topic = ?")
            params.append(self.topic)
        if self.sentiment == "negative":
            clauses.append("a.sentiment_mean <= ?")
            params.append(-NEUTRAL_BAND)
        elif self.sentiment == "positive":
            clauses.append("a.sentiment_mean >= ?")
            params.append(NEUTRAL_BAND)
        elif self.sentiment == "neutral":
            clauses.append("a.sentiment_mean > ? AND a.sentiment_mean < ?")
            params += [-NEUTRAL_BAND, NEUTRAL_BAND]
        if self.flag:
            clauses.append("json_extract(a.flags, ?) IS NOT NULL")
            params.append(f'$."{self.flag}"')
        if self.caller:
            clauses.append(f"{caller_digits} LIKE ? ESCAPE '\\'")
            params.append(_like(re.sub(r"\D", "", self.caller)))
        if self.qa_min is not None:
            clauses.append("a.qa_score >= ?")
            params.append(self.qa_min)
        if self.qa_max is not None:
            clauses.append("a.qa_score <= ?")
            params.append(self.qa_max)
        if self.q:
            clauses.append(f"(c.id = ? OR {seen('c.summary')} LIKE ? ESCAPE '\\' OR {seen('a.summary')} LIKE ? "
                           "ESCAPE '\\' OR EXISTS (SELECT 1 FROM turns t WHERE t.call_id = c.id AND "
                           f"{seen('t.text')} LIKE ? ESCAPE '\\'))")
            params += [self.q, *[_like(self.q)] * 3]
        marks = marks or Marks()
        if self.tag:
            clauses.append("c.id IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(marks.tagged))
        if self.reviewed:
            clauses.append(f"c.id {'' if self.reviewed == 'yes' else 'NOT '}IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(marks.reviewed))
        if self.direction:  # the store's direction (schema 4), or an attempt in the dialer's ledger (older rows)
            clauses.append(f"{'' if self.direction == 'out' else 'NOT '}(c.direction = 'outbound' OR "
                           "c.id IN (SELECT value FROM json_each(?)))")
            params.append(json.dumps(marks.outbound))
        if self.tests is None:
            clauses.append("c.test = 0")
        elif self.tests == "only":
            clauses.append("c.test = 1")
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _parse_field(name: str, raw: str) -> Any:
    if name in ("since", "until"):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"{raw!r} is not a date (YYYY-MM-DD)") from None
    if name in ("qa_min", "qa_max"):
        value = float(raw)  # ValueError names the text
        if not 1 <= value <= 5 or math.isnan(value):
            raise ValueError("QA scores are 1 to 5")
        return value
    if name == "page":
        page = int(raw)
        if page < 1:
            raise ValueError("pages start at 1")
        return page
    choices = {"outcome": [o.value for o in Outcome], "topic": list(TOPICS), "sentiment": list(SENTIMENTS),
               "flag": list(FLAGS), "tests": list(TEST_CHOICES),
               "reviewed": list(REVIEWED_CHOICES), "direction": list(DIRECTIONS)}.get(name)
    if choices is not None and raw not in choices:
        raise ValueError(f"{raw!r} is not one of {', '.join(choices)}")
    if name == "tag" and not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,29}", raw):
        raise ValueError(f"{raw[:40]!r} is not a tag")
    if name == "caller" and not re.search(r"\d", raw):
        raise ValueError("search callers by digits of their number")
    return raw[:200]


@dataclass(frozen=True)
class CallRow:
    """One line of the call list: the call and what the analysis says about it."""

    call: Call
    topic: str | None = None
    qa_score: float | None = None
    sentiment: float | None = None
    flags: Mapping[str, str] = field(default_factory=dict)
    summary: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.call.ended_at is None:
            return None
        return (self.call.ended_at - self.call.started_at).total_seconds()


@dataclass(frozen=True)
class Page:
    rows: list[CallRow]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))

    @property
    def first(self) -> int:
        return 0 if not self.total else (self.page - 1) * self.page_size + 1

    @property
    def last(self) -> int:
        return min(self.total, self.page * self.page_size)


_FROM = "FROM calls c LEFT JOIN call_analysis a ON a.call_id = c.id"


def list_calls(store: CallStore, filters: ListFilter, tz: ZoneInfo, page_size: int = 25,
               role: str | None = SUPERVISOR, notes: Any = None, crm_path: Path | None = None) -> Page:
    """One page of calls matching ``filters`` as ``role`` may search them, newest first (``notes``: the
    reviewers' ``Annotations``, for the tag and reviewed filters; ``crm_path``: for the direction filter)."""
    raw = can_see_raw(role)
    if not raw:
        store.add_function("vb_seen_text", lambda text: redact_text(text, role) if text else text)
        store.add_function("vb_seen_digits", lambda number: re.sub(r"\D", "", mask_phone(number, role))
                           if number else number)
    where, params = filters.sql(tz, raw=raw, marks=Marks.for_filter(filters, notes, crm_path))
    total = store.select(f"SELECT COUNT(*) {_FROM}{where}", params)[0][0]
    page = min(filters.page, max(1, math.ceil(total / page_size)))
    rows = store.select(f"{_SELECT} {_FROM}{where} ORDER BY c.started_at DESC, c.id LIMIT ? OFFSET ?",
                        (*params, page_size, (page - 1) * page_size))
    return Page([_row(store, r) for r in rows], total, page, page_size)


def call_row(store: CallStore, call_id: str) -> CallRow | None:
    """One call as the list shows it (the API's single call), or None."""
    rows = store.select(f"{_SELECT} {_FROM} WHERE c.id = ?", (call_id,))
    return _row(store, rows[0]) if rows else None


_SELECT = ("SELECT c.*, a.topic AS a_topic, a.qa_score AS a_qa, a.sentiment_mean AS a_sentiment, a.flags AS a_flags, "
           "a.summary AS a_summary")


def _row(store: CallStore, r: Any) -> CallRow:
    return CallRow(store.call_from_row(r), r["a_topic"], r["a_qa"], r["a_sentiment"],
                   json.loads(r["a_flags"]) if r["a_flags"] else {}, r["a_summary"] or r["summary"])


def transfer_reasons(store: CallStore) -> list[str]:
    """Every transfer reason in the store, for the filter's choices."""
    rows = store.select(f"SELECT DISTINCT {REASON_SQL} AS reason FROM calls c WHERE c.outcome IN (?, ?) "
                        "AND c.outcome_reason IS NOT NULL ORDER BY reason", TRANSFER_OUTCOMES)
    return [r["reason"] for r in rows if r["reason"]]
