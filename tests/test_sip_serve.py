"""`voicebot serve` answering a real SIP call over loopback, with the real models, CRM and call store."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

from typer.testing import CliRunner

from conftest import ROOT, TODAY
from sip_support import PCAP_DIR, run_sipp, scenario
from voicebot.audio import rms_dbfs
from voicebot.cli import app
from voicebot.store import CallStore

PORT = 17600  # sipp on PORT+1, RTP from PORT+10


def test_serve_answers_a_sip_call_greets_listens_and_records_it(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"models:\n  dir: {ROOT / 'models'}\nsip:\n  port: {PORT}\n  transports: [udp]\n")
    seeded = CliRunner().invoke(app, ["crm", "seed", "--today", TODAY.isoformat(), "--config", str(cfg)])
    assert seeded.exit_code == 0, seeded.output
    server = subprocess.Popen([sys.executable, "-m", "voicebot.cli", "serve", "--config", str(cfg)], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    output: list[str] = []
    threading.Thread(target=lambda: output.extend(server.stdout), daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while not any("answering calls" in line for line in output):
            assert server.poll() is None and time.monotonic() < deadline, "".join(output)
            time.sleep(0.2)
        # the caller listens to the greeting, then speaks (sipp's 8 s speech sample), then hangs up
        xml = scenario(pcaps=[(str(PCAP_DIR / "g711a.pcap"), 12000)], hold_ms=3000)
        first_audio = '  <nop><action><exec play_pcap_audio'
        xml = xml.replace(first_audio, '  <pause milliseconds="10000"/>\n' + first_audio, 1)
        result = run_sipp(tmp_path, xml, target_port=PORT, local_port=PORT + 1, media_port=PORT + 10, timeout_s=60)
        assert result.returncode == 0, result.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            code = None
    assert code == 0, "".join(output)
    store = CallStore(tmp_path / "data" / "calls.db", tmp_path / "data" / "recordings")
    [call] = store.list_calls()
    assert call.outcome not in ("in_progress", "interrupted")
    turns = store.turns(call.id)
    assert turns[0].role == "bot" and "automated assistant" in turns[0].text
    caller_turns = [t for t in turns if t.role == "caller"]
    assert caller_turns, [(t.role, t.text) for t in turns]  # the caller's speech reached turn-taking and Whisper
    assert caller_turns[0].timings.transcript_ready is not None
    caller, bot = (store.recording_file(call, which).read_bytes()[44:] for which in ("caller", "bot"))
    assert sum(rms_dbfs(bot[i:i + 640]) > -35 for i in range(0, len(bot), 640)) > 100  # the greeting went out
    assert sum(rms_dbfs(caller[i:i + 640]) > -40 for i in range(0, len(caller), 640)) > 50  # speech came in
