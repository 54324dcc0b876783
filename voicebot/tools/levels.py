"""What the caller hears of the bot, judged from its audio alone: pure functions over PCM (levels per frame,
speech onsets, the end of a reply, utterances, reply delays, barge-in latency), tested on synthetic audio. Apart
from ``voicebot.tools.caller``, which dials and runs the script, so each stays one job."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

RATE = 16000
FRAME_S = 0.02
SPEECH_DB = -40.0  # bot audio above this is speech
MIN_SPEECH_S = 0.06  # shorter blips (clicks) are not speech
SILENT_FOR_S = 0.1  # the bot is silent once its audio stays under SPEECH_DB this long (barge-in latency)


def frame_levels(pcm: bytes, frame_s: float = FRAME_S, rate: int = RATE) -> np.ndarray:
    """Loudness of each whole frame of s16le PCM in dBFS (-120 for digital silence)."""
    size = int(rate * frame_s)
    samples = np.frombuffer(pcm[:len(pcm) // 2 * 2], dtype=np.int16)
    n = len(samples) // size
    if n == 0:
        return np.zeros(0)
    frames = samples[:n * size].reshape(n, size).astype(np.float64)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    with np.errstate(divide="ignore"):
        return np.maximum(20 * np.log10(rms / 32768.0), -120.0)


def _min_frames(seconds: float, frame_s: float) -> int:
    return max(1, math.ceil(seconds / frame_s - 1e-9))


def find_onset(levels: Sequence[float], start: int = 0, threshold_db: float = SPEECH_DB,
               min_frames: int = 3) -> int | None:
    """Index of the first frame at or after ``start`` that begins ``min_frames`` frames in a row above the
    threshold (speech, not a click), or None."""
    run = 0
    for i in range(max(0, start), len(levels)):
        run = run + 1 if levels[i] > threshold_db else 0
        if run >= min_frames:
            return i - min_frames + 1
    return None


def bot_finished(levels: Sequence[float], start: int = 0, quiet_frames: int = 50,
                 threshold_db: float = SPEECH_DB, min_frames: int = 3) -> bool:
    """True once the bot has spoken at or after frame ``start`` and the last ``quiet_frames`` frames are quiet."""
    onset = find_onset(levels, start, threshold_db, min_frames)
    if onset is None or len(levels) - onset < min_frames + quiet_frames:
        return False
    return bool(np.all(np.asarray(levels[len(levels) - quiet_frames:]) <= threshold_db))


def split_utterances(levels: Sequence[float], threshold_db: float = SPEECH_DB, min_gap_frames: int = 50,
                     min_frames: int = 3) -> list[tuple[int, int]]:
    """Stretches of speech as (first frame, end frame exclusive); gaps shorter than ``min_gap_frames`` join
    their neighbours, stretches shorter than ``min_frames`` in all are dropped."""
    spans: list[list[int]] = []
    for i, level in enumerate(levels):
        if level <= threshold_db:
            continue
        if spans and i - spans[-1][1] < min_gap_frames:
            spans[-1][1] = i + 1
        else:
            spans.append([i, i + 1])
    out = []
    for first, end in spans:
        loud = sum(1 for level in levels[first:end] if level > threshold_db)
        if loud >= min_frames:
            out.append((first, end))
    return out


def reply_delays(step_ends: Sequence[float], step_starts: Sequence[float],
                 onsets: Sequence[float]) -> list[float | None]:
    """For each step, the delay from its end to the first bot onset after it (None if the bot said nothing
    before the next step began)."""
    delays: list[float | None] = []
    for i, end in enumerate(step_ends):
        until = step_starts[i + 1] if i + 1 < len(step_starts) else math.inf
        after = [t for t in onsets if end - 1e-6 <= t < until]
        delays.append(round(min(after) - end, 3) if after else None)
    return delays


def barge_in_latency(heard: Sequence[float], sent: Sequence[float], start_s: float, end_s: float,
                     quiet_db: float = SPEECH_DB) -> float | None:
    """For a step said over the bot: from the caller's speech onset (in ``sent``, at or after ``start_s``) to
    the start of the first ``SILENT_FOR_S`` of the bot's quiet (in ``heard``: at or under ``quiet_db``) before
    ``end_s``; None when the bot talked on through the step. Levels are ``frame_levels`` of each side."""
    onset = find_onset(sent, int(start_s / FRAME_S))
    if onset is None:
        return None
    need = _min_frames(SILENT_FOR_S, FRAME_S)
    quiet = 0
    for i in range(onset, min(len(heard), int(end_s / FRAME_S) + need)):
        quiet = quiet + 1 if heard[i] <= quiet_db else 0
        if quiet >= need:
            return round((i - need + 1 - onset) * FRAME_S, 3)
    return None


DOWN_DB = 15.0  # the bot's voice this far under its level before the caller spoke: ducked (vad.duck_db) or silent


def quieter_latency(heard: Sequence[float], sent: Sequence[float], start_s: float, end_s: float,
                    down_db: float = DOWN_DB) -> float | None:
    """As ``barge_in_latency``, to the bot's voice ``down_db`` under its median speech level in the second before
    ``start_s`` (ducked under the caller, or silent); None when the bot was not speaking then or talked on."""
    before = np.asarray(heard[max(0, int((start_s - 1.0) / FRAME_S)):int(start_s / FRAME_S)])
    speech = before[before > SPEECH_DB]
    if not len(speech):
        return None
    return barge_in_latency(heard, sent, start_s, end_s, float(np.median(speech)) - down_db)
