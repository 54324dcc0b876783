"""Verification in code: PIN or date of birth + postcode, spoken forms, limited attempts, lockout."""

from __future__ import annotations

from datetime import date

import pytest
from crm_support import make_repo

from voicebot.crm.spoken import digits_in, parse_date
from voicebot.crm.verification import CallerContext, Outcome, Verification, normalize_postcode


@pytest.fixture
def repo():
    repo = make_repo()
    repo.add_customer("Alice Johnson", ["555-010-2030"], pin="1234", date_of_birth=date(1985, 3, 14),
                      postcode="98101")
    repo.add_customer("Tom Baker", ["+44 20 7946 0958"], date_of_birth=date(1979, 11, 2), postcode="SW1A 1AA")
    return repo


@pytest.mark.parametrize("said, digits", [
    ("1234", "1234"), ("one two three four", "1234"), ("my PIN is one, two, three, four", "1234"),
    ("twelve thirty-four", "1234"), ("double one two two", "1122"), ("oh four five six", "0456"),
    ("12 34#", "1234"), ("I don't remember", ""),
])
def test_spoken_and_keyed_digits_normalise(said, digits):
    assert digits_in(said) == digits


@pytest.mark.parametrize("said", ["1985-03-14", "March 14, 1985", "14 March 1985", "the fourteenth of March 1985",
                                  "March fourteenth nineteen eighty-five", "3/14/1985"])
def test_dates_of_birth_normalise(said):
    assert parse_date(said, "US") == date(1985, 3, 14)


def test_day_first_numeric_dates_outside_the_us():
    assert parse_date("14/03/1985", "GB") == date(1985, 3, 14)
    assert parse_date("March 14", "US") is None  # no year: not a full date of birth


def test_postcodes_normalise():
    assert normalize_postcode("sw1a 1aa") == normalize_postcode("S W one A one A A") == "SW1A1AA"
    assert normalize_postcode("nine eight one oh one") == "98101"


def test_pin_is_stored_hashed(repo):
    stored = repo.db["customers"].get(1)["pin_hash"]
    scheme, iterations, salt, digest = stored.split("$")
    # the PIN is in no field; "1234" inside the random hex salt or digest would be chance (1 run in ~700 before)
    assert scheme == "pbkdf2_sha256" and iterations.isdigit() and "1234" not in (scheme, iterations)
    assert len(salt) == 32 and len(digest) == 64 and int(salt, 16) >= 0 and int(digest, 16) >= 0


def test_correct_spoken_pin_verifies(repo):
    ctx = CallerContext.start(repo, "+1 555 010 2030")
    assert ctx.customer.name == "Alice Johnson" and ctx.verified_customer is None
    result = ctx.verify(pin="one two three four")
    assert result.outcome is Outcome.VERIFIED and ctx.verified_customer == ctx.customer


def test_birth_date_and_postcode_verify(repo):
    ctx = CallerContext.start(repo, "0044 20 7946 0958")
    assert ctx.verify(pin="1234").outcome is Outcome.NO_SECRET  # Tom has no PIN: nothing used up
    assert ctx.verify(date_of_birth="2 November 1979").outcome is Outcome.UNCLEAR  # postcode missing
    assert ctx.verification.attempts_left == 3
    assert ctx.verify(date_of_birth="November 2nd, 1979", postcode="sw1a 1aa").verified
    assert ctx.verified_customer.name == "Tom Baker"


def test_a_date_in_figures_is_read_the_way_the_callers_country_writes_it(repo):
    """Tom, calling from a British number, said "2/11/1979" (2 November): the US company's CRM read it as
    February 11 and his right answer used an attempt. A US caller's "3/14/1985" is still March 14."""
    ctx = CallerContext.start(repo, "+44 20 7946 0958")
    assert ctx.verify(date_of_birth="2/11/1979", postcode="SW1A 1AA").verified
    us = CallerContext.start(repo, "+1 555 010 2030")
    assert us.verify(date_of_birth="3/14/1985", postcode="98101").verified


def test_wrong_answers_use_attempts_then_lock_out(repo):
    ctx = CallerContext.start(repo, "555-010-2030")
    ctx.verification = Verification(max_attempts=3)
    first = ctx.verify(pin="4321")
    assert (first.outcome, first.attempts_left) == (Outcome.WRONG, 2)
    assert ctx.verify(pin="umm").outcome is Outcome.UNCLEAR  # nothing comparable heard: no attempt used
    assert ctx.verify(date_of_birth="March 14, 1985", postcode="10001").outcome is Outcome.WRONG
    last = ctx.verify(pin="0000")
    assert (last.outcome, last.attempts_left) == (Outcome.LOCKED, 0)
    assert ctx.verification.locked
    assert ctx.verify(pin="1234").outcome is Outcome.LOCKED  # even the right PIN no longer works on this call
    assert ctx.verified_customer is None


def test_attempts_come_from_config_and_switching_accounts_does_not_reset_them(repo):
    ctx = CallerContext.start(repo, "555-010-2030", max_attempts=1)
    assert ctx.verify(pin="9999").outcome is Outcome.LOCKED
    ctx.identify(repo.find_customer_by_phone("+44 20 7946 0958"))
    assert ctx.verify(date_of_birth="1979-11-02", postcode="SW1A 1AA").outcome is Outcome.LOCKED


def test_unknown_caller_has_nobody_to_verify(repo):
    ctx = CallerContext.start(repo, "anonymous")
    assert ctx.caller_id is None and ctx.customer is None
    assert ctx.verify(pin="1234").outcome is Outcome.NO_CUSTOMER
    assert ctx.verification.attempts_left == 3
