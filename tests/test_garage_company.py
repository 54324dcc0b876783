"""An eighth company behind the same code: a garage, whose CRM books oil changes, state inspections and diagnostic
checks, and whose repair jobs are the customer's orders. Turns that went wrong when called as its customers would
(nothing here is in the other companies' data): "Is my car ready?", "When can I pick up my car?" and "Is my car
ready to be picked up?" heard the courtesy-car entry (the word "car"), "What's the status of my repair?" and "Has my
car been fixed?" went to the model; "My car needs an inspection, when can you do it?" heard "Yes, we do." and the
price, "I need my car inspected this week." asked which service; "tomorrow morning" offered 9 AM over a free
7 AM (a morning began at 8); the "change" of "oil change" was taken for a move ("Can I get an oil change on
Wednesday after 10?" heard the wait entry); and times bounded ("after 10", "before noon", "nothing before 10") were
read as the times around them. ``ScriptedChat()`` fails the test on any model call."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest
from company_support import add_daily_slots, company_agent, company_knowledge
from company_support import said_in as _said
from company_support import tools_in as _tools

from voicebot.crm.models import OrderItem
from voicebot.crm.repository import Repository
from voicebot.dialog.agent import DialogueAgent

TODAY = date(2026, 11, 30)  # a Monday
DAN = "+16175550123"
STRANGER = "+16175550999"
GARAGE_MD = """# About Elm Street Auto

## Do you offer a courtesy car?
tags: loaner, courtesy car, rental, replacement car

We have two courtesy cars. Book one when you book your service; they go first come, first served.

## How long does a service take?
tags: how long, duration, wait, waiting room

An oil change takes about 30 minutes and you can wait in our waiting room. A full service takes about 3 hours.
"""
HOURS = """timezone: America/New_York
weekly: {monday: "07:00-18:00", tuesday: "07:00-18:00", wednesday: "07:00-18:00", thursday: "07:00-18:00",
         friday: "07:00-18:00", saturday: "08:00-12:00", sunday: closed}
"""
PRICES = """currency: USD
items:
  - {id: oil, name: Oil change, aliases: [oil and filter, lube], price: 59.00, unit: car}
  - {id: inspect, name: State inspection, aliases: [inspection, sticker], price: 35.00, unit: car}
  - {id: diag, name: Diagnostic check, aliases: [diagnostic, check engine light], price: 95.00, unit: car}
"""


@pytest.fixture
def garage(tmp_path, intent_classifier):
    kb = company_knowledge(tmp_path / "knowledge", intent_classifier.embedder,
                           {"garage.md": GARAGE_MD, "prices.yaml": PRICES, "hours.yaml": HOURS})
    repo = Repository.open(None, region="US", clock=lambda: datetime.combine(TODAY, time(9)))
    dan = repo.add_customer("Dan Ortiz", [DAN], pin="4826")
    repo.add_order("77120", dan.id, "processing", TODAY - timedelta(days=1),
                   [OrderItem("BRK", "Front brake pads", 1, Decimal("180.00"))])
    repo.create_ticket("Rattle after service", "A rattle from the back after my last service.", customer_id=dan.id)
    add_daily_slots(repo, TODAY, {"oil change": ((7, 9, 13), 30), "state inspection": ((10, 14), 30),
                                  "diagnostic check": ((8, 15), 60)}, weekdays_only=True)
    friday = next(s for s in repo.list_free_slots(service="oil change", start=date(2026, 12, 4), limit=5)
                  if s.starts_at.hour == 13)
    repo.book_slot(friday.id, name="Dan Ortiz", customer_id=dan.id)

    def call(caller: str = STRANGER) -> DialogueAgent:
        return company_agent(repo, caller, "Elm Street Auto.", TODAY, intent_classifier, kb)
    return call


@pytest.mark.parametrize("asked", [
    "Is my car ready?", "Is my car ready to be picked up?", "When can I pick up my car?", "Has my car been fixed?",
    "What's the status of my repair?", "When will my car be ready?"])
def test_how_the_callers_own_thing_is_getting_on_is_their_orders_after_the_pin(garage, asked):
    agent = garage(DAN)
    first = list(agent.turn(asked))
    assert _said(first) == "For your security, please tell me your PIN.", _said(first)
    events = list(agent.turn("4 8 2 6."))
    assert [t.name for t in _tools(events)] == ["verify_caller", "list_open_orders"], _tools(events)
    assert "77120" in _said(events) and "brake pads" in _said(events).lower() and "courtesy" not in _said(events)


def test_a_complaint_asked_after_the_same_way_is_their_tickets(garage):
    agent = garage(DAN)
    assert _said(agent.turn("What's the status of my complaint?")) == "For your security, please tell me your PIN."
    events = list(agent.turn("4826"))
    assert [t.name for t in _tools(events)] == ["verify_caller", "get_caller_history"], _tools(events)
    assert "rattle" in _said(events).lower(), _said(events)


@pytest.mark.parametrize("asked, day", [
    ("My car needs an inspection, when can you do it?", None),
    ("I need my car inspected this week.", "2026-11-30")])
def test_a_service_asked_when_or_named_by_its_verb_is_its_free_times(garage, asked, day):
    events = list(garage().turn(asked))
    [listed] = _tools(events)
    assert listed.name == "list_free_slots" and listed.args["service"] == "state inspection", listed.args
    assert listed.args.get("date_from") == day, listed.args
    assert _said(events).startswith("I can offer a state inspection on Tuesday, December 1st at 10 AM"), _said(events)


def test_when_the_garage_can_fit_the_caller_in_asks_which_service(garage):
    said = _said(garage().turn("When can you fit me in?"))
    assert said == "Which service do you need: diagnostic check, oil change or state inspection?", said


def test_a_morning_is_the_companys_morning_from_its_first_free_time(garage):
    events = list(garage().turn("Can I bring my car in tomorrow morning for an oil change?"))
    [listed] = _tools(events)
    assert listed.args["date_from"] == "2026-12-01" and listed.args["from_hour"] <= 7, listed.args
    assert _said(events).startswith("I can offer an oil change on Tuesday, December 1st at 7 AM or 9 AM"), _said(events)


def test_a_name_said_in_its_own_clause_with_the_time_is_the_bookings_name(garage):
    """"The 3 PM please, it's Jo Park." was asked "May I have your name for the booking?", and its "Yes." booked
    "Caller"."""
    agent = garage()
    list(agent.turn("Can I book a diagnostic for Wednesday?"))
    assert _said(agent.turn("The 3 PM please, it's Jo Park.")) == (
        "That's a diagnostic check on Wednesday, December 2nd at 3 PM for Jo Park. Shall I book it?")
    [booked] = _tools(list(agent.turn("Yes.")))
    assert booked.name == "book_appointment" and booked.args["name"] == "Jo Park", booked.args


@pytest.mark.parametrize("asked, hours, offered", [
    ("Can I get an oil change on Wednesday after 10?", (10, 24), "at 1 PM. Would that suit you?"),
    ("Can I get an oil change on Wednesday before noon?", (0, 12), "at 7 AM or 9 AM. Which would suit you?")])
def test_a_time_bounded_after_or_before_is_every_free_time_on_that_side(garage, asked, hours, offered):
    """The first heard the wait entry (the "change" of "oil change" taken for a move), the second "12 PM isn't free"
    and 1 PM."""
    events = list(garage().turn(asked))
    [listed] = _tools(events)
    assert (listed.args["date_from"], listed.args["from_hour"], listed.args["to_hour"]) == ("2026-12-02", *hours)
    assert _said(events) == f"I can offer an oil change on Wednesday, December 2nd {offered}", _said(events)


def test_nothing_before_a_time_to_the_times_offered_is_the_times_after_it(garage):
    """"Nothing before 10 works for me." to 7 and 9 AM went to the model."""
    agent = garage()
    list(agent.turn("I'd like to book an oil change."))
    events = list(agent.turn("Nothing before 10 works for me."))
    [listed] = _tools(events)
    assert (listed.args["from_hour"], listed.args["to_hour"]) == (10, 24), listed.args
    assert _said(events) == "I can offer an oil change on Tuesday, December 1st at 1 PM. Would that suit you?"


@pytest.mark.parametrize("asked", ["I need an oil change.", "Hi, I'd like an oil change please."])
def test_a_service_wanted_in_a_few_words_is_its_free_times(garage, asked):
    """Both heard the wait entry ("An oil change takes about 30 minutes ...") and the offer of a ticket."""
    events = list(garage().turn(asked))
    [listed] = _tools(events)
    assert listed.args == {"service": "oil change"}, listed.args


def test_a_change_to_a_booking_named_by_its_service_is_a_move(garage):
    """"I'd like to change my oil change appointment." had no pick, and heard the wait entry."""
    agent = garage(DAN)
    assert _said(agent.turn("I'd like to change my oil change appointment.")) == (
        "For your security, please tell me your PIN.")
    said = _said(agent.turn("4826"))
    assert "Friday, December 4th at 1 PM" in said and "oil change" in said, said


@pytest.mark.parametrize("neither", ["Neither of those work for me.", "Those don't suit me, sorry.",
                                     "I can't do either of those."])
def test_none_of_the_times_offered_asks_for_a_better_day_and_keeps_the_service(garage, neither):
    """Each went to the model."""
    agent = garage()
    list(agent.turn("I'd like to book an oil change."))
    assert _said(agent.turn(neither)) == "What day or time would suit you better?"
    events = list(agent.turn("Thursday afternoon."))
    [listed] = _tools(events)
    assert listed.args["service"] == "oil change" and listed.args["date_from"] == "2026-12-03", listed.args
    assert _said(events) == "I can offer an oil change on Thursday, December 3rd at 1 PM. Would that suit you?"


@pytest.mark.parametrize("dropped", ["Never mind.", "No, that's OK.", "Actually, forget it, I'll call back later.",
                                     "Hmm, let me check my calendar and call you back."])
def test_an_offer_let_go_is_closed_and_a_later_yes_books_nothing(garage, dropped):
    """Each went to the model, and "Actually, forget it, I'll call back later." booked the later time offered."""
    agent = garage()
    list(agent.turn("I'd like to book an oil change."))
    assert _said(agent.turn(dropped)) == "All right. Is there anything else I can help with?"
    assert not agent.offered_slots and agent.pending_write is None


@pytest.mark.parametrize("asked", ["What's today's date?", "What day is it today?", "Sorry, what day is it?"])
def test_todays_date_is_said_from_the_calls_date(garage, asked):
    """"What's today's date?" was the caller's bookings (by 0.006) and asked for the phone number on the account."""
    events = list(garage().turn(asked))
    assert _said(events) == "Today is Monday, November 30th." and not _tools(events)


@pytest.mark.parametrize("asked", ["Is the mechanic in on Saturday?", "Hi, is the mechanic in on Saturday?",
                                   "Are you in on Saturday?"])
def test_whether_someone_is_in_on_a_day_is_the_opening_hours(garage, asked):
    """"Is the mechanic in on Saturday?" was the caller's bookings (by 0.013) and asked for their account; a vet's
    "Is the vet in on Saturday?" was asked whether it meant the exotic-pets entry."""
    events = list(garage().turn(asked))
    assert "Saturday" in _said(events) and "open from 8 AM to noon" in _said(events), _said(events)
    assert not _tools(events)


@pytest.mark.parametrize("asked", ["What's the minimum booking?", "What is your cancellation policy for bookings?"])
def test_a_rule_asked_after_is_no_record_of_the_callers(intent_classifier, asked):
    """"What's the minimum booking?" (a cleaning company's) was the caller's bookings and asked for their account."""
    from voicebot.dialog.placing import placed_request

    found = placed_request(intent_classifier.classify(asked), asked, ["oil change"], TODAY, lambda text: 0.0)
    assert found is None or found.name not in ("my_appointments", "order_status", "order_history"), found


def test_another_service_instead_of_the_one_read_back_is_its_times_that_day(garage):
    """"Actually, can you make it a state inspection instead?" to an oil change read back heard "I don't have that
    information" (a cleaning company's "make it a deep clean instead" too)."""
    agent = garage()
    list(agent.turn("Can I book an oil change for Wednesday?"))
    list(agent.turn("The 9 AM please, it's Jo Park."))
    events = list(agent.turn("Actually, can you make it a state inspection instead?"))
    [listed] = _tools(events)
    assert listed.args == {"service": "state inspection", "date_from": "2026-12-02", "date_to": "2026-12-02"}
    assert _said(events) == ("I can offer a state inspection on Wednesday, December 2nd at 10 AM or 2 PM. "
                             "Which would suit you?")
    assert _said(agent.turn("2 PM.")) == ("That's a state inspection on Wednesday, December 2nd at 2 PM for Jo Park. "
                                          "Shall I book it?")


@pytest.mark.parametrize("said, service", [("Oil change.", "oil change"), ("Inspection.", "state inspection"),
                                           ("A diagnostic, please.", "diagnostic check")])
def test_a_service_named_alone_is_its_free_times(garage, said, service):
    """"Oil change." heard the wait entry, "Inspection." went to the model."""
    [listed] = _tools(list(garage().turn(said)))
    assert listed.args == {"service": service}, listed.args
