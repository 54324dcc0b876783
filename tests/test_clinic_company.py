"""A third company behind the same code: a dental clinic, whose services are visits ("checkup", "emergency visit",
"teeth whitening") and whose callers ask to "come in". Turns that went wrong when called as its patients would:
"Where do I park?" asked for the PIN (an order status by 0.0065), "I'd like to book a visit" offered emergency
visits (a word of that service's name), "The first one." to the service question went to the model, which lost
the week the caller had asked for, and "Can you see me today?" was small talk. ``ScriptedChat()`` fails the test on
any model call."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest

from company_support import company_knowledge
from fakes import ScriptedChat
from voicebot.crm.repository import Repository
from voicebot.crm.verification import CallerContext
from voicebot.dialog.agent import DialogueAgent, Sentence, ToolCalled
from voicebot.dialog.services import service_by_position, service_named
from voicebot.dialog.appointments import EARLIEST
from voicebot.dialog.intents import Intent
from voicebot.dialog.knowledge_step import KnowledgeStep
from voicebot.dialog.placing import KNOWLEDGE_OVER_INTENT, placed_request
from voicebot.dialog.writes import NAME_QUESTION

TODAY = date(2026, 11, 30)  # a Monday
MARIA = "+13125550147"
SERVICES = ["checkup", "emergency visit", "teeth whitening"]

CLINIC_MD = """# Visiting us

## Where are you located?
tags: address, location, directions
We are at 418 Maple Avenue, Springfield, on the second floor above the pharmacy.

## Is there parking?
tags: parking, car park, park
Yes. Free parking is behind the building; the entrance is on Elm Street.

## Do you accept my insurance?
tags: insurance, dental plan, coverage, Delta Dental, Cigna
We accept Delta Dental, Cigna, Aetna and MetLife.

## What is your cancellation policy?
tags: cancel, late cancellation, no show, fee, missed appointment
Please cancel at least 24 hours ahead. Late cancellations and missed appointments are charged a $50 fee.
"""
PRICES = """currency: USD
items:
  - {id: checkup, name: Checkup and cleaning, aliases: [checkup, cleaning], price: 120.00, unit: visit}
  - {id: whitening, name: In-office whitening, aliases: [whitening, teeth whitening], price: 399.00, unit: treatment}
"""


@pytest.fixture
def clinic(tmp_path, intent_classifier):
    kb = company_knowledge(tmp_path / "knowledge", intent_classifier.embedder,
                           {"clinic.md": CLINIC_MD, "prices.yaml": PRICES})
    repo = Repository.open(None, region="US", clock=lambda: datetime.combine(TODAY, time(9)))
    repo.add_customer("Maria Lopez", [MARIA], pin="2468")
    for day in (TODAY + timedelta(days=i) for i in range(1, 14)):
        if day.weekday() < 5:
            for hour in (8, 10, 14):
                repo.add_slot("checkup", datetime.combine(day, time(hour)), resource="chair 1", duration_min=45)
            repo.add_slot("emergency visit", datetime.combine(day, time(8, 30)), resource="chair 2")
            repo.add_slot("teeth whitening", datetime.combine(day, time(13)), resource="chair 3")
    return DialogueAgent(ScriptedChat(), CallerContext.start(repo, MARIA), "Riverside Dental.", today=TODAY,
                         intents=intent_classifier, knowledge=KnowledgeStep(kb))


def _stranger(agent: DialogueAgent) -> DialogueAgent:
    """The same clinic called from a number the CRM does not know."""
    return DialogueAgent(agent.chat, CallerContext.start(agent.context.repo, "+13125550999"), "Riverside Dental.",
                         today=TODAY, intents=agent.intents, knowledge=agent.knowledge)


def _said(events) -> str:
    return " ".join(e.text for e in events if isinstance(e, Sentence))


def _tools(events) -> list[str]:
    return [e.name for e in events if isinstance(e, ToolCalled)]


def test_a_question_about_the_clinic_is_not_an_order(clinic):
    events = list(clinic.turn("Where do I park?"))
    assert _tools(events) == [] and "PIN" not in _said(events)
    assert "Free parking is behind the building" in _said(events)


def test_the_service_picked_by_its_place_in_the_list_keeps_the_week_asked_for(clinic):
    question = "Which service do you need: checkup, emergency visit or teeth whitening?"
    assert _said(clinic.turn("Hi, I'd like to come in for an appointment.")) == question
    assert _said(clinic.turn("Next week if possible.")) == question
    events = list(clinic.turn("The first one."))
    assert _tools(events) == ["list_free_slots"]
    assert _said(events).startswith("I can offer a checkup on Monday, December 7th at 8 AM")


def test_a_visit_is_not_the_emergency_visit_and_coming_in_is_a_booking(clinic):
    question = "Which service do you need: checkup, emergency visit or teeth whitening?"
    assert _said(clinic.turn("I'd like to book a visit.")) == question
    assert _said(clinic.turn("The emergency one, please.")).startswith("I can offer an emergency visit on Tuesday")


@pytest.mark.parametrize("text", ["Can you see me today?", "Is there any chance I could come in tomorrow?"])
def test_coming_in_is_a_booking(intent_classifier, text):
    found = intent_classifier.classify(text)
    assert found is not None and found.name == "booking"


@pytest.mark.parametrize(("text", "services", "named"), [
    ("I'd like to book a visit", SERVICES, None),  # "visit" names no service on its own
    ("the emergency one", SERVICES, "emergency visit"),
    ("whitening please", SERVICES, "teeth whitening"),
    ("the latest you have", ["MOT test", "oil change"], None),  # a word counts only at the start of a word
    ("the MOT please", ["MOT test", "oil change"], "MOT test"),
    ("my brakes squeak", ["brake inspection", "oil change"], "brake inspection"),
    ("I need a repair visit", ["laptop repair", "printer repair"], None),  # a word two services share
    ("the printer one", ["laptop repair", "printer repair"], "printer repair"),
])
def test_a_service_is_named_by_a_word_of_its_own(text, services, named):
    assert service_named(text, services) == named


@pytest.mark.parametrize(("text", "named"), [
    ("The first one.", "checkup"), ("the second one please", "emergency visit"), ("Number three.", "teeth whitening"),
    ("The last one.", "teeth whitening"), ("The first available, please.", None), ("Yes.", None),
    ("I had my first checkup with you last year and it was fine", None),  # no short answer
])
def test_a_short_answer_picks_a_service_by_its_place(text, named):
    assert service_by_position(text, SERVICES) == named


@pytest.mark.parametrize(("intent", "text", "margin", "kept"), [
    ("order_status", "Where do I park?", 0.0065, False),  # narrow, and no order named
    ("order_status", "Where do I park?", 0.03, True),  # a clear pick keeps its intent as before
    ("order_status", "Where is my order?", 0.005, True),  # narrow, but the order is named
    ("order_status", "When is my stuff coming?", 0.005, True),
    ("ticket_status", "Did anyone look at my complaint?", 0.005, True),
    ("ticket_status", "What do I do with my insurance card?", 0.005, False),
    ("my_appointments", "When am I booked in?", 0.005, True),
])
def test_a_narrow_pick_must_name_the_record_it_reads(intent, text, margin, kept):
    found = Intent(intent, 0.9, margin, "example")
    assert placed_request(found, text, SERVICES, TODAY, lambda _: KNOWLEDGE_OVER_INTENT) is (found if kept else None)


def test_book_in_so_many_words_is_a_booking_and_the_service_said_before_still_counts(clinic):
    """"I'm a new patient, can I book a checkup?" sat between my appointments, a move and a booking (no intent),
    and the knowledge base's new-patient entry answered it; "Anything on Thursday afternoon?" after a checkup
    was named asked which service."""
    events = list(clinic.turn("Hi, I'm a new patient, can I book a checkup?"))
    assert _tools(events) == ["list_free_slots"] and _said(events).startswith("I can offer a checkup on Tuesday")
    said = _said(clinic.turn("Do you have anything on Thursday afternoon?"))
    assert said.startswith("I can offer a checkup on Thursday, December 3rd at 2 PM")


def test_a_price_question_is_no_answer_to_the_service_question(clinic):
    question = "Which service do you need: checkup, emergency visit or teeth whitening?"
    assert _said(clinic.turn("Can I come in on Friday?")) == question
    events = list(clinic.turn("How much is whitening?"))
    assert _tools(events) == [] and _said(events) == "In-office whitening costs $399 per treatment."


def test_anything_earlier_is_no_pick_of_the_first_time(clinic):
    """"Do you have anything earlier?" matched "earlier" as a pick of the first time offered and read it back."""
    said = _said(clinic.turn("Can I book a checkup on Thursday afternoon?"))
    assert said.startswith("I can offer a checkup on Thursday, December 3rd at 2 PM")
    events = list(clinic.turn("Do you have anything earlier?"))
    assert _tools(events) == ["list_free_slots"] and "Shall I book" not in _said(events)
    assert _said(events).startswith("I can offer a checkup on Tuesday, December 1st at 8 AM")
    assert _said(clinic.turn("Anything sooner than that?")) == EARLIEST
    assert _said(clinic.turn("Okay, the first one.")).endswith("Shall I book it?")


@pytest.mark.parametrize(("answer", "name"), [("It's Ana Ruiz.", "Ana Ruiz"), ("my name is jan de vries", "Jan De Vries")])
def test_a_caller_the_crm_does_not_know_is_asked_for_a_name_before_the_booking(clinic, answer, name):
    """A new patient was booked as "Caller": the team met a stranger. The name is asked once and written as said."""
    agent = _stranger(clinic)
    assert _said(agent.turn("Can I book a checkup on Thursday afternoon?")).startswith("I can offer a checkup")
    assert _said(agent.turn("The two o'clock, please.")) == NAME_QUESTION
    assert _said(agent.turn(answer)) == f"That's a checkup on Thursday, December 3rd at 2 PM for {name}. Shall I book it?"
    events = list(agent.turn("Yes."))
    assert _tools(events) == ["book_appointment"]
    booking = agent.context.repo.db.execute("select name, phone from bookings").fetchone()
    assert booking == (name, "+13125550999")


def test_no_name_given_books_without_one_and_a_known_caller_is_not_asked(clinic):
    agent = _stranger(clinic)
    list(agent.turn("Can I book a checkup on Thursday afternoon?"))
    assert _said(agent.turn("The first one.")) == NAME_QUESTION
    # no name, and no yes yet: the caller has not heard the booking read back (a yes to the name question once
    # booked it unheard)
    assert _said(agent.turn("Just book it, please.")).endswith("Shall I book it?")
    assert _tools(agent.turn("Yes.")) == ["book_appointment"]
    list(clinic.turn("Can I book a checkup on Friday?"))
    assert _said(clinic.turn("The first one.")).endswith("Shall I book it?")  # Maria is in the CRM


def test_anything_earlier_before_any_offer_is_a_booking_not_the_order_history(clinic):
    """It was the order history by 0.023 and asked for the PIN."""
    question = "Which service do you need: checkup, emergency visit or teeth whitening?"
    assert _said(clinic.turn("Do you have anything earlier?")) == question


def test_book_in_so_many_words_outweighs_a_narrow_my_appointments(clinic):
    """Over SIP, "Hi, I'm a new patient. Can I book a checkup next week?" was my appointments by 0.011: a new caller
    was asked for an account to look up."""
    events = list(_stranger(clinic).turn("Hi, I'm a new patient. Can I book a checkup next week?"))
    assert _tools(events) == ["list_free_slots"]
    assert _said(events).startswith("I can offer a checkup on Monday, December 7th at 8 AM")


def test_what_the_bot_can_do_is_what_this_companys_data_allows(clinic):
    """The built-in answer named "orders, repair visits and quotes", false of a clinic that left it unset."""
    from voicebot.config import PromptsConfig
    from voicebot.dialog.capabilities import bot_answer

    said = bot_answer(PromptsConfig(), clinic.context.repo, has_knowledge=True)
    assert said.startswith("I'm an automated assistant. I can answer questions about us, book or change an "
                           "appointment, note a problem for our team or arrange a callback")
    assert "order" not in said  # the clinic's CRM holds no orders
    own = PromptsConfig(bot_question="I'm Riverside Dental's phone assistant.")
    assert bot_answer(own, clinic.context.repo, has_knowledge=True) == "I'm Riverside Dental's phone assistant."


def test_a_service_named_by_its_price_lists_word_another_day_and_a_time_in_words(clinic):
    """A garage's and a clinic's callers: "a cleaning" is the price item "Checkup and cleaning", so the service
    "checkup" (it asked which service); "Friday morning." to the times offered went to the model, which handed the
    caller over; "Ten is fine." picked nothing ("ten" a word, not a digit)."""
    events = list(clinic.turn("Hi, can I book it in for a cleaning?"))
    assert _tools(events) == ["list_free_slots"] and _said(events).startswith("I can offer a checkup on Tuesday")
    said = _said(clinic.turn("Friday morning."))
    assert said.startswith("I can offer a checkup on Friday, December 4th at 8 AM or 10 AM")
    assert _said(clinic.turn("Ten is fine.")) == "That's a checkup on Friday, December 4th at 10 AM. Shall I book it?"
