"""TurnDetector timelines: synthetic frames, a scripted VAD, times checked in audio seconds to the frame."""

from __future__ import annotations

import numpy as np
import pytest

from voicebot.audio import AudioFrame, rms_dbfs, silence, split_frames
from voicebot.config import VadConfig
from voicebot.speech.turns import (
    Backchannel,
    BargeIn,
    Duck,
    Interruption,
    NoInput,
    SpeechStarted,
    TurnDetector,
    Utterance,
)
from voicebot.speech.vad import WebRtcVoiceActivity

RATE = 16000
FRAME_MS = 20
FRAME = FRAME_MS / 1000
SAMPLES = RATE * FRAME_MS // 1000


class ScriptedVad:
    """Says "speech" for frames starting inside the given (start_s, end_s) spans; counts frames it is asked."""

    def __init__(self, *spans: tuple[float, float]):
        self.spans = [(round(a * 1000), round(b * 1000)) for a, b in spans]
        self.frames = 0

    def is_speech(self, frame: bytes, sample_rate: int) -> bool:
        t = self.frames * len(frame) * 1000 // (2 * sample_rate)
        self.frames += 1
        return any(a <= t < b for a, b in self.spans)


def tone(dbfs: float, samples: int = SAMPLES) -> bytes:
    amplitude = 32768 * 10 ** (dbfs / 20) * np.sqrt(2)
    return (amplitude * np.sin(2 * np.pi * 440 * np.arange(samples) / RATE)).astype(np.int16).tobytes()


def numbered(index: int) -> bytes:
    """A frame whose every sample is its index + 1, so a test can tell which frames an utterance holds."""
    return np.full(SAMPLES, index + 1, dtype=np.int16).tobytes()


def frame(index: int, pcm: bytes | None = None) -> AudioFrame:
    return AudioFrame(pcm if pcm is not None else numbered(index), RATE, index * SAMPLES)


def run(detector: TurnDetector, seconds: float, start: int = 0, pcm=None, on_frame=None) -> list:
    """Feed ``seconds`` of frames; ``pcm(index)`` makes a frame's audio, ``on_frame(index)`` runs before each."""
    events = []
    for i in range(start, start + round(seconds / FRAME)):
        if on_frame:
            on_frame(i)
        events += detector.feed(frame(i, pcm(i) if pcm else None))
    return events


def of(events: list, kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def detector(*spans: tuple[float, float], **config) -> TurnDetector:
    return TurnDetector(ScriptedVad(*spans), VadConfig(**config))


def test_end_of_turn_after_exactly_the_configured_silence() -> None:
    events = run(detector((0.5, 2.5), end_of_turn_silence_ms=700, preroll_ms=300, min_speech_ms=200), 5)
    assert [type(e).__name__ for e in events] == ["SpeechStarted", "LikelyEnd", "Utterance"]
    started, likely, utterance = events
    assert started.at_s == pytest.approx(0.5)
    assert likely.at_s == pytest.approx(2.5 + 0.3, abs=FRAME)  # speech recognition may start here
    assert utterance.at_s == pytest.approx(2.5 + 0.7, abs=FRAME)
    assert utterance.speech_ended_at_s == pytest.approx(2.5)
    assert utterance.at_s - utterance.speech_ended_at_s == pytest.approx(0.7, abs=FRAME)
    assert not utterance.during_playback and not utterance.barged_in


def test_utterance_includes_the_preroll_and_a_short_tail() -> None:
    (utterance,) = of(run(detector((0.5, 2.5), preroll_ms=300), 5), Utterance)
    assert utterance.started_at_s == pytest.approx(0.2)
    assert utterance.ended_at_s == pytest.approx(2.8)
    assert utterance.duration_s == pytest.approx(utterance.ended_at_s - utterance.started_at_s)
    first = np.frombuffer(utterance.pcm[:2], dtype=np.int16)[0]
    assert first == round(0.2 / FRAME) + 1  # the audio really starts with the frame at 0.2 s
    assert utterance.sample_rate == RATE


def test_preroll_is_shorter_when_speech_starts_the_call() -> None:
    (utterance,) = of(run(detector((0.1, 1.0), preroll_ms=300), 3), Utterance)
    assert utterance.started_at_s == 0.0


def test_min_speech_drops_a_short_blip() -> None:
    assert run(detector((1.0, 1.1), min_speech_ms=200), 4) == []
    assert len(of(run(detector((1.0, 1.2), min_speech_ms=200), 4), Utterance)) == 1


def test_digits_mode_waits_longer() -> None:
    spans = ((0.5, 1.0), (2.0, 2.5))  # "four five" ... a 1 s pause ... "six"
    normal = of(run(detector(*spans, end_of_turn_silence_ms=700, digits_silence_ms=1500), 6), Utterance)
    assert len(normal) == 2

    digits = detector(*spans, end_of_turn_silence_ms=700, digits_silence_ms=1500)
    digits.expect_digits(True)
    (utterance,) = of(run(digits, 6), Utterance)
    assert utterance.started_at_s == pytest.approx(0.2)
    assert utterance.at_s == pytest.approx(2.5 + 1.5, abs=FRAME)


def test_barge_in_within_barge_in_ms_of_speech_onset() -> None:
    turns = detector((1.0, 3.0), barge_in_ms=200)
    turns.set_bot_speaking(True)
    events = run(turns, 5)
    (barge,) = of(events, Duck)  # the bot's voice drops first; it pauses at vad.pause_ms (test_barge_in.py)
    assert 1.0 + 0.2 - 1e-9 <= barge.at_s <= 1.0 + 0.2 + FRAME
    (utterance,) = of(events, Utterance)
    assert utterance.during_playback and utterance.barged_in


def test_barge_in_tolerates_one_dropped_frame() -> None:
    turns = detector((1.0, 1.1), (1.12, 1.5), barge_in_ms=200)
    turns.set_bot_speaking(True)
    (barge,) = of(run(turns, 3), Duck)
    assert barge.at_s == pytest.approx(1.22)


def test_a_short_ok_during_playback_does_not_barge_in() -> None:
    turns = detector((1.0, 1.12), barge_in_ms=200)
    turns.set_bot_speaking(True)
    assert run(turns, 3) == []


def test_a_backchannel_is_an_utterance_flagged_during_playback_without_barge_in() -> None:
    turns = detector((1.0, 1.14), (1.24, 1.38), barge_in_ms=200, min_speech_ms=200)  # "mm ... hmm"
    turns.set_bot_speaking(True)
    events = run(turns, 3)
    assert of(events, BargeIn) == [] and of(events, Duck) == []
    (utterance,) = of(events, Utterance)
    assert utterance.during_playback and not utterance.barged_in


def test_a_quiet_echo_of_the_playback_does_not_barge_in() -> None:
    turns = detector((0.0, 10.0), barge_in_ms=200, echo_margin_db=20)
    turns.set_bot_speaking(True)
    playback = tone(-10)
    assert rms_dbfs(playback) == pytest.approx(-10, abs=0.5)

    def play(_: int) -> None:
        turns.note_playback(AudioFrame(playback, RATE))

    echo = run(turns, 2, pcm=lambda i: tone(-35), on_frame=play)
    assert echo == []  # the VAD says speech all along, but it is 25 dB under the playback
    loud = run(turns, 1, start=100, pcm=lambda i: tone(-15), on_frame=play)
    (barge,) = of(loud, Duck)
    assert barge.at_s == pytest.approx(2.0 + 0.2, abs=FRAME)


def test_the_echo_gate_outlasts_playback_by_the_echo_tail() -> None:
    turns = TurnDetector(ScriptedVad((1.0, 5.0)), VadConfig(), echo_tail_ms=500)
    turns.set_bot_speaking(True)
    run(turns, 1, pcm=lambda i: tone(-40), on_frame=lambda i: turns.note_playback(AudioFrame(tone(-10), RATE)))
    turns.set_bot_speaking(False)
    events = run(turns, 3, start=50, pcm=lambda i: tone(-40))  # the echo tail arrives after playback stopped
    (started,) = of(events, SpeechStarted)
    # the last playback was noted with the frame at 0.98 s; the gate holds 500 ms from there
    assert started.at_s == pytest.approx(0.98 + 0.5)


def test_no_input_fires_after_the_timeout_in_audio_time() -> None:
    turns = detector(no_input_timeout_s=7)
    run(turns, 1)
    turns.arm_no_input()
    events = run(turns, 10, start=50)
    assert [type(e) for e in events] == [NoInput]
    assert events[0].at_s == pytest.approx(1 + 7, abs=FRAME)


def test_speech_disarms_no_input_and_bot_speech_too() -> None:
    turns = detector((2.0, 3.0), no_input_timeout_s=3)
    turns.arm_no_input()
    assert of(run(turns, 10), NoInput) == []

    turns = detector(no_input_timeout_s=3)
    turns.arm_no_input()
    turns.set_bot_speaking(True)
    assert run(turns, 5) == []


def test_no_input_waits_for_an_open_candidate() -> None:
    turns = detector((2.9, 3.0), no_input_timeout_s=3, end_of_turn_silence_ms=700)  # a cough at the deadline
    turns.arm_no_input()
    (no_input,) = of(run(turns, 6), NoInput)
    assert no_input.at_s == pytest.approx(3.0 + 0.7, abs=FRAME)  # when the cough was dismissed as noise


def test_frames_of_any_length_are_recut_to_vad_frames() -> None:
    pcm = b"".join(numbered(i) for i in range(250))
    whole = of(run(detector((0.5, 2.5)), 5), Utterance)
    turns = detector((0.5, 2.5))
    events = []
    for offset in range(0, len(pcm), 2 * 257):  # odd-sized chunks, as a jittery transport might give
        events += turns.feed(AudioFrame(pcm[offset:offset + 2 * 257], RATE))
    assert of(events, Utterance) == whole


def test_a_sample_rate_change_is_an_error() -> None:
    turns = detector()
    turns.feed(AudioFrame(silence(20, 16000), 16000))
    with pytest.raises(ValueError):
        turns.feed(AudioFrame(silence(20, 8000), 8000))


def test_flush_ends_an_open_utterance_and_long_speech_is_cut() -> None:
    turns = detector((1.0, 100.0))
    run(turns, 2)
    (utterance,) = of(turns.flush(), Utterance)
    assert utterance.speech_ended_at_s == pytest.approx(2.0)

    turns = TurnDetector(ScriptedVad((0.0, 70.0)), VadConfig(), max_utterance_s=30)
    cuts = of(run(turns, 75), Utterance)
    assert [round(u.at_s) for u in cuts] == [30, 60, 71]
    assert all(u.duration_s <= 30 + 0.3 for u in cuts)


def test_real_webrtcvad_on_piper_speech_gives_one_utterance(synthesizer) -> None:
    speech = b"".join(chunk.pcm for chunk in synthesizer.stream("Where is my order?", RATE))
    samples = np.abs(np.frombuffer(speech, dtype=np.int16))
    loud = np.nonzero(samples > 0.05 * samples.max())[0]
    first_s, last_s = 1.0 + loud[0] / RATE, 1.0 + loud[-1] / RATE
    pcm = silence(1000, RATE) + speech + silence(1500, RATE)

    turns = TurnDetector(WebRtcVoiceActivity(2), VadConfig())
    events = []
    for f in split_frames(pcm, RATE, FRAME_MS):
        events += turns.feed(f)
    events += turns.flush()
    (utterance,) = of(events, Utterance)
    assert utterance.started_at_s <= first_s
    assert utterance.ended_at_s >= last_s
    assert utterance.speech_ended_at_s >= last_s - 0.1
    assert len(of(events, SpeechStarted)) == 1 and of(events, BargeIn) == []


def test_likely_end_comes_before_the_utterance_with_the_same_audio():
    from voicebot.config import VadConfig
    from voicebot.speech.turns import LikelyEnd, TurnDetector, Utterance

    class Scripted:
        def __init__(self):
            self.n = 0

        def is_speech(self, frame, rate):
            self.n += 1
            return 10 <= self.n < 60  # speech from 0.2 s to 1.2 s

    detector = TurnDetector(Scripted(), VadConfig(early_stt_ms=300, end_of_turn_silence_ms=700))
    events = []
    for i in range(150):
        events += detector.feed(AudioFrame(b"\1\0" * 320, 16000, i * 320))
    likely = [e for e in events if isinstance(e, LikelyEnd)]
    final = [e for e in events if isinstance(e, Utterance)]
    assert len(likely) == 1 and len(final) == 1
    assert likely[0].at_s < final[0].at_s - 0.3  # recognition can start 0.4 s earlier
    assert likely[0].pcm == final[0].pcm and likely[0].speech_ended_at_s == final[0].speech_ended_at_s


# -- a second opinion (Silero) on the turn's speech: noise is not a turn, a late "yes, speech" loses nothing -------


class ScriptedSecond:
    """A second opinion whose probability is 0.9 inside its spans and 0.0 outside (``speech.silero``'s shape)."""

    def __init__(self, *spans: tuple[float, float]):
        self.spans, self.threshold = spans, 0.5

    def stream(self):
        second = self

        class Stream:
            model, probability, frames = second, 0.0, 0

            def is_speech(self, frame: bytes, sample_rate: int) -> bool:
                t = self.frames * len(frame) / (2 * sample_rate)
                self.frames += 1
                self.probability = 0.9 if any(a <= t < b for a, b in second.spans) else 0.0
                return self.probability >= second.threshold

        return Stream()


def with_second(webrtc: list[tuple[float, float]], silero: list[tuple[float, float]], **config) -> TurnDetector:
    vad = ScriptedVad(*webrtc)
    vad.second_opinion = ScriptedSecond(*silero)
    return TurnDetector(vad, VadConfig(**config))


def test_what_webrtcvad_calls_speech_and_the_second_opinion_does_not_is_never_a_turn() -> None:
    events = run(with_second([(0.5, 6.0)], []), 8)  # traffic: webrtcvad hears "speech" for 5.5 s
    assert events == []


def test_the_turn_starts_where_webrtcvad_heard_it_though_the_second_opinion_agreed_later() -> None:
    turns = with_second([(0.5, 1.5)], [(0.7, 1.5)], preroll_ms=300, end_of_turn_silence_ms=700)
    events = run(turns, 3)
    (started,), (utterance,) = of(events, SpeechStarted), of(events, Utterance)
    assert started.at_s == pytest.approx(0.5)  # not 0.7: the first syllable is the caller's too
    assert utterance.started_at_s == pytest.approx(0.2)  # the preroll in front of webrtcvad's onset
    assert utterance.speech_ended_at_s == pytest.approx(1.5)


def test_a_caller_going_on_is_not_cut_while_the_second_opinion_is_still_deciding() -> None:
    """A soft "and" after a 1.4 s pause: webrtcvad hears it at once, Silero 300 ms later. Counted from Silero, the
    pause was 1.7 s, over the 1.5 s limit, and the sentence was cut in two."""
    turns = with_second([(0.5, 1.5), (2.9, 4.0)], [(0.5, 1.5), (3.2, 4.0)], end_of_turn_silence_ms=1500)
    (utterance,) = of(run(turns, 6), Utterance)
    assert utterance.speech_ended_at_s == pytest.approx(4.0)
    assert utterance.longest_pause_s == pytest.approx(1.4, abs=FRAME)  # the pause webrtcvad heard, not Silero's


def test_a_backchannel_over_the_bot_ends_when_the_second_opinion_stops_hearing_a_voice() -> None:
    """Traffic under a "mm-hmm": webrtcvad hears speech on and on, the second opinion only the word. While the bot
    is paused the judge hears past the echo gate, and with webrtcvad alone the reply never came back."""
    turns = with_second([(1.0, 8.0)], [(1.0, 1.4)], barge_in_ms=100, pause_ms=320, backchannel_gap_ms=80)
    turns.set_bot_speaking(True)
    events = run(turns, 8)
    (pause,), (resume,) = of(events, BargeIn), of(events, Backchannel)
    assert pause.at_s == pytest.approx(1.32, abs=FRAME)
    assert resume.at_s <= 1.4 + 0.2 + 0.08 + FRAME  # the second opinion's 200 ms hold, then the 80 ms gap
    assert not of(events, Interruption)
