"""A whole answer to a yes-or-no question ends the turn at once, whatever the turn model hears.

Found on a SIP call: asked "Shall I pass this to our sales team for a written quote?", a caller's "Yes, that's
right." was scored 0.32 (unfinished) and waited the whole 1.6 s limit. Smart Turn hears many short answers so
("Yes, it is." 0.02, "Yeah, sure." 0.04; said slowly, "Yes." 0.03 and "No, that's all." 0.02). The words
(``preamble.closed_answer``) say what the audio does not, but only after a yes-or-no question: asked "May I have
your name?", "Yes," is the start of the answer. Words here, then the session in audio time (fakes), then the real
turn model and Whisper.
"""

from __future__ import annotations

import pytest
from test_turn_model import ScriptedTurnModel, call_with, turn_model  # noqa: F401

from voicebot.speech.dictation import ANYTHING_ELSE, YES_NO, partial_kind
from voicebot.speech.preamble import closed_answer


@pytest.mark.parametrize("partial", [
    "Yes.", "Yes, that's right.", "Yeah, sure.", "Yes, it is.", "No, that's all.", "Yes, go ahead.", "No.",
    "Okay.", "No, thank you.", "That's correct.", "Yep, that's it.", "No, it isn't.", "Sure, please do.",
    "Yes please", "No, I don't.", "Absolutely.", "That\u2019s right.",
])
def test_whole_answers_are_closed(partial):
    assert closed_answer(partial)
    assert partial_kind(partial, YES_NO) == "final"
    assert partial_kind(partial) != "final" or partial.lower().endswith("bye")  # the words alone decide nothing


@pytest.mark.parametrize("partial", [
    "Yes, and", "Yes, but", "No, it's", "Yes, my name is", "Yes, I", "No, the", "Yes, it's Karen",
    "I want to change the address", "Okay, so about my refund", "", "Yes, one two three",
])
def test_answers_that_go_on_are_not(partial):
    assert not closed_answer(partial)
    assert partial_kind(partial, YES_NO) != "final"


def test_after_anything_else_only_a_no_is_whole():
    """"Is there anything else?" "Yes, ..." opens the next request; "No, that's all." ends the call's last turn."""
    assert partial_kind("No, that's all.", ANYTHING_ELSE) == "final"
    assert partial_kind("Nope.", ANYTHING_ELSE) == "final"
    assert partial_kind("Yes.", ANYTHING_ELSE) != "final"
    assert partial_kind("Yes, please.", ANYTHING_ELSE) != "final"


def _waited(line, turns, index: int) -> float:
    """Seconds from the end of the caller's ``index``-th turn to the start of the bot's answer to it."""
    caller = [t for t in turns if t.role == "caller"][index]
    answer = next(u for u in line.bot_utterances() if u.start_s > caller.timings.end_of_speech)
    return answer.start_s - caller.timings.end_of_speech


def test_the_session_ends_a_whole_answer_to_a_yes_or_no_question_at_once(tmp_path, config):
    """The turn model hears every pause as unfinished. "Yes, it is." after "Shall I book it?" and "No, that's all."
    after "What else can I help you with?" are answered without the 1.6 s wait; "Yes" after "May I have your
    name?" and after "anything else?" still wait it (the name, the request, may follow)."""
    from fakes import ScriptedChat

    from voicebot.telephony.sim import HangUp, Silence, WaitForBot

    chat = ScriptedChat([{"action": "reply", "text": "Shall I book it?"},
                         {"action": "reply", "text": "Thank you. May I have your name?"},
                         {"action": "reply", "text": "Is there anything else I can help with?"},
                         {"action": "reply", "text": "I see."}], repeat=True)
    line, _, turns, _ = call_with(tmp_path, config, ScriptedTurnModel(False), lambda voice: [
        WaitForBot(), voice.say("I need a repair visit", 1.0), WaitForBot(), Silence(0.5),
        voice.say("yes it is", 0.6), WaitForBot(), Silence(0.5),
        voice.say("yes", 0.4), WaitForBot(), Silence(0.5),
        voice.say("yes", 0.4), WaitForBot(), Silence(0.5),
        voice.say("no that's all", 0.6), WaitForBot(), HangUp()], chat=chat)
    assert [t.text for t in turns if t.role == "caller"] == [
        "I need a repair visit", "yes it is", "yes", "yes", "no that's all"]
    limit = config.turns.incomplete_silence_ms / 1000
    assert _waited(line, turns, 1) < limit - 0.6  # asked yes or no
    assert _waited(line, turns, 2) >= limit - 0.05  # asked for a name
    assert _waited(line, turns, 3) >= limit - 0.05  # "anything else?" "Yes": the request follows
    assert "What else" in [t.text for t in turns if t.role == "bot"][4]  # the dialogue's own answer to that yes
    assert _waited(line, turns, 4) < limit - 0.6  # "What else can I help you with?" "No, that's all."


def test_real_models_a_slow_yes_it_is_after_a_yes_or_no_question_is_answered_at_once(
        tmp_path, config, model_store, transcriber, turn_model):  # noqa: F811
    """Whisper, webrtcvad (+ Silero) and Smart Turn on the simulated line: Piper's "Yes, it is." (scored 0.02, as
    unfinished as audio gets) after "Shall I book it?" is answered well before the 1.6 s limit."""
    from fakes import ScriptedChat

    from voicebot.components import make_voice_activity
    from voicebot.speech.tts import PiperSynthesizer
    from voicebot.telephony.sim import HangUp, Say, Silence, WaitForBot

    rate = 16000
    voice = PiperSynthesizer(model_store.locate(config.tts.voice), voice=config.tts.voice, noise_scale=0.0,
                             noise_w_scale=0.0)

    def said(text: str) -> bytes:
        return b"".join(c.pcm for c in voice.stream(text, rate))

    assert not turn_model.score(said("Yes, it is.") + b"\0\0" * 3200, rate).complete  # the audio alone: unfinished
    chat = ScriptedChat([{"action": "reply", "text": "Shall I book it?"},
                         {"action": "reply", "text": "Done. Is there anything else?"}], repeat=True)
    line, _, turns, _ = call_with(
        tmp_path, config, turn_model, lambda v: [
            WaitForBot(), Say(said("I need a repair visit."), rate, "request"), WaitForBot(), Silence(0.5),
            Say(said("Yes, it is."), rate, "yes"), WaitForBot(), HangUp()],
        transcriber=transcriber, vad=make_voice_activity(config), chat=chat, speed=1.0)
    callers = [t.text for t in turns if t.role == "caller"]
    assert len(callers) == 2 and "yes" in callers[1].lower(), callers
    assert _waited(line, turns, 1) < config.turns.incomplete_silence_ms / 1000 - 0.4
