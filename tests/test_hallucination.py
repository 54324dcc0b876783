"""Whisper's hallucinations are told from callers' words: subtitle phrases, loops, and windows Whisper doubts."""

from __future__ import annotations

import pytest

from voicebot.speech.hallucination import check


@pytest.mark.parametrize(("text", "reason"), [
    ("Thank you for watching.", "subtitle"), ("Thanks for watching!", "subtitle"), ("Please subscribe.", "subtitle"),
    ("[Music]", "subtitle"), ("(applause)", "subtitle"), ("♪ ♪", "subtitle"), ("you", "subtitle"),
    ("Subtitles by the Amara.org community", "subtitle"),
    ("I am a man. I am a man. I am a man.", "repetition"), ("Okay. Okay. Okay. Okay.", "repetition"),
    ("so so so so so so so", "repetition"), ("thank you thank you thank you", "repetition"),
])
def test_hallucinations_are_rejected(text, reason):
    verdict = check(text)
    assert verdict is not None and verdict.reason == reason


@pytest.mark.parametrize("text", [
    "Where is my order?", "Thank you.", "Thank you for your help.", "no no no", "yes", "one one one one",
    "1 1 1 1 1 1", "one one one one one one", "I want to talk to a person. A person!", "Okay. Okay.",
    "My order is 10452. 10452.", "I'm a man", "the printer is broken, broken, broken",
])
def test_callers_words_pass(text):
    assert check(text) is None


def test_whisper_doubt_needs_both_a_silent_window_and_a_low_probability():
    assert check("Where is my order?", no_speech_prob=0.9, avg_logprob=-1.4).reason == "low_confidence"
    assert check("Where is my order?", no_speech_prob=0.9, avg_logprob=-0.3) is None  # clear words, quiet line
    assert check("Where is my order?", no_speech_prob=0.1, avg_logprob=-1.4) is None  # speech, hard to read
