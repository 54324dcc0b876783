"""`voicebot chat` and `voicebot simulate` through the CLI runner, and a worker killed in the middle of a call."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from asr_support import assert_heard_any
from conftest import ROOT, TODAY
from voicebot.audio import silence, write_wav
from voicebot.cli import app
from voicebot.store import CallStore, Outcome

runner = CliRunner()


@pytest.fixture
def site(tmp_path):
    """A config of its own: fresh CRM (seeded) and call store, the shared models."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"models:\n  dir: {ROOT / 'models'}\n")
    seeded = runner.invoke(app, ["crm", "seed", "--today", TODAY.isoformat(), "--config", str(cfg)])
    assert seeded.exit_code == 0, seeded.output
    return cfg


def test_chat_answers_typed_caller_turns_from_the_crm(site):
    typed = "Where is my order?\nMy PIN is 1234.\n/dtmf 0\n"
    result = runner.invoke(app, ["chat", "--config", str(site)], input=typed, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "automated assistant" in result.output
    assert "For your security" in result.output
    assert "10452" in result.output and "UPS" in result.output
    assert "connect you with a colleague" in result.output
    store = CallStore(site.parent / "data" / "calls.db", site.parent / "data" / "recordings")
    [call] = store.list_calls()
    assert call.outcome == Outcome.TRANSFERRED
    analysis = store.get_analysis(call.id)  # the after-call analysis ran in the background
    assert analysis is not None


def test_simulate_plays_a_wav_and_prints_turns_and_timings(site, caller_voice, tmp_path):
    wav = tmp_path / "caller.wav"
    speech = b"".join(c.pcm for c in caller_voice.stream("I would like a quote for ten desks.", 16000))
    write_wav(wav, silence(9000, 16000) + speech, 16000)  # speaks after the greeting
    result = runner.invoke(app, ["simulate", str(wav), "--config", str(site), "--tail", "6"],
                           env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "sales team" in result.output  # the bot's own words: the request reached sales
    assert_heard_any(result.output, "quote", "desks")  # the caller's words as Whisper wrote them
    assert "first audio" in result.output


def test_simulate_rejects_a_bad_key_press(site, tmp_path):
    wav = tmp_path / "c.wav"
    write_wav(wav, silence(500, 8000), 8000)
    result = runner.invoke(app, ["simulate", str(wav), "--dtmf", "2:x", "--config", str(site)])
    assert result.exit_code == 2 and "0-9" in result.output


def test_a_killed_worker_leaves_the_call_and_its_finished_turns(site, caller_voice, tmp_path):
    wav = tmp_path / "caller.wav"
    speech = b"".join(c.pcm for c in caller_voice.stream("Hi, where is my order?", 16000))
    write_wav(wav, silence(9000, 16000) + speech + silence(30000, 16000), 16000)
    child = subprocess.Popen([sys.executable, "-m", "voicebot.cli", "simulate", str(wav), "--realtime",
                              "--config", str(site)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    db = site.parent / "data" / "calls.db"
    deadline = time.monotonic() + 120
    turns = 0
    try:
        while time.monotonic() < deadline and turns < 3:  # greeting, the caller, the bot's answer
            time.sleep(0.5)
            if db.exists():
                with sqlite3.connect(db) as con:
                    try:
                        turns = con.execute("SELECT count(*) FROM turns").fetchone()[0]
                    except sqlite3.OperationalError:
                        turns = 0
        assert turns >= 3, "the call did not get far enough"
        os.kill(child.pid, signal.SIGKILL)  # the worker dies mid-call
    finally:
        child.kill()
        child.wait()
    store = CallStore(db, site.parent / "data" / "recordings")
    [call] = store.list_calls()
    assert call.outcome == Outcome.IN_PROGRESS
    saved = store.turns(call.id)
    assert [t.role for t in saved][:3] == ["bot", "caller", "bot"]
    assert "security" in saved[2].text.lower()
    assert store.mark_interrupted() == 1  # what the next start of a worker does
    assert store.get_call(call.id).outcome == Outcome.INTERRUPTED
