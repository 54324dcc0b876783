"""The SIP front end against real sipp processes over loopback (no models needed)."""

from __future__ import annotations

import asyncio
import math
import struct
import threading
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from sip_support import (PCAP_DIR, Ports, run_sipp, scenario, sip_config, sipp_binary, start_sipp, uas_scenario,
                         wait_sipp)
from voicebot.audio import AudioFrame, rms_dbfs
from voicebot.telephony.base import CallerHungUp, CallTransport, DtmfReceived
from voicebot.telephony.base import CallInfo
from voicebot.telephony.sip import (SipCall, SipDialError, SipWorker, caller_id_from_message, run_worker,
                                    source_allowed, source_ip)
from voicebot.telephony.sip_transfer import transfer

pytestmark = pytest.mark.timeout(60)

TONE = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 16000))) for i in range(16000))


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


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


async def call_worker(tmp_path: Path, ports: Ports, xml: str, on_call=None, sipp_transport: str = "u1",
                      sample_rate: int = 16000, **sip):
    sipp_binary()  # fails with the install hint when sipp is missing
    config = sip_config(ports.sip, **sip)
    config.audio.sample_rate = sample_rate
    async with SipWorker(config, on_call, rtp_port=ports.rtp, rtp_port_range=ports.rtp_range) as worker:
        result = await asyncio.to_thread(run_sipp, tmp_path, xml, ports.sip, ports.sipp(), ports.media(),
                                         transport=sipp_transport)
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


def test_a_call_is_transferred_only_to_the_operator_or_a_listed_target():
    class Leg:  # a TransferLeg that is never touched: nothing may be sent for a refused target
        info, sample_rate, ended, end_status = CallInfo("c1", "+15550102030"), 16000, False, 0
        bridged = refer = None

        def __init__(self):
            self.transfers = []

    class Control:
        sip = sip_config(5060, operator_uri="sip:operator@pbx", transfer_targets=["sip:sales@pbx"]).sip

        def __init__(self):
            self.referred = []

        async def refer(self, call, target):
            self.referred.append(target)
            raise RuntimeError("no dialog")  # stops the blind transfer right after the REFER would go out

    control, leg = Control(), Leg()
    refused = asyncio.run(transfer(leg, control, "sip:someone@elsewhere", None, 1.0))
    assert (refused.ok, refused.status) == (False, 0) and "not an allowed transfer target" in refused.reason
    assert control.referred == [] and leg.transfers == [refused]
    for allowed in ("sip:operator@pbx", "sip:sales@pbx"):
        assert "REFER not sent" in asyncio.run(transfer(leg, control, allowed, None, 1.0)).reason
    assert control.referred == ["sip:operator@pbx", "sip:sales@pbx"]


# -- real calls --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rate, block", [(16000, 0), (8000, 19)], ids=["16k", "8k"])
def test_call_answered_audio_both_ways(tmp_path, rate, block):
    """The media clock runs at audio.sample_rate: frames, timestamps, played and recorded audio all at that rate."""
    port = Ports.block(block)
    rec = Recorder()
    xml = scenario(pcaps=[(str(PCAP_DIR / "g711a.pcap"), 3000)],
                   pai="<sip:+15550109999@127.0.0.1>")
    worker, result = asyncio.run(call_worker(tmp_path, port, xml, rec, sample_rate=rate))
    size = rate // 50 * 2  # bytes in a 20 ms frame
    assert result.returncode == 0, result.stdout
    assert worker.stats.answered == 1 and worker.stats.rejected_forbidden == 0
    call = rec.calls[0]
    assert rec.is_transport  # satisfies the CallTransport protocol
    assert rec.echo_refs >= 40  # last_played carried the tone while it played
    assert call.info.caller_id == "+15550109999"  # P-Asserted-Identity wins over From
    assert call.info.codec.upper() == "PCMA"
    frames = [e for e in rec.events if isinstance(e, AudioFrame)]
    assert len(frames) >= 100, len(frames)  # ~3 s of 20 ms frames
    assert call.sample_rate == rate and all(len(f.pcm) == size and f.sample_rate == rate for f in frames)
    stamps = [f.timestamp for f in frames]
    assert stamps == [i * size // 2 for i in range(len(frames))]
    loud = sum(rms_dbfs(f.pcm) > -40 for f in frames)
    assert loud >= 25, f"only {loud} of {len(frames)} caller frames carry speech"
    assert isinstance(rec.events[-1], CallerHungUp) and call.hung_up_by == "caller"
    caller, bot = call.recordings()
    assert len(caller) == len(bot) and len(caller) >= 100 * size
    bot_loud = sum(rms_dbfs(bot[i:i + size]) > -30 for i in range(0, len(bot), size))
    assert bot_loud >= 40, f"the bot's tone reached only {bot_loud} frames of the line"
    assert not call.playing  # a 1 s tone (2 s at 8 kHz) in a 3 s call: played out


def test_media_ports_outlive_the_endpoint_that_shut_down(tmp_path):
    """pjmedia's bridge removes a port on its clock thread, which runs until libDestroy: a port deleted at shutdown
    could be written after its memory was freed, and `voicebot call` died with SIGSEGV in an allocation after its
    call had ended. Shut down, the endpoint keeps its ports, their C++ objects never deleted and cut from the call."""
    from voicebot.telephony import sip_pjsua

    before = len(sip_pjsua.KEPT_PORTS)
    rec = Recorder()
    worker, result = asyncio.run(call_worker(tmp_path, Ports.block(12), scenario(
        pcaps=[(str(PCAP_DIR / "g711a.pcap"), 1000)]), rec))
    assert result.returncode == 0 and worker.stats.answered == 1, result.stdout
    kept = sip_pjsua.KEPT_PORTS[before:]
    assert kept and all(not port.this.own() and port.media is None for port in kept)
    assert not worker._all_ports and not worker._free_ports


@pytest.mark.parametrize("codec, payload, transport, block", [
    ("PCMU", 0, "u1", 14), ("G722", 9, "u1", 15), ("PCMA", 8, "t1", 16)], ids=["pcmu-udp", "g722-udp", "pcma-tcp"])
def test_codec_and_transport_negotiated(tmp_path, codec, payload, transport, block):
    """The caller offers only one codec (over UDP or TCP signalling): the worker answers with it and the bot's
    audio goes out."""
    ports = Ports.block(block)
    rec = Recorder()
    xml = scenario(hold_ms=2500).replace("RTP/AVP 8 101", f"RTP/AVP {payload} 101").replace(
        "a=rtpmap:8 PCMA/8000", f"a=rtpmap:{payload} {codec}/8000")
    worker, result = asyncio.run(call_worker(tmp_path, ports, xml, rec, sipp_transport=transport,
                                             transports=["udp", "tcp"]))
    assert result.returncode == 0, result.stdout
    call = rec.calls[0]
    assert call.info.codec.upper() == codec
    _, bot = call.recordings()
    assert sum(rms_dbfs(bot[i:i + 640]) > -30 for i in range(0, len(bot), 640)) >= 40
    if transport == "t1":
        assert "TCP" in result.messages.upper()


def test_source_not_allowed_gets_403(tmp_path):
    port = Ports.block(1)
    rec = Recorder()
    counted = metric("voicebot_calls_rejected_total", reason="forbidden")
    worker, result = asyncio.run(call_worker(tmp_path, port, scenario(expect=403), rec,
                                             allowed_sources=["127.0.0.2/32"]))
    assert result.returncode == 0, result.stdout
    assert worker.stats.rejected_forbidden == 1 and worker.stats.answered == 0
    assert metric("voicebot_calls_rejected_total", reason="forbidden") == counted + 1
    assert rec.calls == []  # no session was started for it


def test_allowed_source_not_refused(tmp_path):
    """The same scenario expecting 403 fails when the source is allowed: the 403 test can fail."""
    port = Ports.block(2)
    worker, result = asyncio.run(call_worker(tmp_path, port, scenario(expect=403, hold_ms=0), None,
                                             allowed_sources=["127.0.0.1/32"]))
    assert result.returncode != 0
    assert worker.stats.rejected_forbidden == 0


def test_dtmf_rfc2833(tmp_path):
    port = Ports.block(3)
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
    port = Ports.block(4 if ok else 5)
    target = f"sip:operator@127.0.0.1:{port.sipp(4)}"
    rec = Recorder(transfer_to=target)
    xml = scenario(refer_sipfrag=sipfrag)  # the caller accepts the REFER, reports the outcome, awaits BYE
    counted = metric("voicebot_transfers_total", mode="blind", result="ok" if ok else "failed")
    worker, result = asyncio.run(call_worker(tmp_path, port, xml, rec, transfer_targets=[target]))
    assert result.returncode == 0, result.stdout  # sipp got the REFER and then the bot's BYE
    [transfer] = rec.transfer_results
    assert (transfer.ok, transfer.status, transfer.target) == (ok, status, target), transfer
    assert transfer.progress and transfer.progress[-1][0] == status  # every NOTIFY is kept, the final one last
    assert rec.calls[0].hung_up_by == "bot"
    assert metric("voicebot_transfers_total", mode="blind", result="ok" if ok else "failed") == counted + 1


def test_run_worker_starts_and_stops(tmp_path):
    """run_worker with ready deps listens, answers (the session is not run: the call is refused 403 here),
    and stops cleanly when asked."""
    port = Ports.block(6)

    async def main():
        stop = asyncio.Event()
        config = sip_config(port.sip, allowed_sources=["127.0.0.2/32"])
        task = asyncio.create_task(run_worker(config, deps=object(), stop=stop, rtp_port=port.rtp))
        await asyncio.sleep(0.5)
        result = await asyncio.to_thread(run_sipp, tmp_path, scenario(expect=403), port.sip, port.sipp(),
                                         port.media())
        stop.set()
        await asyncio.wait_for(task, 10)
        return result

    result = asyncio.run(main())
    assert result.returncode == 0, result.stdout
    assert not [t for t in threading.enumerate() if t.name.startswith("pjsua2-")]


def test_silent_caller_hung_up_after_rtp_timeout(tmp_path):
    """The caller sends no RTP at all: the bot hangs up after rtp_timeout_s (sipp waits for that BYE)."""
    port = Ports.block(7)
    rec = Recorder()
    worker, result = asyncio.run(call_worker(tmp_path, port, scenario(await_bye=True), rec, rtp_timeout_s=1.0))
    assert result.returncode == 0, result.stdout
    assert worker.stats.rtp_timeouts == 1
    assert metric("voicebot_errors_total", kind="rtp_timeout") >= 1
    assert isinstance(rec.events[-1], CallerHungUp)


def test_calls_beyond_max_calls_get_486(tmp_path):
    """max_calls=1: a second INVITE while the first call is up is refused 486; the first is unharmed.
    Both transports are configured (UDP and TCP bind the same port)."""
    port = Ports.block(8)
    rec = Recorder()

    async def main():
        config = sip_config(port.sip, max_calls=1, transports=["udp", "tcp"])
        async with SipWorker(config, rec, rtp_port=port.rtp, rtp_port_range=port.rtp_range) as worker:
            first = asyncio.create_task(asyncio.to_thread(
                run_sipp, tmp_path, scenario(hold_ms=2500), port.sip, port.sipp(), port.media()))
            await asyncio.sleep(1.0)
            second = await asyncio.to_thread(run_sipp, tmp_path, scenario(expect=486), port.sip, port.sipp(1),
                                             port.media(1))
            return worker, await first, second

    worker, first, second = asyncio.run(main())
    assert first.returncode == 0, first.stdout
    assert second.returncode == 0, second.stdout
    assert (worker.stats.answered, worker.stats.rejected_busy) == (1, 1)


# -- outgoing calls, drain ---------------------------------------------------------------------------------
def frames_over(pcm: bytes, db: float) -> int:
    return sum(rms_dbfs(pcm[i:i + 640]) > db for i in range(0, len(pcm) - 639, 640))


def test_dial_operator_echoes_the_tone(tmp_path):
    """A caller-only endpoint on port 0 dials sipp's echoing UAS, plays a tone and hears it back; sipp exits 0
    after the worker hangs up. The From user is the caller ID given."""
    ports = Ports.block(9)

    async def main():
        operator = start_sipp(tmp_path, ports.sipp(), ports.media(), builtin="uas", rtp_echo=True)
        await asyncio.sleep(0.3)
        async with SipWorker(sip_config(ports.sip), None, port=0, rtp_port=ports.rtp,
                             rtp_port_range=ports.rtp_range) as worker:
            assert worker.bound_port > 0
            call = await worker.dial(f"sip:operator@127.0.0.1:{ports.sipp()}", caller_id="+15550109999",
                                     headers={"X-Voicebot-Test": "dial"}, timeout_s=10)
            assert isinstance(call, CallTransport) and call.outgoing
            call.play(TONE)
            await call.wait_played()
            await asyncio.sleep(0.5)
            await call.hangup()
            stats = worker.stats
        return call, stats, await asyncio.to_thread(wait_sipp, operator)

    call, stats, result = asyncio.run(main())
    assert result.returncode == 0, result.stdout
    assert stats.dialed == 1 and call.hung_up_by == "bot"
    heard, sent = call.recordings()
    assert frames_over(sent, -30) >= 45  # the 1 s tone went out
    assert frames_over(heard, -30) >= 35, "the echoed tone did not come back"
    invite = result.messages[result.messages.index("INVITE sip:"):]
    invite = invite[:invite.index("\n\n")]
    assert "From: <sip:+15550109999@127.0.0.1" in invite and "X-Voicebot-Test: dial" in invite


def test_dial_refused_raises_with_status(tmp_path):
    ports = Ports.block(10)

    async def main():
        operator = start_sipp(tmp_path, ports.sipp(), ports.media(), xml=uas_scenario(486, "Busy Here"))
        await asyncio.sleep(0.3)
        async with SipWorker(sip_config(ports.sip), None, port=0, rtp_port=ports.rtp,
                             rtp_port_range=ports.rtp_range) as worker:
            with pytest.raises(SipDialError) as refused:
                await worker.dial(f"sip:operator@127.0.0.1:{ports.sipp()}", timeout_s=10)
            ringing = start_sipp(tmp_path, ports.sipp(1), ports.media(1), xml=uas_scenario(200, "OK", ring_ms=8000))
            await asyncio.sleep(0.3)
            with pytest.raises(SipDialError) as unanswered:
                await worker.dial(f"sip:operator@127.0.0.1:{ports.sipp(1)}", timeout_s=1.5)
            stats, calls = worker.stats, dict(worker.calls)
        ringing.kill()
        return refused.value, unanswered.value, stats, calls, await asyncio.to_thread(wait_sipp, operator)

    refused, unanswered, stats, calls, result = asyncio.run(main())
    assert result.returncode == 0, result.stdout
    assert (refused.status, refused.reason) == (486, "Busy Here"), refused
    assert unanswered.status == 408 and "no answer" in unanswered.reason
    assert (stats.dialed, stats.dial_failed) == (0, 2) and calls == {}


def test_caller_only_endpoint_refuses_invites(tmp_path):
    ports = Ports.block(11)

    async def main():
        async with SipWorker(sip_config(ports.sip), None, rtp_port=ports.rtp, rtp_port_range=ports.rtp_range) as w:
            result = await asyncio.to_thread(run_sipp, tmp_path, scenario(expect=486), ports.sip, ports.sipp(),
                                             ports.media())
            return w.stats, result

    stats, result = asyncio.run(main())
    assert result.returncode == 0, result.stdout
    assert (stats.answered, stats.rejected_busy) == (0, 1)


@pytest.mark.parametrize("ends", ["by_itself", "at_timeout"])
def test_drain_refuses_new_calls_and_lets_live_ones_finish(tmp_path, ends):
    """While draining, a new INVITE gets 503; the live call goes on until the caller hangs up (drain returns
    early) or, past the drain timeout, the bot hangs it up (its session ends normally)."""
    ports = Ports.block(12 if ends == "by_itself" else 13)
    rec = Recorder()
    live_xml = scenario(hold_ms=3000) if ends == "by_itself" else scenario(await_bye=True)

    async def main():
        loop = asyncio.get_running_loop()
        async with SipWorker(sip_config(ports.sip), rec, rtp_port=ports.rtp,
                             rtp_port_range=ports.rtp_range) as worker:
            live = asyncio.create_task(asyncio.to_thread(run_sipp, tmp_path, live_xml, ports.sip, ports.sipp(),
                                                         ports.media()))
            while not rec.calls:
                await asyncio.sleep(0.05)
            active_during = metric("voicebot_active_calls")
            started = loop.time()
            drain = asyncio.create_task(worker.drain(timeout_s=2.5 if ends == "at_timeout" else 20))
            await asyncio.sleep(0.2)
            refused = await asyncio.to_thread(run_sipp, tmp_path, scenario(expect=503), ports.sip, ports.sipp(1),
                                              ports.media(1))
            await asyncio.wait_for(drain, 30)
            drained_after = loop.time() - started
            assert worker._thread is None  # drain stopped the worker
            return worker.stats, refused, await live, drained_after, active_during

    counted = metric("voicebot_calls_rejected_total", reason="draining")
    stats, refused, live, drained_after, active_during = asyncio.run(main())
    assert refused.returncode == 0, refused.stdout
    assert metric("voicebot_calls_rejected_total", reason="draining") == counted + 1
    assert (active_during, metric("voicebot_active_calls")) == (1, 0)  # up while the session ran
    assert live.returncode == 0, live.stdout
    assert (stats.answered, stats.rejected_draining, stats.ended) == (1, 1, 1)
    assert rec.done.is_set() and rec.calls[0].ended
    if ends == "by_itself":
        assert rec.calls[0].hung_up_by == "caller" and drained_after < 10
    else:
        assert rec.calls[0].hung_up_by == "bot" and 2.4 <= drained_after < 10


@pytest.mark.parametrize("kind", ["udp", "tcp"])
def test_a_port_in_use_is_refused_with_a_clear_error(kind):
    """pjsip binds with SO_REUSEADDR and would share a port with another bot; the worker refuses to start."""
    import socket

    ports = Ports.block(17 if kind == "udp" else 18)
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as pjsip does
    holder.bind(("127.0.0.1", ports.sip))
    if kind == "tcp":
        holder.listen()

    async def main():
        async with SipWorker(sip_config(ports.sip, transports=[kind]), None, rtp_port=ports.rtp):
            pass

    try:
        with pytest.raises(RuntimeError, match=f"{kind.upper()} port 127.0.0.1:{ports.sip} is in use"):
            asyncio.run(main())
    finally:
        holder.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("pjsua2-")]

