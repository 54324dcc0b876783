"""Speech to text: the Transcriber protocol and its faster-whisper implementation.

Whisper invents text on silence and noise ("Thanks for watching"), so every segment carries the figures the
later stages use to reject it: ``no_speech_prob`` and ``avg_logprob``. ``Transcript.accepted`` applies the
configured thresholds.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from voicebot.audio import resample, to_float32

WHISPER_RATE = 16000
PAD_FRAMES = 200  # 2 s of padding after the utterance in a short encoder window


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
    # what a first hearing made of dictated digits when the one kept (``text``) differs in them: the dialogue may
    # weigh it where it knows what a number must look like (a phone number's length, ``dialog.identity``)
    alternatives: tuple[str, ...] = ()

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


_window = threading.local()  # the encoder window of the transcription running on this thread, in mel frames


def _short_window_model(base: type) -> type:
    """faster-whisper's model class with an encoder that reads only the first ``_window.frames`` mel frames.

    Why: Whisper's encoder always gets a 30 s window, the utterance padded with silence, and on two CPU cores the
    encoder is most of a short turn's transcription (about 1.1 of 1.4 CPU seconds for a 3 s utterance with
    whisper-base). CTranslate2 accepts a shorter window; the utterance plus ~2 s of the same padding, but never
    under ``SttConfig.window_s``, transcribed 80 caller phrasings as well as the full window (some better, some
    worse, by a word) at a quarter of the cost, but changed a digit of one PIN in 14 dictated numbers: so a
    transcript with digits, or one that repeats itself, is made again with the full window. Windows much shorter
    than 10 s make the decoder repeat itself, so the floor stays configurable (``voicebot bench stt``)."""

    class ShortWindowWhisper(base):  # type: ignore[misc, valid-type]
        def encode(self, features):  # noqa: ANN001, ANN202 - faster-whisper's signature
            frames = getattr(_window, "frames", None)
            if frames and features.shape[-1] > frames:
                features = features[..., :frames]
            return super().encode(features)

    return ShortWindowWhisper


class SpeechCheck(Protocol):
    """A VAD model that says whether a turn holds speech at all (``speech.silero.SileroVad``)."""

    threshold: float

    def speech_probability(self, audio, stop_at: float = 1.0) -> float:  # noqa: ANN001 - 16 kHz float array
        ...


@dataclass
class WhisperTranscriber:
    """faster-whisper (CTranslate2, int8 on CPU), loaded from a local folder only.

    ``window_s``: the shortest encoder window in seconds (30: Whisper's own, always 30 s; less: the utterance plus
    2 s, at least this long; see ``_short_window_model``).

    ``speech``: a VAD model that must hear speech in the audio before Whisper is asked. Why: with the company's
    words as hotwords, Whisper writes them out of silence and line noise ("A4 copy paper shredder," from 2 s of
    digital silence, with a no-speech probability of 0.2; "USB headset with microphone," from white noise), where
    it wrote nothing without them; only a low average log-probability kept those out, and on a CPU without VNNI
    the same silence became a long repeated line that passed. Silero's best 32 ms in such audio was at most
    0.05, in a one-word answer ("Two.", "No.", quiet or loud) at least 0.47."""

    model_dir: str
    language: str | None = "en"
    beam_size: int = 1
    threads: int = 2
    initial_prompt: str | None = None
    window_s: float = 10.0
    hotwords: str | None = None  # the company's own words (``vocabulary``): "MOT", "Fiber 500", its name
    speech: SpeechCheck | None = None
    load_s: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        import ctranslate2
        from faster_whisper import WhisperModel  # heavy import, only when a transcriber is made

        ctranslate2.set_random_seed(SEED)  # before the model's threads first sample (see ``TEMPERATURE``)
        started = time.perf_counter()
        model_class = WhisperModel if self.window_s >= 30 else _short_window_model(WhisperModel)
        self._model = model_class(str(self.model_dir), device="cpu", compute_type="int8",
                                  cpu_threads=self.threads, local_files_only=True)
        self.load_s = time.perf_counter() - started

    def _frames(self, samples: int) -> int | None:
        """The encoder window for ``samples`` of 16 kHz audio, in 10 ms mel frames (None: the full 30 s)."""
        if self.window_s >= 30:
            return None
        frames = max(int(self.window_s * 100), samples // 160 + 1 + PAD_FRAMES)
        return frames if frames < 3000 else None

    def transcribe(self, pcm: bytes, sample_rate: int, *, prompt: str | None = None) -> Transcript:
        if sample_rate not in (8000, 16000):
            raise ValueError(f"sample rate {sample_rate} Hz: the transcriber takes 8000 or 16000")
        started = time.perf_counter()
        audio = to_float32(resample(pcm, sample_rate, WHISPER_RATE))
        if self.speech is not None and self.speech.speech_probability(audio, self.speech.threshold) < \
                self.speech.threshold:
            return Transcript("", self.language or "", (), len(audio) / WHISPER_RATE, time.perf_counter() - started)
        audio = levelled(audio)
        frames = self._frames(len(audio))
        segs, info = self._run(audio, prompt, frames, self.hotwords, GREEDY if frames else TEMPERATURE)
        if frames and any(s.avg_logprob < UNSURE_LOGPROB for s in segs):
            # the short window is a trade of accuracy for speed, so an unsure greedy pass in it is heard again with
            # Whisper's own 30 s window before any sampling: a recorded "Hello world" was "Hama world" (-1.14) in
            # the short window and "Hello world" (-0.56) in the full one; a sampled pass found it 2 times in 12
            segs, info = self._run(audio, prompt, None, self.hotwords, TEMPERATURE)
            frames = None
        text = " ".join(s.text for s in segs).strip()
        alternatives: tuple[str, ...] = ()
        dictated = _IDENTIFIER.search(_outside(text, self.hotwords)) is not None
        if (frames and (_IDENTIFIER.search(text) or _looks_repeated(text))) or (dictated and self.hotwords):
            # Dictated digits (a PIN, an order or phone number, a date's year) must be exact, and a short window
            # occasionally changes one or repeats a phrase: such turns are heard again with Whisper's full window.
            # A quantity or a time ("40 chairs", "at 10:30") keeps the speed: the bot reads it back anyway.
            # Digits that are not part of the company's words are heard again without those words: with them,
            # a bare dictated number gained a digit 4 times in 39 ("two four six eight." -> "22468"), 0 without.
            first, (segs, info) = text, self._run(audio, prompt, None, None if dictated else self.hotwords,
                                                  TEMPERATURE)
            text = " ".join(s.text for s in segs).strip()
            if re.sub(r"\D", "", first) != re.sub(r"\D", "", text):
                alternatives = (first,)
        return Transcript(text, info.language, segs, info.duration, time.perf_counter() - started, alternatives)

    def _run(self, audio, prompt: str | None, frames: int | None,  # noqa: ANN001
             hotwords: str | None, temperature: tuple[float, ...]) -> tuple[tuple[Segment, ...], object]:
        _window.frames = frames
        try:
            segments, info = self._model.transcribe(
                audio,
                language=self.language,
                beam_size=self.beam_size,
                initial_prompt=prompt or self.initial_prompt,
                hotwords=hotwords,
                condition_on_previous_text=False,
                temperature=list(temperature),
                vad_filter=False,  # turn-taking already cut the utterance
                without_timestamps=True,
                # at most ~6 tokens a second, so a decoder that starts to repeat stops early (a short window
                # repeats more often; the full one too: a quiet "Repairs." was "repair" to the 448-token limit)
                max_new_tokens=12 + int(len(audio) / WHISPER_RATE * 6),
            )
            segs = tuple(Segment(s.text.strip(), s.start, s.end, s.no_speech_prob, s.avg_logprob)
                         for s in segments)  # the segments are made here, while the window is set
        finally:
            _window.frames = None
        return segs, info


LEVEL_DBFS = -20.0  # the loudest 100 ms of a turn, after levelling
MAX_GAIN_DB = 30.0


def levelled(audio):  # noqa: ANN001, ANN201 - a 16 kHz float32 array in, the same out
    """``audio`` raised so that its loudest 100 ms is at ``LEVEL_DBFS`` (never lowered; at most ``MAX_GAIN_DB``
    and never past full scale), as a telephone line's automatic gain control would.

    Why: Whisper reads the log-mel level, and a quiet line is a different input to it. Over 28 caller phrasings
    said 26 dB down (the loudest 100 ms at -42 dBFS; a weak mobile, a caller far from the phone) it wrote "R" for
    "Where is my order?", "Any news on my shipment?" and "Are you a robot?" and "repair" 300 times for "Repairs.";
    raised first, each was heard as said. Such words are also near Whisper's decision boundary, where the same audio
    came out differently from one process to the next. The speech gate reads the line as it came (its thresholds
    were measured there)."""
    import numpy as np

    window = WHISPER_RATE // 10
    count = len(audio) // window
    if count == 0:
        return audio
    loudest = float(np.sqrt(np.square(audio[:count * window], dtype=np.float64).reshape(count, window).mean(1)).max())
    peak = float(np.abs(audio).max())
    if loudest <= 0 or peak <= 0:
        return audio
    gain_db = min(LEVEL_DBFS - 20 * np.log10(loudest), MAX_GAIN_DB, -20 * np.log10(peak / 0.99))
    return audio if gain_db <= 0.5 else (audio * np.float32(10 ** (gain_db / 20))).astype(np.float32)


GREEDY = (0.0,)
UNSURE_LOGPROB = -1.0  # faster-whisper's own threshold for a fallback pass, and ``SttConfig.logprob_threshold``'s
SEED = 0
TEMPERATURE = (0.0, 0.2)
"""Greedy decoding, and when that pass is unsure (under -1.0 average log-probability) one sampled pass at 0.2, the
better of the two kept; never faster-whisper's default fallback up to 1.0. Why: a quiet or unclear word is what
scores low, and the default then sampled five more passes: a one-word "No." 26 dB down took 3.5 s instead of 1.1 s
and came out "No.", "No" or "now" at random, and a quiet "Repairs." took 36 s (six passes of "repair" repeated to
the token limit). One pass at 0.2 still rescues some of what greedy decoding misses, but at random (a recorded
"Hello world", "Hama world" at -1.14 greedy in the short window, was "Hello world" in 2 of 12 sampled passes; it
failed a CI run). So in the short encoder window only the greedy pass runs, and an unsure one is heard again in
the full window, greedy then sampled. CTranslate2's generator is seeded once per thread, at its first use, and
``SEED`` is set before the model loads: a process that hears the same turns in the same order hears them alike
(a seed set before each pass changed nothing). Beam search did not help ("Hi my world")."""

# three or more digits in a row, as dictated: "10452", "4 4 1 9", "44, 19", "555-010-2030" (never split by the
# ":" of a time); a comma too, as Whisper puts one between digit groups the caller paused between
_IDENTIFIER = re.compile(r"\d(?:,? ?[.-]?\d){2,}")


def _outside(text: str, hotwords: str | None) -> str:
    """``text`` without the company's words it holds ("Fiber 500", "HP 26X toner cartridge"), in any case."""
    for word in sorted((w.strip() for w in (hotwords or "").split(",") if w.strip()), key=len, reverse=True):
        text = re.sub(re.escape(word), " ", text, flags=re.IGNORECASE)
    return text


def _looks_repeated(text: str) -> bool:
    """Whether the words of ``text`` are one run said twice or more ("Okay Okay", "X. X.")."""
    words = re.findall(r"[a-z0-9']+", text.lower())
    n = len(words)
    return any(n % size == 0 and words == words[:size] * (n // size) for size in range(1, n // 2 + 1))
