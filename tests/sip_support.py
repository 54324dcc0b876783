"""sipp scenarios and runners for the SIP front-end tests (loopback only; ports 17000-18999, see Ports)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from voicebot.config import Config

PCAP_DIR = Path("/usr/share/sip-tester")
PORTS_FIRST, PORTS_LAST = 17000, 18999  # the SIP tests' share of loopback ports (other suites use others)


@dataclass(frozen=True)
class Ports:
    """One test's block of 50 ports: the worker's SIP port, sipp SIP ports, the worker's RTP range and sipp
    media ports (sipp takes up to 4 from each). ``Ports.block(n)`` is the n-th block (0-39)."""

    base: int

    @classmethod
    def block(cls, n: int) -> "Ports":
        base = PORTS_FIRST + 50 * n
        assert PORTS_FIRST <= base and base + 49 <= PORTS_LAST, f"port block {n} is outside the SIP tests' range"
        return cls(base)

    @property
    def sip(self) -> int:
        return self.base

    def sipp(self, i: int = 0) -> int:
        assert 0 <= i < 5
        return self.base + 1 + i

    @property
    def rtp(self) -> int:
        return self.base + 10

    rtp_range = 20

    def media(self, i: int = 0) -> int:
        assert 0 <= i < 3
        return self.base + 30 + 6 * i

_INVITE = """  <send retrans="500">
    <![CDATA[
      INVITE sip:voicebot@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {from_header};tag=[pid]SIPpTag09[call_number]
      To: <sip:voicebot@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
{extra}      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[local_ip_type] [local_ip]
      t=0 0
      m=audio [auto_media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-11,16
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
"""

_ACK = """  <send>
    <![CDATA[
      ACK sip:voicebot@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {from_header};tag=[pid]SIPpTag09[call_number]
      To: <sip:voicebot@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
"""

_BYE = """  <send retrans="500">
    <![CDATA[
      BYE sip:voicebot@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {from_header};tag=[pid]SIPpTag09[call_number]
      To: <sip:voicebot@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 3 BYE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
"""

_RECV_BYE = """  <recv request="BYE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
"""

_REFER = """  <recv request="REFER"/>
  <send>
    <![CDATA[
      SIP/2.0 202 Accepted
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: sip:sipp@[local_ip]:[local_port]
      Content-Length: 0
    ]]>
  </send>
  <pause milliseconds="200"/>
  <send retrans="500">
    <![CDATA[
      NOTIFY sip:voicebot@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: {from_header};tag=[pid]SIPpTag09[call_number]
      To: <sip:voicebot@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 NOTIFY
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Event: refer
      Subscription-State: terminated;reason=noresource
      Content-Type: message/sipfrag;version=2.0
      Content-Length: [len]

      SIP/2.0 {sipfrag}
    ]]>
  </send>
  <recv response="200"/>
"""


def _wrap(body: str) -> str:
    return ('<?xml version="1.0" encoding="ISO-8859-1" ?>\n<!DOCTYPE scenario SYSTEM "sipp.dtd">\n'
            f'<scenario name="voicebot test">\n{body}</scenario>\n')


def scenario(*, from_header: str = '"Caller" <sip:+15550102030@[local_ip]:[local_port]>', pai: str = "",
             pcaps: list[tuple[str, int]] = (), expect: int = 200, refer_sipfrag: str | None = None,
             hold_ms: int = 0, await_bye: bool = False) -> str:
    """A UAC: INVITE; a non-2xx ``expect`` ends there (ACK); else ACK, play each (pcap, pause_ms), then either
    handle a REFER (202 + NOTIFY with ``refer_sipfrag``) and wait for the bot's BYE, or send BYE."""
    extra = f"      P-Asserted-Identity: {pai}\n" if pai else ""
    fmt = {"from_header": from_header, "extra": extra, "sipfrag": refer_sipfrag}
    body = _INVITE.format(**fmt)
    if expect != 200:
        # a non-2xx answer is ACKed in the INVITE's transaction (same branch as the INVITE, 3 messages back)
        body += f'  <recv response="{expect}"/>\n'
        body += _ACK.format(**fmt).replace("[branch]", "[branch-3]")
        return _wrap(body)
    body += '  <recv response="200" rtd="true" crlf="true"/>\n' + _ACK.format(**fmt)
    for pcap, pause_ms in pcaps:
        body += f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
        body += f'  <pause milliseconds="{pause_ms}"/>\n'
    if hold_ms:
        body += f'  <pause milliseconds="{hold_ms}"/>\n'
    if refer_sipfrag is not None:
        body += _REFER.format(**fmt) + _RECV_BYE
    elif await_bye:
        body += _RECV_BYE
    else:
        body += _BYE.format(**fmt)
    return _wrap(body)


def sip_config(port: int, **sip) -> Config:
    """A config for a worker on 127.0.0.1:port (UDP) with ``sip`` overrides."""
    config = Config()
    config.sip.port = port
    config.sip.listen_address = "127.0.0.1"
    config.sip.transports = ["udp"]
    for key, value in sip.items():
        setattr(config.sip, key, value)
    return config


def sipp_binary() -> str:
    path = shutil.which("sipp")
    if path is None:
        pytest.fail("sipp is not installed: `apt-get install -y sip-tester` (Debian) provides it")
    return path


def uas_scenario(status: int = 486, reason: str = "Busy Here", ring_ms: int = 0) -> str:
    """A UAS (an "operator" that does not take the call): INVITE, optionally 180 and a pause, then ``status``
    and the ACK."""
    body = '  <recv request="INVITE"/>\n'
    if ring_ms:
        body += _UAS_REPLY.format(status=180, reason="Ringing") + f'  <pause milliseconds="{ring_ms}"/>\n'
    body += _UAS_REPLY.format(status=status, reason=reason) + '  <recv request="ACK"/>\n'
    return _wrap(body)


_UAS_REPLY = """  <send>
    <![CDATA[
      SIP/2.0 {status} {reason}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Length: 0
    ]]>
  </send>
"""


def start_sipp(tmp_path: Path, local_port: int, media_port: int, *, xml: str | None = None,
               builtin: str | None = None, target_port: int | None = None, rtp_echo: bool = False,
               local_ip: str = "127.0.0.1", timeout_s: float = 30.0,
               recv_timeout_s: float | None = None, transport: str = "u1") -> subprocess.Popen:
    """Start one sipp call in the background: scenario ``xml`` or a built-in one (``builtin="uas"``), as a UAC
    towards 127.0.0.1:target_port or, without a target, as a UAS listening on local_port. ``wait_sipp`` ends it."""
    sipp = sipp_binary()
    cmd = [sipp]
    if target_port is not None:
        cmd.append(f"127.0.0.1:{target_port}")
    if xml is not None:
        scen = tmp_path / f"scenario-{local_port}.xml"
        scen.write_text(xml)
        cmd += ["-sf", str(scen)]
    else:
        cmd += ["-sn", builtin or "uas"]
    if rtp_echo:
        cmd.append("-rtp_echo")
    cmd += ["-t", transport, "-i", local_ip, "-p", str(local_port), "-mp", str(media_port), "-m", "1", "-l", "1",
            "-nostdin",
            "-trace_err", "-trace_msg", "-message_file", str(tmp_path / f"sipp-{local_port}-messages.log"),
            "-error_file", str(tmp_path / f"sipp-{local_port}-errors.log"),
            "-timeout", f"{int(timeout_s)}s", "-timeout_error",
            "-recv_timeout", f"{int(recv_timeout_s or timeout_s)}s"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proc.local_port = local_port  # type: ignore[attr-defined]
    proc.tmp_path = tmp_path  # type: ignore[attr-defined]
    return proc


def wait_sipp(proc: subprocess.Popen, timeout_s: float = 40.0) -> subprocess.CompletedProcess:
    """Wait for a sipp started by ``start_sipp`` (killed after ``timeout_s``); stdout has its errors appended
    and ``messages`` (attribute) its SIP message log."""
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    errors = proc.tmp_path / f"sipp-{proc.local_port}-errors.log"
    if errors.exists():
        out += "\n--- sipp errors ---\n" + errors.read_text(errors="replace")[-4000:]
    messages = proc.tmp_path / f"sipp-{proc.local_port}-messages.log"
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out[-6000:], "")
    result.messages = messages.read_text(errors="replace") if messages.exists() else ""  # type: ignore[attr-defined]
    return result


def run_sipp(tmp_path: Path, xml: str, target_port: int, local_port: int, media_port: int,
             local_ip: str = "127.0.0.1", timeout_s: float = 30.0, transport: str = "u1"
             ) -> subprocess.CompletedProcess:
    """Run one call of ``xml`` against 127.0.0.1:target_port (``transport`` u1: UDP, t1: TCP); sipp is always
    killed at the end."""
    proc = start_sipp(tmp_path, local_port, media_port, xml=xml, target_port=target_port, local_ip=local_ip,
                      timeout_s=timeout_s, recv_timeout_s=15, transport=transport)
    return wait_sipp(proc, timeout_s + 10)


# -- through a SIP proxy (Kamailio in front of several workers; tests/test_kamailio.py) -----------------------
def via_proxy(xml: str) -> str:
    """Make a ``scenario()`` behave as a UAC behind a record-routing proxy: remember the 200 OK's Record-Route
    set and Contact (``rrs``), and send the ACK and BYE to the worker's Contact with that route set, so they
    pass through the proxy to the worker that answered (a BYE to the proxy's own address would go nowhere)."""
    xml = xml.replace('<recv response="200" rtd="true" crlf="true"/>',
                      '<recv response="200" rtd="true" crlf="true" rrs="true"/>')
    for method in ("ACK", "BYE"):
        xml = xml.replace(f"      {method} sip:voicebot@[remote_ip]:[remote_port] SIP/2.0\n",
                          f"      {method} [next_url] SIP/2.0\n      [routes]\n")
    return xml


def start_sipp_calls(tmp_path: Path, xml: str, target_port: int, local_port: int, media_port: int, name: str,
                     calls: int = 1, limit: int | None = None, timeout_s: float = 60.0,
                     local_ip: str = "127.0.0.1") -> subprocess.Popen:
    """Start sipp placing ``calls`` calls of ``xml`` (at most ``limit`` at once) to 127.0.0.1:target_port in
    the background; ``finish_sipp_calls(proc, tmp_path, name)`` collects it. Logs are named after ``name``."""
    scen = tmp_path / f"scenario-{name}.xml"
    scen.write_text(xml)
    cmd = [sipp_binary(), f"127.0.0.1:{target_port}", "-sf", str(scen), "-i", local_ip, "-p", str(local_port),
           "-mp", str(media_port), "-m", str(calls), "-l", str(limit or calls), "-nostdin", "-trace_err",
           "-trace_msg", "-message_file", str(tmp_path / f"sipp-{name}-messages.log"),
           "-error_file", str(tmp_path / f"sipp-{name}-errors.log"),
           "-timeout", f"{int(timeout_s)}s", "-timeout_error", "-recv_timeout", f"{int(timeout_s)}s"]
    return subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_sipp_calls(proc: subprocess.Popen, tmp_path: Path, name: str, timeout_s: float = 70.0
                      ) -> subprocess.CompletedProcess:
    """Wait for a ``start_sipp_calls`` run (killed after ``timeout_s``); stdout ends with sipp's error log."""
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    errors = tmp_path / f"sipp-{name}-errors.log"
    if errors.exists():
        out += "\n--- sipp errors ---\n" + errors.read_text(errors="replace")[-4000:]
    return subprocess.CompletedProcess(proc.args, proc.returncode, out[-6000:], "")
