"""An INVITE flood and a run of short calls against one SIP worker (real pjsua2 over loopback, no models).

Found by attacking the bot (issue 12): a 10-second INVITE flood left it answering every later caller with 603
until a restart. pjsua reuses call ids (at most 4 calls), a new call object overwrote an old one with the same
id, and the old object's destructor hung up the new call. Short calls in a row crashed the process (a media
port freed while pjmedia's clock still called it). Here: a bounded flood (500 INVITEs at 50/s) while a call is
up, then a normal call must be answered 200; 40 short calls, 4 at a time, with audio both ways; the worker's
call tables empty and its thread stopped at the end.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid

import pytest

from sip_support import PCAP_DIR, Ports, run_sipp, scenario, sip_config
from test_sip import Recorder
from voicebot.telephony.sip import SipWorker

pytestmark = pytest.mark.timeout(240)


def _request(method: str, port: int, local_port: int, call_id: str, tag: str, cseq: int, to: str = "",
             body: str = "") -> bytes:
    head = (f"{method} sip:voicebot@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: \"Flood\" <sip:+15550100000@127.0.0.1:{local_port}>;tag={tag}\r\n"
            f"{to or f'To: <sip:voicebot@127.0.0.1:{port}>'}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
            f"Contact: <sip:+15550100000@127.0.0.1:{local_port}>\r\n")
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n" + body).encode()


def flood(port: int, local_port: int, count: int = 500, rate: float = 50.0, linger_s: float = 4.0,
          hold_s: float = 1.5) -> dict:
    """Send ``count`` INVITEs at ``rate`` per second, each a new call, like a careless or hostile caller: a
    refusal is never ACKed (the bot retransmits it), an answered call is ACKed and hung up ``hold_s`` later.
    Returns the final status codes seen, by code."""
    sdp = ("v=0\r\no=flood 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           f"m=audio {local_port + 2} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", local_port))
    sock.settimeout(0.005)
    calls: dict[str, str] = {}
    finals: dict[str, int] = {}
    byes: list[tuple[float, bytes]] = []
    codes: dict[int, int] = {}
    started = time.monotonic()
    sent = 0
    while sent < count or time.monotonic() - started < count / rate + linger_s:
        if sent < count and time.monotonic() - started >= sent / rate:
            call_id, tag = f"flood-{sent}-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
            calls[call_id] = tag
            sock.sendto(_request("INVITE", port, local_port, call_id, tag, 1, body=sdp), ("127.0.0.1", port))
            sent += 1
        while byes and byes[0][0] <= time.monotonic():
            sock.sendto(byes.pop(0)[1], ("127.0.0.1", port))
        try:
            data = sock.recv(65535).decode(errors="replace")
        except (TimeoutError, socket.timeout, ConnectionRefusedError):
            continue
        lines = data.split("\r\n")
        if not lines[0].startswith("SIP/2.0 "):
            continue
        status = int(lines[0].split()[1])
        call_id = next((h.split(":", 1)[1].strip() for h in lines if h.lower().startswith(("call-id:", "i:"))), "")
        cseq = next((h for h in lines if h.lower().startswith("cseq:")), "")
        if status < 200 or call_id not in calls or "INVITE" not in cseq:
            continue
        to = next(h for h in lines if h.lower().startswith(("to:", "t:")))
        tag = calls[call_id]
        if status == 200:
            sock.sendto(_request("ACK", port, local_port, call_id, tag, 1, to), ("127.0.0.1", port))
        if call_id not in finals:
            finals[call_id] = status
            codes[status] = codes.get(status, 0) + 1
            if status == 200:
                byes.append((time.monotonic() + hold_s, _request("BYE", port, local_port, call_id, tag, 2, to)))
    sock.close()
    return codes


def test_a_flood_during_a_live_call_leaves_the_next_caller_answered(tmp_path):
    ports = Ports.block(36)
    rec = Recorder()

    async def main():
        config = sip_config(ports.sip, max_calls=4)
        async with SipWorker(config, rec, rtp_port=ports.rtp, rtp_port_range=ports.rtp_range) as worker:
            live = asyncio.create_task(asyncio.to_thread(
                run_sipp, tmp_path, scenario(pcaps=[(str(PCAP_DIR / "g711a.pcap"), 3000)], hold_ms=9000),
                ports.sip, ports.sipp(0), ports.media(0), timeout_s=60))
            await asyncio.sleep(1.0)
            codes = await asyncio.to_thread(flood, ports.sip, ports.sipp(1))
            live_result = await live
            await asyncio.sleep(1.0)
            after = await asyncio.to_thread(run_sipp, tmp_path, scenario(hold_ms=500), ports.sip, ports.sipp(2),
                                            ports.media(2))
            await asyncio.sleep(0.5)
            tables = (len(worker.calls), len(worker._pj_calls))
        return worker, codes, live_result, after, tables

    worker, codes, live_result, after, tables = asyncio.run(main())
    print("flood answers by status:", codes, "worker stats:", worker.stats)
    assert live_result.returncode == 0, live_result.stdout  # the call up during the flood was not cut
    assert sum(codes.values()) >= 490, codes  # every INVITE had an answer
    assert set(codes) <= {200, 486}, codes  # no 5xx, no 603: busy when full, answered when not
    assert after.returncode == 0, after.stdout  # the next ordinary caller is answered 200
    assert tables == (0, 0), tables  # no orphaned calls left in the worker's tables
    assert not [t for t in threading.enumerate() if t.name.startswith("pjsua2-")]


def test_forty_short_calls_four_at_a_time(tmp_path):
    ports = Ports.block(37)
    rec = Recorder()

    media = [ports.media(0), ports.media(1), ports.media(2), Ports.block(38).media(0)]  # 3 per block

    async def one(i: int):
        return await asyncio.to_thread(run_sipp, tmp_path, scenario(pcaps=[(str(PCAP_DIR / "g711a.pcap"), 600)]),
                                       ports.sip, ports.sipp(i), media[i], timeout_s=30)

    async def main():
        config = sip_config(ports.sip, max_calls=4)
        results = []
        async with SipWorker(config, rec, rtp_port=ports.rtp, rtp_port_range=ports.rtp_range) as worker:
            for _ in range(10):
                results += await asyncio.gather(*(one(i) for i in range(4)))
            await asyncio.sleep(1.0)
            tables = (len(worker.calls), len(worker._pj_calls))
        return worker, results, tables

    worker, results, tables = asyncio.run(main())
    failed = [r.stdout[-500:] for r in results if r.returncode != 0]
    assert not failed, failed[:2]
    assert worker.stats.answered == 40 and worker.stats.ended == 40
    assert tables == (0, 0), tables
