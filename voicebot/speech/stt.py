"""Speech to text: the Transcriber protocol and its faster-whisper implementation.

Whisper invents text on silence and noise ("Thanks for watching"), so every segment carries the figures the
later stages use to reject it: ``no_speech_prob`` and ``avg_logprob``. ``Transcript.accepted`` applies the
configured thresholds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from voicebot.audio import resample, to_float32

WHISPER_RATE = 16000


@dataclass(frozen=True)
class Segment:
    text: str
    start: float
    end: float
    no_speech_prob: float
    avg_logprob: float


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str
    segments: tuple[Segment, ...] = ()
    duration_s: float = 0.0
    elapsed_s: float = 0.0

    @property
    def no_speech_prob(self) -> float:
        """The highest no-speech probability of any segment (1.0 when nothing was heard)."""
        return max((s.no_speech_prob for s in self.segments), default=1.0)

    @property
    def avg_logprob(self) -> float:
        """Mean log-probability of the segments, weighted by length (-inf when nothing was heard)."""
        if not self.segments:
            return float("-inf")
        weights = [max(s.end - s.start, 0.01) for s in self.segments]
        return sum(w * s.avg_logprob for w, s in zip(weights, self.segments)) / sum(weights)

    def accepted(self, no_speech_threshold: float = 0.6, logprob_threshold: float = -1.0) -> "Transcript":
        """A transcript without the segments that are likely silence or too uncertain to trust."""
        kept = tuple(s for s in self.segments
                     if s.no_speech_prob <= no_speech_threshold and s.avg_logprob >= logprob_threshold)
        text = " ".join(s.text.strip() for s in kept).strip()
        return Transcript(text, self.language, kept, self.duration_s, self.elapsed_s)


@runtime_checkable
class Transcriber(Protocol):
    def transcribe(self, pcm: bytes, sample_rate: int, *, prompt: str | None = None) -> Transcript:
        """Transcribe mono s16le PCM at 8 or 16 kHz."""
        ...


@dataclass
class WhisperTranscriber:
    """faster-whisper (CTranslate2, int8 on CPU), loaded from a local folder only."""

    model_dir: str
    language: str | None = "en"
    beam_size: int = 1
    threads: int = 2
    initial_prompt: str | None = None
    load_s: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        from faster_whisper import WhisperModel  # heavy import, only when a transcriber is made

        started = time.perf_counter()
        self._model = WhisperModel(str(self.model_dir), device="cpu", compute_type="int8",
                                   cpu_threads=self.threads, local_files_only=True)
        self.load_s = time.perf_counter() - started

    def transcribe(self, pcm: bytes, sample_rate: int, *, prompt: str | None = None) -> Transcript:
        if sample_rate not in (8000, 16000):
            raise ValueError(f"sample rate {sample_rate} Hz: the transcriber takes 8000 or 16000")
        started = time.perf_counter()
        audio = to_float32(resample(pcm, sample_rate, WHISPER_RATE))
        segments, info = self._model.transcribe(
            audio,
            language=self.language,
            beam_size=self.beam_size,
            initial_prompt=prompt or self.initial_prompt,
            condition_on_previous_text=False,
            vad_filter=False,  # turn-taking already cut the utterance
            without_timestamps=True,
        )
        segs = tuple(Segment(s.text.strip(), s.start, s.end, s.no_speech_prob, s.avg_logprob) for s in segments)
        text = " ".join(s.text for s in segs).strip()
        return Transcript(text, info.language, segs, info.duration, time.perf_counter() - started)
