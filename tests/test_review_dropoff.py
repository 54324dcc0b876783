"""The drop-off view and the period comparison on stores whose right answers are known: where callers who left
unhelped were (menu node from the prompts they heard, the last step, the intent), and this period against the one
before it; then both on the dashboard page."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from starlette.testclient import TestClient

from review_support import SUPERVISOR, add_users, review_config
from voicebot.config import Config
from voicebot.review.app import create_app
from voicebot.review.dropoff import NO_REPLY, compute_dropoff
from voicebot.review.kpis import compare, compute_dashboard, previous_period
from voicebot.store import CallStore, Turn, TurnTimings

UTC = ZoneInfo("UTC")
MENU = Config().dialog.menu  # the shipped menu: main, orders, repairs, sales
NOT_HEARD = Config().dialog.prompts.not_heard
DAY = datetime(2026, 3, 10, tzinfo=timezone.utc)


class TickingClock:
    """Each reading is 10 ms later: rows are recorded in the order they are written, as in a live call."""

    def __init__(self, start: datetime):
        self.value = start

    def __call__(self) -> datetime:
        self.value += timedelta(milliseconds=10)
        return self.value


class Calls:
    def __init__(self, store: CallStore, clock: TickingClock):
        self.store, self.clock, self.t = store, clock, 0.0

    def start(self, call_id: str, when: datetime, test: bool = False) -> None:
        self.clock.value, self.t = when, 0.0
        self.store.start_call("+15550102030", call_id=call_id, test=test)

    def say(self, call_id: str, role: str, text: str, **kw) -> None:
        self.t += 3
        self.store.add_turn(call_id, Turn(role, text, self.t, self.t + 2, TurnTimings(), **kw))

    def event(self, call_id: str, kind: str, data: dict) -> None:
        self.t += 1
        self.store.add_event(call_id, kind, data, at=self.t)

    def end(self, call_id: str, outcome: str, reason: str = "caller hung up") -> None:
        self.store.finish_call(call_id, outcome, reason)


GREETING = "Thanks for calling Acme. " + MENU.nodes["main"].prompt


@pytest.fixture
def known(tmp_path):
    clock = TickingClock(DAY)
    store = CallStore(tmp_path / "calls.db", tmp_path / "recordings", now=clock)
    c = Calls(store, clock)
    at = lambda h: DAY + timedelta(hours=h)  # noqa: E731
    # 1. chose orders, then silence: left at "orders" with no input
    c.start("silent-orders", at(9))
    c.say("silent-orders", "bot", GREETING)
    c.say("silent-orders", "caller", "orders")
    c.say("silent-orders", "bot", MENU.nodes["orders"].prompt)
    c.event("silent-orders", "no_input", {})
    c.end("silent-orders", "abandoned")
    # 2. asked at main, the intent was recognised, hung up before the reply
    c.start("gone-at-main", at(10))
    c.say("gone-at-main", "bot", GREETING)
    c.say("gone-at-main", "caller", "where is my parcel")
    c.event("gone-at-main", "intent", {"intent": "order_status", "score": 0.81})
    c.end("gone-at-main", "abandoned")
    # 3. repairs, a question the knowledge base could not answer, then the bot said so; the caller left
    c.start("no-answer", at(11))
    c.say("no-answer", "bot", GREETING)
    c.say("no-answer", "caller", "repairs")
    c.say("no-answer", "bot", MENU.nodes["repairs"].prompt)
    c.say("no-answer", "caller", "do you fix washing machines")
    c.event("no-answer", "knowledge", {"answer": "none", "entry_ids": [], "score": 0.2,
                                       "question": "do you fix washing machines"})
    c.end("no-answer", "abandoned")
    # 4. not understood twice at main
    c.start("reprompted", at(12))
    c.say("reprompted", "bot", GREETING)
    c.say("reprompted", "caller", "blah")
    c.say("reprompted", "bot", MENU.nodes["main"].reprompt)
    c.end("reprompted", "abandoned")
    # 5. resolved: an order lookup answered (not a drop-off)
    c.start("helped", at(13))
    c.say("helped", "bot", GREETING)
    c.say("helped", "caller", "where is order 10452")
    c.say("helped", "bot", "Order 10452 has shipped.")
    c.event("helped", "tool_call", {"tool": "get_order", "args": {"number": "10452"},
                                    "result": {"ok": True, "result": {"status": "shipped"}}})
    c.end("helped", "resolved")
    # 6. a test call that left unhelped: only with tests included
    c.start("test-gone", at(14), test=True)
    c.say("test-gone", "bot", GREETING)
    c.end("test-gone", "abandoned")
    # 7. the previous period (3 days before): one abandoned call, one resolved
    c.start("old-gone", at(-60))
    c.say("old-gone", "bot", GREETING)
    c.end("old-gone", "abandoned")
    c.start("old-helped", at(-59))
    c.say("old-helped", "bot", GREETING)
    c.say("old-helped", "caller", "where is order 10452")
    c.say("old-helped", "bot", "Order 10452 has shipped.")
    c.event("old-helped", "tool_call", {"tool": "get_order", "args": {"number": "10452"},
                                        "result": {"ok": True, "result": {"status": "shipped"}}})
    c.end("old-helped", "resolved")
    yield store
    store.close()


def test_drop_off_by_node_step_and_intent(known):
    day = DAY.date()
    drop = compute_dropoff(known, day, day, UTC, menu=MENU, not_heard=NOT_HEARD)
    assert drop.abandoned == 4
    assert {b.key: b.value for b in drop.by_node} == {"orders": 1, "main": 2, "repairs": 1}
    assert {b.key: b.value for b in drop.by_step} == {
        "no input after a prompt": 1, NO_REPLY: 1, "knowledge: no answer": 1, "reprompted after a no-match": 1}
    assert {b.key: b.value for b in drop.by_intent} == {"order_status": 1, "unknown": 3}
    assert sorted(drop.examples["main"]) == ["gone-at-main", "reprompted"]
    with_tests = compute_dropoff(known, day, day, UTC, menu=MENU, not_heard=NOT_HEARD, tests=True)
    assert with_tests.abandoned == 5 and {b.key: b.value for b in with_tests.by_step}["heard a menu prompt"] == 1


def test_without_a_menu_every_drop_off_is_counted_at_no_menu(known):
    drop = compute_dropoff(known, DAY.date(), DAY.date(), UTC)
    assert [(b.key, b.value) for b in drop.by_node] == [("(no menu)", 4)]


def test_this_period_against_the_one_before(known):
    day = DAY.date()
    first, last = day - timedelta(days=2), day
    assert previous_period(first, last) == (day - timedelta(days=5), day - timedelta(days=3))
    now = compute_dashboard(known, first, last, UTC)
    before = compute_dashboard(known, *previous_period(first, last), UTC)
    changes = {c.name: c for c in compare(now, before)}
    assert (changes["Calls"].now, changes["Calls"].before) == (5, 2)
    assert (changes["Abandoned unresolved"].now, changes["Abandoned unresolved"].before) == (4, 1)
    assert changes["Abandoned unresolved"].verdict == "worse" and changes["Calls"].verdict == "better"
    assert changes["Containment"].now == pytest.approx(1 / 5) and changes["Containment"].before == 0.5
    assert changes["Containment"].delta == pytest.approx(-0.3) and changes["Containment"].verdict == "worse"
    assert (changes["Transfers"].now, changes["Transfers"].verdict) == (0, "same")
    assert changes["QA score"].delta is None and changes["QA score"].verdict == "same"  # no analysis stored
    assert all(c.definition for c in changes.values())


def test_the_dashboard_shows_the_comparison_and_the_drop_off(tmp_path):
    config = review_config(tmp_path)
    clock = TickingClock(datetime.now(timezone.utc) - timedelta(hours=2))
    store = CallStore(config.path(config.store.database), config.path(config.store.recordings_dir), now=clock)
    c = Calls(store, clock)
    c.start("left", clock.value)
    c.say("left", "bot", GREETING)
    c.say("left", "caller", "sales")
    c.say("left", "bot", MENU.nodes["sales"].prompt)
    c.end("left", "abandoned")
    store.close()
    add_users(config)
    with TestClient(create_app(config, redact_logs=False), follow_redirects=False) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        client.post("/login", data={"csrf_token": token, "username": SUPERVISOR[0], "password": SUPERVISOR[1]})
        html = client.get("/dashboard?days=7").text
    assert "This period vs the previous 7 days" in html
    row = re.search(r'<tr data-measure="Abandoned unresolved">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r'<td class="num">(\d+)</td>', row) == ["1", "0"] and "+1" in row and "worse" in row
    assert "Where callers left unhelped" in html and "1 abandoned unresolved call " in html
    assert ">sales</text>" in html and "heard a menu prompt" in html


def test_a_change_too_small_to_show_is_not_coloured():
    from voicebot.review.kpis import Change

    assert Change("First response", 0.52, 0.50, "seconds", "down", "d").verdict == "same"  # shown as +0.0 s
    assert Change("First response", 0.70, 0.50, "seconds", "down", "d").verdict == "worse"
    assert Change("Containment", 0.6704, 0.6702, "share", "up", "d").verdict == "same"
    assert Change("Containment", 0.70, 0.60, "share", "up", "d").verdict == "better"
    assert Change("QA score", None, 4.0, "score", "up", "d").verdict == "same"
