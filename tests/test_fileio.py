"""Atomic writes: the target is the old file or the whole new one, and no temporary file is left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebot.audio import read_wav
from voicebot.fileio import atomic_path, write_bytes_atomic, write_text_atomic, write_wav_atomic


def test_writes_replace_the_target_and_leave_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "folder" / "state.json"
    write_text_atomic(target, "old")
    write_text_atomic(target, "new", sync=True)
    assert target.read_text() == "new"
    write_bytes_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    wav = tmp_path / "deep" / "speech.wav"
    write_wav_atomic(wav, b"\x01\x00" * 80, 8000, sync=True)
    assert read_wav(wav) == (b"\x01\x00" * 80, 8000)
    assert sorted(p.name for p in target.parent.iterdir()) == ["state.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "model.bin"
    target.write_bytes(b"good")
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a fi")
        raise ValueError("checksum mismatch")
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_the_temporary_path_is_hidden_next_to_the_target_and_not_created(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "a.wav") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".a.wav.") and tmp.suffix == ".tmp"
        assert not tmp.exists()  # free for os.link or a copy
        tmp.write_bytes(b"x")
    assert (tmp_path / "a.wav").read_bytes() == b"x"
