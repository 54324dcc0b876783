"""The tolerant transcript checks of asr_support: they pass on Whisper's usual errors and still fail on wrong text."""

from __future__ import annotations

import pytest

from asr_support import assert_heard, assert_heard_any, heard_phrase, normalize, similarity


def test_normalize_joins_digit_groups_and_drops_punctuation():
    assert normalize("Order 10,452 - shipped!") == "order 10452 shipped"
    assert normalize("Order 10 452 arrives on Tuesday, November 24th.") == "order 10452 arrives on tuesday november 24"
    assert normalize("I'm on 1 2 3 4") == "im on 1 2 3 4"  # single digits stay apart


def test_a_misheard_word_still_counts_as_the_sentence():
    assert_heard("Your order has shit.", "Your order has shipped.")  # issue 11: failed 2 of 2 CI runs before
    assert_heard("Hello, thanks for calling the demo company!", "Hello, thanks for calling the demo company.")


def test_another_sentence_or_nothing_does_not():
    for wrong in ("Hello, thanks for calling the demo company.", "", "Thank you for watching."):
        with pytest.raises(AssertionError):
            assert_heard(wrong, "Your order has shipped.")
    assert similarity("Your order has shipped.", "Please book an appointment for Friday.") < 0.5


def test_phrases_allow_small_errors_in_long_words_only():
    assert heard_phrase("you are speaking with the automated assistance", "automated assistant")
    assert heard_phrase("Order 10,452 shipped with UPS", "10452") and heard_phrase("with UPS.", "UPS")
    assert not heard_phrase("Order 10453 shipped", "10452")  # numbers are exact
    assert not heard_phrase("tell me your pen", "PIN") and not heard_phrase("it is in the box", "PIN")
    assert not heard_phrase("Your order has shit.", "shipped")  # too far on its own: check the sentence instead


def test_any_of_counts_what_was_heard():
    said = "Order 10452 shipped with UPS and should arrive on Tuesday, November 24th."
    assert assert_heard_any(said, "10452", "UPS", "November 24", "arrive", at_least=3) == [
        "10452", "UPS", "November 24", "arrive"]
    with pytest.raises(AssertionError, match="at least 2"):
        assert_heard_any("Order shipped.", "10452", "UPS", "November 24", at_least=2)
    with pytest.raises(ValueError):
        assert_heard_any(said, "UPS", at_least=2)
