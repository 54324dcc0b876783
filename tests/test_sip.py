"""The SIP front end against real sipp processes over loopback (no models needed)."""

from __future__ import annotations

import asyncio
import math
import struct
import threading
from pathlib import Path

import pytest

from sip_support import PCAP_DIR, run_sipp, scenario, sipp_binary
from voicebot.audio import AudioFrame, rms_dbfs
from voicebot.config import Config
from voicebot.telephony.base import CallerHungUp, CallTransport, DtmfReceived
from voicebot.telephony.sip import SipCall, SipWorker, caller_id_from_message, run_worker, source_allowed, source_ip

pytestmark = pytest.mark.timeout(60)

BASE_PORT = 17000  # each test uses its own block of ports: SIP, sipp, RTP ranges
TONE = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 16000))) for i in range(16000))


def sip_config(port: int, **sip) -> Config:
    config = Config()
    config.sip.port = port
    config.sip.listen_address = "127.0.0.1"
    config.sip.transports = ["udp"]
    for key, value in sip.items():
        setattr(config.sip, key, value)
    return config


class Recorder:
    """A stub on_call: plays a tone, records every event, optionally transfers."""

    def __init__(self, transfer_to: str | None = None, transfer_after_s: float = 0.5):
        self.calls: list[SipCall] = []
        self.events: list[object] = []
        self.transfer_to = transfer_to
        self.transfer_after_s = transfer_after_s
        self.transfer_results = []
        self.is_transport = False
        self.echo_refs = 0  # caller frames that came with the bot frame sent in the same tick
        self.done = asyncio.Event()

    async def __call__(self, call: SipCall) -> None:
        self.calls.append(call)
        try:
            self.is_transport = isinstance(call, CallTransport)
            call.play(TONE)
            if self.transfer_to:
                await asyncio.sleep(self.transfer_after_s)
                result = await call.transfer(self.transfer_to, timeout_s=10)
                self.transfer_results.append(result)
                if not result.ok:
                    await call.hangup()  # a real session would carry on; the test ends the call
            async for event in call.events():
                self.events.append(event)
                if isinstance(event, AudioFrame) and call.last_played:
                    self.echo_refs += 1
        finally:
            self.done.set()


async def call_worker(tmp_path: Path, port: int, xml: str, on_call=None, **sip):
    sipp_binary()  # fails with the install hint when sipp is missing
    config = sip_config(port, **sip)
    async with SipWorker(config, on_call, rtp_port=port + 100) as worker:
        result = await asyncio.to_thread(run_sipp, tmp_path, xml, port, port + 1, port + 300)
        if on_call is not None and worker.stats.answered:
            await asyncio.wait_for(on_call.done.wait(), 5)
    assert not [t for t in threading.enumerate() if t.name.startswith("pjsua2-")], "pjsua2 thread left running"
    return worker, result


# -- pure helpers ------------------------------------------------------------------------------------------
def test_caller_id_parsing():
    invite = ("INVITE sip:bot@h SIP/2.0\r\nFrom: \"Alice\" <sip:+1-555-010-2030@10.0.0.1;user=phone>;tag=1\r\n"
              "To: <sip:bot@h>\r\n\r\nv=0\r\nFrom: sip:999@x\r\n")
    assert caller_id_from_message(invite) == "+15550102030"
    with_pai = invite.replace("To:", "P-Asserted-Identity: <tel:+4930123456>\r\nTo:")
    assert caller_id_from_message(with_pai) == "+4930123456"
    assert caller_id_from_message("INVITE x SIP/2.0\r\nf: <sip:anonymous@anonymous.invalid>\r\n\r\n") == "anonymous"
    assert caller_id_from_message("INVITE x SIP/2.0\r\nTo: <sip:a@b>\r\n\r\n") == "anonymous"
    assert source_ip("127.0.0.1:5061") == "127.0.0.1" and source_ip("[::1]:5061") == "::1"
    import ipaddress
    nets = [ipaddress.ip_network("127.0.0.2/32")]
    assert source_allowed("127.0.0.2", nets) and not source_allowed("127.0.0.1", nets)
    assert not source_allowed("garbage", nets)


# -- real calls --------------------------------------------------------------------------------------------
def test_call_answered_audio_both_ways(tmp_path):
    port = BASE_PORT
    rec = Recorder()
    xml = scenario(pcaps=[(str(PCAP_DIR / "g711a.pcap"), 3000)],
                   pai="<sip:+15550109999@127.0.0.1>")
    worker, result = asyncio.run(call_worker(tmp_path, port, xml, rec))
    assert result.returncode == 0, result.stdout
    assert worker.stats.answered == 1 and worker.stats.rejected_forbidden == 0
    call = rec.calls[0]
    assert rec.is_transport  # satisfies the CallTransport protocol
    assert rec.echo_refs >= 40  # last_played carried the tone while it played
    assert call.info.caller_id == "+15550109999"  # P-Asserted-Identity wins over From
    assert call.info.codec.upper() == "PCMA"
    frames = [e for e in rec.events if isinstance(e, AudioFrame)]
    assert len(frames) >= 100, len(frames)  # ~3 s of 20 ms frames
    assert all(len(f.pcm) == 640 and f.sample_rate == 16000 for f in frames)
    stamps = [f.timestamp for f in frames]
    assert stamps == [i * 320 for i in range(len(frames))]
    loud = sum(rms_dbfs(f.pcm) > -40 for f in frames)
    assert loud >= 25, f"only {loud} of {len(frames)} caller frames carry speech"
    assert isinstance(rec.events[-1], CallerHungUp) and call.hung_up_by == "caller"
    caller, bot = call.recordings()
    assert len(caller) == len(bot) and len(caller) >= 100 * 640
    bot_loud = sum(rms_dbfs(bot[i:i + 640]) > -30 for i in range(0, len(bot), 640))
    assert bot_loud >= 40, f"the bot's tone reached only {bot_loud} frames of the line"
    assert not call.playing  # 1 s tone in a 3 s call: played out


def test_source_not_allowed_gets_403(tmp_path):
    port = BASE_PORT + 1000
    rec = Recorder()
    worker, result = asyncio.run(call_worker(tmp_path, port, scenario(expect=403), rec,
                                             allowed_sources=["127.0.0.2/32"]))
    assert result.returncode == 0, result.stdout
    assert worker.stats.rejected_forbidden == 1 and worker.stats.answered == 0
    assert rec.calls == []  # no session was started for it


def test_allowed_source_not_refused(tmp_path):
    """The same scenario expecting 403 fails when the source is allowed: the 403 test can fail."""
    port = BASE_PORT + 2000
    worker, result = asyncio.run(call_worker(tmp_path, port, scenario(expect=403, hold_ms=0), None,
                                             allowed_sources=["127.0.0.1/32"]))
    assert result.returncode != 0
    assert worker.stats.rejected_forbidden == 0


def test_dtmf_rfc2833(tmp_path):
    port = BASE_PORT + 3000
    rec = Recorder()
    xml = scenario(pcaps=[(str(PCAP_DIR / "dtmf_2833_0.pcap"), 1000), (str(PCAP_DIR / "dtmf_2833_pound.pcap"), 1000)])
    worker, result = asyncio.run(call_worker(tmp_path, port, xml, rec))
    assert result.returncode == 0, result.stdout
    digits = [e.digit for e in rec.events if isinstance(e, DtmfReceived)]
    assert digits == ["0", "#"], digits
    first = next(e for e in rec.events if isinstance(e, DtmfReceived))
    assert 0 <= first.at_s < 1.5


@pytest.mark.parametrize("sipfrag, ok, status", [("200 OK", True, 200), ("486 Busy Here", False, 486)])
def test_blind_transfer_refer(tmp_path, sipfrag, ok, status):
    port = BASE_PORT + 4000 + (0 if ok else 500)
    target = f"sip:operator@127.0.0.1:{port + 50}"
    rec = Recorder(transfer_to=target)
    xml = scenario(refer_sipfrag=sipfrag)  # the caller accepts the REFER, reports the outcome, awaits BYE
    worker, result = asyncio.run(call_worker(tmp_path, port, xml, rec))
    assert result.returncode == 0, result.stdout  # sipp got the REFER and then the bot's BYE
    [transfer] = rec.transfer_results
    assert (transfer.ok, transfer.status, transfer.target) == (ok, status, target), transfer
    assert rec.calls[0].hung_up_by == "bot"


def test_run_worker_starts_and_stops(tmp_path):
    """run_worker with ready deps listens, answers (the session is not run: the call is refused 403 here),
    and stops cleanly when asked."""
    port = BASE_PORT + 5000

    async def main():
        stop = asyncio.Event()
        config = sip_config(port, allowed_sources=["127.0.0.2/32"])
        task = asyncio.create_task(run_worker(config, deps=object(), stop=stop, rtp_port=port + 100))
        await asyncio.sleep(0.5)
        result = await asyncio.to_thread(run_sipp, tmp_path, scenario(expect=403), port, port + 1, port + 300)
        stop.set()
        await asyncio.wait_for(task, 10)
        return result

    result = asyncio.run(main())
    assert result.returncode == 0, result.stdout
    assert not [t for t in threading.enumerate() if t.name.startswith("pjsua2-")]


def test_silent_caller_hung_up_after_rtp_timeout(tmp_path):
    """The caller sends no RTP at all: the bot hangs up after rtp_timeout_s (sipp waits for that BYE)."""
    port = BASE_PORT + 6000
    rec = Recorder()
    worker, result = asyncio.run(call_worker(tmp_path, port, scenario(await_bye=True), rec, rtp_timeout_s=1.0))
    assert result.returncode == 0, result.stdout
    assert worker.stats.rtp_timeouts == 1
    assert isinstance(rec.events[-1], CallerHungUp)


def test_calls_beyond_max_calls_get_486(tmp_path):
    """max_calls=1: a second INVITE while the first call is up is refused 486; the first is unharmed.
    Both transports are configured (UDP and TCP bind the same port)."""
    port = BASE_PORT + 7000
    rec = Recorder()

    async def main():
        config = sip_config(port, max_calls=1, transports=["udp", "tcp"])
        async with SipWorker(config, rec, rtp_port=port + 100) as worker:
            first = asyncio.create_task(asyncio.to_thread(
                run_sipp, tmp_path, scenario(hold_ms=2500), port, port + 1, port + 300))
            await asyncio.sleep(1.0)
            second = await asyncio.to_thread(run_sipp, tmp_path, scenario(expect=486), port, port + 2, port + 400)
            return worker, await first, second

    worker, first, second = asyncio.run(main())
    assert first.returncode == 0, first.stdout
    assert second.returncode == 0, second.stdout
    assert (worker.stats.answered, worker.stats.rejected_busy) == (1, 1)
