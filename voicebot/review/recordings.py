"""Which recording a role may hear: supervisors get a copy with card numbers and PINs beeped out.

The turns whose text holds a card number or PIN (``redact.has_secrets``) are replaced, from their start to their
end plus a margin, by a quiet tone, in a copy written to the app's cache folder (so Range requests and seeking
work as on the original). When such a turn has no times, the part to silence is unknown and the recording is
withheld from supervisors rather than played whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from voicebot.audio import read_wav
from voicebot.fileio import write_wav_atomic
from voicebot.review.redact import answers_secret_question, can_see_raw, has_secrets
from voicebot.store import Turn

MARGIN_S = 0.3
TONE_HZ = 1000.0


class RecordingWithheld(Exception):
    """The recording holds secrets at unknown times: not for this role."""


def secret_spans(turns: Sequence[Turn]) -> list[tuple[float, float]]:
    """(start, end) seconds of every turn that says a card number or PIN; RecordingWithheld if one is untimed."""
    spans = []
    answers = answers_secret_question([(t.role, t.text) for t in turns])
    for turn, answer in zip(turns, answers):
        if has_secrets(turn.text, secret_answer=answer):
            if turn.started_at is None or turn.ended_at is None:
                raise RecordingWithheld(f"turn {turn.idx} holds a card number or PIN and has no times")
            spans.append((max(0.0, turn.started_at - MARGIN_S), turn.ended_at + MARGIN_S))
    return spans


def beep_out(pcm: bytes, rate: int, spans: Sequence[tuple[float, float]]) -> bytes:
    samples = np.frombuffer(pcm, dtype=np.int16).copy()
    for start, end in spans:
        a, b = int(start * rate), min(len(samples), int(end * rate))
        if b > a:
            t = np.arange(b - a) / rate
            samples[a:b] = (1200 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)
    return samples.tobytes()


def playable_file(original: Path, turns: Sequence[Turn], role: str, cache_dir: Path) -> Path:
    """The file ``role`` may hear: the original for an admin or a call without secrets, else a beeped copy."""
    if can_see_raw(role):
        return original
    spans = secret_spans(turns)
    if not spans:
        return original
    stat = original.stat()
    key = hashlib.sha256(f"{original.resolve()}|{stat.st_mtime_ns}|{stat.st_size}|{spans}".encode()).hexdigest()
    target = cache_dir / f"{key[:32]}.wav"
    if not target.exists():
        pcm, rate = read_wav(original)
        write_wav_atomic(target, beep_out(pcm, rate, spans), rate)
    return target
