"""Atomic file writes: a file is either the old one or the whole new one, never half of either.

Every file voicebot writes for later (recordings, cached speech, the model stamps and checks, joined model
weights) goes through ``atomic_path``: the content is written to a hidden temporary name in the same folder and
renamed over the target only once it is complete. A crash or a full disk leaves the target as it was and no
temporary file behind (``.<name>.<random>.tmp`` names, which no reader globs for).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _fsync(path: str | Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(target: str | Path, *, sync: bool = False) -> Iterator[Path]:
    """A temporary path next to ``target`` to write to; when the block ends without an error it replaces
    ``target`` in one rename, else it is removed and ``target`` is untouched. The folder is created when missing.

    The temporary file does not exist yet (write it, link to it or copy to it). ``sync=True`` flushes the file and
    the rename to disk before returning (a recording must survive a power cut; a cache entry need not).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        if sync:
            _fsync(tmp)
        os.replace(tmp, target)
        if sync:
            _fsync(target.parent, directory=True)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(target: str | Path, data: bytes, *, sync: bool = False) -> None:
    """Write ``data`` to ``target`` atomically (see ``atomic_path``)."""
    with atomic_path(target, sync=sync) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: str | Path, text: str, *, sync: bool = False) -> None:
    """Write UTF-8 ``text`` to ``target`` atomically (see ``atomic_path``)."""
    write_bytes_atomic(target, text.encode("utf-8"), sync=sync)


def write_wav_atomic(target: str | Path, pcm: bytes, sample_rate: int, *, sync: bool = False) -> None:
    """Write mono s16le ``pcm`` as a WAV file at ``target`` atomically (see ``atomic_path``)."""
    from voicebot.audio import write_wav

    with atomic_path(target, sync=sync) as tmp:
        write_wav(tmp, pcm, sample_rate)
