"""Audio primitives: frames of 16-bit PCM, WAV files, resampling (soxr) and G.711 mu-law / A-law (audioop).

Inside the pipeline audio is mono signed 16-bit little-endian PCM ("s16le"). Time is counted in samples of the
audio itself, never read from the wall clock, so a test can run a call faster than real time.
"""

from __future__ import annotations

import warnings
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

with warnings.catch_warnings():  # stdlib until 3.12; the audioop-lts package provides it from 3.13
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

SAMPLE_WIDTH = 2
TELEPHONE_RATES = (8000, 16000)


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """A slice of mono s16le audio; ``timestamp`` is the index of its first sample in the call's audio."""

    pcm: bytes
    sample_rate: int
    timestamp: int = 0

    @property
    def samples(self) -> int:
        return len(self.pcm) // SAMPLE_WIDTH

    @property
    def duration_ms(self) -> float:
        return 1000.0 * self.samples / self.sample_rate


def frame_bytes(sample_rate: int, frame_ms: int) -> int:
    return sample_rate * frame_ms // 1000 * SAMPLE_WIDTH


def split_frames(pcm: bytes, sample_rate: int, frame_ms: int, start: int = 0) -> Iterator[AudioFrame]:
    """Cut PCM into whole frames (a short tail is padded with silence)."""
    size = frame_bytes(sample_rate, frame_ms)
    step = size // SAMPLE_WIDTH
    for index, offset in enumerate(range(0, len(pcm), size)):
        chunk = pcm[offset:offset + size]
        if len(chunk) < size:
            chunk += b"\x00" * (size - len(chunk))
        yield AudioFrame(chunk, sample_rate, start + index * step)


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """High-quality resampling of s16le PCM (soxr, the SoX resampler)."""
    if from_rate == to_rate or not pcm:
        return pcm
    samples = np.frombuffer(pcm, dtype=np.int16)
    return soxr.resample(samples, from_rate, to_rate, quality="HQ").astype(np.int16).tobytes()


def mix(a: bytes, b: bytes, b_gain_db: float = 0.0) -> bytes:
    """Two s16le tracks summed sample by sample (``b`` ``b_gain_db`` louder, or quieter when negative), clipped to
    16 bits, as long as the longer: both sides of a call in one recording, or an echo added to the caller's audio.
    Summed in 32 bits, so loud passages clip instead of wrapping around."""
    x = np.zeros(max(len(a), len(b)) // SAMPLE_WIDTH, dtype=np.int32)
    x[:len(a) // SAMPLE_WIDTH] += np.frombuffer(a, dtype=np.int16)
    other = np.frombuffer(b, dtype=np.int16)
    x[:len(other)] += other if not b_gain_db else (other.astype(np.float32) * 10 ** (b_gain_db / 20)).astype(np.int32)
    return np.clip(x, -32768, 32767).astype(np.int16).tobytes()


def gained(pcm: bytes, gain_db: float) -> bytes:
    """``pcm`` (s16le) ``gain_db`` louder (quieter when negative); clipped. A 20 ms frame costs microseconds: cheap
    enough for the media thread's tick (the bot's voice ducked while the caller speaks over it)."""
    return mix(b"", pcm, gain_db) if gain_db else pcm


def to_float32(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0


def silence(ms: int, sample_rate: int) -> bytes:
    return b"\x00" * (sample_rate * ms // 1000 * SAMPLE_WIDTH)


def ulaw_encode(pcm: bytes) -> bytes:
    return audioop.lin2ulaw(pcm, SAMPLE_WIDTH)


def ulaw_decode(data: bytes) -> bytes:
    return audioop.ulaw2lin(data, SAMPLE_WIDTH)


def alaw_encode(pcm: bytes) -> bytes:
    return audioop.lin2alaw(pcm, SAMPLE_WIDTH)


def alaw_decode(data: bytes) -> bytes:
    return audioop.alaw2lin(data, SAMPLE_WIDTH)


def phone_line(pcm: bytes, rate: int, codec: str = "PCMU", out_rate: int | None = None) -> bytes:
    """Audio as it comes out of a telephone line: narrowed to 8 kHz and through the codec (PCMU, PCMA; L16 is
    only resampled), then at ``out_rate`` (default: 8000)."""
    out_rate = out_rate or 8000
    if codec == "L16":
        return resample(pcm, rate, out_rate)
    narrow = resample(pcm, rate, 8000)
    coded = ulaw_decode(ulaw_encode(narrow)) if codec == "PCMU" else alaw_decode(alaw_encode(narrow))
    return resample(coded, 8000, out_rate)


def rms_dbfs(pcm: bytes) -> float:
    """Loudness of a block in dBFS (-inf for digital silence)."""
    if not pcm:
        return float("-inf")
    rms = audioop.rms(pcm, SAMPLE_WIDTH)
    return 20 * np.log10(rms / 32768.0) if rms else float("-inf")


def read_wav(path: str | Path) -> tuple[bytes, int]:
    """Read a WAV file as mono s16le; stereo is mixed down. Other sample widths are an error."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != SAMPLE_WIDTH:
            raise ValueError(f"{path}: {8 * wav.getsampwidth()}-bit WAV; 16-bit PCM is required")
        pcm = wav.readframes(wav.getnframes())
        if wav.getnchannels() == 2:
            pcm = audioop.tomono(pcm, SAMPLE_WIDTH, 0.5, 0.5)
        elif wav.getnchannels() != 1:
            raise ValueError(f"{path}: {wav.getnchannels()} channels; mono or stereo is required")
        return pcm, wav.getframerate()


def write_wav(path: str | Path, pcm: bytes, sample_rate: int) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
