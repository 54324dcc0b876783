"""A hang never means more than ~3 s of silence (issue 12): the silence watchdog's hold line.

Timelines at line pace (``speed=1``) on the simulated line: the caller asks, then a part hangs. Before the watchdog
the caller heard nothing until the stage's limit (10-25 s); now the pre-rendered hold line plays
``faults.hold_after_s`` after the caller's turn ended, the turn goes on waiting, and at the limit the fault path
apologises and transfers. A slow part that does answer after the hold line is heard as usual. The same through a
real `voicebot serve` over SIP with the Ollama backend on a server that never answers is in test_faults_hold_sip.py.
"""

from __future__ import annotations

import pytest

from fakes import ScriptedChat
from ollama_server import FakeOllama
from test_faults import (OLLAMA_MODEL, BrokenTranscriber, Live, assert_apology_then_person, call,
                         limits, short, turn_end)
from test_session import COFFEE, reply, with_dialog

import test_faults
from voicebot.llm.ollama_backend import OllamaChatModel
from voicebot.store import Outcome

crm_template, env = test_faults.crm_template, test_faults.env  # the fixtures these tests share

HOLD_S = 2.5


def no_filler(env, **limits_s: float):
    """Short prompts, no filler (it would cover a hung model on its own), the hold line after 2.5 s."""
    return limits(with_dialog(short(env), filler_after_ms=0), hold_after_s=HOLD_S, **limits_s)


def first_audio_after(result, at_s: float) -> float:
    """Seconds from ``at_s`` (call audio) to the first bot audio after it."""
    starts = [u.start_s for u in result.line.bot_utterances(min_gap_s=0) if u.start_s >= at_s - 0.02]
    assert starts, "nothing was played after the caller's turn"
    return starts[0] - at_s


def assert_hold_line(result, env, config) -> float:
    """The hold line was heard first, ~hold_after_s after the caller stopped speaking (what the caller hears as
    silence: the turn itself ends ``end_of_turn_silence_ms`` later); it is on record as said."""
    end = turn_end(result, config) - config.vad.end_of_turn_silence_ms / 1000
    silence = first_audio_after(result, end)
    assert HOLD_S - 0.1 <= silence <= 3.0, silence
    hold = result.turn("bot", config.dialog.prompts.hold)
    assert abs(hold.started_at - (end + silence)) <= 0.1, (hold.started_at, end + silence)
    assert config.dialog.prompts.hold not in env.synth.texts  # rendered at start, not synthesised at the hang
    return silence


def test_a_hung_model_gets_the_hold_line_then_the_apology(env):
    config = no_filler(env, llm_timeout_s=5.0)
    live = Live()
    result = call(env, ScriptedChat([reply(COFFEE)], on_piece=live.hang), config, speed=1.0, live=live)

    silence = assert_hold_line(result, env, config)
    limit_at = turn_end(result, config) + 5.0  # the fault: the stage's limit, counted from the turn's end
    delay = assert_apology_then_person(result, env, "llm", limit_at)
    assert delay <= 0.5  # at the limit, not before: the turn kept waiting after the hold line
    assert silence < 3.0
    said = result.said("bot")[1:]  # the hold line again after each further hold_after_s, then the apology
    assert said[-1] == env.prompts.error and set(said[:-1]) == {config.dialog.prompts.hold}, said
    assert len(result.session.watchdog.held) == len(said) - 1


def longest_silence(result, from_s: float, to_s: float) -> float:
    """The longest stretch without bot audio between ``from_s`` and ``to_s`` (call audio seconds)."""
    edges = [(u.start_s, u.end_s) for u in result.line.bot_utterances(min_gap_s=0) if from_s <= u.end_s
             and u.start_s <= to_s]
    gaps, last = [], from_s
    for start, end in edges:
        gaps.append(start - last)
        last = max(last, end)
    return max(gaps, default=to_s - from_s)


def test_after_the_filler_a_hung_model_still_never_leaves_more_than_3_s_of_silence(env):
    """The filler at 0.6 s used to be the last sound until the 25 s limit: the hold line follows every 2.5 s."""
    config = limits(with_dialog(short(env), filler_after_ms=600), hold_after_s=HOLD_S, llm_timeout_s=9.0)
    live = Live()
    result = call(env, ScriptedChat([reply(COFFEE)], on_piece=live.hang), config, speed=1.0, live=live)

    end = turn_end(result, config)
    apology = result.turn("bot", env.prompts.error)
    assert longest_silence(result, end, apology.started_at) <= 3.0
    said = result.said("bot")
    assert said[1] == config.dialog.prompts.hold and said[-1] == env.prompts.error
    assert said.count(config.dialog.prompts.hold) == len(result.session.watchdog.held) >= 2
    assert "filler" in result.kinds()
    assert_apology_then_person(result, env, "llm", end + 9.0)


def test_hung_speech_recognition_gets_the_hold_line_then_the_apology(env):
    config = no_filler(env, stt_timeout_s=5.0)
    live = Live()
    result = call(env, config=config, speed=1.0, transcriber=BrokenTranscriber(env.transcriber, live), live=live)

    silence = assert_hold_line(result, env, config)
    assert_apology_then_person(result, env, "stt", turn_end(result, config) + silence)  # hold, then the apology


def test_a_slow_model_that_answers_after_the_hold_line_is_heard_as_usual(env):
    config = no_filler(env, llm_timeout_s=10.0)
    chat = ScriptedChat([reply(COFFEE)], on_piece=lambda i: i == 0 and __import__("time").sleep(3.5))
    result = call(env, chat, config, speed=1.0)

    assert_hold_line(result, env, config)
    assert result.said("bot")[1:] == [config.dialog.prompts.hold, COFFEE]
    assert result.outcome == Outcome.ABANDONED and "error" not in result.kinds()  # slow, not a fault


def test_a_quick_answer_plays_no_hold_line(env):
    config = no_filler(env)
    result = call(env, ScriptedChat([reply(COFFEE)]), config, speed=1.0)
    assert first_audio_after(result, turn_end(result, config)) < HOLD_S
    assert config.dialog.prompts.hold not in result.said("bot") and result.session.watchdog.held == []


def test_the_real_ollama_client_against_a_server_that_never_answers(env):
    """The official client on HTTP against a server that takes the request and sends nothing at all."""
    live = Live()
    config = no_filler(env, llm_timeout_s=5.0)
    with FakeOllama(ScriptedChat([reply(COFFEE)], on_piece=lambda i: i == 0 and live.hang()), OLLAMA_MODEL) as srv:
        result = call(env, OllamaChatModel(srv.url, OLLAMA_MODEL, timeout_s=30.0), config, speed=1.0, live=live)
    silence = assert_hold_line(result, env, config)
    assert_apology_then_person(result, env, "llm", turn_end(result, config) + silence)
    assert srv.requests and srv.requests[-1]["path"] == "/api/chat"


def test_the_hold_line_counts_from_the_end_of_a_dictation_wait_not_from_the_last_digit():
    """A dictated order number waits ``turns.dictation_silence_ms`` (2.5 s) for more digits; counted from the last
    digit, the hold line ("Sorry, this is taking a moment.") came with every such answer (SIP, a street caller)."""
    from voicebot.session.watchdog import turn_ended
    from voicebot.speech.turns import Utterance

    said = dict(pcm=b"", sample_rate=8000, started_at_s=10.0, ended_at_s=15.9, speech_ended_at_s=15.6)
    assert turn_ended(Utterance(18.1, ended_by="dictation", **said)) == 18.1
    assert turn_ended(Utterance(16.0, ended_by="model", **said)) == 15.6  # else: the caller's own silence
    # a scene-setting first turn held 2.4 s (the open floor): the hold line no sooner than 1 s after it was taken
    assert turn_ended(Utterance(18.0, ended_by="silence", **said)) == pytest.approx(16.5)
    assert turn_ended(Utterance(17.2, ended_by="silence", **said)) == 15.7  # a hung partial's 1.6 s: ~as before
