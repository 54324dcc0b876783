"""A ninth company behind the same code: a pharmacy, whose CRM books flu shots and blood pressure checks, whose
prescriptions are the customer's orders, and whose price list gives one service free. Turns that went wrong when
called as its customers would (nothing here is in the other companies' data): "Do you do covid boosters?" heard
"Yes, we do. Covid booster costs $0 per shot.", and "Is my prescription ready?", "When will my prescription be
ready?" and "What's the status of my refill?" never reached the caller's orders.
``ScriptedChat()`` fails the test on any model call."""

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
ANA = "+13125550177"
STRANGER = "+13125550999"
PHARMACY_MD = """# About Oak Park Pharmacy

## How do I refill a prescription?
tags: refill, repeat prescription, renew, more pills, run out

Call us or use our app with your prescription number. Refills are usually ready within 24 hours.

## Do you deliver?
tags: delivery, home delivery, send, courier

We deliver prescriptions free within 5 miles, Monday to Friday. Order by 2 PM for same-day delivery.

## Which insurance do you accept?
tags: insurance, medicare, medicaid, copay, coverage

We accept most major insurance plans, including Medicare Part D. Bring your insurance card on your first visit.
"""
HOURS = """timezone: America/Chicago
weekly: {monday: "08:00-20:00", tuesday: "08:00-20:00", wednesday: "08:00-20:00", thursday: "08:00-20:00",
         friday: "08:00-20:00", saturday: "09:00-17:00", sunday: "10:00-14:00"}
"""
PRICES = """currency: USD
items:
  - {id: flu, name: Flu shot, aliases: [flu jab, flu vaccine, flu shot], price: 40.00, unit: shot}
  - {id: bp, name: Blood pressure check, aliases: [blood pressure], price: 10.00, unit: check}
  - {id: covid, name: Covid booster, aliases: [covid vaccine, covid shot], price: 0.00, unit: shot}
"""


@pytest.fixture
def pharm(tmp_path, intent_classifier):
    kb = company_knowledge(tmp_path / "knowledge", intent_classifier.embedder,
                           {"pharmacy.md": PHARMACY_MD, "prices.yaml": PRICES, "hours.yaml": HOURS})
    repo = Repository.open(None, region="US", clock=lambda: datetime.combine(TODAY, time(9)))
    ana = repo.add_customer("Ana Silva", [ANA], pin="1357")
    repo.add_order("45211", ana.id, "processing", TODAY - timedelta(days=1),
                   [OrderItem("RX-1", "Lisinopril 10 mg, 30 tablets", 1, Decimal("12.00"))], currency="USD")
    add_daily_slots(repo, TODAY, {"flu shot": ((9, 11, 14, 16), 15), "blood pressure check": ((10, 15), 15)})

    def call(caller: str = STRANGER) -> DialogueAgent:
        return company_agent(repo, caller, "Oak Park Pharmacy.", TODAY, intent_classifier, kb)
    return call


@pytest.mark.parametrize("asked, said", [
    ("Do you do covid boosters?", "Yes, we do. Covid booster is free."),
    ("How much is the covid vaccine?", "Covid booster is free."),
    ("How much are a flu shot and a covid shot?",
     "Flu shot costs $40 per shot and covid booster is free, so $40 for both together.")])
def test_a_free_service_is_said_to_be_free_never_zero_dollars(pharm, asked, said):
    assert _said(pharm().turn(asked)) == said


@pytest.mark.parametrize("asked", ["Is my prescription ready?", "When will my prescription be ready?",
                                   "What's the status of my refill?"])
def test_a_prescription_asked_after_is_the_callers_order_after_the_pin(pharm, asked):
    agent = pharm(ANA)
    assert _said(agent.turn(asked)) == "For your security, please tell me your PIN."
    events = list(agent.turn("1 3 5 7"))
    assert [t.name for t in _tools(events)] == ["verify_caller", "list_open_orders"], _tools(events)
    assert "45211" in _said(events) and "Lisinopril" in _said(events), _said(events)


@pytest.mark.parametrize("asked, day, said", [
    ("Do you have any flu shot appointments left this week?", "2026-11-30",
     "I can offer a flu shot on Tuesday, December 1st at 9 AM or 11 AM."),
    ("What's the earliest flu shot I can get?", None, "The earliest I have is a flu shot on Tuesday, December 1st"),
    ("Can I get my flu shot and my blood pressure checked at the same time?", None,
     "I can offer a flu shot on Tuesday, December 1st at 9 AM or 11 AM.")])
def test_a_service_asked_after_as_free_soonest_or_wanted_is_its_free_times(pharm, asked, day, said):
    """The first heard "Yes, we do." and the price (a service's name between "any" and "appointments"), the second
    "I don't have that information", the third was the caller's bookings and asked for their account ("my flu
    shot")."""
    events = list(pharm().turn(asked))
    [listed] = _tools(events)
    assert listed.args["service"] == "flu shot" and listed.args.get("date_from") == day, listed.args
    assert _said(events).startswith(said), _said(events)
