"""Text to speech: the Synthesizer protocol and its Piper implementation.

Speech is produced sentence by sentence so the first sentence can play while the rest is still being made.
Fixed prompts (greeting, "one moment", transfer notice) are synthesised once and kept on disk, keyed by the
text, the voice and the settings, so a call never waits for them twice.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from voicebot.audio import TELEPHONE_RATES, read_wav, resample
from voicebot.fileio import write_wav_atomic
from voicebot.speech.voice_text import for_voice

RECENT_SENTENCES = 256  # about 4 MB of 8 kHz speech
READING = "amounts-as-words"  # in the cache key: how text is read (``voice_text``); a new reading, new audio
_SENTENCE_END = re.compile(r"[.!?;](?=\s+[\"'(\[]?[A-Z0-9])")
_CLAUSE_END = re.compile(r"[,:;—](?=\s)")


class SentenceBuffer:
    """Collects streamed text and hands out whole sentences as soon as they are complete. A sentence ends at
    . ! ? or ; followed by a space and a capital or digit, so "25.99" and "Dr. smith" stay whole."""

    def __init__(self, min_chars: int = 12, clause_first: bool = False) -> None:
        self.text = ""
        self.min_chars = min_chars
        self.clause_first = clause_first  # hand out the first clause of the first sentence on its own

    def feed(self, piece: str) -> list[str]:
        self.text += piece
        out = []
        if self.clause_first:
            out += self._first_clause()
        while True:
            cut = next((m.end() for m in _SENTENCE_END.finditer(self.text) if m.end() >= self.min_chars), None)
            if cut is None:
                return out
            sentence, self.text = self.text[:cut].strip(), self.text[cut:].lstrip()
            if sentence:
                out.append(sentence)

    def _first_clause(self) -> list[str]:
        """The first clause of a reply being written ("I'm sorry to hear that," of a longer sentence), once a word
        follows it: the caller hears it while the model writes the rest of the sentence. Not before a digit ("May
        3, 2026" stays whole) and not when the whole sentence has already ended."""
        sentence_end = next((m.end() for m in _SENTENCE_END.finditer(self.text) if m.end() >= self.min_chars), None)
        for match in _CLAUSE_END.finditer(self.text):
            head, tail = self.text[:match.end()].strip(), self.text[match.end():].lstrip()
            if sentence_end is not None and match.end() > sentence_end:
                break
            if len(head) >= self.min_chars and len(head.split()) >= 3 and tail[:1].isalpha():
                self.clause_first = False
                self.text = tail
                return [head]
            if len(head.split()) >= 3 and not tail:
                break  # wait for the next word
        if sentence_end is not None:
            self.clause_first = False  # the first sentence is whole already
        return []

    def flush(self) -> list[str]:
        rest, self.text = self.text.strip(), ""
        return [rest] if rest else []


def split_sentences(text: str) -> list[str]:
    """Split a whole text into sentences (the same rule as streamed text)."""
    buffer = SentenceBuffer(min_chars=1)
    return buffer.feed(text) + buffer.flush()


def first_clause(sentence: str, min_chars: int = 48) -> list[str]:
    """A long sentence as [its first clause, the rest], cut at the first comma, colon or dash that leaves at least
    three words on each side; otherwise [sentence]. Why: the caller hears nothing until the first piece is
    synthesised, and a short clause is ready in a fraction of the time of the whole sentence, while the rest is
    made as it plays. Only the first sentence of a reply is cut: later ones are made while earlier ones play."""
    if len(sentence) < min_chars:
        return [sentence]
    for match in _CLAUSE_END.finditer(sentence):
        head, tail = sentence[:match.end()].strip(), sentence[match.end():].strip()
        if len(head.split()) >= 3 and len(tail.split()) >= 3:
            return [head, tail]
    return [sentence]


@dataclass(frozen=True)
class SpeechChunk:
    text: str
    pcm: bytes
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


@runtime_checkable
class Synthesizer(Protocol):
    voice: str

    def stream(self, text: str, sample_rate: int) -> Iterator[SpeechChunk]:
        """Yield speech one sentence at a time, mono s16le at ``sample_rate`` (8000 or 16000)."""
        ...

    def cached(self, text: str, sample_rate: int) -> bytes:
        """The whole text as speech, from the disk cache when it was made before."""
        ...


CACHE_MAX_FILES = 2000
"""The disk cache of fixed prompts holds at most this many files (~100 KB each): the least recently used go first.
Why a bound: "fixed" texts are not all constant (a reminder's offered times, a menu with the caller's name), and an
unbounded cache grew by a file per distinct text for as long as the bot ran."""


def trim_cache(folder: Path, keep: int) -> int:
    """Delete the least recently used ``*.wav`` files of ``folder`` beyond ``keep`` (down to 90% of it, so the listing
    is not repeated on every new file); returns how many went. Never raises: the cache only saves time."""
    try:
        files = list(folder.glob("*.wav"))
        if len(files) <= keep:
            return 0
        files.sort(key=lambda f: f.stat().st_mtime)
        gone = files[:len(files) - keep * 9 // 10]
        for f in gone:
            f.unlink(missing_ok=True)
        return len(gone)
    except OSError:
        return 0


@dataclass
class PiperSynthesizer:
    """Piper (ONNX on CPU) loaded from a local voice folder."""

    model_dir: str | Path
    voice: str = "piper-en_US-joe-medium"
    length_scale: float = 1.0
    cache_dir: str | Path | None = None
    noise_scale: float | None = None  # None: the voice's own; 0 with noise_w_scale 0 makes output repeatable
    noise_w_scale: float | None = None
    load_s: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        from piper import PiperVoice, SynthesisConfig  # heavy import, only when a synthesizer is made

        folder = Path(self.model_dir)
        onnx = next(iter(sorted(folder.glob("*.onnx"))), None)
        if onnx is None:
            raise FileNotFoundError(f"no .onnx voice in {folder}")
        started = time.perf_counter()
        self._voice = PiperVoice.load(str(onnx), config_path=str(onnx) + ".json", use_cuda=False)
        self._config = SynthesisConfig(length_scale=self.length_scale, noise_scale=self.noise_scale,
                                       noise_w_scale=self.noise_w_scale)
        self.native_rate = self._voice.config.sample_rate
        # Sentences said recently, as speech: replies repeat themselves across calls ("Which service do you need?",
        # "Is there anything else?"), and a sentence found here plays at once instead of after its synthesis.
        # Shared by the copies ``with_length_scale`` makes (the key holds the rate of speech) and by the synthesis
        # threads of all calls, behind a lock.
        self._recent: OrderedDict[tuple[str, int, float], bytes] = OrderedDict()
        self._recent_lock = threading.Lock()
        self.load_s = time.perf_counter() - started

    def with_length_scale(self, length_scale: float) -> "PiperSynthesizer":
        """The same voice, already loaded, speaking at ``length_scale`` (above 1 slower): a slow caller's call."""
        from piper import SynthesisConfig

        other = copy.copy(self)
        other.length_scale = length_scale
        other._config = SynthesisConfig(length_scale=length_scale, noise_scale=self.noise_scale,
                                        noise_w_scale=self.noise_w_scale)
        return other

    def _check_rate(self, sample_rate: int) -> None:
        if sample_rate not in TELEPHONE_RATES:
            raise ValueError(f"sample rate {sample_rate} Hz: telephone rates are {TELEPHONE_RATES}")

    def _speak(self, sentence: str, sample_rate: int) -> bytes:
        key = (sentence, sample_rate, self.length_scale)
        with self._recent_lock:
            if (pcm := self._recent.get(key)) is not None:
                self._recent.move_to_end(key)
                return pcm
        native = b"".join(chunk.audio_int16_bytes for chunk in self._voice.synthesize(for_voice(sentence),
                                                                                       self._config))
        pcm = resample(native, self.native_rate, sample_rate)
        with self._recent_lock:
            self._recent[key] = pcm
            while len(self._recent) > RECENT_SENTENCES:
                self._recent.popitem(last=False)
        return pcm

    def stream(self, text: str, sample_rate: int) -> Iterator[SpeechChunk]:
        self._check_rate(sample_rate)
        for sentence in split_sentences(text):
            pcm = self._speak(sentence, sample_rate)
            if pcm:
                yield SpeechChunk(sentence, pcm, sample_rate)

    def cache_path(self, text: str, sample_rate: int) -> Path | None:
        if self.cache_dir is None:
            return None
        settings = f"{self.voice}|{self.length_scale}|{self.noise_scale}|{self.noise_w_scale}|{sample_rate}|{READING}"
        key = hashlib.sha256(f"{settings}|{text}".encode()).hexdigest()
        return Path(self.cache_dir).expanduser() / f"{key[:32]}.wav"

    def cached(self, text: str, sample_rate: int) -> bytes:
        self._check_rate(sample_rate)
        path = self.cache_path(text, sample_rate)
        if path is not None and path.is_file():
            try:
                pcm, rate = read_wav(path)
                if rate == sample_rate:
                    os.utime(path)  # recently used: the last to go when the cache is trimmed
                    return pcm
            except (OSError, EOFError, ValueError):
                pass  # a damaged cache entry is simply made again
        pcm = b"".join(chunk.pcm for chunk in self.stream(text, sample_rate))
        if path is not None:
            self._store(path, pcm, sample_rate)
            trim_cache(path.parent, CACHE_MAX_FILES)
        return pcm

    @staticmethod
    def _store(path: Path, pcm: bytes, sample_rate: int) -> None:
        try:
            write_wav_atomic(path, pcm, sample_rate)
        except OSError:
            pass  # a full or read-only disk costs speed, never the call
