"""Fakes that implement voicebot's real Protocols, so a whole call runs in milliseconds without any model.

After LiveKit Agents' fake user speech: the caller's words are spans of audio on a timeline. Each distinct text
is spoken as a tone of its own frequency (``CallerVoice``), so the call still passes through everything that is
not a model: the simulated phone line and its codec, the real ``TurnDetector`` (endpointing, barge-in, early
speech recognition), the echo gate, the session's state machine. ``FakeTranscriber`` reads the frequencies in
the audio window it is handed and returns the text of the spans that window covers, so a test sees exactly
what the session cut, not what it hoped to cut.

- ``ScriptedVad``: speech where the audio is loud (or inside fixed spans of call time), instead of webrtcvad.
- ``FakeSynthesizer``: speech whose length is proportional to the text, deterministic; records what it said.
- ``ScriptedChat``: a ChatModel replaying scripted outputs, optionally slowly, piece by piece; it records the
  requests and whether each stream ran to its end or was closed early (barge-in, hang-up, preemption).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voicebot.audio import rms_dbfs
from voicebot.llm.base import ChatMessage
from voicebot.speech.stt import Segment, Transcript
from voicebot.speech.tts import SpeechChunk, split_sentences
from voicebot.telephony.sim import Say

MUMBLE = "(mumble)"
"""A span that is sound but no words: FakeTranscriber returns it with a high no-speech probability, so the
session's acceptance thresholds reject it as Whisper's would."""

ANALYSIS_FRAME_S = 0.02


def tone(hz: float, seconds: float, sample_rate: int, dbfs: float) -> bytes:
    """A sine of ``seconds`` at ``dbfs`` RMS: mono s16le."""
    amplitude = 32768 * 10 ** (dbfs / 20) * np.sqrt(2)
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16).tobytes()


def wait_until(condition: Callable[[], bool], timeout_s: float = 2.0, poll_s: float = 0.002) -> bool:
    """Block (a worker thread, e.g. inside ScriptedChat's ``on_piece``) until ``condition()``; False on timeout."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_s)
    return True


# -- the caller's voice and the transcriber that hears it ---------------------------------------------------------


@dataclass
class CallerVoice:
    """The caller's phrasebook: each distinct text gets its own tone, so a stretch of audio says which words it
    holds. Tones stay in the telephone band (300-3400 Hz) and survive the line's 8 kHz mu-law round trip."""

    sample_rate: int = 16000
    level_dbfs: float = -20.0
    base_hz: float = 400.0
    step_hz: float = 100.0
    seconds_per_word: float = 0.3
    texts: list[str] = field(default_factory=list)

    def hz(self, text: str) -> float:
        if text not in self.texts:
            if self.base_hz + self.step_hz * len(self.texts) > 3300:
                raise ValueError("CallerVoice: too many distinct phrases for the telephone band")
            self.texts.append(text)
        return self.base_hz + self.step_hz * self.texts.index(text)

    def text_at(self, hz: float) -> str | None:
        """The phrase whose tone is nearest ``hz`` (None when no tone is within half a step)."""
        index = round((hz - self.base_hz) / self.step_hz)
        if 0 <= index < len(self.texts) and abs(self.base_hz + index * self.step_hz - hz) <= self.step_hz / 2:
            return self.texts[index]
        return None

    def pcm(self, text: str, seconds: float | None = None) -> bytes:
        if seconds is None:
            seconds = max(0.4, self.seconds_per_word * len(text.split()))
        return tone(self.hz(text), seconds, self.sample_rate, self.level_dbfs)

    def say(self, text: str, seconds: float | None = None) -> Say:
        """A script step: the caller speaks ``text`` for ``seconds`` (default: by its number of words)."""
        return Say(self.pcm(text, seconds), self.sample_rate, text)

    def mumble(self, seconds: float = 0.6) -> Say:
        return self.say(MUMBLE, seconds)


@dataclass
class FakeTranscriber:
    """A Transcriber that hears CallerVoice tones: per 20 ms of audio the strongest frequency names a phrase;
    runs of at least ``min_frames`` frames become segments, in order. Implements ``speech.stt.Transcriber``."""

    voice: CallerVoice
    min_frames: int = 3  # the edges of a span blur into a frame or two of something else
    silence_dbfs: float = -45.0
    heard: list[str] = field(default_factory=list)  # the text of every transcript returned, in order
    alternatives: dict[str, str] = field(default_factory=dict)  # a text -> its first hearing (Transcript's)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def transcribe(self, pcm: bytes, sample_rate: int, *, prompt: str | None = None) -> Transcript:
        step = round(ANALYSIS_FRAME_S * sample_rate) * 2
        runs: list[list[Any]] = []  # [text, first frame, frames]
        for index, offset in enumerate(range(0, len(pcm) - step + 1, step)):
            chunk = pcm[offset:offset + step]
            if rms_dbfs(chunk) < self.silence_dbfs:
                continue
            samples = np.frombuffer(chunk, np.int16).astype(np.float32) * np.hanning(step // 2)
            peak = int(np.argmax(np.abs(np.fft.rfft(samples))))
            text = self.voice.text_at(peak * sample_rate / (step // 2))
            if text is None:
                continue
            if runs and runs[-1][0] == text and runs[-1][1] + runs[-1][2] == index:
                runs[-1][2] += 1
            else:
                runs.append([text, index, 1])
        segments = tuple(
            Segment(text, start * ANALYSIS_FRAME_S, (start + frames) * ANALYSIS_FRAME_S,
                    no_speech_prob=0.95 if text == MUMBLE else 0.02, avg_logprob=-1.5 if text == MUMBLE else -0.2)
            for text, start, frames in runs if frames >= self.min_frames)
        heard = " ".join(s.text for s in segments)
        with self._lock:
            self.heard.append(heard)
        return Transcript(heard, "en", segments, duration_s=len(pcm) / 2 / sample_rate,
                          alternatives=(self.alternatives[heard],) if heard in self.alternatives else ())


@dataclass
class ScriptedVad:
    """A VoiceActivity by rule instead of webrtcvad. With ``spans`` (seconds of call audio, counted in the frames
    it is asked about) a frame is speech when it starts inside one; without, when it is louder than
    ``threshold_dbfs`` (CallerVoice tones are speech, the silent line is not). Implements ``speech.vad``."""

    threshold_dbfs: float = -40.0
    spans: tuple[tuple[float, float], ...] = ()
    frames: int = 0
    _ms: int = 0

    def is_speech(self, frame: bytes, sample_rate: int) -> bool:
        start_ms = self._ms
        self._ms += len(frame) * 1000 // (2 * sample_rate)
        self.frames += 1
        if self.spans:
            return any(a * 1000 <= start_ms < b * 1000 for a, b in self.spans)
        return rms_dbfs(frame) >= self.threshold_dbfs


# -- the bot's voice ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Synthesis:
    text: str
    fixed: bool  # through ``cached`` (greeting, prompts, filler) rather than streamed sentence by sentence


@dataclass
class FakeSynthesizer:
    """A Synthesizer whose speech lasts ``ms_per_char`` per character of text: a quiet tone, the same for the same
    text every time. Records every request in order; ``before(text)`` runs first (in the session's worker
    thread: to hold a synthesis until something else has happened). Implements ``speech.tts.Synthesizer``."""

    voice: str = "fake-voice"
    ms_per_char: float = 20.0
    hz: float = 250.0
    level_dbfs: float = -26.0
    before: Callable[[str], Any] | None = None
    said: list[Synthesis] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def seconds(self, text: str) -> float:
        return len(text) * self.ms_per_char / 1000

    def pcm(self, text: str, sample_rate: int) -> bytes:
        return tone(self.hz, self.seconds(text), sample_rate, self.level_dbfs)

    def stream(self, text: str, sample_rate: int) -> Iterator[SpeechChunk]:
        for sentence in split_sentences(text):
            if self.before is not None:
                self.before(sentence)
            with self._lock:
                self.said.append(Synthesis(sentence, fixed=False))
            yield SpeechChunk(sentence, self.pcm(sentence, sample_rate), sample_rate)

    def cached(self, text: str, sample_rate: int) -> bytes:
        if self.before is not None:
            self.before(text)
        with self._lock:
            self.said.append(Synthesis(text, fixed=True))
        return self.pcm(text, sample_rate)

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.said]


# -- the language model -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[ChatMessage, ...]
    json_schema: dict[str, Any] | None
    max_tokens: int | None
    temperature: float | None


@dataclass
class ScriptedChat:
    """A ChatModel that answers each request with the next of ``outputs`` (a dict is sent as JSON, a string as
    it is), in pieces of ``piece_chars``. With ``repeat`` the last output answers every later request; without,
    a request beyond the script fails the test. ``delay_s`` sleeps before each piece and ``on_piece(i)`` runs
    before piece ``i`` of a stream (to block it, or to change the world mid-generation).

    A request with ``max_tokens=1`` is the session's prefill: it is counted in ``prefills`` and writes nothing.
    ``closed`` counts streams that ended for any reason, ``finished`` those that ran to their end, ``cancelled``
    those closed early. Implements ``llm.base.ChatModel``; streams run in worker threads, so counters are locked.
    """

    outputs: list[Any] = field(default_factory=list)
    repeat: bool = False
    piece_chars: int = 5
    delay_s: float = 0.0
    on_piece: Callable[[int], Any] | None = None
    name: str = "scripted"
    calls: list[ChatRequest] = field(default_factory=list)
    prefills: int = 0
    pieces: int = 0
    closed: int = 0
    finished: int = 0
    cancelled: int = 0
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def schemas(self) -> list[dict[str, Any] | None]:
        return [call.json_schema for call in self.calls]

    def stream(self, messages: Sequence[ChatMessage], *, json_schema: dict[str, Any] | None = None,
               max_tokens: int | None = None, temperature: float | None = None) -> Iterator[str]:
        if max_tokens == 1:
            with self._lock:
                self.prefills += 1
            return iter(())
        return self._pieces(ChatRequest(tuple(messages), json_schema, max_tokens, temperature))

    def _pieces(self, request: ChatRequest) -> Iterator[str]:
        with self._lock:
            self.calls.append(request)
            index = self._next
            self._next += 1
        if index >= len(self.outputs) and not (self.repeat and self.outputs):
            raise AssertionError(f"ScriptedChat: request {index + 1} but only {len(self.outputs)} outputs scripted")
        output = self.outputs[min(index, len(self.outputs) - 1)]
        text = output if isinstance(output, str) else json.dumps(output)
        try:
            for i, start in enumerate(range(0, len(text), self.piece_chars)):
                if self.on_piece is not None:
                    self.on_piece(i)
                if self.delay_s:
                    time.sleep(self.delay_s)
                with self._lock:
                    self.pieces += 1
                yield text[start:start + self.piece_chars]
            with self._lock:
                self.finished += 1
        except GeneratorExit:
            with self._lock:
                self.cancelled += 1
            raise
        finally:
            with self._lock:
                self.closed += 1

    def warm(self, system_prompt: str) -> None:
        pass
