"""Malformed and unwanted SIP requests against the real pjsua2 endpoint, sent as raw UDP datagrams over loopback:
each gets a refusal (or nothing), none starts a call or stops the endpoint, and a proper request afterwards is
still answered. What pjsua would answer wrongly itself (500 for a CSeq of another method, 200 to OPTIONS and
MESSAGE from anyone, nothing to an unknown method) is answered by the SIP guard (sip_guard: 400, 403, 501), the
codes the Kamailio front of `serve --workers N` gives (test_sip_hygiene_workers.py). A refused source is
127.0.0.2. Ports 21000-21099 (other suites use 17000-20999)."""

from __future__ import annotations

import asyncio
import itertools
import re
import socket

import pytest

from sip_support import sip_config
from voicebot.telephony.sip import SipWorker

pytestmark = pytest.mark.timeout(120)

BOT, PEER, RTP = 21000, 21001, 21010
SDP = ("v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\nm=audio 21090 RTP/AVP 0\r\n"
       "a=rtpmap:0 PCMU/8000\r\n")
_ids = itertools.count(1)


def request(method: str, *, cseq: str | None = None, max_forwards: str = "70", body: str = "",
            content_length: int | None = None, extra: str = "") -> bytes:
    n = next(_ids)
    length = len(body.encode()) if content_length is None else content_length
    return (f"{method} sip:voicebot@127.0.0.1:{BOT} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{PEER};branch=z9hG4bKhyg{n}\r\n"
            f"From: <sip:+15550102030@127.0.0.1:{PEER}>;tag=h{n}\r\nTo: <sip:voicebot@127.0.0.1:{BOT}>\r\n"
            f"Call-ID: hygiene-{n}@127.0.0.1\r\nCSeq: {cseq or f'1 {method}'}\r\n"
            f"Contact: <sip:peer@127.0.0.1:{PEER}>\r\nMax-Forwards: {max_forwards}\r\n{extra}"
            f"Content-Length: {length}\r\n\r\n{body}").encode()


def invite(**kwargs) -> bytes:
    return request("INVITE", body=SDP.format(host=kwargs.pop("host", "127.0.0.1")),
                   extra="Content-Type: application/sdp\r\n", **kwargs)


def exchange(sock: socket.socket, data: bytes, wait_s: float = 1.5, whole: bool = False) -> list[str]:
    """Send one datagram; the first lines (``whole``: the whole messages) of everything that comes back within
    ``wait_s`` (until a final response to this request: pjsip resends the previous case's final answer until
    an ACK that never comes, and on a slow machine that resend arrives first)."""
    sock.sendto(data, ("127.0.0.1", BOT))
    call_id = re.search(rb"Call-ID: (\S+)", data)
    own = b"Call-ID: " + call_id.group(1) + b"\r\n" if call_id else b""
    got: list[str] = []
    sock.settimeout(wait_s)
    try:
        while True:
            reply, _ = sock.recvfrom(65535)
            got.append((reply if whole else reply.split(b"\r\n", 1)[0]).decode(errors="replace"))
            if not reply.startswith(b"SIP/2.0 1") and own in reply:
                break
    except TimeoutError:
        pass
    return got


def drain(sock: socket.socket) -> None:
    sock.settimeout(0.3)
    try:
        while True:
            sock.recvfrom(65535)
    except TimeoutError:
        pass


async def against_the_endpoint(allowed: list[str], cases: dict[str, bytes], whole: bool = False,
                               strangers: dict[str, bytes] | None = None) -> tuple[dict[str, list[str]], object]:
    """``strangers`` are sent first, from 127.0.0.2 (the same port), then ``cases`` from 127.0.0.1."""
    answered: list[object] = []

    async def on_call(call) -> None:
        answered.append(call)
        await call.hangup()

    config = sip_config(BOT, allowed_sources=allowed, transports=["udp"])
    async with SipWorker(config, on_call, rtp_port=RTP, rtp_port_range=20) as worker:
        results = {}
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            stranger.bind(("127.0.0.2", PEER))
            for name, data in (strangers or {}).items():
                results[name] = await asyncio.to_thread(exchange, stranger, data, 1.5, whole)
                await asyncio.to_thread(drain, stranger)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", PEER))
            for name, data in cases.items():  # 3 s: on a loaded CI machine a 483 once came after the 1.5 s wait
                results[name] = await asyncio.to_thread(exchange, sock, data, 3.0, whole)
                await asyncio.to_thread(drain, sock)
            results["OPTIONS afterwards"] = await asyncio.to_thread(exchange, sock, request("OPTIONS"))
        stats = worker.stats
    return results, (stats, answered)


def final(lines: list[str]) -> int | None:
    codes = [int(line.split()[1]) for line in lines if line.startswith("SIP/2.0 ")]
    return codes[-1] if codes else None


def test_malformed_requests_are_refused_and_the_endpoint_lives_on():
    cases = {
        "garbage": b"\x00\x01\x02 not SIP at all\r\n\r\n",
        "no headers": b"INVITE sip:voicebot@127.0.0.1 SIP/2.0\r\n\r\n",
        "CSeq method not the request's": invite(cseq="1 BYE"),
        "Content-Length beyond the body": invite(content_length=9999),
        "Content-Length short of the body": invite(content_length=10),
        "Max-Forwards 0": invite(max_forwards="0"),
        "huge header": request("OPTIONS", extra="X-Junk: " + "A" * 60000 + "\r\n"),
        "unknown method": request("FROBNICATE"),
    }
    results, (stats, answered) = asyncio.run(against_the_endpoint(["127.0.0.1/32"], cases, whole=True))
    # only each case's own answers: pjsip resends a final answer to an INVITE until the ACK (which never comes
    # here), so the previous case's 400 may arrive while the next case is waiting
    for name, sent in cases.items():
        call_id = re.search(rb"Call-ID: (\S+)", sent)
        if call_id is not None:
            own = f"Call-ID: {call_id.group(1).decode()}\r\n"
            results[name] = [reply for reply in results[name] if own in reply]
    assert results["garbage"] == [] and results["no headers"] == []  # not even parsed: silently dropped
    assert final(results["CSeq method not the request's"]) == 400  # the guard (pjsua alone: 500, no transaction)
    assert final(results["Content-Length beyond the body"]) == 400  # RFC 3261 18.3: a truncated datagram
    assert final(results["Content-Length short of the body"]) == 400  # pjsip would parse the whole datagram
    assert final(results["Max-Forwards 0"]) == 483  # the end of a loop, not a caller
    # pjsua alone drops a method it does not know without an answer; the guard answers 501 with pjsua's Allow
    unknown = [reply for reply in results["unknown method"] if "CSeq: 1 FROBNICATE" in reply]
    assert [final([reply]) for reply in unknown] == [501], results["unknown method"]  # (a 483 resent may come by)
    allow = [line for line in unknown[0].split("\r\n") if line.lower().startswith("allow:")]
    assert allow and "INVITE" in allow[0] and "FROBNICATE" not in allow[0], unknown[0]
    assert not answered and stats.answered == 0  # none of them became a call
    # still alive and answering (a resent 483 of the Max-Forwards case may come by in the same window)
    assert any(line.startswith("SIP/2.0 200 ") for line in results["OPTIONS afterwards"]), results


def test_requests_the_bot_does_not_serve_are_refused_from_anywhere():
    """Presence would answer a SUBSCRIBE with 200 and then send NOTIFYs to whoever asked: a reflector."""
    cases = {
        "SUBSCRIBE presence": request("SUBSCRIBE", extra="Event: presence\r\nExpires: 600\r\n"),
        "INVITE from a refused source": invite(),
    }
    results, (stats, answered) = asyncio.run(against_the_endpoint(["127.0.0.2/32"], cases))
    assert final(results["SUBSCRIBE presence"]) in (403, 489), results
    assert not any(line.startswith("NOTIFY") for line in results["SUBSCRIBE presence"])
    assert final(results["INVITE from a refused source"]) == 403
    assert not answered and stats.rejected_forbidden == 1


def test_a_hold_offer_is_an_ordinary_call_to_a_user_agent():
    """c=0.0.0.0 (an old-style hold offer) is answered like any call from an allowed source."""
    cases = {"hold offer": invite(host="0.0.0.0")}
    results, (stats, answered) = asyncio.run(against_the_endpoint(["127.0.0.1/32"], cases))
    assert final(results["hold offer"]) == 200
    assert stats.answered == 1


def test_options_and_message_only_for_allowed_sources_and_a_call_afterwards():
    """pjsua answers OPTIONS and MESSAGE 200 before any pjsua2 callback; the guard refuses them (403) out of a
    dialog from a source that is not allowed, as it does a method pjsua does not know, while an allowed source
    (a PBX's or Kamailio's OPTIONS ping) still gets pjsua's 200 and the next call is answered."""
    strangers = {
        "OPTIONS from a refused source": request("OPTIONS"),
        "MESSAGE from a refused source": request("MESSAGE", body="hi", extra="Content-Type: text/plain\r\n"),
        "unknown method from a refused source": request("FROBNICATE"),
        "CSeq method not the request's, refused source": invite(cseq="1 OPTIONS"),
        "in-dialog OPTIONS from a refused source": request("OPTIONS", extra="").replace(
            f"To: <sip:voicebot@127.0.0.1:{BOT}>".encode(), f"To: <sip:voicebot@127.0.0.1:{BOT}>;tag=x".encode()),
    }
    cases = {"OPTIONS": request("OPTIONS"),
             "MESSAGE": request("MESSAGE", body="hello", extra="Content-Type: text/plain\r\n"),
             "a call": invite()}
    results, (stats, answered) = asyncio.run(against_the_endpoint(["127.0.0.1/32"], cases, strangers=strangers))
    assert final(results["OPTIONS from a refused source"]) == 403, results
    assert final(results["MESSAGE from a refused source"]) == 403, results
    assert final(results["unknown method from a refused source"]) == 403, results
    assert final(results["CSeq method not the request's, refused source"]) == 400, results
    assert final(results["in-dialog OPTIONS from a refused source"]) == 481, results  # pjsua's: no such dialog
    assert final(results["OPTIONS"]) == 200 and final(results["MESSAGE"]) == 200, results
    assert final(results["a call"]) == 200, results
    assert stats.answered == 1 and stats.rejected_forbidden == 0  # (no ACK here: on_call never runs)
    assert final(results["OPTIONS afterwards"]) == 200


def test_no_product_banner_in_what_pjsua_or_the_guard_answer():
    """OPTIONS and MESSAGE are answered by pjsua (an allowed source) or the guard (403, a refused one): neither
    names a product (the User-Agent said "voicebot")."""
    cases = {"OPTIONS": request("OPTIONS"),
             "MESSAGE": request("MESSAGE", body="hello", extra="Content-Type: text/plain\r\n")}
    strangers = {f"{name} refused": data for name, data in
                 {"OPTIONS": request("OPTIONS"), "MESSAGE": request("MESSAGE", body="hello",
                                                                    extra="Content-Type: text/plain\r\n"),
                  "FROBNICATE": request("FROBNICATE")}.items()}
    results, _ = asyncio.run(against_the_endpoint(["127.0.0.1/32"], cases, whole=True, strangers=strangers))
    assert final(results["OPTIONS"]) == 200 and final(results["OPTIONS refused"]) == 403, results
    for name, replies in results.items():
        assert replies, name
        for reply in replies:
            headers = [line.split(":", 1)[0].lower() for line in reply.split("\r\n")[1:]]
            assert "user-agent" not in headers and "server" not in headers, (name, reply)


def rtp_packet(seq: int, ssrc: int) -> bytes:
    """One 20 ms PCMU packet of silence."""
    import struct

    return struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, ssrc) + b"\xff" * 160


def hijack_call(check: bool) -> tuple[list[str], object]:
    """A call from 127.0.0.1 whose RTP, after a second, comes from 127.0.0.5 instead: what the peer hears back."""
    import re
    import threading
    import time

    async def on_call(call) -> None:
        async for _ in call.events():  # keep the call up, as a session would
            pass

    async def main():
        config = sip_config(BOT, allowed_sources=["127.0.0.1/32"], transports=["udp"], rtp_source_check=check)
        async with SipWorker(config, on_call, rtp_port=RTP, rtp_port_range=20) as worker:
            sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sip.bind(("127.0.0.1", PEER))
            offer = invite()
            got = await asyncio.to_thread(exchange, sip, offer)
            assert final(got) == 200, got
            sip.settimeout(2)
            answer = b""
            while b"m=audio" not in answer:  # the 200 OK again (retransmitted until the ACK): read its SDP
                sip.sendto(b"", ("127.0.0.1", BOT))
                answer = await asyncio.to_thread(lambda: sip.recvfrom(65535)[0])
            media_port = int(re.search(rb"m=audio (\d+)", answer).group(1))
            headers = offer.decode().split("\r\n\r\n")[0].replace("INVITE sip", "ACK sip", 1)
            to_tag = re.search(rb"^To:.*$", answer, re.M | re.I).group(0).decode()
            ack = re.sub(r"^To:.*$", to_tag, headers, flags=re.M).replace("CSeq: 1 INVITE", "CSeq: 1 ACK")
            sip.sendto((ack + "\r\n\r\n").encode(), ("127.0.0.1", BOT))
            stop = threading.Event()

            def stream(host: str, port: int, first: int, count: int) -> None:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp:
                    rtp.bind((host, port))
                    for seq in range(first, first + count):
                        if stop.is_set():
                            return
                        rtp.sendto(rtp_packet(seq, 0x1234), ("127.0.0.1", media_port))
                        time.sleep(0.02)

            await asyncio.to_thread(stream, "127.0.0.1", 21090, 0, 60)  # the caller's own media
            heard: list[str] = []
            attacker = threading.Thread(target=stream, args=("127.0.0.5", 21095, 60, 150))
            attacker.start()
            sip.settimeout(4)
            try:
                while True:
                    data = await asyncio.to_thread(lambda: sip.recvfrom(65535)[0])
                    heard.append(data.split(b"\r\n", 1)[0].decode())
                    if data.startswith(b"BYE"):
                        break
            except TimeoutError:
                pass
            stop.set()
            attacker.join()
            sip.close()
            return heard, worker.stats

    return asyncio.run(main())


def test_rtp_from_a_third_address_ends_the_call():
    """pjmedia follows a new RTP source after a few packets, so an attacker who guesses the port would hear the
    bot (account details included). With the source check the bot hangs up within a second instead."""
    heard, stats = hijack_call(check=True)
    assert any(line.startswith("BYE") for line in heard), heard
    assert stats.answered == 1


def test_without_the_check_the_call_goes_on_the_check_is_what_ends_it():
    heard, _ = hijack_call(check=False)
    assert not any(line.startswith("BYE") for line in heard), heard
