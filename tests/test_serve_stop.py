"""`voicebot serve` on SIGTERM while the after-call analysis is in the model (real models, sipp over loopback):
it exits 0 within seconds, and the call it did not finish analysing is left for the next start.

Why through the real process: llama.cpp's prompt evaluation cannot be interrupted, and the exit must neither wait
for it nor free the model under it (tests/test_worker_stop.py has the same with fakes, and the next start)."""

from __future__ import annotations

import signal
import time

import pytest

from serve_support import serving
from sip_support import run_sipp, scenario
from voicebot.review.worker import unanalysed_calls
from voicebot.tools.rtp_pcap import write_rtp_pcap

PORT = 25250  # the bot's RTP on PORT+2..PORT+102; sipp on PORT+110 and its media on PORT+112
SAYS = ("Hello, I am calling about my order. It was supposed to arrive last Tuesday, but nothing came, and the "
        "tracking page still says it is being prepared. Can you tell me where it is?")

pytestmark = [pytest.mark.models, pytest.mark.timeout(400)]


def test_sigterm_during_the_after_call_analysis_exits_at_once_and_leaves_the_call_for_the_next_start(
        tmp_path, caller_voice):
    speech = b"".join(chunk.pcm for chunk in caller_voice.stream(SAYS, 16000))
    pcap = tmp_path / "caller.pcap"
    write_rtp_pcap(speech, 16000, pcap, codec="PCMA")
    with serving(tmp_path, PORT, stop_timeout_s=60) as served:
        xml = scenario(pcaps=[(str(pcap), 9000)], hold_ms=0)  # the caller speaks, hears the reply, hangs up
        first = '  <nop><action><exec play_pcap_audio'
        xml = xml.replace(first, '  <pause milliseconds="6000"/>\n' + first, 1)
        result = run_sipp(tmp_path, xml, target_port=PORT, local_port=PORT + 110, media_port=PORT + 112,
                          timeout_s=60)
        assert result.returncode == 0, result.stdout
        store = served.store()
        deadline = time.monotonic() + 60
        while not store.select("SELECT call_id FROM call_analysis"):  # the deterministic part: the model is next
            assert time.monotonic() < deadline, served.text[-3000:]
            time.sleep(0.05)
        time.sleep(0.3)
        signalled = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        served.process.wait(timeout=60)
        took = time.monotonic() - signalled
    assert served.exit_code == 0, served.text[-4000:]
    assert took < 12, f"{took:.1f} s from SIGTERM to exit\n{served.text[-3000:]}"
    [call] = store.list_calls()
    row = store.get_analysis(call.id)
    assert row is not None and row["flags"] is not None  # sentiment and flags are kept
    if row["model"] is None:  # abandoned in the model: found again at the next start
        assert unanalysed_calls(store, "main") == [call.id]
    store.close()
