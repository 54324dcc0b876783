"""Digest authentication of direct callers (``sip.auth_users_file``): the pure check, and real sipp callers
answering the bot's 401 with their own digest (sipp computes it) against a real pjsua2 endpoint on loopback.

Ports: 20900-20999 only (other suites use 17000-19999; tests/test_sip_register.py 20000-20899).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import subprocess
from pathlib import Path

import pytest

from sip_support import _ACK, _BYE, _INVITE, _wrap, sipp_binary
from voicebot.config import load_config
from voicebot.telephony.sip import SipWorker
from voicebot.telephony.sip_auth import AuthFileError, DigestAuth, load_users

pytestmark = pytest.mark.timeout(60)

PASSWORD = "Kx9-caller-Secret-77"


def ports(index: int) -> dict[str, int]:
    """10 ports per test from 20900: bot SIP +0, bot RTP +2..+7, sipp +8, sipp media +9 (sipp uses +9..+12)."""
    assert 0 <= index < 8
    base = 20900 + 12 * index
    return {"bot": base, "rtp": base + 2, "sipp": base + 8, "media": base + 9}


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324


# -- pure ---------------------------------------------------------------------------------------------------
def test_users_file_errors_name_the_line_never_the_password(tmp_path):
    good = tmp_path / "users.txt"
    good.write_text("# callers\nalice:" + PASSWORD + "\n\nbob:pa:ss\n")
    assert load_users(good) == {"alice": PASSWORD, "bob": "pa:ss"}
    bad = tmp_path / "bad.txt"
    for text, needle in (("alice " + PASSWORD + "\n", ":1: expected user:password"),
                         ("alice:x\nalice:" + PASSWORD + "\n", ":2: user 'alice' is listed twice"),
                         ("# nobody\n", "no users")):
        bad.write_text(text)
        with pytest.raises(AuthFileError) as err:
            load_users(bad)
        assert needle in str(err.value) and PASSWORD not in str(err.value)
    with pytest.raises(AuthFileError, match="cannot read"):
        load_users(tmp_path / "missing.txt")


def test_digest_check_with_and_without_qop_stale_and_foreign_nonces():
    auth = DigestAuth({"alice": PASSWORD}, "voicebot", secret=b"k" * 32, ttl_s=300)
    now = 1_800_000_000.0
    nonce = auth.nonce(now)
    uri = "sip:voicebot@127.0.0.1:5060"
    ha1, ha2 = md5(f"alice:voicebot:{PASSWORD}"), md5(f"INVITE:{uri}")

    def invite(response: str, extra: str = "", user: str = "alice", n: str = nonce) -> str:
        return (f"INVITE {uri} SIP/2.0\r\nAuthorization: Digest username=\"{user}\", realm=\"voicebot\", "
                f"nonce=\"{n}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5{extra}\r\n\r\n")

    assert auth.check(invite(md5(f"{ha1}:{nonce}:{ha2}")), now=now + 5).ok
    qop = md5(f"{ha1}:{nonce}:00000001:abc:auth:{ha2}")
    assert auth.check(invite(qop, ", qop=auth, nc=00000001, cnonce=\"abc\""), now=now + 5).ok
    wrong = auth.check(invite(md5(f"{md5('alice:voicebot:nope')}:{nonce}:{ha2}")), now=now + 5)
    assert (wrong.ok, wrong.status, wrong.why) == (False, 403, "wrong password")
    assert auth.check(invite("x", user="mallory"), now=now + 5).status == 403
    assert auth.check(f"INVITE {uri} SIP/2.0\r\n\r\n", now=now).status == 401
    stale = auth.check(invite(md5(f"{ha1}:{nonce}:{ha2}")), now=now + 301)
    assert (stale.status, stale.why) == (401, "stale nonce")
    forged = auth.check(invite("x", n="1234.abcdef"), now=now)
    assert forged.status == 401 and "did not issue" in forged.why
    assert 'realm="voicebot"' in auth.challenge(now) and 'qop="auth"' in auth.challenge(now)


# -- real sipp callers --------------------------------------------------------------------------------------
def auth_scenario(user: str, password: str, expect: int) -> str:
    """INVITE, 401 (ACKed), INVITE again with sipp's own digest for user/password, then ``expect``: 200 (ACK,
    BYE) or a refusal (ACKed)."""
    fmt = {"from_header": '"Caller" <sip:+15550102030@[local_ip]:[local_port]>', "extra": ""}
    body = _INVITE.format(**fmt)
    body += '  <recv response="401" auth="true"/>\n' + _ACK.format(**fmt).replace("[branch]", "[branch-3]")
    second = _INVITE.format(**fmt).replace("CSeq: 1 INVITE",
                                           f"CSeq: 2 INVITE\n      [authentication username={user} "
                                           f"password={password}]")
    body += second
    if expect != 200:
        body += f'  <recv response="{expect}"/>\n'
        return _wrap(body + _ACK.format(**fmt).replace("[branch]", "[branch-3]").replace("CSeq: 1 ACK",
                                                                                         "CSeq: 2 ACK"))
    body += '  <recv response="200" rtd="true" crlf="true"/>\n' + _ACK.format(**fmt).replace("CSeq: 1", "CSeq: 2")
    body += '  <pause milliseconds="500"/>\n' + _BYE.format(**fmt)
    return _wrap(body)


def run_call(tmp_path: Path, p: dict[str, int], xml: str) -> subprocess.CompletedProcess:
    scen = tmp_path / f"auth-{p['sipp']}.xml"
    scen.write_text(xml)
    cmd = [sipp_binary(), f"127.0.0.1:{p['bot']}", "-sf", str(scen), "-i", "127.0.0.1", "-p", str(p["sipp"]),
           "-mp", str(p["media"]), "-m", "1", "-l", "1", "-nostdin", "-trace_err", "-trace_msg",
           "-message_file", str(tmp_path / "sipp-messages.log"), "-error_file", str(tmp_path / "sipp-errors.log"),
           "-timeout", "20s", "-timeout_error", "-recv_timeout", "10s"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=40)
    errors, messages = tmp_path / "sipp-errors.log", tmp_path / "sipp-messages.log"
    proc.stdout += "\n--- sipp errors\n" + (errors.read_text(errors="replace")[-4000:] if errors.exists() else "")
    proc.messages = messages.read_text(errors="replace") if messages.exists() else ""  # type: ignore[attr-defined]
    return proc


async def answer(call) -> None:
    async for _ in call.events():
        pass


def worker_for(tmp_path: Path, p: dict[str, int]) -> SipWorker:
    (tmp_path / "callers.txt").write_text(f"alice:{PASSWORD}\n")
    path = tmp_path / "config.yaml"
    path.write_text(f"sip:\n  port: {p['bot']}\n  transports: [udp]\n  allowed_sources: [127.0.0.0/8]\n"
                    "  auth_users_file: callers.txt\n  auth_realm: northwind\n")
    return SipWorker(load_config(path), answer, rtp_port=p["rtp"], rtp_port_range=6)


@pytest.mark.parametrize("password, expect, index", [(PASSWORD, 200, 0), ("wrong-one", 403, 1)],
                         ids=["right", "wrong"])
def test_a_direct_caller_is_challenged_and_answered_only_with_the_right_password(tmp_path, caplog, password,
                                                                                  expect, index):
    p = ports(index)
    caplog.set_level(logging.DEBUG)  # every record kept to the end: none may hold a pjsua2 object past libDestroy

    async def main():
        worker = worker_for(tmp_path, p)
        async with worker:
            result = await asyncio.to_thread(run_call, tmp_path, p, auth_scenario("alice", password, expect))
        return worker, result

    worker, result = asyncio.run(main())
    assert result.returncode == 0, result.stdout[-6000:]
    assert 'WWW-Authenticate: Digest realm="northwind"' in result.messages
    assert 'Authorization: Digest username="alice",realm="northwind"' in result.messages  # sipp's own digest
    assert worker.stats.challenged == 1
    assert worker.stats.answered == (1 if expect == 200 else 0)
    assert worker.stats.rejected_unauthenticated == (0 if expect == 200 else 1)
    if expect == 403:
        assert "refused (403): wrong password for user 'alice'" in caplog.text
    assert PASSWORD not in caplog.text


def test_a_missing_users_file_stops_the_start_with_a_clear_error(tmp_path):
    p = ports(2)
    path = tmp_path / "config.yaml"
    path.write_text(f"sip:\n  port: {p['bot']}\n  transports: [udp]\n  auth_users_file: nowhere.txt\n")

    async def main():
        async with SipWorker(load_config(path), answer, rtp_port=p["rtp"], rtp_port_range=6):
            pass

    with pytest.raises(RuntimeError, match="sip.auth_users_file: cannot read .*nowhere.txt"):
        asyncio.run(main())
