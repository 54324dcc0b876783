"""Voice activity: webrtcvad speech / non-speech decisions on 10, 20 or 30 ms frames at 8 or 16 kHz.

Turn-taking (end of turn, barge-in) is built on these decisions and counts time in frames of audio, never
with the wall clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import webrtcvad

from voicebot.audio import split_frames

VAD_RATES = (8000, 16000)
VAD_FRAME_MS = (10, 20, 30)


@dataclass(frozen=True)
class SpeechRegion:
    start_ms: int
    end_ms: int


@runtime_checkable
class VoiceActivity(Protocol):
    def is_speech(self, frame: bytes, sample_rate: int) -> bool:
        """One decision for one frame of 10, 20 or 30 ms of s16le PCM."""
        ...


class WebRtcVoiceActivity:
    """webrtcvad; ``second_opinion`` (a ``speech.silero.SileroVad``, optional) is what the turn detector also asks
    about speech over the bot, each call with a stream of its own."""

    def __init__(self, aggressiveness: int = 2, second_opinion: object | None = None):
        if not 0 <= aggressiveness <= 3:
            raise ValueError("webrtcvad aggressiveness is 0..3")
        self.aggressiveness = aggressiveness
        self._vad = webrtcvad.Vad(aggressiveness)
        self.second_opinion = second_opinion

    def for_call(self) -> WebRtcVoiceActivity:
        """A webrtcvad of its own for one call (or clip), with the same second opinion (whose streams are per call
        already). Why: webrtcvad adapts as it hears: its noise and speech models and its hangover count carry over
        from frame to frame. One instance shared by a worker's calls let one caller's line noise and last words
        move another's decisions, and made the same audio end its turn 40 ms apart from one call to the next (a
        recorded "Hello world" then came out "Hama world")."""
        return WebRtcVoiceActivity(self.aggressiveness, self.second_opinion)

    def is_speech(self, frame: bytes, sample_rate: int) -> bool:
        if sample_rate not in VAD_RATES:
            raise ValueError(f"sample rate {sample_rate} Hz: webrtcvad here takes {VAD_RATES}")
        if len(frame) * 1000 // (2 * sample_rate) not in VAD_FRAME_MS:
            raise ValueError(f"a frame of {len(frame)} bytes at {sample_rate} Hz is not 10, 20 or 30 ms")
        return self._vad.is_speech(frame, sample_rate)

    def decisions(self, pcm: bytes, sample_rate: int, frame_ms: int = 20) -> Iterator[bool]:
        for frame in split_frames(pcm, sample_rate, frame_ms):
            yield self.is_speech(frame.pcm, sample_rate)


def speech_regions(vad: WebRtcVoiceActivity, pcm: bytes, sample_rate: int, frame_ms: int = 20,
                   min_speech_ms: int = 100, hangover_ms: int = 300) -> list[SpeechRegion]:
    """Regions of speech in a clip: runs of speech frames, bridged over gaps shorter than ``hangover_ms``."""
    regions: list[SpeechRegion] = []
    start = last = None
    for index, speech in enumerate(vad.for_call().decisions(pcm, sample_rate, frame_ms)):
        t = index * frame_ms
        if speech:
            if start is None:
                start = t
            last = t + frame_ms
        elif start is not None and t - last >= hangover_ms:
            if last - start >= min_speech_ms:
                regions.append(SpeechRegion(start, last))
            start = last = None
    if start is not None and last - start >= min_speech_ms:
        regions.append(SpeechRegion(start, last))
    return regions
