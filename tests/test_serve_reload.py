"""SIGHUP reloads the config (issue 12): before, SIGHUP ended `voicebot serve` and every live call with it.

First what a reload takes from a file (``voicebot.reload``, real files): the live sections apply, the rest waits
for a restart and is named; an invalid file changes nothing and every problem has its file:line. Then a real
`voicebot serve` process over SIP (sipp places the calls; the greeting the bot said is read from the call store):
a live call through the reload goes on with the config it began with, the next call gets the new greeting, an
invalid file is refused with file:line in the log and the process keeps answering with the last good config.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT
from serve_support import serving
from sip_support import sipp_binary

from voicebot.bench_soak import uac_scenario
from voicebot.config import load_config
from voicebot.reload import read

PORT = 22700  # the bot (RTP from +2); sipp's calls from PORT+60


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_reload_applies_the_live_sections_and_names_what_needs_a_restart(tmp_path):
    running = load_config(write(tmp_path / "a.yaml", f"models:\n  dir: {ROOT / 'models'}\n"))
    path = write(tmp_path / "a.yaml", "faults:\n  llm_timeout_s: 9\ndialog:\n  greeting: Hi, this is the automated assistant.\n"
                                      "sip:\n  port: 5099\nllm:\n  max_tokens: 50\n")
    result = read(path, running)
    assert result.ok
    assert set(result.applied) == {"faults.llm_timeout_s", "dialog.greeting"}
    assert {"sip.port", "llm.max_tokens"} <= set(result.restart)
    assert result.config.faults.llm_timeout_s == 9 and result.config.dialog.greeting == "Hi, this is the automated assistant."
    assert result.config.sip.port == running.sip.port and result.config.llm.max_tokens == running.llm.max_tokens


def test_an_invalid_file_changes_nothing_and_says_where(tmp_path):
    running = load_config(write(tmp_path / "b.yaml", "faults:\n  llm_timeout_s: 9\n"))
    path = write(tmp_path / "b.yaml", "faults:\n  llm_timeout_s: 9\n\ndialog:\n  greeting: Hi.\n  greeting: Ho.\n"
                                      "vad:\n  aggressiveness: 7\n")
    result = read(path, running)
    assert not result.ok and result.config is running and result.applied == []
    assert any(f"{path}:6" in p and "greeting" in p for p in result.problems), result.problems  # duplicate key
    # one problem per run is enough for a duplicate (the YAML reader stops there); a bad value also has its line
    bad = write(tmp_path / "c.yaml", "vad:\n  aggressiveness: 7\n")
    assert any(f"{bad}:2" in p and "aggressiveness" in p for p in read(bad, running).problems)


def sipp_call(folder: Path, port: int, hold_ms: int, local_port: int) -> subprocess.Popen:
    """One call from sipp (the soak's scenario: INVITE with PCMU, ``hold_ms`` on the line, BYE)."""
    scenario = folder / f"uac-{local_port}.xml"
    scenario.write_text(uac_scenario(hold_ms))
    return subprocess.Popen([sipp_binary(), f"127.0.0.1:{port}", "-sf", str(scenario), "-i", "127.0.0.1", "-p",
                             str(local_port), "-mp", str(local_port + 2), "-m", "1", "-nostdin", "-timeout", "60s",
                             "-timeout_error"], cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def greetings(served) -> list[str]:
    store = served.store()
    try:
        return [next((t.text for t in store.turns(c.id) if t.role == "bot"), None)
                for c in reversed(store.list_calls())]
    finally:
        store.close()


def wait_for(predicate, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.models
@pytest.mark.timeout(400)
def test_sighup_reloads_a_running_serve_and_live_calls_go_on(tmp_path):
    with serving(tmp_path, PORT, load_timeout_s=400, stop_timeout_s=240) as served:
        cfg = served.config
        original = cfg.read_text()
        live = sipp_call(tmp_path, PORT, 12000, PORT + 60)  # a call that lasts through the reload
        wait_for(lambda: len(served.store().list_calls()) == 1)
        cfg.write_text(original + "dialog:\n  greeting: Hello, this is the reloaded automated assistant.\n")
        served.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "config reloaded" in served.text)
        assert "dialog.greeting" in served.text
        assert live.wait(60) == 0  # the live call went on to its end (BYE answered) through the reload
        assert served.process.poll() is None

        after = sipp_call(tmp_path, PORT, 12000, PORT + 64)  # the new greeting is synthesised first
        assert after.wait(60) == 0
        wait_for(lambda: len(greetings(served)) == 2 and None not in greetings(served) and "in_progress" not in
                 [c.outcome for c in served.store().list_calls()])
        first, second = greetings(served)
        assert "reloaded" not in first  # the live call kept the config it began with
        assert second == "Hello, this is the reloaded automated assistant."

        cfg.write_text(original + "dialog:\n  greeting: Broken.\n  greeting: Twice.\n")  # a duplicate key
        served.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "refused" in served.text)
        assert f"{cfg}:" in served.text.split("refused", 1)[1]  # the problem, with file:line
        last = sipp_call(tmp_path, PORT, 8000, PORT + 68)
        assert last.wait(60) == 0
        wait_for(lambda: len(greetings(served)) == 3 and None not in greetings(served))
        assert greetings(served)[2] == "Hello, this is the reloaded automated assistant."  # the last good config
        assert served.process.poll() is None
    assert served.exit_code == 0, served.text[-3000:]
