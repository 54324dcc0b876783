"""Speech over the bot (``speech.overlap``): duck at once, pause if it goes on, resume after a backchannel, stop
for an interruption.

Timelines in audio time with a scripted VAD; then calls on the simulated line with fakes, measured on the line's
recordings as the caller hears them: how long the bot stayed silent for a "mm-hmm", how soon after the caller's
onset it went quiet for a question, and that the question was answered.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_turn_model import call_with
from test_turns import FRAME, detector, of, run, tone

from voicebot.config import VadConfig
from voicebot.speech.turns import Backchannel, BargeIn, Duck, Interruption, Utterance


def speaking(*spans, **config):
    turns = detector(*spans, **config)
    turns.set_bot_speaking(True)
    return turns


def test_a_short_backchannel_ducks_the_bot_and_it_plays_on_at_full_voice_when_it_stops():
    turns = speaking((1.0, 1.26), barge_in_ms=120, backchannel_gap_ms=80, min_speech_ms=200)  # "yes", 0.26 s
    events = run(turns, 3)
    (duck,) = of(events, Duck)
    (resume,) = of(events, Backchannel)
    assert duck.at_s == pytest.approx(1.0 + 0.12, abs=FRAME) and duck.db == 24.0  # the voice drops at once ...
    assert not of(events, BargeIn)  # ... but the reply never stops: no gap at all
    assert resume.at_s == pytest.approx(1.26 + 0.08, abs=FRAME)
    assert not of(events, Interruption)
    (utterance,) = of(events, Utterance)
    assert utterance.during_playback and not utterance.barged_in  # the session only runs the guard on it


def test_a_longer_backchannel_pauses_the_ducked_bot_only_for_the_rest_of_the_word():
    turns = speaking((1.0, 1.44), barge_in_ms=120, backchannel_gap_ms=80, min_speech_ms=200)  # "mm-hmm", 0.44 s
    events = run(turns, 3)
    (duck,), (pause,), (resume,) = of(events, Duck), of(events, BargeIn), of(events, Backchannel)
    assert duck.at_s == pytest.approx(1.12, abs=FRAME)
    assert pause.at_s == pytest.approx(1.0 + VadConfig().pause_ms / 1000, abs=FRAME)  # vad.pause_ms over the bot
    assert resume.at_s == pytest.approx(1.44 + 0.08, abs=FRAME)
    assert resume.at_s - pause.at_s <= 0.25  # the bot's gap: the rest of the word plus 80 ms
    assert not of(events, Interruption)


def test_without_ducking_the_bot_pauses_at_the_barge_in_length():
    turns = speaking((1.0, 1.4), barge_in_ms=120, backchannel_gap_ms=80, duck_db=0)  # "okay", 0.4 s
    events = run(turns, 3)
    assert not of(events, Duck)
    (pause,), (resume,) = of(events, BargeIn), of(events, Backchannel)
    assert pause.at_s == pytest.approx(1.12, abs=FRAME) and resume.at_s == pytest.approx(1.48, abs=FRAME)


def test_a_real_interruption_ducks_at_once_pauses_then_stops_the_reply():
    turns = speaking((1.0, 3.0), barge_in_ms=120, pause_ms=320, backchannel_max_ms=700)
    events = run(turns, 5)
    (duck,), (pause,), (stop,) = of(events, Duck), of(events, BargeIn), of(events, Interruption)
    assert duck.at_s == pytest.approx(1.12, abs=FRAME)  # 24 dB down 120 ms after the onset
    assert pause.at_s == pytest.approx(1.32, abs=FRAME)  # silent at 320 ms
    assert stop.at_s == pytest.approx(1.0 + 0.7 + FRAME, abs=FRAME)
    assert not of(events, Backchannel)
    (utterance,) = of(events, Utterance)
    assert utterance.barged_in and utterance.speech_ended_at_s == pytest.approx(3.0)


def test_wait_then_a_question_adds_up_to_an_interruption():
    # "Wait," ... "what about"
    turns = speaking((1.0, 1.34), (1.56, 2.6), barge_in_ms=120, pause_ms=320, backchannel_gap_ms=80)
    events = run(turns, 5)
    kinds = [type(e).__name__ for e in events if isinstance(e, (Duck, BargeIn, Backchannel, Interruption))]
    assert kinds == ["Duck", "BargeIn", "Backchannel", "Duck", "BargeIn", "Interruption"]
    (stop,) = of(events, Interruption)
    assert stop.at_s == pytest.approx(1.56 + (0.7 - 0.34) + FRAME, abs=FRAME)  # 340 ms + 360 ms of speech


def test_quiet_listening_noises_do_not_pause_the_bot_but_speech_at_the_callers_level_does():
    turns = detector((0.5, 2.0), (3.0, 3.5), (5.0, 5.5), barge_in_ms=120)
    run(turns, 2.5, pcm=lambda i: tone(-20))  # the caller's own turn: their level is -20 dBFS
    turns.set_bot_speaking(True)
    quiet = run(turns, 2.0, start=125, pcm=lambda i: tone(-30))  # "mm-hmm", 10 dB under it
    assert not of(quiet, Duck) and not of(quiet, BargeIn) and not of(quiet, Interruption)
    loud = run(turns, 2.0, start=225, pcm=lambda i: tone(-21))
    assert of(loud, Duck) and of(loud, BargeIn) and of(loud, Backchannel)


def test_voices_behind_the_caller_never_stop_the_bot_however_long_they_go_on():
    """A café or a television behind the caller: speech 10 dB under their own level, for seconds. Each run was too
    quiet to duck or pause the bot, but the overlap count still added them up, and a recorded crowd at -30 dBFS
    stopped the reply after 0.7 s of it in all (``test_recorded_crowd_behind_the_caller_does_not_stop_the_bot``)."""
    turns = detector((0.5, 2.0), (3.0, 6.0), (6.2, 7.1), barge_in_ms=120, backchannel_max_ms=700)
    run(turns, 2.5, pcm=lambda i: tone(-20))  # the caller's own turn: their level is -20 dBFS
    turns.set_bot_speaking(True)
    quiet = run(turns, 3.6, start=125, pcm=lambda i: tone(-30))  # 3 s of voices 10 dB under the caller
    assert not of(quiet, Duck) and not of(quiet, BargeIn) and not of(quiet, Interruption)
    loud = run(turns, 2.0, start=305, pcm=lambda i: tone(-20))  # 0.2 s later, the caller: a real interruption
    (stop,) = of(loud, Interruption)
    assert stop.at_s == pytest.approx(6.2 + 0.7 + FRAME, abs=FRAME)  # the quiet seconds did not count towards it


def test_without_playback_nothing_is_paused():
    events = run(detector((1.0, 3.0)), 4)
    assert not of(events, BargeIn) and not of(events, Duck)


# -- on the simulated line, measured at the caller ---------------------------------------------------------------


def bot_gaps(line, after_s: float) -> list[float]:
    """Silences inside the bot's speech after ``after_s`` (seconds), as the caller heard them."""
    active = line._bot_active
    frame_s = line.frame_ms / 1000
    gaps, silent = [], 0
    start = round(after_s / frame_s)
    last = max(i for i, a in enumerate(active) if a)
    for a in active[start:last + 1]:
        if a:
            if silent:
                gaps.append(silent * frame_s)
            silent = 0
        else:
            silent += 1
    return gaps


@pytest.mark.parametrize("level_db, seconds", [(-30.0, 0.6), (-20.0, 0.3)])
def test_a_backchannel_over_a_reply_leaves_no_gap_over_300_ms(tmp_path, config, level_db, seconds):
    """A soft "mm-hmm" (10 dB under the caller's own turn) never pauses the bot; a short "yes" at the caller's
    level pauses it only for the rest of the word and 80 ms. Measured on the bot's audio as the caller got it."""
    from dataclasses import replace

    from fakes import ScriptedChat

    from voicebot.telephony.sim import HangUp, WaitForBot, WaitIntoBot

    long_reply = "Your parcel left our warehouse this morning and the driver will bring it to you before six."
    chat = ScriptedChat([{"action": "reply", "text": long_reply}], repeat=True)
    line, session, turns, _ = call_with(tmp_path, config, None, lambda voice: [
        WaitForBot(), voice.say("do you sell coffee", 1.5), WaitIntoBot(1.0),
        replace(voice, level_dbfs=level_db).say("mm-hmm", seconds), WaitForBot(), HangUp()], chat=chat)
    reply = [u for u in line.bot_utterances(min_gap_s=0.35) if u.start_s > 2.0]
    gaps = bot_gaps(line, reply[0].start_s)
    assert max(gaps, default=0) <= 0.3, gaps
    bot = [t for t in turns if t.role == "bot"]
    assert not bot[1].barged_in and bot[1].text == long_reply  # said to its end
    assert "barge_in" not in [getattr(e, "kind", None) for e in session.events]


def test_an_interruption_silences_the_bot_at_once_and_is_answered(tmp_path, config):
    from fakes import ScriptedChat

    from voicebot.telephony.sim import HangUp, WaitForBot, WaitIntoBot

    chat = ScriptedChat([{"action": "reply", "text": "Your refund was paid on Monday."}], repeat=True)
    line, session, turns, _ = call_with(tmp_path, config, None, lambda voice: [
        WaitIntoBot(1.0), voice.say("what about my refund", 1.2), WaitForBot(), HangUp()], chat=chat)
    from voicebot.tools.levels import frame_levels

    caller, bot_track = line.recordings()
    rate, frame = line.sample_rate, line.frame_ms / 1000
    loud = [i for i in range(len(caller) // (2 * rate // 50)) if i * frame >= 1.0
            and max(abs(int.from_bytes(caller[j:j + 2], "little", signed=True))
                    for j in range(i * rate // 50 * 2, (i + 1) * rate // 50 * 2, 64)) > 1000]
    onset = loud[0] * frame
    first = line.bot_utterances(min_gap_s=0.3)[0]
    vad = config.vad
    assert onset < first.end_s <= onset + vad.pause_ms / 1000 + 2 * frame, (onset, first.end_s)  # silent
    levels = frame_levels(bot_track, frame, rate)
    before = np.median(levels[round((onset - 0.4) / frame):round(onset / frame)])
    ducked = levels[round((onset + vad.barge_in_ms / 1000) / frame) + 2:round(first.end_s / frame)]
    assert len(ducked) >= 5 and np.all(ducked <= before - vad.duck_db + 3), (before, ducked)  # quiet at once
    assert [t.text for t in turns if t.role == "caller"] == ["what about my refund"]
    bot = [t for t in turns if t.role == "bot"]
    assert bot[0].barged_in and "refund was paid" in bot[-1].text  # answered
    assert "barge_in" in [getattr(e, "kind", None) for e in session.events]


# -- `voicebot call --over MS`: speaking over the bot on the SIP line ---------------------------------------------


def test_the_caller_script_says_a_step_over_the_bot():
    from voicebot.telephony.script import Say, WaitForBot, WaitIntoBot
    from voicebot.tools.caller import MAX_SPEECH_S, QUIET_S, caller_script, step_order

    hello, question = Say(b"\0\0" * 160, 16000, "hello"), Say(b"\0\0" * 160, 16000, "what about my refund")
    reply = WaitForBot(QUIET_S, MAX_SPEECH_S)
    script = caller_script([hello, WaitIntoBot(0.8), question], hold_s=4)
    assert script == [reply, hello, WaitIntoBot(0.8), question, WaitForBot(QUIET_S, 4)]
    argv = ["--say", "hello", "--over", "800", "--say", "what about my refund"]
    assert step_order(argv, {"say": 2, "wav": 0, "dtmf": 0, "over": 1}) == ["say", "over", "say"]


def test_barge_in_latency_is_measured_from_the_callers_onset_to_the_bots_silence_as_received():
    import numpy as np

    from voicebot.tools.caller import barge_in_latency

    frames = 200  # 4 s of 20 ms frames
    heard = np.full(frames, -20.0)  # the bot talks from 0 s ...
    heard[118:] = -90.0  # ... and is silent from 2.36 s on
    sent = np.full(frames, -90.0)
    sent[102:150] = -18.0  # the caller starts at 2.04 s (the step started at 2.0 s: 40 ms of lead-in silence)
    assert barge_in_latency(heard, sent, 2.0, 3.0) == pytest.approx(0.32)
    heard[:] = -20.0
    assert barge_in_latency(heard, sent, 2.0, 3.0) is None  # it talked on


def test_the_duck_is_measured_as_the_bots_voice_15_db_under_its_level_before_the_caller_spoke():
    import numpy as np

    from voicebot.tools.levels import barge_in_latency, quieter_latency

    heard = np.full(200, -20.0)
    heard[110:] = -44.0  # ducked 24 dB at 2.2 s: under -40 dBFS too
    sent = np.full(200, -90.0)
    sent[102:150] = -18.0  # the caller from 2.04 s
    assert quieter_latency(heard, sent, 2.0, 3.0) == pytest.approx(0.16)
    heard[110:] = -30.0  # a 10 dB dip is neither ducked nor silent
    assert quieter_latency(heard, sent, 2.0, 3.0) is None and barge_in_latency(heard, sent, 2.0, 3.0) is None
    heard[:] = -90.0  # the bot was not speaking before the caller
    assert quieter_latency(heard, sent, 2.0, 3.0) is None


def test_while_paused_the_echo_gate_does_not_cut_the_caller_into_a_backchannel():
    from voicebot.config import VadConfig
    from voicebot.speech.overlap import OverlapJudge

    judge = OverlapJudge(VadConfig(barge_in_ms=120, pause_ms=320, backchannel_gap_ms=80), 20)
    decisions = [judge.step(True, -20.0, True) for _ in range(16)]
    assert decisions[5] == "duck" and decisions[-1] == "pause"
    # paused: the echo gate (still weighing the playback before the pause) drops frames the VAD calls speech
    assert [judge.step(False, -30.0, True, raw=True) for _ in range(10)] == [None] * 10
    assert judge.paused
    assert [judge.step(False, -90.0, True, raw=False) for _ in range(4)][-1] == "resume"  # a real stop resumes


# -- through the real parts: webrtcvad, Silero v6 and Piper on an 8 kHz mu-law line --------------------------------


@pytest.fixture(scope="module")
def piper8k(config, model_store):
    from voicebot.speech.tts import PiperSynthesizer

    voice = PiperSynthesizer(model_store.locate(config.tts.voice), voice=config.tts.voice, noise_scale=0.0,
                             noise_w_scale=0.0)
    return lambda text: b"".join(chunk.pcm for chunk in voice.stream(text, 8000))


def test_real_street_noise_over_the_bot_does_not_pause_it_with_silero_but_does_with_webrtcvad_alone(config,
                                                                                                     piper8k):
    from voicebot.bench_barge import BOT_SAYS, noise_bursts, replay
    from voicebot.components import make_voice_activity
    from voicebot.speech.vad import WebRtcVoiceActivity

    vad = make_voice_activity(config)
    assert vad.second_opinion is not None, "config.yaml sets vad.second_opinion (Silero)"
    bot, first = piper8k(BOT_SAYS), piper8k("My parcel has not arrived yet.")
    for seed in range(3):
        noise = noise_bursts(seed, len(bot))
        _, _, stopped, held = replay(config, vad, bot, noise, first)
        assert not stopped and held == 0, (seed, held)
    _, _, stopped, held = replay(config, WebRtcVoiceActivity(config.vad.aggressiveness), bot, noise_bursts(0, len(bot)),
                                 first)
    assert stopped or held > 0  # what the second opinion is there for


def test_real_interruption_and_soft_backchannel_with_silero(config, piper8k):
    from voicebot.audio import gained
    from voicebot.bench_barge import BOT_SAYS, OVER_AT_S, RATE, replay
    from voicebot.components import make_voice_activity
    from voicebot.tools.caller import FRAME_S, barge_in_latency, frame_levels

    vad = make_voice_activity(config)
    bot, first = piper8k(BOT_SAYS), piper8k("My parcel has not arrived yet.")
    sent, received, stopped, _ = replay(config, vad, bot, piper8k("Wait, what about my refund?"), first)
    latency = barge_in_latency(frame_levels(received, FRAME_S, RATE), frame_levels(sent, FRAME_S, RATE),
                               OVER_AT_S - 0.1, len(sent) / 2 / RATE)
    assert stopped and latency is not None and latency <= 0.2, latency
    _, _, stopped, held = replay(config, vad, bot, gained(piper8k("Mm-hmm."), -10.0), first)
    assert not stopped and held <= 0.3, held  # a soft mm-hmm: no gap at all, in practice


def test_silero_rules_on_8khz_audio_as_it_comes_not_in_100_ms_blocks(config, piper8k):
    """soxr's default streaming resampler handed Silero its 8 kHz audio in ~100 ms blocks, so a verdict came up to
    100 ms late and speech over the bot was ducked later: every 32 ms chunk must be scored as soon as it is whole."""
    from voicebot.components import make_voice_activity

    vad = make_voice_activity(config)
    stream = vad.second_opinion.stream()
    runs: list[int] = []
    scored = stream.model.run
    stream.model.run = lambda *a: (runs.append(len(runs)), scored(*a))[1]
    try:
        speech = piper8k("Wait, what about my refund?")
        counts = []
        for start in range(0, 10 * 320, 320):  # 10 frames of 20 ms at 8 kHz (s16le)
            stream.is_speech(speech[start:start + 320], 8000)
            counts.append(len(runs))
    finally:
        stream.model.run = scored
    assert counts[2] >= 1, counts  # the first 32 ms chunk (plus its 4 ms of context) by the third frame
    assert all(later - earlier <= 1 for earlier, later in zip(counts, counts[1:])), counts  # never a batch
    assert counts[-1] >= 5, counts  # 200 ms: six chunks, less the resampler's own few samples of delay
