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
    ("A.D.D.D.D.D.D.D.D.D.D.", "repetition"),  # Whisper's line for "Eight eight eight eight." on a SIP call
])
def test_hallucinations_are_rejected(text, reason):
    verdict = check(text)
    assert verdict is not None and verdict.reason == reason


@pytest.mark.parametrize("text", [
    "Where is my order?", "Thank you.", "Thank you for your help.", "no no no", "yes", "one one one one",
    "1 1 1 1 1 1", "one one one one one one", "I want to talk to a person. A person!", "Okay. Okay.",
    "My order is 10452. 10452.", "I'm a man", "the printer is broken, broken, broken",
    "K A R E N", "S W 1 A 1 A A", "A A A", "It's B B C",  # spelled, short, or in words
])
def test_callers_words_pass(text):
    assert check(text) is None


def test_whisper_doubt_needs_both_a_silent_window_and_a_low_probability():
    assert check("Where is my order?", no_speech_prob=0.9, avg_logprob=-1.4).reason == "low_confidence"
    assert check("Where is my order?", no_speech_prob=0.9, avg_logprob=-0.3) is None  # clear words, quiet line
    assert check("Where is my order?", no_speech_prob=0.1, avg_logprob=-1.4) is None  # speech, hard to read


def test_at_the_pin_prompt_a_garbled_answer_is_asked_again_with_how_to_give_it(tmp_path, config):
    """On a SIP call Whisper heard "Eight eight eight eight." as "A.D.D.D.D.D.D.D.D.D.D.", which went to the model:
    "I'm sorry, but I don't have your PIN. Please try again." Now it is not heard at all: the caller is told how to
    give the PIN, no attempt is used, and the right PIN then verifies."""
    from fakes import ScriptedChat
    from test_turn_model import ScriptedTurnModel, call_with

    from voicebot.dialog.identity import PIN_NOT_CAUGHT
    from voicebot.telephony.sim import HangUp, WaitForBot

    chat = ScriptedChat([{"action": "reply", "text": "The model should not be asked."}], repeat=True)
    _, session, turns, _ = call_with(tmp_path, config, ScriptedTurnModel(True), lambda voice: [
        WaitForBot(), voice.say("Where is my order?", 1.0), WaitForBot(),
        voice.say("A.D.D.D.D.D.D.D.D.D.D.", 1.0), WaitForBot(), voice.say("1234", 1.0), WaitForBot(), HangUp()],
        chat=chat)
    bots = [t.text for t in turns if t.role == "bot"]
    assert "PIN" in bots[1] and bots[2] == PIN_NOT_CAUGHT, bots
    assert "Order" in bots[3] and "model" not in " ".join(bots), bots  # verified at the first real attempt
    assert [e.reason for e in session.events if type(e).__name__ == "TranscriptRejected"] == ["repetition"]
