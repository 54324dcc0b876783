"""Price questions about a kind of item (``knowledge.price_groups``), on price lists made here: the figures said are
the list's, compared by code; a question that names one item, or asks nothing of price, is not one."""

from __future__ import annotations

import pytest

from voicebot.knowledge.price_groups import group_price, kind_of
from voicebot.knowledge.tables import PricesFile

PRICES = PricesFile.model_validate({"currency": "GBP", "items": [
    {"id": "f150", "name": "Fiber 150", "aliases": ["150 plan"], "price": "35.00", "unit": "month"},
    {"id": "f500", "name": "Fiber 500", "aliases": ["500 plan"], "price": "35.00", "unit": "month"},
    {"id": "f900", "name": "Fiber 900", "aliases": ["900 plan", "gigabit"], "price": "50.00", "unit": "month"},
    {"id": "mesh", "name": "Mesh wifi kit", "aliases": ["mesh"], "price": "99.00", "unit": "kit"},
    {"id": "chair", "name": "Ergonomic office chair", "aliases": ["desk chair"], "price": "189.00", "unit": "chair"},
    {"id": "stool", "name": "Office stool", "aliases": ["stool"], "price": "49.00", "unit": "stool"},
    {"id": "desk", "name": "Sit-stand desk, 140 cm", "aliases": ["standing desk"], "price": "429.00",
     "unit": "desk"},
    {"id": "bench", "name": "Bench desk", "price": "300.00", "unit": "desk"},
]})


def said(question: str) -> str | None:
    found = group_price(question, PRICES.items, PRICES)
    return None if found is None else found[0]


@pytest.mark.parametrize("question, answer", [
    ("What's your cheapest plan?", "Our cheapest plans are Fiber 150 and Fiber 500, at £35 per month each."),
    ("Which plan is the most expensive?", "Our most expensive plan is Fiber 900, at £50 per month."),
    ("Is there a cheaper plan?", "Our cheapest plans are Fiber 150 and Fiber 500, at £35 per month each."),
    ("How much are your plans?",
     "Fiber 150 costs £35 per month, Fiber 500 costs £35 per month and Fiber 900 costs £50 per month."),
    # a quality the list does not hold: every price, never one as if it were the fastest
    ("What's the price of your fastest plan?",
     "Fiber 150 costs £35 per month, Fiber 500 costs £35 per month and Fiber 900 costs £50 per month."),
    ("What's the cheapest desk?", "Our cheapest desk is Bench desk, at £300 per desk."),  # a desk chair is no desk
    ("How much are the desks?", "Bench desk costs £300 per desk and Sit-stand desk, 140 cm costs £429 per desk."),
])
def test_a_kind_of_item_is_compared_or_listed_from_the_price_list(question, answer):
    assert said(question) == answer


@pytest.mark.parametrize("question", [
    "How much is the 500 plan?",  # names one item: its own question
    "How much is the desk?",  # singular, no comparison: retrieval's pick, as before
    "What plans do you have?",  # asks nothing of price: the knowledge base's entry
    "Do you have anything cheaper?",  # no kind: which one is the dialogue's to know
    "What's your cheapest mesh?",  # one item of that kind
])
def test_what_is_not_a_question_about_a_kind_of_item(question):
    assert said(question) is None


def test_items_of_different_units_are_listed_not_compared():
    mixed = PricesFile.model_validate({"items": [
        {"id": "a", "name": "Basic plan", "price": "20.00", "unit": "month"},
        {"id": "b", "name": "Annual plan", "price": "200.00", "unit": "year"}]})
    text, ids = group_price("What's your cheapest plan?", mixed.items, mixed)
    assert text == "Basic plan costs $20 per month and Annual plan costs $200 per year."
    assert ids == ("price:a", "price:b")
    assert kind_of("the chair and the stool", PRICES.items) is None  # each one of its kind
