"""A sixth company behind the same code: a vet, whose one bookable service is a plain "consultation" (called an
appointment, a checkup or an exam on its price list) beside vaccinations. Turns that went wrong when called as its
customers would (nothing here is in the other companies' data): "Do you have any free appointments tomorrow?" heard
"Yes, we do. Consultation costs $65 per visit." (the price list's alias "appointment", and a yes no file says),
"When is your next free appointment?" and "What's your earliest appointment?" were the caller's own bookings (the
phone number asked for), "A checkup for my dog." to "Which service do you need: consultation or vaccination?" went
to the model (a service named "consultation" could not be named at all, and the price list's words for it were not
heard there), and "Vaccination." while the consultation's times were offered went to the model too.
``ScriptedChat()`` fails the test on any model call."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
from company_support import add_daily_slots, company_agent, company_knowledge
from company_support import said_in as _said
from company_support import tools_in as _tools

from voicebot.crm.repository import Repository
from voicebot.dialog.agent import DialogueAgent
from voicebot.dialog.services import service_named

TODAY = date(2026, 11, 30)  # a Monday
MEG = "+15035550142"
STRANGER = "+15035550999"
VET_MD = """# About Riverside Vets

## Do you see exotic pets?
tags: exotic, rabbit, reptile, bird, hamster, guinea pig

We see cats, dogs and rabbits. For reptiles and birds we refer you to the Exotic Animal Centre on Hill Road.

## Where are you?
tags: address, location, parking, directions

We are at 14 Mill Lane, Riverside. There is free parking behind the building.
"""
HOURS = """timezone: America/Los_Angeles
weekly: {monday: "08:00-19:00", tuesday: "08:00-19:00", wednesday: "08:00-19:00", thursday: "08:00-19:00",
         friday: "08:00-18:00", saturday: "09:00-13:00", sunday: closed}
"""
PRICES = """currency: USD
items:
  - {id: consult, name: Consultation, aliases: [check-up, checkup, appointment, exam], price: 65.00, unit: visit}
  - {id: vacc, name: Vaccination, aliases: [booster, jabs, shots, vaccine], price: 55.00, unit: pet}
  - {id: nails, name: Nail clipping, aliases: [nail trim, claws], price: 15.00, unit: pet}
"""


@pytest.fixture
def vet(tmp_path, intent_classifier):
    kb = company_knowledge(tmp_path / "knowledge", intent_classifier.embedder,
                           {"vet.md": VET_MD, "prices.yaml": PRICES, "hours.yaml": HOURS})
    repo = Repository.open(None, region="US", clock=lambda: datetime.combine(TODAY, time(9)))
    repo.add_customer("Meg Turner", [MEG], pin="7321")
    add_daily_slots(repo, TODAY, {"consultation": ((9, 11, 15), 20), "vaccination": ((10,), 15)}, weekdays_only=True)

    def call(caller: str = STRANGER) -> DialogueAgent:
        return company_agent(repo, caller, "Riverside Vets.", TODAY, intent_classifier, kb)
    call.repo = repo
    return call


@pytest.mark.parametrize("asked", [
    "Do you have any free appointments tomorrow?", "Do you have any appointments tomorrow?",
    "When is your next free appointment?", "What's your earliest appointment?",
    "Have you got anything free on Friday?", "Is there anything available tomorrow morning?",
    "Do you have any appointments for my cat this week?"])
def test_the_companys_free_times_asked_after_are_a_booking_never_a_price_or_the_callers_own(vet, asked):
    events = list(vet().turn(asked))
    said = _said(events)
    assert "$" not in said and "phone number" not in said and "PIN" not in said, said
    assert said.startswith(("Which service do you need: consultation or vaccination?", "I can offer a consultation",
                            "The earliest I have is a consultation")), said
    assert all(t.name == "list_free_slots" for t in _tools(events)), _tools(events)


def test_the_callers_own_appointments_are_still_their_own(vet):
    events = list(vet(MEG).turn("Do I have any appointments tomorrow?"))
    assert [t.name for t in _tools(events)] == ["list_my_appointments"]
    assert "PIN" in _said(events)


def test_a_checkup_to_which_service_is_the_consultation_on_the_day_asked_and_is_booked(vet):
    agent = vet()
    assert _said(agent.turn("Have you got anything free tomorrow?")) == \
        "Which service do you need: consultation or vaccination?"
    events = list(agent.turn("A checkup for my dog."))
    [listed] = _tools(events)
    assert listed.args == {"service": "consultation", "date_from": "2026-12-01", "date_to": "2026-12-01"}
    assert _said(events).startswith("I can offer a consultation on Tuesday, December 1st at 9 AM or 11 AM")
    list(agent.turn("The first one."))
    assert "for Meg Turner. Shall I book it?" in _said(agent.turn("Meg Turner."))
    [booked] = _tools(list(agent.turn("Yes.")))
    assert booked.name == "book_appointment" and booked.result["ok"] and booked.args["name"] == "Meg Turner"


def test_another_service_named_while_times_are_offered_offers_its_times(vet):
    agent = vet()
    assert _said(agent.turn("Is there anything available tomorrow morning for a checkup?")).startswith(
        "I can offer a consultation on Tuesday, December 1st at")
    events = list(agent.turn("Actually, a vaccination."))
    [listed] = _tools(events)
    assert listed.args["service"] == "vaccination", listed.args
    assert _said(events).startswith("I can offer a vaccination on Tuesday, December 1st at 10 AM")


def test_a_service_named_only_in_generic_words_can_be_named():
    assert service_named("A consultation, please.", ["consultation", "vaccination"]) == "consultation"
    assert service_named("I'd like to book a visit", ["checkup", "emergency visit"]) is None  # still no guess
    assert service_named("a design consultation", ["consultation", "design consultation"]) == "design consultation"


def test_a_service_is_named_by_its_stem_but_not_by_a_short_or_generic_one():
    assert service_named("my cat needs to be vaccinated", ["consultation", "vaccination"]) == "vaccination"
    assert service_named("I need my car serviced", ["car servicing", "mot test"]) == "car servicing"
    assert service_named("Do you sell dog treats?", ["dental treatment", "vaccination"]) is None  # no "treat"
    assert service_named("What services do you offer?", ["car servicing", "mot test"]) is None  # no "servic"


@pytest.mark.parametrize("asked, service", [
    ("What's the earliest I can get my cat vaccinated?", "vaccination"),  # went to the model
    ("I need to book my two cats in for their boosters.", "vaccination"),  # a move (by 0.011), then the model
    ("Can I get a checkup on Wednesday afternoon?", "consultation"),  # the caller's own bookings (by 0.005)
    ("Do you have anything on Saturday?", None),  # "I don't have that information"
    ("Hi there, my name's Meg, I'd like to bring Bella in for a checkup next week.", "consultation"),  # the model
    ("What days do you do vaccinations?", "vaccination")])  # "Yes, we do." and the price
def test_a_visit_asked_for_in_other_words_offers_the_services_times(vet, asked, service):
    events = list(vet().turn(asked))
    if service is None:
        assert _said(events) == "Which service do you need: consultation or vaccination?"
        return
    [listed] = _tools(events)
    assert listed.name == "list_free_slots" and listed.args["service"] == service, listed.args
    assert f"a {service} on" in _said(events), _said(events)


def test_how_to_prepare_for_a_visit_is_no_booking(vet):
    """"Do I need to bring anything to the appointment?" was a booking (by 0.012) and offered times."""
    events = list(vet().turn("Do I need to bring anything to the appointment?"))
    assert not _tools(events) and "I don't have that information" in _said(events), _said(events)


def test_anything_later_offers_the_times_after_those_offered_and_picks_none(vet):
    """"Do you have anything later in the day?" picked the second time offered ("later"), and went on to book it."""
    agent = vet()
    assert "Wednesday, December 2nd at 9 AM or 11 AM" in _said(agent.turn("Can I get a checkup on Wednesday?"))
    events = list(agent.turn("Do you have anything later in the day?"))
    [listed] = _tools(events)
    assert listed.args == {"service": "consultation", "date_from": "2026-12-02", "date_to": "2026-12-02",
                           "from_hour": 15}, listed.args  # the hour of the first later free time
    assert _said(events).startswith("I can offer a consultation on Wednesday, December 2nd at 3 PM."), _said(events)
    events = list(agent.turn("Is there anything later?"))
    assert _said(events).startswith("I can offer a consultation on Thursday, December 3rd at 9 AM"), _said(events)


def test_a_yes_that_names_another_time_does_not_book_the_one_read_back(vet):
    """"OK, the 3 PM then." to "That's a consultation on Wednesday, December 2nd at 11 AM ... Shall I book it?"
    booked 11 AM."""
    agent = vet()
    list(agent.turn("Can I get a checkup on Wednesday?"))
    list(agent.turn("The 11 o'clock."))
    assert "at 11 AM for Meg Turner. Shall I book it?" in _said(agent.turn("Meg Turner."))
    events = list(agent.turn("OK, the 3 PM then."))
    assert not [t for t in _tools(events) if t.name == "book_appointment"], _said(events)
    assert "3 PM" in _said(events), _said(events)
    [booked] = _tools(list(agent.turn("Yes.")))
    assert booked.name == "book_appointment" and booked.result["ok"]
    assert booked.result["result"]["slot"]["starts_at"] == "2026-12-02T15:00:00", booked.result


@pytest.mark.parametrize("cannot", ["I can't make it on Friday.", "I won't be able to come on Friday.",
                                    "Something came up and I can't come in on Friday."])
def test_a_visit_the_caller_cannot_keep_is_moved_to_after_that_day_or_cancelled(vet, cannot):
    """"I can't make it tomorrow." was a callback (by 0.008) and went to the model; "I won't be able to come on
    Tuesday." offered other times on that Tuesday (its "to come on Tuesday" read as the new day); "No, just cancel
    it." to the new times asked which day would suit better."""
    repo = vet.repo
    [friday] = repo.list_free_slots(service="consultation", start=date(2026, 12, 4), limit=1)
    repo.book_slot(friday.id, name="Meg Turner", phone=MEG, customer_id=repo.find_customer_by_phone(MEG).id)
    agent = vet(MEG)
    assert "PIN" in _said(agent.turn(cannot))
    said = _said(agent.turn("7321"))
    assert said.startswith("Your appointment is a consultation on Friday, December 4th at 9 AM. I can move it to "
                           "Monday, December 7th at 9 AM or 11 AM."), said
    assert _said(agent.turn("No, just cancel it.")) == \
        "I'll cancel your consultation on Friday, December 4th at 9 AM. Shall I do that?"
    [cancelled] = _tools(list(agent.turn("Yes.")))
    assert cancelled.name == "cancel_appointment" and cancelled.result["ok"]


def test_what_cannot_be_made_is_a_visit_only_when_the_words_say_one(vet):
    """"I can't make the payment this month." is no move of a booking."""
    from voicebot.dialog.placing import placed_request

    for said, move in (("I can't make the payment this month.", False), ("I can't come in on Friday.", True),
                       ("I can't make my appointment on Friday.", True)):
        found = placed_request(None, said, ["consultation", "vaccination"], TODAY, None)
        assert (found is not None and found.name == "reschedule") is move, said


def test_whether_the_vet_is_in_on_a_day_is_the_opening_hours(vet):
    """"Is the vet in on Saturday?" was asked whether it meant the exotic-pets entry."""
    said = _said(vet().turn("Is the vet in on Saturday?"))
    assert "Saturday" in said and "open from 9 AM to 1 PM" in said, said
