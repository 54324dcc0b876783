"""Outcomes from evidence, KPIs and QA on seeded call stores where the right answers are known (issue 17).

Every call here is written into a real CallStore the way the session writes it (turns, typed events, the end),
then decided by ``voicebot.outcomes`` and counted by the dashboard's ``compute_dashboard``.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from fakes import ScriptedChat
from voicebot.events import (CallbackCreated, Escalated, GuardFired, KnowledgeAnswered, ToolCallMade, TransferEnded,
                             TransferStarted, TranscriptRejected, BargedIn, EventKind)
from voicebot.outcomes import DEFINITIONS, decide, from_ops, from_store
from voicebot.review.analysis import analyze_call
from voicebot.review.demo import write_demo_call
from voicebot.review.kpis import compute_dashboard
from voicebot.review.qa import RUBRIC, foreign_facts, record_text
from voicebot.review.queries import ListFilter, list_calls
from voicebot.review.scenarios import SCENARIOS
from voicebot.store import CallStore, Outcome, Turn, TurnTimings
from voicebot.store_journal import event_op, finish_op, start_op, turn_op

UTC = ZoneInfo("UTC")
DAY = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
GREETING = "Hello, you are speaking with the automated assistant of Northwind Supplies. How can I help?"
ORDER_OK = {"ok": True, "result": {"number": "10452", "status": "shipped", "carrier": "UPS", "eta": "2026-03-05"}}


class Clock:
    """The store's wall clock: each write a millisecond later, as in a live call."""

    def __init__(self):
        self.value = DAY

    def __call__(self):
        self.value += timedelta(milliseconds=1)
        return self.value


def bot(text, at, *, answer_to=None):
    timings = TurnTimings(answer_to, answer_to + 0.5, answer_to + 0.6, answer_to + 0.7, at) if answer_to else TurnTimings()
    return Turn("bot", text, at, at + 2, timings)


def caller(text, at):
    return Turn("caller", text, at - 2, at, TurnTimings(end_of_speech=at))


# each call: a list of Turn or (event, at); the outcome the store had at the end; the right answer
CALLS = {
    "unhelped": ([bot(GREETING, 0.5), caller("Where is my order?", 5), bot("Sorry, I cannot see that.", 6, answer_to=5)],
                 Outcome.RESOLVED, Outcome.ABANDONED),  # stored "resolved" by the old rule; no evidence
    "greeting only": ([bot(GREETING, 0.5)], Outcome.ABANDONED, Outcome.ABANDONED),
    "order answered": ([bot(GREETING, 0.5), caller("Where is my order 10452?", 5),
                        (ToolCallMade("order_status", {"number": "10452"}, ORDER_OK, 0.1), 5.6),
                        bot("Order 10452 has shipped with UPS and arrives on March 5.", 6.5, answer_to=5),
                        caller("Great, thank you so much. Bye.", 10)], Outcome.RESOLVED, Outcome.RESOLVED),
    "knowledge answer": ([bot(GREETING, 0.5), caller("What are your opening hours on Saturday?", 5),
                          (KnowledgeAnswered("hours", ("hours",), 0.9, "opening hours saturday"), 5.5),
                          bot("On Saturday we are open from nine to one.", 6, answer_to=5),
                          caller("Thanks.", 9)], Outcome.RESOLVED, Outcome.RESOLVED),
    "knowledge none": ([bot(GREETING, 0.5), caller("Do you ship to Mars?", 5),
                        (KnowledgeAnswered("none", (), 0.1, "ship to mars"), 5.5),
                        bot("I'm sorry, I don't know that.", 6, answer_to=5)], Outcome.RESOLVED, Outcome.ABANDONED),
    "read-back declined": ([bot(GREETING, 0.5), caller("Please have someone call me back tomorrow.", 5),
                            bot("I'll ask a colleague to call you back tomorrow morning. Shall I go ahead?", 6,
                                answer_to=5),
                            caller("No.", 11), bot("All right, I won't.", 12, answer_to=11)],
                           Outcome.RESOLVED, Outcome.ABANDONED),
    "read-back confirmed": ([bot(GREETING, 0.5), caller("Please have someone call me back tomorrow.", 5),
                             bot("I'll ask a colleague to call you back tomorrow morning. Shall I go ahead?", 6,
                                 answer_to=5),
                             caller("Yes please.", 11),
                             (ToolCallMade("request_callback", {"reason": "call me back"}, {"ok": True, "result": {"id": 7}}),
                              11.5),
                             bot("Done: a colleague will call you tomorrow morning.", 12, answer_to=11)],
                            Outcome.RESOLVED, Outcome.RESOLVED),
    "asked again": ([bot(GREETING, 0.5), caller("Where is my order 10452?", 5),
                     (ToolCallMade("order_status", {"number": "10452"}, ORDER_OK, 0.1), 5.6),
                     bot("Order 10452 has shipped.", 6.5, answer_to=5),
                     caller("But when exactly will it arrive at my door?", 12),
                     bot("I'm sorry, could you say that again?", 13, answer_to=12)],
                    Outcome.RESOLVED, Outcome.ABANDONED),
    "booking declined": ([bot(GREETING, 0.5), caller("I need a repair visit for my printer.", 5),
                          (ToolCallMade("list_free_slots", {"service": "repair"},
                                        {"ok": True, "result": [{"starts_at": "2026-03-03T10:00"}]}), 5.6),
                          bot("I have Tuesday at ten. Does that suit you?", 6.5, answer_to=5),
                          caller("Tuesday at ten.", 10),
                          bot("That's a repair visit on Tuesday at ten. Shall I book it?", 11, answer_to=10),
                          caller("No.", 15), bot("All right, I won't book it.", 16, answer_to=15)],
                         Outcome.RESOLVED, Outcome.ABANDONED),  # the read-back declined: nothing was booked
    "tool failed": ([bot(GREETING, 0.5), caller("Where is my order 99?", 5),
                     (ToolCallMade("order_status", {"number": "99"}, {"ok": False, "error": "not_found"}), 5.6),
                     bot("I can't find that order.", 6.5, answer_to=5)], Outcome.RESOLVED, Outcome.ABANDONED),
    "escalated after an answer": ([bot(GREETING, 0.5), caller("Where is my order 10452?", 5),
                                   (ToolCallMade("order_status", {"number": "10452"}, ORDER_OK), 5.6),
                                   bot("Order 10452 has shipped.", 6.5, answer_to=5), caller("Operator.", 10),
                                   (Escalated("operator_request", "operator"), 10.2),
                                   (TransferStarted("operator_request", None, "sip:op@x"), 10.3),
                                   (TransferEnded(True, 200, "OK", "blind"), 14.0)],
                                  Outcome.TRANSFERRED, Outcome.TRANSFERRED),
    "transfer failed": ([bot(GREETING, 0.5), caller("Operator.", 4), (Escalated("operator_request"), 4.2),
                         (TransferStarted("operator_request", None, "sip:op@x"), 4.3),
                         (TransferEnded(False, 486, "Busy Here", "blind"), 9.0), (CallbackCreated(3), 9.1)],
                        Outcome.TRANSFER_FAILED, Outcome.TRANSFER_FAILED),
}


def write(store: CallStore, name: str, started: datetime, *, test: bool = False) -> str:
    steps, stored, _ = CALLS[name]
    call_id = store.start_call("+15550102030", call_id=name.replace(" ", "-") + ("-test" if test else ""),
                               when=started, test=test)
    for step in steps:
        if isinstance(step, Turn):
            store.add_turn(call_id, step)
        else:
            store.add_event(call_id, step[0], at=step[1])
    store.finish_call(call_id, stored, "caller hung up", when=started + timedelta(seconds=60))
    return call_id


@pytest.fixture
def seeded(tmp_path):
    with CallStore(tmp_path / "calls.db", tmp_path / "recordings", now=Clock()) as store:
        ids = {name: write(store, name, DAY + timedelta(minutes=i)) for i, name in enumerate(CALLS)}
        ids["interrupted"] = store.start_call("+15550109999", call_id="interrupted", when=DAY + timedelta(hours=1))
        store.add_turn("interrupted", bot(GREETING, 0.5))
        store.mark_interrupted()
        ids["test"] = write(store, "order answered", DAY + timedelta(hours=2), test=True)
        yield store, ids


def test_each_seeded_call_gets_its_known_outcome(seeded):
    store, ids = seeded
    steps = from_store(store, list(ids.values()))
    for name, (_, stored, right) in CALLS.items():
        decision = decide(steps[ids[name]], stored)
        assert decision.outcome == right, (name, decision)
    assert decide(steps["interrupted"], Outcome.INTERRUPTED).outcome == Outcome.INTERRUPTED
    assert decide(steps[ids["read-back declined"]]).reason == "no evidence the caller's goal was met"
    assert decide(steps[ids["knowledge answer"]]).reason == "knowledge answer (hours)"
    assert decide(steps[ids["read-back confirmed"]]).reason == "confirmed request_callback"
    assert "asked again" in decide(steps[ids["asked again"]]).reason
    assert decide(steps[ids["booking declined"]]).reason == ("after answered list_free_slots: the caller asked again "
                                                             "or for more, and it was not met")


def test_the_dashboard_counts_by_evidence_and_leaves_test_calls_out(seeded):
    store, _ = seeded
    d = compute_dashboard(store, date(2026, 3, 2), date(2026, 3, 2), UTC)
    counts = {b.key: b.value for b in d.outcomes}
    # resolved: order answered, knowledge answer, read-back confirmed; the old rule counted eight
    assert counts == {"resolved": 3, "abandoned": 7, "transferred": 1, "transfer_failed": 1, "interrupted": 1}
    assert (d.calls, d.ended, d.resolved, d.transferred) == (13, 13, 3, 2)
    assert d.containment == pytest.approx(3 / 13)
    assert {b.label for b in d.outcomes} >= {"abandoned unresolved", "transfer failed"}
    with_tests = compute_dashboard(store, date(2026, 3, 2), date(2026, 3, 2), UTC, tests=True)
    assert (with_tests.calls, with_tests.resolved) == (14, 4)
    assert set(DEFINITIONS) == {"resolved", "abandoned unresolved", "transferred", "transfer failed", "interrupted"}


def test_test_calls_are_hidden_in_the_call_list_unless_asked_for(seeded):
    store, ids = seeded

    def listed(**params):
        filters, problems = ListFilter.parse(params)
        assert problems == []
        return {r.call.id for r in list_calls(store, filters, UTC, 50, role="admin").rows}

    assert ids["test"] not in listed() and len(listed()) == 13
    assert listed(tests="only") == {ids["test"]}
    assert len(listed(tests="include")) == 14
    assert store.get_call(ids["test"]).test is True and store.get_call(ids["unhelped"]).test is False
    assert ListFilter.parse({"tests": "all"})[1] == ["tests: 'all' is not one of include, only"]


def test_the_session_and_the_store_decide_alike(tmp_path):
    """The session decides from its queued ops (``CallRecords.log``); the review app from the rows they become."""
    with CallStore(tmp_path / "calls.db", tmp_path / "recordings") as store:
        for name, (steps, _, right) in CALLS.items():
            call_id = name.replace(" ", "-")
            ops = [start_op(call_id, "+15550102030", "main", test=True)]
            for step in steps:
                ops.append(turn_op(call_id, step) if isinstance(step, Turn) else event_op(call_id, step[0], step[1]))
            session_decision = decide(from_ops(ops))
            ops.append(finish_op(call_id, session_decision.outcome, session_decision.reason))
            for op in ops:
                store.apply(op)
            assert session_decision.outcome == right, name
            assert decide(from_store(store, [call_id])[call_id], store.get_call(call_id).outcome) == session_decision
            assert store.get_call(call_id).test is True


# -- QA and summaries ---------------------------------------------------------------------------------------------

def _bad_call(store: CallStore) -> str:
    """Two questions unanswered, a rejected transcript, a repeat, two guard firings, slow replies, barge-ins, and
    the caller hangs up unhelped."""
    call_id = store.start_call("+15550102030", call_id="bad")
    store.add_turn(call_id, bot(GREETING, 0.5))
    store.add_turn(call_id, caller("Do you repair office chairs at home?", 6))
    store.add_event(call_id, KnowledgeAnswered("none", (), 0.1, "repair chairs at home"), at=6.5)
    store.add_event(call_id, GuardFired(EventKind.GUARD_UNGROUNDED, "We repair on 14 June for $80.", ("14 June",)),
                    at=9.0)
    store.add_turn(call_id, bot("I'm not sure about that.", 12.5, answer_to=6))
    store.add_event(call_id, BargedIn("wait", 0.8), at=13.0)
    store.add_turn(call_id, caller("Do you repair office chairs at home?", 16))
    store.add_event(call_id, KnowledgeAnswered("weak", ("repairs",), 0.4, "repair chairs at home"), at=16.5)
    store.add_event(call_id, GuardFired(EventKind.GUARD_UNGROUNDED, "A technician comes on Monday.", ("Monday",)),
                    at=19.0)
    store.add_turn(call_id, bot("Do you mean a repair visit?", 23, answer_to=16))
    store.add_event(call_id, BargedIn("no", 0.5), at=23.5)
    store.add_event(call_id, TranscriptRejected("subtitle", "Thanks for watching"), at=27.0)
    store.finish_call(call_id, Outcome.RESOLVED, "caller hung up")  # what the old rule stored
    return call_id


def test_a_bad_call_scores_low_from_its_signals(tmp_path):
    with CallStore(tmp_path / "calls.db", tmp_path / "recordings") as store:
        call_id = _bad_call(store)
        result = analyze_call(store, call_id)  # no model: the scores never needed one
    scores = {k: v.score for k, v in result.qa.items()}
    assert set(scores) == set(RUBRIC) and result.model is None
    assert scores == {"understanding": 1, "resolution": 1, "grounding": 1, "responsiveness": 1, "handoff": 1}
    assert result.qa_score == 1.0
    assert result.qa["understanding"].reason == ("one question left unanswered; one question only asked back; "
                                                 "one transcript rejected as not speech; "
                                                 "the caller repeated themselves one time")
    assert result.qa["grounding"].reason == "two replies held back by a guard"
    assert result.qa["responsiveness"].reason == ("median reply after 6.8 s (slowest 7.0 s); "
                                                  "the caller talked over the bot two times")
    assert result.qa["resolution"].reason.startswith("abandoned unresolved")


def test_a_good_call_scores_high(tmp_path):
    with CallStore(tmp_path / "calls.db", tmp_path / "recordings", now=Clock()) as store:
        call_id = write(store, "order answered", DAY)
        result = analyze_call(store, call_id)
    assert result.qa_score >= 4.6 and result.qa["resolution"].score == 5
    assert result.summary == ("CRM: order status (number 10452) succeeded. "
                              "Outcome: resolved (answered order_status).")


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+", text))


def test_a_summary_never_names_a_number_absent_from_the_record(tmp_path):
    with CallStore(tmp_path / "calls.db", tmp_path / "recordings", now=Clock()) as store:
        ids = [write(store, name, DAY + timedelta(minutes=i)) for i, name in enumerate(CALLS)]
        ids.append(_bad_call(store))
        ids += [write_demo_call(store, s, DAY + timedelta(hours=i + 1), call_id=f"demo-{i}", recording=False)
                for i, s in enumerate(SCENARIOS)]
        for call_id in ids:
            summary = analyze_call(store, call_id).summary
            call = store.get_call(call_id)
            record = record_text(call, store.turns(call_id), store.events(call_id))
            assert summary and foreign_facts(summary, record) == [], (call_id, summary)
            assert _numbers(summary) <= _numbers(record), (call_id, summary)
            assert "$80" not in summary and "June" not in summary  # a held-back sentence is no fact


def test_a_generated_summary_with_an_invented_number_is_not_kept(tmp_path):
    with CallStore(tmp_path / "calls.db", tmp_path / "recordings", now=Clock()) as store:
        call_id = write(store, "order answered", DAY)
        invented = {"summary": "Order 10452 arrives on 12 June; the caller was refunded $45.", "topic": "order_status"}
        result = analyze_call(store, call_id, ScriptedChat([invented], repeat=True))
        assert result.generated_summary is None and result.topic == "order_status"
        assert result.error == ("generated summary not kept: it names 12, 45, june, which the record does not hold")
        grounded = {"summary": "The caller asked about order 10452; it shipped with UPS and arrives March 5.",
                    "topic": "order_status"}
        result = analyze_call(store, call_id, ScriptedChat([grounded], repeat=True))
        assert result.generated_summary == grounded["summary"] and result.error is None


def test_the_call_page_shows_the_outcome_by_evidence_for_an_old_call(tmp_path):
    """A call stored "resolved" by the old rule: its page says what the evidence shows (and the dashboard counts)."""
    from starlette.testclient import TestClient

    from review_support import SUPERVISOR, add_users, review_config
    from review_support import open_store as open_review_store
    from voicebot.review.app import create_app

    config = review_config(tmp_path)
    with open_review_store(config) as store:
        write(store, "unhelped", DAY)
        write(store, "order answered", DAY + timedelta(minutes=5), test=True)
    add_users(config)
    with TestClient(create_app(config, redact_logs=False)) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        client.post("/login", data={"csrf_token": token, "username": SUPERVISOR[0], "password": SUPERVISOR[1],
                                    "next": "/calls"})
        text = client.get("/calls/unhelped").text
        assert "by the recorded evidence: abandoned unresolved (no evidence the caller&#39;s goal was met)" in text
        assert "by the recorded evidence" not in client.get("/calls/order-answered-test").text
        assert "test call" in client.get("/calls/order-answered-test").text


def test_evidence_recorded_just_after_the_bot_turn_that_spoke_it_counts():
    """The session stores a reply's tool calls once the reply has played: the order status answered, then the
    caller hung up, is resolved."""
    from voicebot.events import ToolCallMade
    from voicebot.outcomes import Step, decide

    steps = [Step("caller", "where is my order?", ()), Step("bot", "For your security, your PIN?", ()),
             Step("caller", "1 2 3 4", ()), Step("bot", "Order 10452 has shipped with UPS.", ()),
             Step(None, "", (), ToolCallMade("list_open_orders", {}, {"ok": True, "result": []}, 0.01))]
    assert decide(steps).outcome.value == "resolved"
    asked_again = [*steps, Step("caller", "and my other parcel?", ())]
    assert decide(asked_again).outcome.value == "abandoned"
