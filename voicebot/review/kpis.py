"""The dashboard's numbers over a period, computed from the call store.

Definitions (shown on the dashboard too):

- **outcome**: decided from each call's turns and events by ``voicebot.outcomes.decide`` (its docstring and
  ``DEFINITIONS`` define resolved, abandoned unresolved, transferred, transfer failed, interrupted), recomputed
  here from the store, so calls stored before that rule count by the same evidence;
- **containment**: calls resolved by the bot alone / calls that ended (a transfer, even a failed one, an
  abandoned unresolved, interrupted or errored call is not contained);
- **test calls** (``voicebot chat``, ``simulate``, benchmarks; ``calls.test``) are left out unless asked for;
- **transfer rate**: transferred + transfer failed / calls that ended; reasons from ``outcome_reason``;
- **average handle time**: ``ended_at - started_at`` over calls that ended;
- **first response time**: seconds of call audio until the bot's first audio (the greeting): the first bot
  turn's ``timings.first_audio_out``, else its ``started_at``;
- **response latency**: ``timings.first_audio_out - timings.end_of_speech`` of every caller turn the bot
  answered (both seconds of call audio), as p50 and p95;
- **sentiment**: the mean VADER score of each call's caller turns, bucketed at ±0.05;
- **check-in rating**: the mean of the ratings (1-5) callees gave on the dialer's next-morning check-ins.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import fmean
from zoneinfo import ZoneInfo

from voicebot.outcomes import LABELS, decide_stored
from voicebot.review.analysis import FLAGS, TOPICS
from voicebot.review.queries import (NEUTRAL_BAND, REASON_LABELS, REASON_SQL, SENTIMENTS, TRANSFER_OUTCOMES,
                                    day_bounds, utc_iso)
from voicebot.store import CallStore, Outcome

_NOT_ENDED = (Outcome.IN_PROGRESS.value,)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) with linear interpolation between ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    value: float


@dataclass(frozen=True)
class DayCount:
    day: date
    resolved: int = 0
    transferred: int = 0
    other: int = 0

    @property
    def total(self) -> int:
        return self.resolved + self.transferred + self.other


@dataclass(frozen=True)
class Dashboard:
    first_day: date
    last_day: date
    calls: int
    ended: int
    resolved: int
    transferred: int
    containment: float | None  # 0..1
    transfer_rate: float | None
    avg_handle_s: float | None
    first_response_s: float | None
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_n: int
    qa_mean: float | None
    per_day: list[DayCount]
    outcomes: list[Bar]
    transfer_reasons: list[Bar]
    topics: list[Bar]
    sentiment: list[Bar]
    flags: list[Bar]
    checkins_rated: int = 0  # next-morning check-ins (voicebot.dialer.checkin) that got a rating, and its mean
    checkin_rating: float | None = None


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def compute_dashboard(store: CallStore, first_day: date, last_day: date, tz: ZoneInfo,
                      tests: bool = False) -> Dashboard:
    """Every number of the dashboard for the days ``first_day``..``last_day`` (inclusive) in ``tz``; test calls
    only with ``tests``."""
    start, end = day_bounds(first_day, last_day, tz)
    span = (utc_iso(start), utc_iso(end))
    in_span = "c.started_at >= ? AND c.started_at < ?" + ("" if tests else " AND c.test = 0")
    rows = store.select(f"SELECT c.id, c.started_at, c.ended_at, c.outcome, {REASON_SQL} AS reason, a.topic, "
                        f"a.sentiment_mean, a.qa_score, a.flags FROM calls c "
                        f"LEFT JOIN call_analysis a ON a.call_id = c.id WHERE {in_span}", span)
    decided = decide_stored(store, rows)
    calls = [{**dict(c), "outcome": decided[c["id"]].outcome.value} for c in rows]
    ended = [c for c in calls if c["outcome"] not in _NOT_ENDED]
    outcomes = Counter(c["outcome"] for c in calls)
    resolved = outcomes[Outcome.RESOLVED.value]
    transferred = sum(outcomes[o] for o in TRANSFER_OUTCOMES)
    handle = [(datetime.fromisoformat(c["ended_at"]) - datetime.fromisoformat(c["started_at"])).total_seconds()
              for c in ended if c["ended_at"]]
    latency = _latencies(store, in_span, span)
    first = _first_responses(store, in_span, span)
    qa = [c["qa_score"] for c in calls if c["qa_score"] is not None]
    return Dashboard(
        first_day, last_day, len(calls), len(ended), resolved, transferred,
        _share(resolved, len(ended)), _share(transferred, len(ended)),
        fmean(handle) if handle else None, fmean(first) if first else None,
        percentile(latency, 50), percentile(latency, 95), len(latency), fmean(qa) if qa else None,
        _per_day(calls, first_day, last_day, tz),
        [Bar(o, LABELS.get(o, o.replace("_", " ")), n) for o, n in outcomes.most_common()],
        _bars(Counter(c["reason"] or "unknown" for c in calls if c["outcome"] in TRANSFER_OUTCOMES), REASON_LABELS),
        _bars(Counter(c["topic"] for c in calls if c["topic"]), TOPICS, limit=8),
        _sentiment(calls),
        [Bar(k, FLAGS[k], n) for k, n in _flag_counts(calls).most_common()],
        *_checkins(store, in_span, span),
    )


def _checkins(store: CallStore, in_span: str, span: tuple[str, str]) -> tuple[int, float | None]:
    ratings = [r[0] for r in store.select(f"SELECT c.rating FROM calls c WHERE c.purpose = 'checkin' AND "
                                          f"c.rating IS NOT NULL AND {in_span}", span)]
    return len(ratings), fmean(ratings) if ratings else None


def _bars(counts: Counter, labels: dict[str, str] | None = None, limit: int | None = None) -> list[Bar]:
    return [Bar(k, (labels or {}).get(k, k.replace("_", " ")), n) for k, n in counts.most_common(limit)]


def _latencies(store: CallStore, in_span: str, span: tuple[str, str]) -> list[float]:
    """One value per answered caller turn: several turns may carry the same end of speech (the caller's
    turn and the bot's answer both record it), so rows are grouped by call and end of speech."""
    rows = store.select(
        "SELECT MIN(fao) - eos AS latency FROM (SELECT t.call_id, "
        "json_extract(t.timings, '$.end_of_speech') AS eos, json_extract(t.timings, '$.first_audio_out') AS fao "
        f"FROM turns t JOIN calls c ON c.id = t.call_id WHERE {in_span}) "
        "WHERE eos IS NOT NULL AND fao IS NOT NULL GROUP BY call_id, eos", span)
    return [r["latency"] for r in rows if r["latency"] is not None and r["latency"] >= 0]


def _first_responses(store: CallStore, in_span: str, span: tuple[str, str]) -> list[float]:
    rows = store.select(
        "SELECT COALESCE(json_extract(t.timings, '$.first_audio_out'), t.started_at) AS first FROM turns t "
        f"JOIN calls c ON c.id = t.call_id WHERE {in_span} AND t.role = 'bot' AND t.idx = "
        "(SELECT MIN(idx) FROM turns b WHERE b.call_id = t.call_id AND b.role = 'bot')", span)
    return [r["first"] for r in rows if r["first"] is not None]


def _per_day(calls: Sequence, first_day: date, last_day: date, tz: ZoneInfo) -> list[DayCount]:
    counts: dict[date, Counter] = {}
    for c in calls:
        day = datetime.fromisoformat(c["started_at"]).astimezone(tz).date()
        kind = ("resolved" if c["outcome"] == Outcome.RESOLVED.value
                else "transferred" if c["outcome"] in TRANSFER_OUTCOMES else "other")
        counts.setdefault(day, Counter())[kind] += 1
    days = []
    day = first_day
    while day <= last_day:
        n = counts.get(day, Counter())
        days.append(DayCount(day, n["resolved"], n["transferred"], n["other"]))
        day += timedelta(days=1)
    return days


def _sentiment(calls: Sequence) -> list[Bar]:
    buckets = Counter()
    for c in calls:
        score = c["sentiment_mean"]
        buckets["unknown" if score is None else "negative" if score <= -NEUTRAL_BAND
                else "positive" if score >= NEUTRAL_BAND else "neutral"] += 1
    labels = {**SENTIMENTS, "unknown": "No caller words"}
    return [Bar(k, labels[k], buckets[k]) for k in labels if buckets[k]]


def _flag_counts(calls: Sequence) -> Counter:
    counts: Counter = Counter()
    for c in calls:
        counts.update(k for k in json.loads(c["flags"] or "{}") if k in FLAGS)
    return counts


# -- period over period -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    """One dashboard number in this period and in the one before it (same length, just before)."""

    name: str
    now: float | None
    before: float | None
    unit: str  # "count", "share" (0..1), "seconds" or "score"
    better: str  # "up" or "down": which way is good, for the colour
    definition: str

    @property
    def delta(self) -> float | None:
        return None if self.now is None or self.before is None else self.now - self.before

    @property
    def verdict(self) -> str:
        """"better", "worse" or "same" (no change the dashboard can show at its precision, or a side without
        data): a first response 0.02 s slower reads "+0.0 s" and must not be coloured as worse."""
        if self.delta is None or abs(self.delta) < SHOWN_PRECISION[self.unit] / 2:
            return "same"
        return "better" if (self.delta > 0) == (self.better == "up") else "worse"


SHOWN_PRECISION = {"count": 1, "share": 0.001, "seconds": 0.1, "score": 0.01}  # as dashboard.html prints them


def previous_period(first_day: date, last_day: date) -> tuple[date, date]:
    """The period of the same number of days that ends the day before ``first_day``."""
    days = (last_day - first_day).days + 1
    return first_day - timedelta(days=days), first_day - timedelta(days=1)


def abandoned(d: Dashboard) -> int:
    return int(sum(b.value for b in d.outcomes if b.key == Outcome.ABANDONED.value))


def compare(now: Dashboard, before: Dashboard) -> list[Change]:
    """The compared numbers with their definitions (the dashboard shows both)."""
    return [
        Change("Calls", now.calls, before.calls, "count", "up", "calls started in the period (test calls left out "
               "unless included)"),
        Change("Containment", now.containment, before.containment, "share", "up",
               "resolved by the bot alone, of the calls that ended (outcomes decided from the recorded evidence)"),
        Change("Transfers", now.transferred, before.transferred, "count", "down",
               "transferred or transfer failed"),
        Change("Abandoned unresolved", abandoned(now), abandoned(before), "count", "down",
               "ended without the evidence of a met goal and without a transfer: the caller left unhelped"),
        Change("First response", now.first_response_s, before.first_response_s, "seconds", "down",
               "mean seconds of call audio until the bot's first audio"),
        Change("QA score", now.qa_mean, before.qa_mean, "score", "up",
               "mean of the rubric computed from each call's recorded signals (1-5)"),
    ]
