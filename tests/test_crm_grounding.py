"""The grounding helper: invented numbers, dates and amounts are caught; figures from tools or the caller pass."""

from __future__ import annotations

import pytest

from voicebot.crm.grounding import find_ungrounded

ORDER = {"ok": True, "result": {
    "number": "10452", "status": "shipped", "placed_at": "2026-02-27", "total": 238.98, "currency": "USD",
    "carrier": "UPS", "tracking": "1Z999AA10123456784", "eta": "2026-03-03",
    "items": [{"sku": "CHR-ERG-01", "description": "Ergonomic office chair", "quantity": 1, "unit_price": 189.0},
              {"sku": "PAP-A4-5", "description": "A4 copy paper, box of 5 reams", "quantity": 2,
               "unit_price": 24.99}]}}
SLOTS = {"ok": True, "result": {"slots": [{"id": 7, "service": "printer repair", "starts_at": "2026-03-04T14:00:00"}]}}


def flagged(reply: str, results=(ORDER,), caller: str = "") -> list[tuple[str, str]]:
    return [(u.kind, u.text) for u in find_ungrounded(reply, list(results), caller)]


@pytest.mark.parametrize("reply", [
    "Your order 10452 shipped with UPS and should arrive on Tuesday, March 3rd.",
    "Order 10452 arrives on 3 March; the total was $238.98.",
    "It should be there by 2026-03-03. The total is 238.98 dollars.",
    "The chair was 189 dollars and the paper $24.99 a box, 2 boxes.",
    "The tracking number is 1Z999AA10123456784.",
    "Order ten thousand four hundred fifty-two arrives on the third of March.",
    "One moment please. I see two items on that order.",
    "Your A4 paper, box of 5 reams, was ordered on February 27.",
])
def test_figures_from_the_tool_results_pass(reply):
    assert flagged(reply) == []


def test_an_invented_order_number_and_date_are_caught():
    assert flagged("Your order 10453 should arrive on March 5.") == [("number", "10453"), ("date", "March 5")]


def test_a_wrong_weekday_wrong_amount_and_wrong_year_are_caught():
    assert flagged("It arrives on Wednesday, March 3.") == [("date", "Wednesday, March 3")]
    assert flagged("The total was $283.98.") == [("amount", "$283.98")]
    assert flagged("It arrives on March 3, 2027.") == [("date", "March 3, 2027")]
    assert flagged("That comes to twenty five dollars and ninety nine cents.") == [
        ("amount", "twenty five dollars and ninety nine cents")]
    assert flagged("The tracking number is 1Z999AA10123456785.") == [("identifier", "1Z999AA10123456785")]


def test_times_from_iso_results_pass_and_invented_times_are_caught():
    assert flagged("I can book printer repair on Wednesday, March 4th at 2 pm.", [SLOTS]) == []
    assert flagged("I can book you at 2:00 on March 4.", [SLOTS]) == []
    assert flagged("How about March 4 at 3 pm?", [SLOTS]) == [("time", "3 pm")]


def test_what_the_caller_said_is_grounded_too():
    caller = "My order is one zero four five two, call me back at five five five, zero one zero, two zero three zero"
    assert flagged("I will call you back at 555 010 2030 about order 10452.", [], caller) == []
    assert flagged("I will call you back at 555 010 2031.", [], caller) == [("digits", "555 010 2031")]
    assert flagged("Booked for March 9.", [], "can I come on the ninth of March?") == []


def test_phone_numbers_in_results_match_their_national_form():
    result = {"ok": True, "result": {"phone": "+15550102030"}}
    assert flagged("We will call +1 555-010-2030.", [result]) == []
    assert flagged("We will call 555 010 2030.", [result]) == []


def test_counts_of_listed_things_are_grounded():
    orders = {"ok": True, "result": [{"number": "10452"}, {"number": "10398"}]}
    assert flagged("You have 2 open orders: 10452 and 10398.", [orders]) == []
    assert flagged("You have 3 open orders.", [orders]) == [("number", "3")]
