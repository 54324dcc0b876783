"""The end-of-turn model: is the caller done speaking, judged from the sound of the last few seconds?

Why a model and not a timer: a fixed silence is either too short for a slow caller (a 1.2 s pause mid-sentence
was cut) or too long for a quick "yes" (every turn waited 700 ms). Smart Turn v3.2 (Daily / Pipecat, BSD-2) is a
Whisper-tiny encoder with a classifier head, trained on intonation and rhythm: falling pitch at the end of a
finished phrase, a trailing "and..." or a word cut off mid-way. It reads audio only (no transcript), so it can
answer ~200 ms into a pause, long before Whisper has a transcript.

How it is called (the same as Pipecat's ``LocalSmartTurnAnalyzerV3``, which the weights were tuned with):

* the last <= 8 s of the utterance, as float in [-1, 1];
* telephone audio (8 kHz) upsampled to the model's 16 kHz with soxr (HQ): the model never saw 8 kHz input, and
  upsampling only adds an empty band above 4 kHz, which the per-clip normalisation copes with;
* zero-padded at the *front* to exactly 8 s, so the end of speech is always at the end of the window;
* Whisper log-mel features (``whisper_features``, vendored numpy code, no torch), shape ``[1, 80, 800]``;
* one ONNX Runtime session, one intra-op thread, sequential: ~45 ms per call on one core, and a second call
  never competes with Whisper and llama.cpp for the other core.

The output is the probability that the turn is complete; ``complete`` is ``probability >= threshold``.

``EndOfTurnModel`` is the protocol the rest of the bot depends on, so timeline tests use a scripted fake and only
``tests/test_turn_model.py`` loads the real weights. ``SmartTurnModel.score`` is synchronous and blocking: call it
off the event loop (the listener runs it in a worker thread; see ``voicebot.speech.turns``).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from voicebot.models import ModelError
from voicebot.speech.whisper_features import compute_whisper_log_mel_features

MODEL_RATE = 16000
WINDOW_S = 8


class TurnModelError(ModelError):
    """The turn model cannot be loaded; the message says what to do."""


@dataclass(frozen=True)
class TurnScore:
    """One verdict: the probability the caller finished, the decision at the threshold, and its cost."""

    probability: float
    complete: bool
    seconds: float  # wall time of this call: resampling, features and inference


@runtime_checkable
class EndOfTurnModel(Protocol):
    """Anything that can judge whether an utterance sounds finished (the real model or a test's fake)."""

    name: str

    def score(self, pcm: bytes, sample_rate: int) -> TurnScore:
        """Judge mono s16le ``pcm`` at ``sample_rate`` (8 or 16 kHz); blocking, thread-safe."""
        ...


@dataclass(frozen=True)
class LatencyStats:
    """Per-call cost of the model over its recent calls, for the benchmarks and the readiness report."""

    calls: int
    median_ms: float
    p95_ms: float


def last_window(pcm: bytes, sample_rate: int, seconds: float = WINDOW_S) -> np.ndarray:
    """The last ``seconds`` of s16le ``pcm`` as float32 in [-1, 1], resampled to 16 kHz (not yet padded).

    Cut before resampling so a 30 s utterance costs no more than an 8 s one."""
    if sample_rate not in (8000, 16000, 22050, 24000, 44100, 48000):
        raise ValueError(f"sample rate {sample_rate} Hz is not one the turn model takes")
    samples = np.frombuffer(pcm[:len(pcm) // 2 * 2], dtype="<i2")
    keep = int(seconds * sample_rate)
    audio = samples[-keep:].astype(np.float32) / 32768.0
    if sample_rate != MODEL_RATE and audio.size:
        import soxr  # imported here: only the real model needs it

        audio = soxr.resample(audio, sample_rate, MODEL_RATE, quality="HQ").astype(np.float32)
    return audio[-WINDOW_S * MODEL_RATE:]


def model_input(pcm: bytes, sample_rate: int) -> np.ndarray:
    """The model's ``input_features``: the last 8 s at 16 kHz, zero-padded in front, as ``[1, 80, 800]``."""
    audio = last_window(pcm, sample_rate)
    full = WINDOW_S * MODEL_RATE
    if audio.size < full:
        audio = np.pad(audio, (full - audio.size, 0))
    return compute_whisper_log_mel_features(audio, do_normalize=True)[np.newaxis]


class SmartTurnModel:
    """Smart Turn v3.2 on ONNX Runtime: ``score(pcm, rate)`` -> ``TurnScore``. Loads in ~0.05 s."""

    def __init__(self, path: str | Path, *, name: str = "smart-turn-v3.2", threshold: float = 0.5,
                 threads: int = 1, keep_latencies: int = 512):
        path = Path(path)
        found = sorted(path.glob("*.onnx")) if path.is_dir() else [path] if path.is_file() else []
        if len(found) != 1:
            raise TurnModelError(f"{path} holds {len(found) or 'no'} turn model files (.onnx), not one; run "
                                 f"`voicebot models pull {name}`")
        onnx = found[0]
        if not 0 < threshold < 1:
            raise ValueError("threshold is a probability between 0 and 1")
        import onnxruntime as ort  # the same runtime as Piper's voices; probed by voicebot.native_check

        options = ort.SessionOptions()
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = max(1, threads)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # The weights are int8. On an x86 CPU without VNNI (AVX2 only, or AVX-512 without VNNI), ONNX Runtime's
        # u8*s8 kernel adds pairs of products in 16 bits, which saturate: on such a CI machine a sentence cut off
        # mid-word scored 0.91, 'complete' (under `qemu-x86_64 -cpu EPYC-Milan` 0.93; 0.13 on a VNNI CPU), and
        # a slow caller would be cut. With this option ONNX Runtime uses exact u8*u8 there (0.13 under qemu too);
        # on a VNNI CPU it changes nothing (the same scores to the last digit).
        options.add_session_config_entry("session.x64quantprecision", "1")
        try:
            self._session = ort.InferenceSession(str(onnx), sess_options=options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types; say which file and what to do
            raise TurnModelError(f"turn model {onnx} does not load ({exc}); run `voicebot models pull {name}` "
                                 "to fetch and verify it again") from exc
        inputs = self._session.get_inputs()
        if [i.name for i in inputs] != ["input_features"]:
            raise TurnModelError(f"{onnx} is not a Smart Turn v3 model (inputs {[i.name for i in inputs]})")
        self.name = name
        self.threshold = threshold
        self.path = onnx
        self._latencies: deque[float] = deque(maxlen=keep_latencies)
        self._lock = threading.Lock()  # the deque only; ONNX Runtime's run() is thread-safe

    def probability(self, pcm: bytes, sample_rate: int) -> float:
        """The probability that the utterance in ``pcm`` is complete (0..1)."""
        return self.score(pcm, sample_rate).probability

    def score(self, pcm: bytes, sample_rate: int) -> TurnScore:
        started = time.perf_counter()
        features = model_input(pcm, sample_rate)
        output = self._session.run(None, {"input_features": features})[0]
        probability = float(np.asarray(output).reshape(-1)[0])
        seconds = time.perf_counter() - started
        with self._lock:
            self._latencies.append(seconds)
        return TurnScore(probability, probability >= self.threshold, seconds)

    def warm(self) -> TurnScore:
        """One call on a second of silence, so the first caller's turn does not pay ONNX Runtime's first run."""
        return self.score(b"\0" * (MODEL_RATE * 2), MODEL_RATE)

    def latency(self) -> LatencyStats | None:
        """Median and p95 per-call time over the recent calls (None before the first)."""
        with self._lock:
            values = sorted(self._latencies)
        return latency_stats(values)

    def reset_latency(self) -> None:
        with self._lock:
            self._latencies.clear()


def latency_stats(seconds: list[float]) -> LatencyStats | None:
    """Median and p95 in milliseconds of the given call times (None when empty)."""
    if not seconds:
        return None
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return LatencyStats(len(ordered), statistics.median(ordered) * 1000, p95 * 1000)
