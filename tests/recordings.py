"""Real recordings for the tests: street, train and crowd noise, and a human voice (``scripts/pull_recordings.py``).

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


@cache
def _decoded(name: str, rate: int) -> bytes:
    from faster_whisper.audio import decode_audio  # PyAV: Ogg Vorbis and WAV, mono, resampled

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
