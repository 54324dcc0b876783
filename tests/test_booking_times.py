"""The time a caller asks for, when times were offered or before: a hair salon's callers (issue notes of
2026-12-01). "Thursday evening" was offered 9 and 10 AM (the day's first six slots, before any hour was looked
at); "Seven o'clock." to 6 and 7 PM was 7 AM; "Half ten." and "Eleven's fine." were no times at all; "Yes." to two
times booked the first; a taken time was answered with the same two times again, in silence about it."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from fakes import ScriptedChat

from voicebot.crm.repository import Repository
from voicebot.crm.verification import CallerContext
from voicebot.dialog.agent import DialogueAgent, Sentence, ToolCalled
from voicebot.dialog.answers import pick_slot
from voicebot.dialog.offered_times import near_offered, said_hour
from voicebot.dialog.slots import parse_when

TODAY = date(2026, 12, 1)  # a Tuesday


@pytest.fixture
def salon():
    repo = Repository.open(None, region="GB", clock=lambda: datetime(2026, 12, 1, 8, 0))
    for day in (3, 5):  # Thursday and Saturday, 8:30 to 19:30 every hour, 10:30 taken on Saturday
        for hour in range(8, 20):
            if (day, hour) != (5, 10):
                repo.add_slot("haircut", datetime(2026, 12, day, hour, 30 if day == 5 else 0), resource="Sophie")
    return repo


def said(events) -> str:
    return " ".join(e.text for e in events if isinstance(e, Sentence))


def booked_time(repo, agent) -> datetime:
    """The start of the slot read back for a booking (the caller, new here, is asked their name first)."""
    slot_id = agent.pending_write.args["slot_id"]
    return next(s.starts_at for s in repo.list_free_slots(limit=100) if s.id == slot_id)


def agent_for(repo, intents):
    return DialogueAgent(ScriptedChat(), CallerContext.start(repo, "+447700900999"), "You answer for a salon.",
                         today=TODAY, intents=intents)


@pytest.mark.parametrize(("text", "hour", "minute"), [
    ("Half ten would be great.", 10, 30), ("Half past ten", 10, 30), ("quarter past two", 14, 15),
    ("quarter to nine", 8, 45), ("Ten thirty?", 10, 30)])
def test_british_and_spoken_clock_times(text, hour, minute):
    when = parse_when(text, TODAY)
    assert (when.hour, when.minute) == (hour, minute)


@pytest.mark.parametrize(("text", "hour", "bound", "hours"), [
    ("After 5 PM?", 17, "after", (17, 24)), ("Anything after 3 on Friday?", 15, "after", (15, 24)),
    ("Nothing before 10 works for me.", 10, "after", (10, 24)), ("No earlier than 9 am please.", 9, "after", (9, 24)),
    ("Something later than 2 pm?", 14, "after", (14, 24)), ("Can I come by noon?", 12, "before", (0, 12)),
    ("Before 11 am please.", 11, "before", (0, 11)), ("Not after 4.", 16, "before", (0, 16)),
    ("Any time until 2.", 14, "before", (0, 14)), ("Drop by at 10.", 10, None, (8, 24)),
    ("Tuesday at 10.", 10, None, (8, 24)), ("Around 3.", 15, None, (13, 18))])
def test_a_clock_time_bounded_before_or_after_is_every_time_on_that_side(text, hour, bound, hours):
    """"After 5 PM?" to the times offered looked for 3 to 8 PM around 5; "before noon" was offered 1 PM as the
    time nearest noon."""
    when = parse_when(text, TODAY)
    assert (when.hour, when.bound, when.hours) == (hour, bound, hours), when
    if bound is not None:
        assert when.matches(datetime(2026, 12, 4, hour, 0)) is (bound == "after")
        assert when.matches(datetime(2026, 12, 4, hour - 1, 30)) is (bound == "before")


def test_half_an_hour_and_half_price_are_no_times():
    assert parse_when("I waited half an hour", TODAY) is None and parse_when("a half price offer", TODAY) is None


def test_a_bare_hour_to_times_offered_is_taken_in_the_half_of_the_day_nearer_them():
    seven = parse_when("Seven o'clock.", TODAY)
    assert near_offered(seven, "Seven o'clock.", 18).hour == 19 and near_offered(seven, "Seven o'clock.", 9).hour == 7
    assert near_offered(seven, "seven in the morning", 18).hour == 7  # said outright: kept
    assert said_hour("Eleven's fine.").hour == 11 and said_hour("Ten?").hour == 10
    assert said_hour("I'd like eleven chairs for the new office please") is None
    assert said_hour("2 chairs") is None and said_hour("Printer repair for 2") is None  # counts, not times


def test_yes_picks_the_one_time_offered_but_neither_of_two():
    offered = [{"id": 1, "starts_at": "2026-12-03T18:00:00"}, {"id": 2, "starts_at": "2026-12-03T19:00:00"}]
    assert pick_slot("Yes.", offered, TODAY) is None
    assert pick_slot("Yes.", offered[:1], TODAY) == 1
    assert pick_slot("Seven o'clock.", offered, TODAY) == 2  # 7 PM, beside 6 PM
    assert pick_slot("The first one.", offered, TODAY) == 1


def test_the_morning_one_is_no_one_oclock():
    """"The morning one please." to a single 1:30 PM offer was read back as 1:30 PM ("one": 1 o'clock)."""
    one = [{"id": 7, "starts_at": "2026-12-04T13:30:00"}]
    two = [{"id": 1, "starts_at": "2026-12-04T09:30:00"}, {"id": 2, "starts_at": "2026-12-04T13:30:00"}]
    assert pick_slot("The morning one please.", one, TODAY) is None
    assert pick_slot("The morning one please.", two, TODAY) == 1
    assert pick_slot("The afternoon one.", two, TODAY) == 2
    assert pick_slot("One o'clock.", [{"id": 3, "starts_at": "2026-12-04T13:00:00"}], TODAY) == 3


def test_thursday_evening_is_offered_the_evening_and_seven_oclock_books_seven_pm(salon, intent_classifier):
    agent = agent_for(salon, intent_classifier)
    events = list(agent.turn("Can I book a haircut for Thursday evening then?"))
    listed = next(e for e in events if isinstance(e, ToolCalled))
    assert listed.args["from_hour"] == 17 and listed.args["to_hour"] == 24
    assert "Thursday, December 3rd at 5 PM or 6 PM." in said(events)  # the day said once
    # not 7 AM; free at 7 PM, so read back at once (the caller is new here: the name first), not offered again
    assert said(agent.turn("Seven o'clock.")) == "May I have your name for the booking?"
    assert booked_time(salon, agent) == datetime(2026, 12, 3, 19, 0)


def test_a_taken_time_is_said_to_be_taken_and_its_neighbours_offered(salon, intent_classifier):
    agent = agent_for(salon, intent_classifier)
    list(agent.turn("Can I book a haircut for Saturday morning?"))
    answer = said(agent.turn("Half ten would be great."))
    assert answer.startswith("10:30 AM isn't free. I can offer a haircut on Saturday, December 5th at 9:30 AM or "
                             "11:30 AM."), answer
    list(agent.turn("Half eleven then."))
    assert booked_time(salon, agent) == datetime(2026, 12, 5, 11, 30)


def test_yes_to_two_times_asks_which(salon, intent_classifier):
    agent = agent_for(salon, intent_classifier)
    list(agent.turn("Can I book a haircut for Thursday evening?"))
    assert said(agent.turn("Yes.")) == "Which would you like: Thursday, December 3rd at 5 PM or 6 PM?"
    assert not agent.pending_write


def test_asking_after_ones_own_bookings_is_no_new_booking(salon, intent_classifier):
    """"Have I got any appointments coming up?" was a new booking (the service question) by 0.018."""
    from voicebot.dialog.appointments import placed
    from voicebot.dialog.intents import Intent

    for text in ("Have I got any appointments coming up?", "Hiya, have I got anything booked?",
                 "When's my next appointment?", "I'm sure I booked something for Saturday."):
        assert placed(Intent("booking", 0.92, 0.018, "x"), text).name == "my_appointments", text
    assert placed(Intent("booking", 0.92, 0.018, "x"), "Have you got anything on Saturday?").name == "booking"
    assert placed(Intent("reschedule", 0.9, 0.03, "x"), "Can I move my appointment to Friday?").name == "reschedule"


def test_a_company_without_orders_never_asks_for_an_order_number(salon, intent_classifier):
    """A hair salon's unknown caller was asked "... or one of your order numbers?"."""
    agent = agent_for(salon, intent_classifier)
    asked = said(agent.turn("When's my next appointment?"))
    assert asked == "I can help with that once I've found your account. What is the phone number on your account?"


def test_okay_with_another_day_is_that_day_not_a_bare_yes(salon, intent_classifier):
    """"Okay, whoever's free, Wednesday at two then." to Saturday's times was asked "Which would you like: ..."
    (its "Okay" taken for a yes to two times)."""
    agent = agent_for(salon, intent_classifier)
    list(agent.turn("Can I book a haircut for Saturday morning?"))
    answer = said(agent.turn("Okay, whoever's free, Thursday at two then."))
    assert "Which would you like" not in answer, answer
    assert booked_time(salon, agent) == datetime(2026, 12, 3, 14, 0)  # free: read back (the name asked first)


def test_the_latest_time_of_a_day_is_offered_alone(salon, intent_classifier):
    """"What's the latest you have on Saturday?" was offered the day's first two times (9 and 10 AM, the tool's
    earliest-first six); the end of that day is the answer, and yes books it."""
    agent = agent_for(salon, intent_classifier)
    list(agent.turn("Can I book a haircut?"))
    events = list(agent.turn("What's the latest you have on Saturday?"))
    listed = [e for e in events if isinstance(e, ToolCalled)][-1]
    assert listed.args.get("latest") is True
    assert said(events) == "The latest I have is a haircut on Saturday, December 5th at 7:30 PM. Would that suit you?"
    assert said(agent.turn("Yes, please.")) == "May I have your name for the booking?"
    assert booked_time(salon, agent) == datetime(2026, 12, 5, 19, 30)


def test_the_earliest_time_asked_for_is_offered_alone(salon, intent_classifier):
    agent = agent_for(salon, intent_classifier)
    answer = said(agent.turn("Book me the earliest haircut you have."))
    assert answer == "The earliest I have is a haircut on Thursday, December 3rd at 8 AM. Would that suit you?"


def test_the_latest_without_a_day_is_the_end_of_the_first_free_day(salon):
    """Never the last slot of the calendar: "the latest you have" is the end of a day."""
    from voicebot.crm.tools import list_free_slots

    context = CallerContext.start(salon, "+447700900999")
    slots = list_free_slots(context, service="haircut", latest=True)["slots"]
    assert slots[0].starts_at == datetime(2026, 12, 3, 19, 0)
    assert [s.starts_at for s in slots] == sorted((s.starts_at for s in slots), reverse=True)
    assert all(s.starts_at.date() == date(2026, 12, 3) for s in slots)


@pytest.mark.parametrize(("text", "extreme"), [
    ("What's the latest you have on Friday?", "latest"), ("as late as possible please", "latest"),
    ("Book me the earliest printer repair", "earliest"), ("the first available slot", "earliest"),
    ("as soon as possible", "earliest"), ("Friday at ten", None), ("the last one", None),
    ("my last appointment was fine", None)])
def test_the_words_for_one_end_of_the_times(text, extreme):
    from voicebot.dialog.offered_times import extreme_asked

    assert extreme_asked(text) == extreme


def test_a_booking_moved_to_the_latest_time_of_a_day_is_offered_that_time(salon, intent_classifier):
    from voicebot.dialog.appointments import _free

    agent = agent_for(salon, intent_classifier)
    times = list_of(_free(agent, {"service": "haircut", "date_from": "2026-12-03", "date_to": "2026-12-03"},
                          "Move it to the latest you have on Thursday."))
    assert [t["starts_at"] for t in times] == [datetime(2026, 12, 3, 19, 0).isoformat()]


def list_of(steps):
    """The value a step generator returns (its events dropped)."""
    try:
        while True:
            next(steps)
    except StopIteration as stop:
        return stop.value


def test_how_long_it_takes_is_the_offered_services_slot_length(salon, intent_classifier):
    """"How long does it take?" to the times offered: the slots' length, from the CRM (an hour here), and the
    times still open; "How long does delivery take?" is no question about the visit."""
    from voicebot.dialog.rendered import slot_length

    agent = agent_for(salon, intent_classifier)
    list(agent.turn("Can I book a haircut for Thursday evening?"))
    assert said(agent.turn("How long does it take?")) == "The haircut appointment takes an hour. Which would suit you?"
    assert not agent.pending_write  # the times are still open: nothing picked
    assert said(agent.turn("Seven o'clock.")) == "May I have your name for the booking?"
    slots = [{"service": "laptop setup", "duration_min": 90}]
    assert slot_length("How long is the appointment?", slots) == "The laptop setup appointment takes an hour and a half."
    assert slot_length("How long does delivery take?", slots) is None
    assert slot_length("How long does the laptop setup take?", [{"service": "laptop setup", "duration_min": 150}]) == (
        "The laptop setup appointment takes 2 hours and 30 minutes.")
    assert slot_length("How long does it take?", [{"service": "x", "duration_min": 30},
                                                  {"service": "x", "duration_min": 60}]) is None  # which one?


@pytest.mark.parametrize("text", ["The 10 o'clock.", "The 10 o'clock one, please.", "the 10 am"])
def test_the_10_oclock_is_a_time_not_the_10th(text):
    """A garage offered Thursday at 8 and 10 AM; "The 10 o'clock." was read back as Thursday, December 10th."""
    offered = [{"id": 1, "starts_at": "2026-12-03T08:00:00"}, {"id": 2, "starts_at": "2026-12-03T10:00:00"}]
    when = parse_when(text, TODAY)
    assert when is not None and when.first_day is None and when.hour == 10
    assert pick_slot(text, offered, TODAY) == 2
    assert parse_when("the 10th", TODAY).first_day == date(2026, 12, 10)  # a day of the month is still one
