"""Slots read in code from the caller's words: days and times against a fixed "today", dictated order numbers,
answers to a read-back, and the evidence a CRM write needs. Tables of phrasings, as callers say them."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from voicebot.dialog.answers import match_intent
from voicebot.dialog.slots import parse_when, spoken_when
from voicebot.dialog.writes import (answer_to_readback, asked_for, caller_request, grounded_args,
                                    says_what_is_wrong)

TODAY = date(2026, 11, 29)  # a Sunday


def d(day: int, month: int = 12, year: int = 2026) -> date:
    return date(year, month, day)


DAYS = [
    ("I need a repair visit next Tuesday morning", d(1), d(1)),
    ("Tuesday at ten, please", d(1), d(1)),
    ("the day after tomorrow at ten", d(1), d(1)),
    ("day after tomorrow", d(1), d(1)),
    ("tomorrow", d(30, 11), d(30, 11)),
    ("could you come tomorrow afternoon", d(30, 11), d(30, 11)),
    ("today if possible", d(29, 11), d(29, 11)),
    ("this afternoon", d(29, 11), d(29, 11)),
    ("on the 3rd", d(3), d(3)),
    ("the third", d(3), d(3)),
    ("on the thirty first", d(31), d(31)),
    ("the 31st", d(31), d(31)),
    ("the 28th", d(28), d(28)),  # the 28th of November has passed: December's
    ("December 3rd at 2 pm", d(3), d(3)),
    ("december the third", d(3), d(3)),
    ("3 December", d(3), d(3)),
    ("the twenty third of December", d(23), d(23)),
    ("on the 5th of January", d(5, 1, 2027), d(5, 1, 2027)),
    ("January 5th 2027", d(5, 1, 2027), d(5, 1, 2027)),
    ("in two weeks", d(13), d(13)),
    ("in 3 days", d(2), d(2)),
    ("in a fortnight", d(13), d(13)),
    ("in a week", d(6), d(6)),
    ("this Friday afternoon", d(4), d(4)),
    ("friday", d(4), d(4)),
    ("on Monday", d(30, 11), d(30, 11)),
    ("Monday at 9", d(30, 11), d(30, 11)),
    ("a week on Friday", d(11), d(11)),
    ("Tuesday after next", d(8), d(8)),
    ("Tuesday week", d(8), d(8)),
    ("next Tuesday fortnight", d(15), d(15)),  # British: two weeks after next Tuesday (it was next Tuesday)
    ("a fortnight on Friday", d(18), d(18)),
    ("next week", d(30, 11), d(6)),
    ("sometime this week", d(29, 11), d(29, 11)),
    ("next weekend", d(5), d(6)),
    ("at noon on Wednesday", d(2), d(2)),
    ("wednesday", d(2), d(2)),
    ("thursday morning", d(3), d(3)),
    ("Saturday", d(5), d(5)),
    ("this Sunday", d(29, 11), d(29, 11)),
    ("next Sunday", d(6), d(6)),
]


@pytest.mark.parametrize(("said", "first", "last"), DAYS)
def test_days_are_computed_from_today(said, first, last):
    when = parse_when(said, TODAY)
    assert when is not None and (when.first_day, when.last_day) == (first, last)


TIMES = [
    ("Tuesday at ten, please", 10, 0, None),
    ("at 10", 10, 0, None),
    ("at 10:30", 10, 30, None),
    ("around 10:30 am", 10, 30, None),
    ("10 am", 10, 0, None),
    ("2 pm", 14, 0, None),
    ("2:15 p.m.", 14, 15, None),
    ("at two", 14, 0, None),  # a service desk's "two" is the afternoon
    ("at 8", 8, 0, None),
    ("at eight in the evening", 20, 0, "evening"),
    ("at ten thirty", 10, 30, None),
    ("three pm would be great", 15, 0, None),
    ("at half past two", 14, 30, None),
    ("at noon", 12, 0, None),
    ("midday", 12, 0, None),
    ("12 am", 0, 0, None),
    ("at four o'clock", 16, 0, None),
    ("in the morning", None, 0, "morning"),
    ("tomorrow morning", None, 0, "morning"),
    ("friday afternoon", None, 0, "afternoon"),
    ("this evening", None, 0, "evening"),
    ("around lunchtime", None, 0, "lunchtime"),
    ("at 3 in the afternoon", 15, 0, "afternoon"),
    ("call me back after 5", 17, 0, None),  # "after": the earliest time, as a callback's not_before keeps it
    ("any time after five pm", 17, 0, None),
    ("friday after 2", 14, 0, None),
]


@pytest.mark.parametrize(("said", "hour", "minute", "part"), TIMES)
def test_times_and_parts_of_the_day(said, hour, minute, part):
    when = parse_when(said, TODAY)
    assert when is not None and (when.hour, when.minute, when.part) == (hour, minute, part)


@pytest.mark.parametrize("said", [
    "hello", "my order is 10452", "I want to speak to someone", "one two three four", "yes please",
    "the printer is broken", "how much are desks", "what are your opening hours", "thank you", "",
    "it's order number one zero four five two", "at the office", "the first one", "at one of your stores",
    "it broke after one of your technicians came",
])
def test_words_without_a_time_name_none(said):
    assert parse_when(said, TODAY) is None


@pytest.mark.parametrize(("said", "minutes", "words"), [
    ("Can you call me back in an hour?", 60, "in an hour"), ("in about an hour or so", 60, "in about an hour"),
    ("call me in 20 minutes", 20, "in 20 minutes"), ("in half an hour please", 30, "in half an hour"),
    ("in a couple of hours", 120, "in a couple of hours"), ("in two hours", 120, "in two hours"),
    ("within the hour", 60, "within the hour"), ("in an hour and a half", 90, "in an hour and a half"),
    ("in 5 mins", 5, "in 5 mins"),
])
def test_a_time_from_now_is_kept_as_minutes_for_the_clock_to_place(said, minutes, words):
    when = parse_when(said, TODAY)
    assert when is not None and (when.in_minutes, when.text) == (minutes, words)
    assert not (when.has_day or when.has_time)  # no day or clock time of its own: the slot lists ignore it


@pytest.mark.parametrize("said", ["I ordered it two hours ago", "I waited for an hour", "in a few minutes",
                                  "in 2000 minutes", "tomorrow in an hour"])
def test_no_time_from_now_in_other_words(said):
    when = parse_when(said, TODAY)
    assert when is None or when.in_minutes is None


def test_a_when_matches_slots_by_day_hour_and_part():
    when = parse_when("next Tuesday morning", TODAY)
    assert when.matches(datetime(2026, 12, 1, 9)) and not when.matches(datetime(2026, 12, 1, 14))
    assert not when.matches(datetime(2026, 12, 2, 9))
    at_ten = parse_when("at 10", TODAY)
    assert at_ten.matches(datetime(2026, 12, 7, 10)) and not at_ten.matches(datetime(2026, 12, 7, 11))
    assert spoken_when(parse_when("the day after tomorrow at ten", TODAY)) == "Tuesday, December 1st at 10 AM"
    assert spoken_when(when) == "Tuesday, December 1st in the morning"


def test_a_pin_is_never_read_as_a_time():
    assert parse_when("my PIN is 1 2 3 0", TODAY) is None


@pytest.mark.parametrize(("said", "number"), [
    ("where is my order 10452", "10452"),
    ("where is my order one zero four five two", "10452"),
    ("where's my order 10-452", "10452"),
    ("order status for three six nine five two please", "36952"),
    ("where is my order 369 52", "36952"),
    ("track order oh four five two one", "04521"),
    ("where is order double five three two one", "55321"),
    ("when will order ten four fifty two arrive", "10452"),
    ("where is my order 10452? my PIN is 1234", "10452"),
])
def test_dictated_order_numbers(said, number):
    assert match_intent(said) == ("get_order", {"order_number": number})


@pytest.mark.parametrize(("said", "answer"), [
    ("yes", True), ("Yes please.", True), ("yeah", True), ("sure", True), ("okay", True), ("that's right", True),
    ("correct", True), ("go ahead", True), ("please do", True), ("sounds good", True), ("yep, book it", True),
    ("no", False), ("No, don't do that.", False), ("nope", False), ("cancel", False), ("wait", False),
    ("not now", False), ("that's wrong", False), ("never mind", False),
    ("what time is it", None), ("actually where is my order", None), ("hmm", None),
    ("Please.", True), ("Please go ahead.", True), ("Yes, please do that.", True), ("No problem, go ahead.", True),
    ("Yes, no problem.", True), ("Sure, thank you.", True),
])
def test_answers_to_a_read_back(said, answer):
    assert answer_to_readback(said) is answer


@pytest.mark.parametrize(("said", "names_it"), [
    # only that there is a problem: a ticket saying so tells the team nothing, so the bot asks what went wrong
    ("I am not sure who I should talk to about a small problem", False), ("I have a problem.", False),
    ("I want to make a complaint.", False), ("I'd like to report a problem with my order.", False),
    ("There's an issue with my delivery, can someone help?", False), ("I've got a quick question", False),
    # what is wrong, in any words
    ("The chair arrived broken.", True), ("The printer jams on every page.", True), ("It's scratched.", True),
    ("You sent me the wrong colour.", True), ("There's an issue with my invoice.", True),
    ("Order 10452 came without the screws.", True),
])
def test_whether_the_caller_said_what_is_wrong(said, names_it):
    assert says_what_is_wrong(said) is names_it


@pytest.mark.parametrize(("said", "tool", "answer"), [
    # "please" opens a new request as often as it agrees: the lead was written for a caller who asked for a callback
    ("Please call me back tomorrow morning.", "create_lead", None),
    ("Please send me a quote for twenty desks instead.", "request_callback", None),
    ("Okay, but my chair also arrived broken.", "create_lead", None),
    # a yes that repeats what is being read back is still a yes
    ("Yes, please call me back tomorrow morning.", "request_callback", True),
    ("Yes please, I'm interested in the desks.", "create_lead", True),
    ("Please, that's fine.", "book_appointment", True),
])
def test_a_new_request_after_a_yes_word_is_not_an_answer(said, tool, answer):
    assert answer_to_readback(said, tool) is answer


@pytest.mark.parametrize(("tool", "said", "asked"), [
    ("request_callback", "please call me back tomorrow", True),
    ("request_callback", "can someone call me later", True),
    ("request_callback", "could I get a callback", True),
    ("request_callback", "have a colleague give me a call", True),
    ("request_callback", "do you have loyalty points", False),
    ("request_callback", "what are your opening hours", False),
    ("create_ticket", "the chair arrived broken", True),
    ("create_ticket", "my printer doesn't work", True),
    ("create_ticket", "you sent the wrong item", True),
    ("create_ticket", "I want to report a problem", True),
    ("create_ticket", "I am a man. I am a man.", False),
    ("create_ticket", "hello", False),
    ("create_lead", "I'd like a quote for 50 desks", True),
    ("create_lead", "how much are your office chairs", True),
    ("create_lead", "I'm interested in buying printers", True),
    ("create_lead", "where is my order", False),
    ("book_appointment", "Tuesday at ten", True),
])
def test_a_write_needs_the_callers_request(tool, said, asked):
    assert asked_for(tool, [said]) is asked


@pytest.mark.parametrize(("said", "tool", "answer"), [
    ("No wait, it's the desk, not the chair.", "create_ticket", None),  # a correction: read back again
    ("No, I'd rather have Thursday afternoon", "book_appointment", None),
    ("No wait, it's the desk, not the chair.", None, False),
    ("No thanks.", "create_ticket", False),
    ("No, I don't want that, thanks", "create_ticket", False),
    ("No, not now, maybe later.", "book_appointment", False),
    ("No, just leave it for now, thanks", "create_lead", False),
    ("Actually, never mind.", "request_callback", False),  # went to the model
    ("Oh, no thanks.", "create_ticket", False), ("Um, yes please.", "create_ticket", True),
    ("Actually no, it's the desk that is broken.", "create_ticket", None),
])
def test_a_no_with_more_words_corrects_a_read_back(said, tool, answer):
    assert answer_to_readback(said, tool) is answer


def test_the_subject_is_the_callers_own_words_with_secrets_masked():
    turns = ["The desk you delivered has a cracked leg.", "yes please"]
    assert caller_request(turns) == "The desk you delivered has a cracked leg."
    assert "4815" not in (caller_request(["my pin is 4815 and the chair is broken"]) or "")
    assert caller_request(["yes", "ok"]) is None
    # an opening "Okay." or "Hi, um," is no part of the subject the team reads
    assert caller_request(["Okay. My wifi keeps dropping out."]) == "My wifi keeps dropping out."
    assert caller_request(["Hi, um, the chair arrived broken"]) == "The chair arrived broken"
    assert caller_request(["No internet since Monday at all"]) == "No internet since Monday at all"  # its own word
    args = grounded_args("create_ticket", turns, TODAY, caller_name="Alice")
    assert args == {"subject": "The desk you delivered has a cracked leg.",
                    "description": "The desk you delivered has a cracked leg."}
    callback = grounded_args("request_callback", ["Please call me back tomorrow morning."], TODAY, caller_name=None)
    assert callback["preferred_time"] == "tomorrow morning (Monday, November 30th in the morning)"
    assert grounded_args("create_lead", ["yes"], TODAY, caller_name=None) is None
