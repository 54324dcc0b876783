"""Dashboard KPIs and the call list's filters on stores with known contents."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from voicebot.review.demo import seed_calls
from voicebot.review.kpis import compute_dashboard, percentile
from voicebot.review.queries import ListFilter, list_calls, transfer_reasons
from voicebot.store import CallStore, Turn, TurnTimings

UTC = ZoneInfo("UTC")


class Clock:
    def __init__(self):
        self.value = datetime(2026, 3, 2, tzinfo=timezone.utc)

    def __call__(self):
        return self.value


def _call(store, clock, start, length_s, outcome, reason=None, *, caller="+15550102030", greeting_at=None,
          answers=(), text="", analysis=None, looked_up=False):
    """One call: a greeting at ``greeting_at``, then per (eos, first_audio) a caller turn and the bot's answer
    (``looked_up``: after an ok CRM lookup, the evidence that makes a call resolved)."""
    clock.value = start
    call_id = store.start_call(caller)
    if greeting_at is not None:
        store.add_turn(call_id, Turn("bot", "Hello, you are speaking with the automated assistant.", greeting_at,
                                     greeting_at + 3))
    for eos, audio in answers:
        store.add_turn(call_id, Turn("caller", text or "Where is my order?", eos - 2, eos, TurnTimings(eos, eos + 0.8)))
        if looked_up:
            store.add_event(call_id, "tool_call", {"tool": "order_status", "args": {"number": "10452"},
                                                   "result": {"ok": True, "result": {"status": "shipped"}}}, eos + 0.9)
        store.add_turn(call_id, Turn("bot", "It has shipped.", audio, audio + 2,
                                     TurnTimings(eos, eos + 0.8, eos + 0.9, eos + 1.0, audio)))
    if outcome != "in_progress":
        clock.value = start + timedelta(seconds=length_s)
        store.finish_call(call_id, outcome, reason)
    if analysis:
        store.save_analysis(call_id, **analysis)
    return call_id


@pytest.fixture
def known(tmp_path):
    """Five calls on 2–3 March 2026 (and one on 4 March, outside the period)."""
    clock = Clock()
    store = CallStore(":memory:", tmp_path / "recordings", now=clock)
    day2, day3 = datetime(2026, 3, 2, tzinfo=timezone.utc), datetime(2026, 3, 3, tzinfo=timezone.utc)
    ids = {
        "a": _call(store, clock, day2 + timedelta(hours=10), 60, "resolved", "caller hung up", greeting_at=0.5,
                   answers=[(5.0, 6.0), (10.0, 12.0)], text="Thanks, that is great news", looked_up=True,
                   analysis={"topic": "order_status", "sentiment_mean": 0.5, "qa_score": 4.5, "flags": {}}),
        "b": _call(store, clock, day2 + timedelta(hours=11), 120, "transferred", "operator_request",
                   caller="+12125550199", greeting_at=0.7, answers=[(4.0, 7.0)],
                   analysis={"topic": "order_status", "sentiment_mean": -0.3, "qa_score": 3.0,
                             "flags": {"long_silence": "3.0 s"}}),
        "c": _call(store, clock, day3 + timedelta(hours=9), 30, "transfer_failed", "frustration; callback 2",
                   greeting_at=0.6, answers=[(3.0, 7.0)], text="This is ridiculous, I want a refund",
                   analysis={"topic": "complaint", "sentiment_mean": -0.7, "qa_score": 2.0,
                             "flags": {"upset_caller": "-0.70", "transfer_failed": "486"}}),
        "d": _call(store, clock, day3 + timedelta(hours=10), 90, "abandoned", "caller hung up", greeting_at=0.8),
        "f": _call(store, clock, day3 + timedelta(hours=11), 0, "in_progress"),
        "e": _call(store, clock, datetime(2026, 3, 4, 9, tzinfo=timezone.utc), 45, "resolved", greeting_at=0.1),
    }
    yield store, ids
    store.close()


def test_percentile_interpolates_like_numpy():
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([4.0, 1.0, 3.0, 2.0], 95) == pytest.approx(3.85)
    assert percentile(list(range(101)), 95) == 95


def test_dashboard_numbers(known):
    store, _ = known
    d = compute_dashboard(store, date(2026, 3, 2), date(2026, 3, 3), UTC)
    assert (d.calls, d.ended, d.resolved, d.transferred) == (5, 4, 1, 2)
    assert d.containment == 0.25 and d.transfer_rate == 0.5
    assert d.avg_handle_s == pytest.approx(75.0)
    assert d.first_response_s == pytest.approx(0.65)
    assert (d.latency_p50_s, d.latency_n) == (pytest.approx(2.5), 4)  # caller and bot turns share an end of speech
    assert d.latency_p95_s == pytest.approx(3.85)
    assert d.qa_mean == pytest.approx(3.1666, abs=1e-3)
    assert [(b.key, b.value) for b in d.transfer_reasons] == [("operator_request", 1), ("frustration", 1)]
    assert [(b.key, b.label, b.value) for b in d.topics] == [("order_status", "Order status", 2),
                                                            ("complaint", "Complaint", 1)]
    assert {b.key: b.value for b in d.sentiment} == {"negative": 2, "positive": 1, "unknown": 2}
    assert {b.key: b.value for b in d.flags} == {"long_silence": 1, "upset_caller": 1, "transfer_failed": 1}
    assert [(x.day, x.resolved, x.transferred, x.other) for x in d.per_day] == [
        (date(2026, 3, 2), 1, 1, 0), (date(2026, 3, 3), 0, 1, 2)]


def test_days_follow_the_configured_time_zone(known):
    store, _ = known
    # UTC+14: 10:00 UTC on 2 March is already 00:00 on 3 March there, and 4 March 09:00 UTC is 23:00 on 4 March
    d = compute_dashboard(store, date(2026, 3, 2), date(2026, 3, 4), ZoneInfo("Pacific/Kiritimati"))
    assert [x.total for x in d.per_day] == [0, 3, 3]
    assert d.calls == 6


def test_an_empty_period_has_no_numbers(known):
    store, _ = known
    d = compute_dashboard(store, date(2025, 1, 1), date(2025, 1, 7), UTC)
    assert d.calls == 0 and d.containment is None and d.latency_p50_s is None and d.first_response_s is None
    assert len(d.per_day) == 7 and d.topics == []


def _ids(store, ids, role="admin", **params):
    filters, problems = ListFilter.parse({k: str(v) for k, v in params.items()})
    assert problems == []
    names = {v: k for k, v in ids.items()}
    return [names[r.call.id] for r in list_calls(store, filters, UTC, 50, role=role).rows]


def test_list_filters(known):
    store, ids = known
    assert _ids(store, ids) == ["e", "f", "d", "c", "b", "a"]  # newest first
    assert _ids(store, ids, outcome="transferred") == ["b"]
    assert _ids(store, ids, reason="frustration") == ["c"]  # "frustration; callback 2"
    assert _ids(store, ids, topic="order_status") == ["b", "a"]
    assert _ids(store, ids, sentiment="negative") == ["c", "b"]
    assert _ids(store, ids, sentiment="positive") == ["a"]
    assert _ids(store, ids, flag="upset_caller") == ["c"]
    assert _ids(store, ids, caller="212 555") == ["b"]
    assert _ids(store, ids, role="supervisor", caller="212 555") == []  # the 555 is masked for supervisors
    assert _ids(store, ids, qa_max=3) == ["c", "b"]
    assert _ids(store, ids, qa_min=3.5) == ["a"]
    assert _ids(store, ids, q="RIDICULOUS") == ["c"]
    assert _ids(store, ids, q="50%") == []  # LIKE wildcards are literal
    assert _ids(store, ids, since="2026-03-03", until="2026-03-03") == ["f", "d", "c"]
    assert _ids(store, ids, since="2026-03-03", outcome="abandoned") == ["d"]
    assert transfer_reasons(store) == ["frustration", "operator_request"]


def test_paging_and_bad_filter_values(known):
    store, _ = known
    filters, problems = ListFilter.parse({"page": "3", "qa_min": "9", "since": "March", "outcome": "odd",
                                          "caller": "alice", "flag": "x"})
    assert [p.split(":")[0] for p in problems] == ["since", "outcome", "flag", "caller", "qa_min"]
    page = list_calls(store, filters, UTC, page_size=4)
    assert (page.total, page.pages, page.page, page.first, page.last) == (6, 2, 2, 5, 6)  # clamped to the last page
    assert ListFilter(outcome="resolved", page=2).link(page=3) == "outcome=resolved&page=3"
    assert ListFilter(since=date(2026, 3, 2)).link() == "since=2026-03-02"


def test_seeded_store_is_consistent_and_repeatable(tmp_path):
    end = datetime(2026, 3, 14, 18, tzinfo=timezone.utc)
    with CallStore(tmp_path / "a.db", tmp_path / "rec") as a, CallStore(tmp_path / "b.db", tmp_path / "rec2") as b:
        seed_calls(a, 80, end=end, days=14, recordings=2)
        seed_calls(b, 80, end=end, days=14, recordings=0)
        da = compute_dashboard(a, date(2026, 3, 1), date(2026, 3, 14), UTC)
        db = compute_dashboard(b, date(2026, 3, 1), date(2026, 3, 14), UTC)
    assert da.calls == 80 == sum(x.total for x in da.per_day) == sum(bar.value for bar in da.outcomes)
    assert (da.containment, da.latency_p50_s, da.topics) == (db.containment, db.latency_p50_s, db.topics)
    assert 0.4 < da.containment < 0.9 and 0.05 < da.transfer_rate < 0.5
    assert 0.5 < da.latency_p50_s < 3 and da.latency_p95_s > da.latency_p50_s and da.latency_n > 80
    assert 0.2 < da.first_response_s < 1 and 15 < da.avg_handle_s < 90
    assert {b.key for b in da.flags} == {"upset_caller", "transfer_failed", "long_silence", "grounding_guard"}
    assert len([c for c in (tmp_path / "rec").iterdir()]) == 2  # recordings only for the latest calls
