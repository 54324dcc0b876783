"""A seventh company behind the same code: a gym, whose CRM books personal training and a yoga class and whose
price list sells memberships. Turns that went wrong when called as its members would (nothing here is in the other
companies' data): "I want to join the gym." went to the model (no word of signing up it knew), "What time is the
yoga class tomorrow?" was taken for the caller's own booking and asked for their phone number, and "Can I book a
PT session for Thursday evening?" asked which service (the price list's acronym "PT" was too short to count).
``ScriptedChat()`` fails the test on any model call."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
from company_support import add_daily_slots, company_agent, company_knowledge
from company_support import said_in as _said
from company_support import tools_in as _tools

from voicebot.crm.repository import Repository

TODAY = date(2026, 11, 30)  # a Monday
STRANGER = "+12125550999"
GYM_MD = """# About Peak Fitness

## Can I cancel my membership?
tags: cancel, cancellation, leave, quit, end membership, notice

You can cancel any time with 30 days' notice. Ask at reception or call us.

## What facilities do you have?
tags: pool, sauna, showers, lockers, facilities, gym floor, weights

We have a gym floor, free weights, a 20-metre pool, a sauna, showers and lockers.
"""
HOURS = """timezone: America/New_York
weekly: {monday: "06:00-22:00", tuesday: "06:00-22:00", wednesday: "06:00-22:00", thursday: "06:00-22:00",
         friday: "06:00-21:00", saturday: "08:00-18:00", sunday: "08:00-16:00"}
"""
PRICES = """currency: USD
items:
  - {id: monthly, name: Monthly membership, aliases: [membership, join, monthly], price: 49.00, unit: month}
  - {id: pt, name: Personal training session, aliases: [personal trainer, PT, trainer], price: 60.00, unit: session}
  - {id: yoga, name: Yoga class, aliases: [yoga], price: 12.00, unit: class}
"""


@pytest.fixture
def gym(tmp_path, intent_classifier):
    kb = company_knowledge(tmp_path / "knowledge", intent_classifier.embedder,
                           {"gym.md": GYM_MD, "prices.yaml": PRICES, "hours.yaml": HOURS})
    repo = Repository.open(None, region="US", clock=lambda: datetime.combine(TODAY, time(9)))
    add_daily_slots(repo, TODAY, {"personal training": ((8, 12, 18), 60), "yoga class": ((19,), 60)})
    return company_agent(repo, STRANGER, "Peak Fitness.", TODAY, intent_classifier, kb)


@pytest.mark.parametrize("asked", ["I want to join the gym.", "I'd like to join."])
def test_joining_is_a_lead_for_the_sales_team(gym, asked):
    assert _said(gym.turn(asked)) == "May I have your name for our sales team?"
    assert "pass this to our sales team" in _said(gym.turn("Jo Park."))
    [lead] = _tools(list(gym.turn("Yes.")))
    assert lead.name == "create_lead" and lead.result["ok"] and lead.args["name"] == "Jo Park"


def test_the_time_of_the_class_on_a_day_is_its_free_times_not_the_callers_booking(gym):
    events = list(gym.turn("What time is the yoga class tomorrow?"))
    [listed] = _tools(events)
    assert listed.name == "list_free_slots", listed
    assert listed.args == {"service": "yoga class", "date_from": "2026-12-01", "date_to": "2026-12-01"}
    assert _said(events) == "I can offer a yoga class on Tuesday, December 1st at 7 PM. Would that suit you?"


def test_the_price_lists_acronym_names_its_service(gym):
    events = list(gym.turn("Can I book a PT session for Thursday evening?"))
    [listed] = _tools(events)
    assert listed.args["service"] == "personal training" and listed.args["date_from"] == "2026-12-03", listed.args
    assert _said(events).startswith("I can offer personal training on Thursday, December 3rd at 6 PM")


@pytest.mark.parametrize("asked, service, day", [
    ("Do you have a personal trainer available on Saturday morning?", "personal training", "2026-12-05"),
    ("What time does yoga start?", "yoga class", None)])
def test_a_service_asked_after_as_free_or_as_a_timetable_is_its_free_times(gym, asked, service, day):
    """The first heard "I can't check stock from here" (the price list's "available"), the second "I don't have that
    information"."""
    events = list(gym.turn(asked))
    [listed] = _tools(events)
    assert listed.name == "list_free_slots" and listed.args["service"] == service, listed.args
    assert listed.args.get("date_from") == day, listed.args
    assert "stock" not in _said(events) and _said(events).startswith("I can offer"), _said(events)


def test_a_service_asked_for_with_a_detail_the_files_lack_is_no_yes(gym):
    """"Do you do classes for beginners?" heard "Yes, we do. Yoga class costs $12 per class.": no file says so."""
    said = _said(gym.turn("Hi, do you do classes for beginners?"))
    assert not said.startswith("Yes"), said
    assert "$12" in said, said
