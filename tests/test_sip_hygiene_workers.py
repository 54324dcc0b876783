"""The malformed-message set through `voicebot serve --workers 2` (Kamailio in front of two workers), and SIGHUP
forwarded by the supervisor. One real serve (real models) for the whole module: loading two workers is the cost.

In one process, the guard module (voicebot/telephony/sip_guard.py, test_sip_hygiene.py) answers what pjsua would
answer wrongly (a CSeq of another method: 400, OPTIONS and MESSAGE from a refused source: 403, an unknown method:
501). Behind Kamailio those never reach a worker: the proxy's checks answer them (sanity: 400, maxfwd: 483, the allow-list: 403, anything but an INVITE or
an OPTIONS ping to the proxy itself: 405), with no product banner. Every case is survived and the next call is
answered; then SIGHUP reaches both workers through the supervisor (a bad file: refused once, with file:line).
"""

from __future__ import annotations

import itertools
import signal
import socket
import time
from pathlib import Path

import pytest

from serve_support import serving_two_workers
from sip_support import run_sipp, scenario, via_proxy

pytestmark = [pytest.mark.models, pytest.mark.timeout(600)]

PROXY = 22800  # Kamailio; workers 22810-22811, their RTP 22820-23019 (a few used); raw peers 22960-22961;
PEER, STRANGER_PORT = 22960, 22961  # sipp calls from 22970 (media +2)
SDP = ("v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\nm=audio 22990 RTP/AVP 0\r\n"
       "a=rtpmap:0 PCMU/8000\r\n")
_ids = itertools.count(1)


def request(method: str, *, host: str = "127.0.0.1", port: int = PEER, cseq: str | None = None,
            max_forwards: str = "70", body: str = "", content_length: int | None = None, extra: str = "") -> bytes:
    n = next(_ids)
    length = len(body.encode()) if content_length is None else content_length
    return (f"{method} sip:voicebot@127.0.0.1:{PROXY} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};rport;branch=z9hG4bKwrk{n}\r\n"
            f"From: <sip:+15550102030@{host}:{port}>;tag=w{n}\r\nTo: <sip:voicebot@127.0.0.1:{PROXY}>\r\n"
            f"Call-ID: workers-hygiene-{n}@{host}\r\nCSeq: {cseq or f'1 {method}'}\r\n"
            f"Contact: <sip:peer@{host}:{port}>\r\nMax-Forwards: {max_forwards}\r\n{extra}"
            f"Content-Length: {length}\r\n\r\n{body}").encode()


def invite(**kwargs) -> bytes:
    return request("INVITE", body=SDP.format(host="127.0.0.1"), extra="Content-Type: application/sdp\r\n", **kwargs)


def exchange(sock: socket.socket, data: bytes, wait_s: float = 2.0) -> list[str]:
    """Send one datagram to the proxy; every whole message that comes back within ``wait_s`` (to a final one)."""
    sock.sendto(data, ("127.0.0.1", PROXY))
    got: list[str] = []
    sock.settimeout(wait_s)
    try:
        while True:
            reply = sock.recv(65535).decode(errors="replace")
            got.append(reply)
            if not reply.startswith("SIP/2.0 1"):
                break
    except TimeoutError:
        pass
    sock.settimeout(0.3)
    try:
        while True:
            sock.recv(65535)  # retransmissions: not the next case's answer
    except TimeoutError:
        pass
    return got


def final(replies: list[str]) -> int | None:
    codes = [int(r.split()[1]) for r in replies if r.startswith("SIP/2.0 ")]
    return codes[-1] if codes else None


def sipp_call(folder: Path, local_port: int, hold_ms: int = 2000) -> int:
    """One call through the proxy (ACK and BYE along the Record-Route set); sipp's exit code (0: all fine)."""
    done = run_sipp(folder, via_proxy(scenario(hold_ms=hold_ms)), target_port=PROXY, local_port=local_port,
                    media_port=local_port + 2, timeout_s=60)
    return done.returncode


def wait_for(predicate, timeout_s: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.2)


def test_malformed_messages_through_two_workers_then_a_call_then_sighup(tmp_path):
    with serving_two_workers(tmp_path, PROXY, 22810) as served:
        assert "2 workers behind Kamailio" in served.text and "no answer to OPTIONS" not in served.text
        ok = {
            "garbage": b"\x00\x01\x02 not SIP at all\r\n\r\n",
            "no headers": b"INVITE sip:voicebot@127.0.0.1 SIP/2.0\r\n\r\n",
            "CSeq method not the request's": invite(cseq="1 BYE"),
            "Content-Length beyond the body": invite(content_length=9999),
            "Content-Length short of the body": invite(content_length=10),
            "huge header": request("OPTIONS", extra="X-Junk: " + "A" * 60000 + "\r\n"),
            "unknown method": request("FROBNICATE"),
            "Max-Forwards 0": invite(max_forwards="0"),
            "SUBSCRIBE": request("SUBSCRIBE", extra="Event: presence\r\nExpires: 600\r\n"),
            "MESSAGE": request("MESSAGE", body="hello", extra="Content-Type: text/plain\r\n"),
        }
        refused_source = {
            "OPTIONS from a refused source": request("OPTIONS", host="127.0.0.2", port=STRANGER_PORT),
            "MESSAGE from a refused source": request("MESSAGE", host="127.0.0.2", port=STRANGER_PORT, body="hi",
                                                     extra="Content-Type: text/plain\r\n"),
            "INVITE from a refused source": invite(host="127.0.0.2", port=STRANGER_PORT),
        }
        results: dict[str, list[str]] = {}
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", PEER))
            for name, data in ok.items():
                results[name] = exchange(sock, data)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            stranger.bind(("127.0.0.2", STRANGER_PORT))
            for name, data in refused_source.items():
                results[name] = exchange(stranger, data)
        codes = {name: final(replies) for name, replies in results.items()}
        print(codes)
        assert codes["garbage"] is None and codes["no headers"] in (None, 400)
        assert codes["CSeq method not the request's"] == 400, results
        assert codes["Content-Length beyond the body"] in (None, 400)  # sanity: 400, or dropped as truncated
        assert codes["Content-Length short of the body"] == 400, results
        assert codes["unknown method"] in (405, 501), results
        assert codes["Max-Forwards 0"] == 483, results
        assert codes["SUBSCRIBE"] in (403, 405, 489) and codes["MESSAGE"] in (403, 405)
        for name in refused_source:
            assert codes[name] == 403, (name, results[name])
        for name, replies in results.items():
            for reply in replies:
                headers = [line.split(":", 1)[0].strip().lower() for line in reply.split("\r\n")[1:] if ":" in line]
                assert "user-agent" not in headers and "server" not in headers, (name, reply)  # no banner
        assert served.process.poll() is None and "worker w0 died" not in served.text
        assert sipp_call(tmp_path, 22970) == 0  # the next call: answered, on the line, BYE answered
        wait_for(lambda: served.store().list_calls(), what="the call in the store")

        # SIGHUP: the supervisor checks the file, then each worker reloads it
        cfg = served.config
        original = cfg.read_text()
        cfg.write_text(original + "dialog:\n  greeting: Hi, this is the automated assistant, reloaded.\n")
        served.process.send_signal(signal.SIGHUP)
        wait_for(lambda: served.text.count("config reloaded") >= 2, what=served.text[-2000:])
        assert "forwarded to 2 worker(s)" in served.text
        cfg.write_text(original + "vad:\n  aggressiveness: 9\n")
        served.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "refused" in served.text, what=served.text[-2000:])
        assert f"{cfg}:" in served.text.split("refused", 1)[1]  # with file:line
        assert served.text.count("config reloaded") == 2  # the workers never saw the bad file
        assert sipp_call(tmp_path, 22974, hold_ms=12000) == 0  # the new greeting is synthesised first
        store = served.store()
        wait_for(lambda: len(store.list_calls()) == 2 and all(c.outcome != "in_progress" for c in store.list_calls()),
                 what="two calls")
        newest = store.list_calls(limit=1)[0]
        assert store.turns(newest.id)[0].text == "Hi, this is the automated assistant, reloaded."
    assert served.exit_code == 0, served.text[-3000:]
