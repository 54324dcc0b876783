"""Ready means ready: a call placed the instant `voicebot serve` prints its readiness line is answered.

The INVITE is one UDP datagram with no retransmission, sent from the thread that reads the bot's output at the
moment the line arrives. Before the fix the line was printed before pjsua2 had bound its socket, and such an
INVITE met a closed port.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from serve_support import write_config

PORT = 17660

pytestmark = [pytest.mark.models, pytest.mark.timeout(300)]


def _invite(call_id: str, local_port: int, tag: str) -> bytes:
    sdp = ("v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           f"m=audio {local_port + 2} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
    head = (f"INVITE sip:voicebot@127.0.0.1:{PORT} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{uuid.uuid4().hex[:12]};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: \"Caller\" <sip:+15550102030@127.0.0.1:{local_port}>;tag={tag}\r\n"
            f"To: <sip:voicebot@127.0.0.1:{PORT}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:+15550102030@127.0.0.1:{local_port}>\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n")
    return (head + sdp).encode()


def _ack_or_bye(method: str, cseq: int, call_id: str, local_port: int, tag: str, to_header: str) -> bytes:
    return (f"{method} sip:voicebot@127.0.0.1:{PORT} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{uuid.uuid4().hex[:12]};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: \"Caller\" <sip:+15550102030@127.0.0.1:{local_port}>;tag={tag}\r\n"
            f"{to_header}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n").encode()


def test_a_call_placed_the_instant_the_ready_line_appears_is_answered(tmp_path):
    cfg = write_config(tmp_path, PORT)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", PORT + 1))
    call_id, tag = f"ready-{uuid.uuid4().hex}", uuid.uuid4().hex[:8]
    sent = threading.Event()
    output: list[str] = []
    process = subprocess.Popen([sys.executable, "-m", "voicebot.cli", "serve", "--config", str(cfg)],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={"COLUMNS": "200", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})

    def read() -> None:
        for line in process.stdout:
            if "answering calls" in line and not sent.is_set():
                sock.sendto(_invite(call_id, PORT + 1, tag), ("127.0.0.1", PORT))  # at once, one datagram
                sent.set()
            output.append(line)

    threading.Thread(target=read, daemon=True).start()
    try:
        deadline = time.monotonic() + 180
        while not sent.is_set():
            assert process.poll() is None, "".join(output)
            assert time.monotonic() < deadline, "no readiness line in 180 s:\n" + "".join(output)
            time.sleep(0.05)
        sock.settimeout(10)
        statuses, to_header = [], ""
        while not statuses or statuses[-1] < 200:
            try:
                data = sock.recv(65535).decode(errors="replace")
            except (TimeoutError, ConnectionRefusedError) as exc:
                pytest.fail(f"the INVITE sent on the readiness line got no answer ({exc!r}); got {statuses}\n"
                            + "".join(output))
            first = data.split("\r\n", 1)[0]
            if not first.startswith("SIP/2.0") or call_id not in data:
                continue
            statuses.append(int(first.split()[1]))
            to_header = next(h for h in data.split("\r\n") if h.lower().startswith(("to:", "t:")))
        assert statuses[-1] == 200, statuses
        sock.sendto(_ack_or_bye("ACK", 1, call_id, PORT + 1, tag, to_header), ("127.0.0.1", PORT))
        time.sleep(1.0)
        sock.sendto(_ack_or_bye("BYE", 2, call_id, PORT + 1, tag, to_header), ("127.0.0.1", PORT))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            code = None
        sock.close()
    assert code == 0, "".join(output)
