"""sipp scenarios and a runner for the SIP front-end tests (loopback only, ports above 15000)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PCAP_DIR = Path("/usr/share/sip-tester")

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


def sipp_binary() -> str:
    path = shutil.which("sipp")
    if path is None:
        pytest.fail("sipp is not installed: `apt-get install -y sip-tester` (Debian) provides it")
    return path


def run_sipp(tmp_path: Path, xml: str, target_port: int, local_port: int, media_port: int,
             local_ip: str = "127.0.0.1", timeout_s: float = 30.0) -> subprocess.CompletedProcess:
    """Run one call of ``xml`` against 127.0.0.1:target_port; sipp is always killed at the end."""
    sipp = sipp_binary()
    scen = tmp_path / f"scenario-{local_port}.xml"
    scen.write_text(xml)
    cmd = [sipp, f"127.0.0.1:{target_port}", "-sf", str(scen), "-i", local_ip, "-p", str(local_port),
           "-mp", str(media_port), "-m", "1", "-l", "1", "-nostdin", "-trace_err", "-trace_msg",
           "-message_file", str(tmp_path / f"sipp-{local_port}-messages.log"),
           "-error_file", str(tmp_path / f"sipp-{local_port}-errors.log"),
           "-timeout", f"{int(timeout_s)}s", "-timeout_error", "-recv_timeout", "15s"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s + 10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    errors = tmp_path / f"sipp-{local_port}-errors.log"
    if errors.exists():
        out += "\n--- sipp errors ---\n" + errors.read_text(errors="replace")[-4000:]
    return subprocess.CompletedProcess(cmd, proc.returncode, out[-6000:], "")
