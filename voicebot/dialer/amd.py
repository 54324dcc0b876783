"""Answering-machine detection: from the callee's first seconds of audio, a person, a machine, or unknown.

Why these cues (as in Asterisk's AMD and the carriers' own): a person answers with a short "hello?" and waits;
a voicemail greeting talks on ("Hi, you have reached ... please leave a message after the tone") and ends with a
beep. So, frame by frame (20 ms) on the loudness of the callee's audio:

- speech that runs on longer than ``max_greeting_s`` (gaps shorter than ``MAX_GAP_S`` are inside a run: the
  pauses between words) is a machine;
- a short first run followed by ``human_silence_s`` of silence is a person;
- a beep (one pure tone held at least ``BEEP_MIN_S``, found by an FFT of each frame: nearly all of the frame's
  energy in one narrow band, the same band frame after frame) is a machine: speech is never that pure;
- a key pressed is a person; nothing said for ``initial_silence_s`` is unknown (the dialer treats it as a person:
  the opening says who calls, a machine records it harmlessly).

After a machine, ``MessagePoint`` waits for the moment to speak: the end of the beep, or the end of the greeting
when it has no beep (silence after speech), or ``beep_wait_s`` at most. Pure code on bytes, no I/O: the tests
feed it Piper speech and synthesised tones; ``screen`` runs it on a live call's events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from voicebot.audio import AudioFrame, rms_dbfs
from voicebot.config_dialer import AmdConfig
from voicebot.events import CallerHungUp, DtmfReceived, TransportEvent

SPEECH_DBFS = -40.0  # louder than this is sound (a phone line's hiss is far below)
MAX_GAP_S = 0.5  # a pause shorter than this is inside one run of speech
BEEP_MIN_S = 0.2  # a tone held this long is a beep (a vowel is never this pure for so long)
BEEP_PURITY = 0.8  # share of a frame's energy within BEEP_BAND_HZ of its strongest frequency
BEEP_BAND_HZ = 60.0
BEEP_RANGE_HZ = (300.0, 3400.0)  # where answering machines beep (a phone line's band)
END_OF_GREETING_S = 1.2  # after a machine's speech, this much silence and no beep: it waits for the message

Kind = Literal["human", "machine", "unknown", "hung_up"]


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    reason: str
    after_s: float  # seconds of the callee's audio it took


def tone_hz(pcm: bytes, rate: int) -> float | None:
    """The frequency of ``pcm`` (s16le) when it is one pure tone in the phone band, loud enough; else None."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if len(x) < 64 or rms_dbfs(pcm) < SPEECH_DBFS:
        return None
    n = max(len(x), int(rate / 10))  # zero-padded to a 10 Hz grid at least
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n)) ** 2
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    band = (freqs >= BEEP_RANGE_HZ[0] - BEEP_BAND_HZ) & (freqs <= BEEP_RANGE_HZ[1] + BEEP_BAND_HZ)
    total = spectrum.sum()
    if total <= 0:
        return None
    peak = int(np.argmax(np.where(band, spectrum, 0.0)))
    near = np.abs(freqs - freqs[peak]) <= BEEP_BAND_HZ
    if spectrum[near].sum() / total < BEEP_PURITY or not BEEP_RANGE_HZ[0] <= freqs[peak] <= BEEP_RANGE_HZ[1]:
        return None
    return float(freqs[peak])


class BeepTracker:
    """Counts consecutive tonal frames at one frequency; ``feed`` says whether a beep is going on and
    ``heard`` whether one has been (at least ``BEEP_MIN_S``)."""

    def __init__(self) -> None:
        self.hz: float | None = None
        self.held_s = 0.0
        self.heard_hz: float | None = None

    def feed(self, pcm: bytes, rate: int) -> bool:
        hz = tone_hz(pcm, rate)
        seconds = len(pcm) / 2 / rate
        if hz is not None and self.hz is not None and abs(hz - self.hz) <= BEEP_BAND_HZ:
            self.held_s += seconds
        else:
            self.hz, self.held_s = hz, (seconds if hz is not None else 0.0)
        if self.held_s >= BEEP_MIN_S:
            self.heard_hz = self.hz
        return hz is not None


class Detector:
    """Feed the callee's frames from the answer on; ``feed`` returns the verdict once there is one."""

    def __init__(self, config: AmdConfig, rate: int):
        self.config = config
        self.rate = rate
        self.heard_s = 0.0  # audio fed so far
        self.run_s = 0.0  # the current run of speech, its gaps included
        self.gap_s = 0.0  # silence since the last loud frame
        self.spoke = False
        self.beeps = BeepTracker()

    def feed(self, pcm: bytes) -> Verdict | None:
        seconds = len(pcm) / 2 / self.rate
        self.heard_s += seconds
        self.beeps.feed(pcm, self.rate)
        if self.beeps.heard_hz is not None:
            return Verdict("machine", f"beep at {self.beeps.heard_hz:.0f} Hz", self.heard_s)
        if rms_dbfs(pcm) >= SPEECH_DBFS:
            if self.spoke and self.gap_s >= MAX_GAP_S:
                self.run_s = 0.0  # a new run after a real pause
            self.run_s += self.gap_s if self.spoke and self.gap_s < MAX_GAP_S else 0.0
            self.run_s += seconds
            self.gap_s = 0.0
            self.spoke = True
            if self.run_s > self.config.max_greeting_s:
                return Verdict("machine", f"speech for more than {self.config.max_greeting_s:g} s", self.heard_s)
            return None
        self.gap_s += seconds
        if self.spoke and self.gap_s >= self.config.human_silence_s:
            return Verdict("human", f"{self.run_s:.1f} s of speech, then a pause", self.heard_s)
        if not self.spoke and self.gap_s >= self.config.initial_silence_s:
            return Verdict("unknown", "nothing said", self.heard_s)
        return None


class MessagePoint:
    """After a machine: feed frames until ``feed`` is True, the moment to leave the message (the beep has
    ended, or the greeting ended without one, or ``beep_wait_s`` passed)."""

    def __init__(self, config: AmdConfig, rate: int, beeped: bool = False):
        self.config = config
        self.rate = rate
        self.waited_s = 0.0
        self.quiet_s = 0.0
        self.beeps = BeepTracker()
        self.beeped = beeped
        self.reason = ""

    def feed(self, pcm: bytes) -> bool:
        seconds = len(pcm) / 2 / self.rate
        self.waited_s += seconds
        tonal = self.beeps.feed(pcm, self.rate)
        if self.beeps.heard_hz is not None:
            self.beeped = True
        loud = rms_dbfs(pcm) >= SPEECH_DBFS
        self.quiet_s = 0.0 if loud else self.quiet_s + seconds
        if self.beeped and not tonal and self.quiet_s >= 0.2:
            self.reason = "after the beep"
            return True
        if not self.beeped and self.quiet_s >= END_OF_GREETING_S:
            self.reason = "after the greeting (no beep)"
            return True
        if self.waited_s >= self.config.beep_wait_s:
            self.reason = "waited long enough"
            return True
        return False


@dataclass
class Screening:
    """What ``screen`` heard: the verdict, the events to hand on (keys, a hang-up) and the rest of the stream."""

    verdict: Verdict
    held: list[TransportEvent]
    rest: AsyncIterator[TransportEvent]


async def screen(events: AsyncIterator[TransportEvent], config: AmdConfig, rate: int) -> Screening:
    """Run the Detector on a live call's events until it decides; a key pressed is a person, the line ending
    is ``hung_up``. The events after the verdict stay in ``rest`` for the conversation."""
    detector = Detector(config, rate)
    held: list[TransportEvent] = []
    async for event in events:
        if isinstance(event, AudioFrame):
            verdict = detector.feed(event.pcm)
            if verdict is not None:
                return Screening(verdict, held, events)
        elif isinstance(event, DtmfReceived):
            held.append(event)
            return Screening(Verdict("human", f"key {event.digit} pressed", detector.heard_s), held, events)
        elif isinstance(event, CallerHungUp):
            held.append(event)
            return Screening(Verdict("hung_up", "the callee hung up", detector.heard_s), held, events)
        else:
            held.append(event)
    return Screening(Verdict("hung_up", "the line ended", detector.heard_s), held, events)


async def wait_for_message_point(screening: Screening, config: AmdConfig, rate: int) -> str | None:
    """After a machine verdict: the reason the message may start now, or None when the line ended first."""
    point = MessagePoint(config, rate, beeped=screening.verdict.reason.startswith("beep"))
    if point.beeped:  # the beep decided it: speak once it has ended
        point.beeps.heard_hz = None
    async for event in screening.rest:
        if isinstance(event, CallerHungUp):
            return None
        if isinstance(event, AudioFrame) and point.feed(event.pcm):
            return point.reason
    return None
