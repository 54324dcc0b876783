"""Real recordings for the tests: street, train and crowd noise, an office, and a human voice
(``scripts/pull_recordings.py``).

A test that needs one fails, never skips, when it is missing: ``scripts/test.sh`` pulls them before the tests.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from voicebot.audio import rms_dbfs

_spec = importlib.util.spec_from_file_location("pull_recordings", Path(__file__).parent.parent / "scripts" /
                                               "pull_recordings.py")
assert _spec is not None and _spec.loader is not None
pull_recordings = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pull_recordings)


OFFICE = "office"
"""Not a file: an office made of real recordings (``_office``), looped and scaled as a recording is."""


@cache
def _decoded(name: str, rate: int) -> bytes:
    from faster_whisper.audio import decode_audio  # PyAV: Ogg Vorbis and WAV, mono, resampled

    if name == OFFICE:
        return _office(rate)
    path = pull_recordings.cache_dir() / name
    if not path.is_file():
        pytest.fail(f"the recording {path} is missing: run scripts/test.sh (it runs scripts/pull_recordings.py)")
    samples = decode_audio(str(path), sampling_rate=rate)
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def recording(name: str, rate: int = 8000, *, level_dbfs: float | None = None, start_s: float = 0.0,
              seconds: float | None = None) -> bytes:
    """``name`` under the recordings folder (e.g. ``street.ogg``, ``voice/digit-3.wav``) as s16le mono PCM at
    ``rate``, from ``start_s`` for ``seconds`` (looped when the recording is shorter), its RMS set to
    ``level_dbfs`` when given."""
    pcm = _decoded(name, rate)
    begin = round(start_s * rate) * 2 % len(pcm)
    pcm = pcm[begin:] + pcm[:begin]
    if seconds is not None:
        size = round(seconds * rate) * 2
        pcm = (pcm * (size // len(pcm) + 1))[:size]
    if level_dbfs is not None:
        samples = np.frombuffer(pcm, "<i2").astype(np.float64) * 10 ** ((level_dbfs - rms_dbfs(pcm)) / 20)
        pcm = np.clip(samples, -32768, 32767).astype("<i2").tobytes()
    return pcm


def _office(rate: int, seconds: float = 30.0, seed: int = 7) -> bytes:
    """30 s of an office behind the caller: someone typing on a real keyboard (bucklespring's recordings of an IBM
    Model M, every key down and up) in bursts of words at 5-9 keys a second with pauses between them, and a desk
    phone ringing (the freedesktop ring) from 4 s and again from 19 s. The same every run (``seed``): the keys are
    where typing puts them, not where a test would like them."""
    rng = np.random.default_rng(seed)
    track = np.zeros(round(seconds * rate), dtype=np.int32)

    def put(pcm: bytes, at_s: float, gain_db: float = 0.0) -> None:
        clip = np.frombuffer(pcm, "<i2").astype(np.float64) * 10 ** (gain_db / 20)
        start = round(at_s * rate)
        clip = clip[:max(0, len(track) - start)]
        track[start:start + len(clip)] += clip.astype(np.int32)

    letters = ("1e", "1f", "20", "21")
    t = 0.3
    while t < seconds - 1:
        for key in [*rng.choice(letters, size=int(rng.integers(3, 8))), "39"]:  # a word, then the space bar
            put(trimmed(recording(f"office/key-{key}-0.wav", rate), rate), t)
            put(trimmed(recording(f"office/key-{key}-1.wav", rate), rate), t + rng.uniform(0.06, 0.12), -4.0)
            t += rng.uniform(1 / 9, 1 / 5)
        if rng.random() < 0.3:
            t += rng.uniform(0.6, 2.0)  # reading what was typed
    ring = recording("office/phone-ring.oga", rate)
    for at in (4.0, 19.0):
        for repeat in range(3):
            put(ring, at + repeat * (len(ring) / 2 / rate + 0.8), -6.0)
    return np.clip(track, -32768, 32767).astype("<i2").tobytes()


def trimmed(pcm: bytes, rate: int = 8000, floor_dbfs: float = -50.0) -> bytes:
    """``pcm`` without the quiet before the first and after the last 10 ms louder than ``floor_dbfs`` (the prompts
    are padded with silence)."""
    step = rate // 100 * 2
    loud = [i for i in range(0, len(pcm), step) if rms_dbfs(pcm[i:i + step]) > floor_dbfs]
    return pcm[loud[0]:loud[-1] + step] if loud else b""


def voice(*names: str, rate: int = 8000, gap_s: float | None = None) -> bytes:
    """Allison Smith's recorded prompts (``voice/<name>.wav``) one after another; with ``gap_s``, each trimmed of
    its padding and ``gap_s`` of silence between them (a caller saying digits at their own pace)."""
    clips = [recording(f"voice/{name}.wav", rate) for name in names]
    if gap_s is None:
        return b"".join(clips)
    return (b"\0\0" * round(gap_s * rate)).join(trimmed(clip, rate) for clip in clips)
