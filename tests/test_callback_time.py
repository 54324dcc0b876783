"""A callback's time read against the opening hours: "call me back on Sunday" when the company is closed on
Sundays is read back as the next opening, and the dialer does not call before the time the caller asked for
(``dialog/callback_time.py``, ``crm`` migration m009, ``dialer/policy.py``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from conftest import morning_of
from fakes import ScriptedChat

from voicebot.config import DialerConfig
from voicebot.crm.repository import Repository
from voicebot.crm.seed import seed_demo
from voicebot.crm.verification import CallerContext
from voicebot.dialer.ledger import CallbackLedger
from voicebot.dialer.policy import DialPolicy
from voicebot.dialog.agent import DialogueAgent, Sentence
from voicebot.dialog.callback_time import callback_time
from voicebot.dialog.knowledge_step import KnowledgeStep
from voicebot.dialog.slots import parse_when
from voicebot.dialog.writes import grounded_args, readback
from voicebot.knowledge.files import HoursFile
from voicebot.knowledge.hours import OpeningHours

TODAY = date(2026, 12, 2)  # a Wednesday
LA = ZoneInfo("America/Los_Angeles")
HOURS = OpeningHours(HoursFile(timezone="America/Los_Angeles", weekly={
    "monday": "08:00-18:00", "tuesday": "08:00-18:00", "wednesday": "08:00-18:00", "thursday": "08:00-18:00",
    "friday": "08:00-17:00", "saturday": "09:00-13:00", "sunday": "closed"},
    holidays=[{"date": "2026-12-25", "name": "Christmas Day"}]))


def when(text: str):
    found = parse_when(text, TODAY)
    assert found is not None, text
    return found


@pytest.mark.parametrize("words, closed, spoken, earliest", [
    ("on Sunday", "on Sunday, December 6th", "Monday, December 7th at 8 AM", "2026-12-07T08:00"),
    ("Saturday at 3 pm", "at that time on Saturday, December 5th", "Monday, December 7th at 3 PM",
     "2026-12-07T15:00"),  # the caller's hour, on the next day open then: not Monday's opening at 8 AM
    ("Saturday at 10", "", "Saturday, December 5th at 10 AM", "2026-12-05T10:00"),
    ("tomorrow morning", "", "Thursday, December 3rd in the morning", "2026-12-03T08:00"),
    ("tomorrow evening", "", "Thursday, December 3rd in the evening", "2026-12-03T17:00"),  # open until 6 PM
    ("Friday evening", "at that time on Friday, December 4th", "Monday, December 7th in the evening",
     "2026-12-07T17:00"),  # Friday closes at 5 PM, Saturday at 1 PM; Monday at 6 PM
    ("on December 25th", "on Christmas Day, Friday, December 25th", "Saturday, December 26th at 9 AM",
     "2026-12-26T09:00"),
    ("December 25th at noon", "on Christmas Day, Friday, December 25th", "Saturday, December 26th at 12 PM",
     "2026-12-26T12:00"),  # closed all day: not "at that time"
    ("Sunday at 7 pm", "on Sunday, December 6th", "Monday, December 7th at 8 AM",
     "2026-12-07T08:00"),  # never open at 7 PM: the next opening
    ("in the afternoon", "", "in the afternoon", "2026-12-02T12:00"),
])
def test_the_callers_time_or_the_next_opening_when_closed_then(words, closed, spoken, earliest):
    at = callback_time(when(words), TODAY, HOURS)
    assert (at.closed, at.spoken) == (closed, spoken)
    assert at.not_before == datetime.fromisoformat(earliest).replace(tzinfo=LA)


def test_a_time_of_day_gone_by_today_is_tomorrows():
    """"Call me at 7 in the morning", said at 10 AM: tomorrow at 7 (closed then: opens at 8), never a past time."""
    ten = datetime(2026, 12, 2, 10, 0, tzinfo=LA)
    at = callback_time(when("at 7 in the morning"), TODAY, HOURS, ten)
    assert (at.closed, at.spoken) == ("at that time on Thursday, December 3rd", "Thursday, December 3rd at 8 AM")
    at = callback_time(when("at 3 pm"), TODAY, HOURS, ten)  # still to come today
    assert (at.closed, at.spoken, at.not_before) == ("", "at 3 PM", datetime(2026, 12, 2, 15, 0, tzinfo=LA))
    at = callback_time(when("in the morning"), TODAY, HOURS, ten)  # the morning began at 8: tomorrow's
    assert at.spoken == "Thursday, December 3rd in the morning"
    at = callback_time(when("at 7 in the morning"), TODAY, None, ten)  # no hours.yaml: the machine's own clock
    assert at.not_before is not None and at.not_before.tzinfo is None and at.not_before.hour == 7


def test_a_time_from_now_is_read_on_the_clock():
    """"Call me back in an hour": the call comes then (5-minute steps), or at the next opening when closed then;
    with no clock the words alone are kept and nothing is promised."""
    ten = datetime(2026, 12, 2, 10, 0, tzinfo=LA)
    at = callback_time(when("in an hour"), TODAY, HOURS, ten)
    assert (at.closed, at.spoken, at.not_before) == ("", "at 11 AM", datetime(2026, 12, 2, 11, 0, tzinfo=LA))
    at = callback_time(when("in 20 minutes"), TODAY, HOURS, datetime(2026, 12, 2, 10, 3, tzinfo=LA))
    assert (at.spoken, at.not_before) == ("at 10:25 AM", datetime(2026, 12, 2, 10, 25, tzinfo=LA))
    at = callback_time(when("in two hours"), TODAY, HOURS, datetime(2026, 12, 2, 17, 0, tzinfo=LA))  # closes at 6
    assert (at.closed, at.spoken) == ("at that time today", "Thursday, December 3rd at 8 AM")
    at = callback_time(when("in an hour"), TODAY, HOURS, datetime(2026, 12, 2, 23, 30, tzinfo=LA))  # after midnight
    assert at.spoken == "Thursday, December 3rd at 8 AM" and at.not_before == datetime(2026, 12, 3, 8, 0, tzinfo=LA)
    at = callback_time(when("in an hour"), TODAY, None)
    assert (at.spoken, at.not_before) == ("in an hour", None)


def test_without_opening_hours_or_a_day_nothing_is_checked():
    at = callback_time(when("on Sunday"), TODAY, None)
    assert (at.closed, at.spoken, at.not_before) == ("", "Sunday, December 6th", datetime(2026, 12, 6))
    assert callback_time(when("next week"), TODAY, HOURS).closed == ""  # a span of days is never checked


@dataclass
class Source:
    """The knowledge step's opening hours and clock (``callback_time.HoursSource``)."""

    clock: Callable[[], datetime] = lambda: datetime(2026, 12, 2, 9, 0, tzinfo=LA)

    def opening_hours(self) -> OpeningHours:
        return HOURS


def test_the_read_back_says_the_company_is_closed_and_when_the_call_comes():
    args = grounded_args("request_callback", ["Can someone call me back on Sunday?"], TODAY, caller_name=None,
                         knowledge=Source())
    assert args["not_before"] == "2026-12-07T08:00-08:00"
    assert readback("request_callback", args) == ("We're closed on Sunday, December 6th, so I'll ask a colleague to "
                                                  "call you back Monday, December 7th at 8 AM. Shall I do that?")
    args = grounded_args("request_callback", ["Call me back tomorrow morning."], TODAY, caller_name=None,
                         knowledge=Source())
    assert readback("request_callback", args) == ("So I'll ask a colleague to call you back Thursday, December 3rd "
                                                  "in the morning. Shall I do that?")
    args = grounded_args("request_callback", ["Could you call me back in half an hour?"], TODAY, caller_name=None,
                         knowledge=Source())
    assert (args["preferred_time"], args["not_before"]) == ("in half an hour (at 9:30 AM)", "2026-12-02T09:30-08:00")
    assert readback("request_callback", args) == "So I'll ask a colleague to call you back at 9:30 AM. Shall I do that?"
    args = grounded_args("request_callback", ["Please call me back."], TODAY, caller_name=None, knowledge=Source())
    assert "not_before" not in args
    assert readback("request_callback", args) == "So I'll ask a colleague to call you back. Shall I do that?"


def test_a_callback_asked_for_on_a_closed_day_is_written_for_the_next_opening_and_dialled_no_sooner(
        intent_classifier, knowledge_base):
    """Through the real intent step and the demo company's hours.yaml (closed on Sundays): the row keeps the
    caller's words and the time code read, and the dialer waits for it."""
    today = date(2026, 11, 25)  # a Wednesday
    repo = Repository.open(None, clock=morning_of(today))
    seed_demo(repo, today=today)
    agent = DialogueAgent(ScriptedChat(), CallerContext.start(repo, "+15559990000"), "Northwind.", today=today,
                          intents=intent_classifier, knowledge=KnowledgeStep(knowledge_base))
    heard = " ".join(e.text for e in agent.turn("Can someone call me back on Sunday?") if isinstance(e, Sentence))
    assert heard.startswith("We're closed on Sunday, November 29th, so I'll ask a colleague to call you back "
                            "Monday, November 30th at 8 AM."), heard
    list(agent.turn("Yes, please."))
    [row] = list(repo.db["callbacks"].rows_where("phone = ?", ["+15559990000"]))
    assert row["preferred_time"] == "sunday (closed on Sunday, November 29th; Monday, November 30th at 8 AM)"
    assert row["not_before"] == "2026-11-30T08:00:00-08:00"
    [callback] = [c for c in CallbackLedger(repo, 3).pending() if c.id == row["id"]]
    policy = DialPolicy(DialerConfig(timezone="America/Los_Angeles", hours={d: "00:00-24:00" for d in (
        "mon", "tue", "wed", "thu", "fri", "sat", "sun")}), 4)
    assert policy.why_not(callback, datetime(2026, 11, 30, 7, 59, tzinfo=LA), set()) == "preferred time not reached"
    assert policy.why_not(callback, datetime(2026, 11, 30, 8, 0, tzinfo=LA), set()) is None


def test_a_time_said_to_the_read_back_is_read_back_and_written(intent_classifier, knowledge_base):
    """"I'd like a callback." read back with no time; "In twenty minutes." to it was sent to the model (and with a
    "yes" dropped from the row): now it is the callback's time, read back again before it is written."""
    today = date(2026, 11, 25)  # a Wednesday
    repo = Repository.open(None, clock=morning_of(today))
    seed_demo(repo, today=today)
    nine = datetime(2026, 11, 25, 9, 0, tzinfo=LA)
    agent = DialogueAgent(ScriptedChat(), CallerContext.start(repo, "+15559990000"), "Northwind.", today=today,
                          intents=intent_classifier, knowledge=KnowledgeStep(knowledge_base, clock=lambda: nine))

    def said(text: str) -> str:
        return " ".join(e.text for e in agent.turn(text) if isinstance(e, Sentence))

    assert said("I would like a callback please.") == "So I'll ask a colleague to call you back. Shall I do that?"
    assert said("Yes, in twenty minutes.") == "So I'll ask a colleague to call you back at 9:20 AM. Shall I do that?"
    assert said("Actually, tomorrow morning.") == ("We're closed on Thanksgiving, Thursday, November 26th, so I'll ask "
                                                   "a colleague to call you back Friday, November 27th in the morning. "
                                                   "Shall I do that?")
    assert said("Yes.").startswith("Done.")
    [row] = list(repo.db["callbacks"].rows_where("phone = ?", ["+15559990000"]))
    assert row["not_before"] == "2026-11-27T08:00:00-08:00"
    assert row["preferred_time"].startswith("tomorrow morning (closed on Thanksgiving")


def test_a_number_to_call_said_to_the_read_back_or_in_the_request_is_read_back_and_written(intent_classifier,
                                                                                           knowledge_base):
    """"My number is 555 123 4567." to the callback's read-back dropped the read-back: the number went nowhere and
    the caller's "Yes." after it to the model. Now the number is read back (grouped, as said) and written; one said
    in the request is read back with its time."""
    today = date(2026, 11, 25)  # a Wednesday
    repo = Repository.open(None, clock=morning_of(today))
    seed_demo(repo, today=today)
    nine = datetime(2026, 11, 25, 9, 0, tzinfo=LA)

    def agent() -> DialogueAgent:
        return DialogueAgent(ScriptedChat(), CallerContext.start(repo, "+15559990000"), "Northwind.", today=today,
                             intents=intent_classifier, knowledge=KnowledgeStep(knowledge_base, clock=lambda: nine))

    def said(a: DialogueAgent, text: str) -> str:
        return " ".join(e.text for e in a.turn(text) if isinstance(e, Sentence))

    first = agent()
    assert said(first, "Can someone call me back?") == "So I'll ask a colleague to call you back. Shall I do that?"
    assert said(first, "My number is 555 123 4567.") == ("So I'll ask a colleague to call you back at 555-123-4567. "
                                                         "Shall I do that?")
    assert said(first, "Yes.").startswith("Done.")
    second = agent()
    assert said(second, "Could you call me back on 206-555-0188 at 3 pm?") == (
        "So I'll ask a colleague to call you back at 206-555-0188 at 3 PM. Shall I do that?")
    assert said(second, "Yes.").startswith("Done.")
    rows = list(repo.db["callbacks"].rows_where("phone in (?, ?)", ["+15551234567", "+12065550188"]))
    assert sorted(r["phone"] for r in rows) == ["+12065550188", "+15551234567"]
    assert [r["not_before"] for r in rows if r["phone"] == "+12065550188"] == ["2026-11-25T15:00:00-08:00"]
    assert not list(repo.db["callbacks"].rows_where("phone = ?", ["+15559990000"]))


def test_a_name_said_to_the_read_back_is_thanked_and_written_with_the_reason(intent_classifier, knowledge_base):
    """"Jane Doe." to "So I'll ask a colleague to call you back ... Shall I do that?" (a caller the CRM does not
    know) went to the model, and so did the "Yes." after it: the callback was not read back or written by code.
    Now the read-back thanks her by name and the colleague's reason carries it, as she said it."""
    today = date(2026, 11, 25)  # a Wednesday
    repo = Repository.open(None, clock=morning_of(today))
    seed_demo(repo, today=today)
    agent = DialogueAgent(ScriptedChat(), CallerContext.start(repo, "+15559990000"), "Northwind.", today=today,
                          intents=intent_classifier, knowledge=KnowledgeStep(
                              knowledge_base, clock=lambda: datetime(2026, 11, 25, 9, 0, tzinfo=LA)))

    def said(text: str) -> str:
        return " ".join(e.text for e in agent.turn(text) if isinstance(e, Sentence))

    assert said("Can someone call me back on Monday morning?").startswith("So I'll ask a colleague")
    assert said("It's Jane Doe.") == ("Thank you, Jane Doe. So I'll ask a colleague to call you back Monday, "
                                      "November 30th in the morning. Shall I do that?")
    assert said("Yes, please.").startswith("Done.")
    row = next(repo.db["callbacks"].rows_where("phone = ?", ["+15559990000"]))
    assert row["reason"] == "Can someone call me back on Monday morning? The caller's name: Jane Doe.", row["reason"]
    from voicebot.dialer.callback_call import spoken_reason
    assert spoken_reason(row["reason"]) == "Can someone call me back on Monday morning"  # the dialer's opening
