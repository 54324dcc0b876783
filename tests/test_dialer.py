"""The dialer (issue 18): its policy as pure code, its CRM ledger and do-not-call file, callback calls on the
simulated line, and the whole loop over real SIP on loopback with sipp as the callee (ports 21500-21899 and
23000-23499, the dialer's share; test_dialer_sip_outbound.py uses 23000-23249).

The SIP tests run the real SipWorker (pjsua2) and the real CallSession with the fake models of fakes.py: what
is tested there is the dialling, the lines, the opening, the opt-out key over RFC 2833 and what the CRM records,
not speech recognition.
"""

from __future__ import annotations

import asyncio
import subprocess
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from fakes import CallerVoice, FakeSynthesizer, FakeTranscriber, ScriptedChat, ScriptedVad
from sip_support import PCAP_DIR, _UAS_REPLY, _wrap, run_sipp, scenario, sip_config, sipp_binary, start_sipp, wait_sipp
from voicebot.config import Config, DialerConfig
from voicebot.crm.repository import Repository
from voicebot.crm.seed import seed_demo
from voicebot.dialer.callback_call import (GENERIC_REASON, CallbackSession, opening, said_opt_out,
                                           spoken_reason)
from voicebot.dialer.dnc import DoNotCallList
from voicebot.dialer.ledger import CallbackLedger
from voicebot.dialer.policy import CallingHours, DialPolicy, DueCallback, Lines, result_of
from voicebot.dialer.service import build_dialer, describe, owns_dialer
from voicebot.session import SessionDeps
from voicebot.store import CallStore
from voicebot.telephony.sim import HangUp, Press, SimulatedLine, WaitForBot, WaitIntoBot

TODAY = date(2026, 3, 2)  # a Monday
ALICE = "+15550102030"  # seeded: Alice
BOB = "+15550104040"
BERLIN = DialerConfig(timezone="Europe/Berlin")


def at(text: str) -> datetime:
    """An aware UTC time from ``2026-03-02T09:00`` (UTC)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def due(**kw) -> DueCallback:
    return DueCallback(**({"id": 1, "phone": ALICE, "reason": "order 10452"} | kw))


# -- policy: hours and time zones ---------------------------------------------------------------------------------
@pytest.mark.parametrize("utc, open_", [
    ("2026-03-02T07:59", False),  # Monday 08:59 in Berlin (UTC+1)
    ("2026-03-02T08:00", True),  # 09:00
    ("2026-03-02T16:59", True),  # 17:59
    ("2026-03-02T17:00", False),  # 18:00: the end is not inside
    ("2026-03-07T10:00", False),  # Saturday: closed
    ("2026-03-29T23:30", False),  # Monday 01:30 CEST
    ("2026-03-30T07:00", True),  # Monday 09:00 CEST (UTC+2 since the 29th): the local clock counts
    ("2026-03-27T07:30", False),  # Friday 08:30 CET
])
def test_calling_hours_are_read_on_the_local_clock_of_the_zone(utc, open_):
    assert CallingHours.of(BERLIN).open_at(at(utc)) is open_


def test_several_spans_a_missing_day_and_midnight():
    hours = CallingHours({"mon": "09:00-12:00, 14:00-24:00"}, "America/New_York")
    assert hours.open_at(at("2026-03-02T15:00"))  # 10:00 EST
    assert not hours.open_at(at("2026-03-02T18:00"))  # 13:00: the lunch gap
    assert hours.open_at(at("2026-03-03T04:59"))  # 23:59 Monday
    assert not hours.open_at(at("2026-03-03T15:00"))  # Tuesday is not listed: closed


def test_bad_hours_and_zones_are_config_errors():
    for bad in ({"mon": "18:00-09:00"}, {"mon": "9-17"}, {"monday": "09:00-17:00"}):
        with pytest.raises(ValueError):
            DialerConfig(hours=bad)
    with pytest.raises(ValueError, match="time zone"):
        DialerConfig(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="inbound callers would lose lines"):
        Config.model_validate({"dialer": {"max_concurrent": 3, "free_lines": 2}})
    with pytest.raises(ValueError, match="the key for a person"):
        Config.model_validate({"dialer": {"opt_out_key": "0"}})
    with pytest.raises(ValueError, match="reason"):
        DialerConfig(opening="Hello from {company}")


# -- policy: attempts, spacing, do-not-call, preferred time -------------------------------------------------------
def test_why_not_covers_every_rule_in_order():
    policy = DialPolicy(DialerConfig(max_attempts=3, spacing_min=60, timezone="Europe/Berlin"), 4)
    now = at("2026-03-02T10:00")  # 11:00 in Berlin
    assert policy.why_not(due(), now, set()) is None
    assert policy.why_not(due(), now, {ALICE}) == "do-not-call"
    assert policy.why_not(due(phone=""), now, set()) == policy.why_not(due(phone="anonymous"), now, set()) \
        == "no number to call"
    assert policy.why_not(due(attempts=3), now, set()) == "attempts used up"
    assert policy.why_not(due(attempts=2), now, set()) is None
    assert policy.why_not(due(), at("2026-03-02T18:00"), set()) == "outside calling hours"
    recent = now - timedelta(minutes=59)
    assert policy.why_not(due(last_attempt_at=recent), now, set()) == "too soon after the last call"
    assert policy.why_not(due(last_attempt_at=now - timedelta(minutes=60)), now, set()) is None
    # another callback for the same number was tried a minute ago: the number is not called again yet
    assert policy.why_not(due(number_last_called_at=now - timedelta(minutes=1)), now, set()) is not None


def test_a_readable_preferred_time_is_waited_for_free_text_is_not():
    policy = DialPolicy(DialerConfig(timezone="Europe/Berlin"), 4)
    now = at("2026-03-02T10:00")  # 11:00 in Berlin
    assert policy.why_not(due(preferred_time="2026-03-02T14:00"), now, set()) == "preferred time not reached"
    assert policy.why_not(due(preferred_time="2026-03-02T11:00"), now, set()) is None  # naive: Berlin time
    assert policy.why_not(due(preferred_time="2026-03-02T11:00+00:00"), now, set()) is not None
    assert policy.why_not(due(preferred_time="tomorrow morning"), now, set()) is None


def test_the_cap_and_the_lines_kept_for_inbound_callers():
    policy = DialPolicy(DialerConfig(max_concurrent=2, free_lines=1), 4)
    assert policy.room(Lines(busy=0, outbound=0)) == 2
    assert policy.room(Lines(busy=2, outbound=2)) == 0  # at the cap
    assert policy.room(Lines(busy=2, outbound=1)) == 1  # one inbound, one outbound: 1 more leaves 1 free
    assert policy.room(Lines(busy=3, outbound=0)) == 0  # three inbound: the last line stays for inbound
    callbacks = [due(id=1), due(id=2), due(id=3, phone=BOB), due(id=4, phone="+15550105050")]
    now = at("2026-03-02T10:00")
    chosen = policy.choose(callbacks, now, Lines(0, 0), set())
    assert [c.id for c in chosen] == [1, 3]  # one call per number, never above the cap
    assert [c.id for c in policy.choose(callbacks, now, Lines(1, 1), set(), busy_numbers={ALICE})] == [3]
    assert policy.choose(callbacks, now, Lines(3, 0), set()) == []


@pytest.mark.parametrize("status, result", [(408, "no_answer"), (480, "no_answer"), (486, "busy"),
                                            (600, "busy"), (603, "declined"), (500, "failed"), (0, "failed")])
def test_unanswered_results(status, result):
    assert result_of(status) == result


def test_serve_says_how_the_dialer_is_set():
    config = Config.model_validate({"dialer": {"enabled": True, "timezone": "Europe/Berlin"}})
    line = describe(config)
    assert "mon 09:00-18:00" in line and "sat" not in line and "(Europe/Berlin)" in line
    assert "at most 1 outbound, 1 line(s) kept for inbound; 3 attempts 60 min apart" in line


def test_the_dialer_runs_only_when_enabled_and_in_one_process():
    on = Config.model_validate({"dialer": {"enabled": True}})
    assert owns_dialer(on, None) and owns_dialer(on, 0)
    assert not owns_dialer(on, 1) and not owns_dialer(Config(), None)


# -- the CRM ledger and the do-not-call file ----------------------------------------------------------------------
@pytest.fixture
def crm(tmp_path) -> Repository:
    repo = Repository.open(tmp_path / "crm.db")
    seed_demo(repo, today=TODAY)
    repo.db.execute("update callbacks set status = 'done'")  # the seed's own callbacks are out of the way
    repo.db.conn.commit()
    yield repo
    repo.close()


def test_every_attempt_is_recorded_and_the_limit_closes_the_callback(crm):
    ledger = CallbackLedger(crm, max_attempts=2)
    cb = crm.request_callback(ALICE, "my order 10452 is late", customer_id=1)
    other = crm.request_callback(BOB, "a quote for desks")
    assert [c.id for c in ledger.pending()] == [cb.id, other.id]
    from voicebot.dialer.ledger import Attempt
    assert ledger.record(Attempt(cb.id, at("2026-03-02T10:00"), "busy", 486)) == "pending"
    pending = {c.id: c for c in ledger.pending()}
    assert pending[cb.id].attempts == 1 and pending[cb.id].last_attempt_at == at("2026-03-02T10:00")
    assert ledger.record(Attempt(cb.id, at("2026-03-02T11:00"), "no_answer", 408)) == "failed"
    row = crm.db["callbacks"].get(cb.id)
    assert (row["status"], row["attempts"], row["last_result"]) == ("failed", 2, "no_answer")
    assert row["done_at"] == "2026-03-02T11:00:00+00:00"
    assert [(a.result, a.sip_status) for a in ledger.attempts(cb.id)] == [("busy", 486), ("no_answer", 408)]
    assert ledger.record(Attempt(other.id, at("2026-03-02T10:00"), "answered", 200, "call-1")) == "done"
    assert ledger.pending() == []


def test_a_call_cut_by_a_crash_still_counts_for_the_spacing(crm):
    ledger = CallbackLedger(crm, max_attempts=3)
    cb = crm.request_callback(ALICE, "order 10452")
    ledger.dialling(cb.id, at("2026-03-02T10:00"))  # the process dies during this call
    pending = ledger.pending()[0]
    assert pending.attempts == 0 and pending.last_attempt_at == at("2026-03-02T10:00")
    policy = DialPolicy(DialerConfig(spacing_min=60), 4)
    assert policy.why_not(pending, at("2026-03-02T10:30"), set()) == "too soon after the last call"


def test_an_opt_out_closes_every_pending_callback_of_the_number(crm):
    ledger = CallbackLedger(crm, max_attempts=3)
    first = crm.request_callback(ALICE, "order 10452")
    crm.request_callback(ALICE, "a second request")
    crm.request_callback(BOB, "a quote")
    assert ledger.opt_out_number(ALICE, at("2026-03-02T10:00")) == 2
    assert [c.phone for c in ledger.pending()] == [BOB]
    assert crm.db["callbacks"].get(first.id)["status"] == "opted_out"


def test_the_do_not_call_file(tmp_path):
    path = tmp_path / "dnc.txt"
    path.write_text("# from the regulator\n+1 (555) 010-4040\nnot a number\n\n")
    dnc = DoNotCallList(path)
    assert BOB in dnc and ALICE not in dnc and len(dnc) == 1
    dnc.add(ALICE, "opted out on callback 7")
    assert ALICE in DoNotCallList(path)  # appended, on disk
    text = path.read_text()
    assert "+15550102030  # " in text and "opted out on callback 7" in text
    path.write_text("")  # an edit is read on the next check
    assert ALICE not in dnc
    assert ALICE not in DoNotCallList(tmp_path / "missing.txt")


# -- what the callee hears, and the opt-out ------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["Don't call me again!", "please DO NOT call me again", "remove me from your list",
                                  "Stop calling me.", "don\u2019t call me"])
def test_opt_out_phrases(text):
    assert said_opt_out(text, DialerConfig().opt_out_phrases)


@pytest.mark.parametrize("text", ["call me back tomorrow", "what is on my list", "I don't know"])
def test_not_opt_out(text):
    assert not said_opt_out(text, DialerConfig().opt_out_phrases)


def test_the_opening_says_who_calls_and_why_and_nothing_more():
    text = opening(DialerConfig(), "Northwind Supplies", "My order 10452 is late. My PIN is 4821.")
    assert text.startswith("Hello, this is the automated assistant of Northwind Supplies calling back about: "
                           "My order 10452 is late.")
    assert "4821" not in text and "press 9" in text
    assert "4821" not in spoken_reason("my PIN is 4821 and I need help")
    assert spoken_reason("Transfer failed (486 Busy Here). Caller: Alice Smith, +15550102030") == GENERIC_REASON


@pytest.fixture
def session_env(tmp_path, config, crm):
    store = CallStore(tmp_path / "calls.db", tmp_path / "recordings")
    voice = CallerVoice(sample_rate=config.audio.sample_rate)
    synth = FakeSynthesizer()
    deps = SessionDeps(config, FakeTranscriber(voice), synth, ScriptedChat(), ScriptedVad(), crm, store, today=TODAY)
    yield deps, voice, synth
    store.close()


def run_callback(deps, script) -> tuple[CallbackSession, SimulatedLine]:
    line = SimulatedLine(script, caller_id=ALICE, speed=float("inf"), sample_rate=deps.config.audio.sample_rate)
    session = CallbackSession(line, deps, "Hello, this is a callback about: order 10452.", deps.config.dialer)
    asyncio.run(asyncio.wait_for(session.run(), 20))
    assert not line.failures, line.failures
    return session, line


def test_the_opening_replaces_the_greeting_and_the_opt_out_key_ends_the_call(session_env):
    deps, _, synth = session_env
    session, line = run_callback(deps, [WaitIntoBot(0.5), Press("9"), WaitForBot()])
    assert session.opted_out and line.hung_up_by == "bot"
    assert synth.texts == ["Hello, this is a callback about: order 10452.", deps.config.dialer.opt_out_goodbye]
    assert ("caller", "[DTMF 9]") in session.transcript


def test_an_opt_out_said_ends_the_call(session_env):
    deps, voice, synth = session_env
    session, line = run_callback(deps, [WaitForBot(), voice.say("please don't call me again"), WaitForBot()])
    assert session.opted_out and line.hung_up_by == "bot"
    assert synth.texts[-1] == deps.config.dialer.opt_out_goodbye


def test_without_an_opt_out_the_normal_dialogue_runs(session_env):
    deps, _, synth = session_env
    session, line = run_callback(deps, [WaitForBot(), Press("3"), WaitForBot(), HangUp()])
    assert not session.opted_out and line.hung_up_by == "caller"
    assert synth.texts[1] == deps.config.dialog.menu.nodes["sales"].prompt  # key 3: the menu, as inbound


# -- real SIP: sipp is the callee ----------------------------------------------------------------------------------
PORTS_FIRST, PORTS_LAST = 21500, 21899


@dataclass(frozen=True)
class Block:
    """One SIP test's 100 ports: the bot's SIP port, sipp callees and callers, the bot's RTP range, sipp media."""

    base: int

    @classmethod
    def of(cls, n: int) -> Block:
        """Blocks 0-3 in 21500-21899, then 23400-23499 (21900 and up belong to another suite)."""
        base = PORTS_FIRST + 100 * n if n < 4 else 23400 + 100 * (n - 4)
        assert PORTS_FIRST <= base and base + 99 <= (PORTS_LAST if n < 4 else 23499)
        return cls(base)

    sip = property(lambda self: self.base)
    rtp = property(lambda self: self.base + 20)
    rtp_range = 40

    def sipp(self, i: int) -> int:
        return self.base + 1 + i

    def media(self, i: int) -> int:
        return self.base + 70 + 8 * i


_ANSWER = """  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 {event_pt}
      a=rtpmap:0 PCMU/8000
      a=rtpmap:{event_pt} telephone-event/8000
      a=fmtp:{event_pt} 0-15
    ]]>
  </send>
  <recv request="ACK"/>
"""
_KEEP_DIALOG = """  <recv request="ACK">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="from"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="to"/>
    </action>
  </recv>
"""  # for a callee that hangs up itself: its BYE's From is the ACK's To, and the other way round

_OK_BYE = """  <recv request="BYE"/>
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

_SEND_BYE = """  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From:[$to]
      To:[$from]
      [last_Call-ID:]
      CSeq: 2 BYE
      Contact: <sip:[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200"/>
"""


EVENT_PT = 120  # the payload type pjsua offers for telephone-event; sipp's DTMF captures use 101


def dtmf_pcap(folder: Path, digit: str) -> Path:
    """sipp's capture of RFC 2833 ``digit`` with its RTP payload type changed to the one the bot offered (sipp
    replays the RTP payloads from its own socket, so the UDP checksum does not matter)."""
    import struct

    data = bytearray((PCAP_DIR / f"dtmf_2833_{digit}.pcap").read_bytes())
    offset = 24  # the pcap file header; then per packet a 16-byte record header, Ethernet, IPv4, UDP, RTP
    while offset + 16 <= len(data):
        length = struct.unpack_from("<I", data, offset + 8)[0]
        packet = offset + 16
        ihl = (data[packet + 14] & 0x0F) * 4
        rtp = packet + 14 + ihl + 8
        assert data[rtp + 1] & 0x7F == 101, "not sipp's RFC 2833 capture"
        data[rtp + 1] = (data[rtp + 1] & 0x80) | EVENT_PT
        offset = packet + length
    path = folder / f"dtmf_{digit}_pt{EVENT_PT}.pcap"
    path.write_bytes(bytes(data))
    return path


def speech_pcap(folder: Path, pcm16_8k: bytes, name: str) -> Path:
    """RTP (PCMU, 20 ms packets) of 8 kHz audio as a pcap sipp can play: the callee's voice."""
    import audioop
    import struct

    ulaw = audioop.lin2ulaw(pcm16_8k, 2)
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i in range(len(ulaw) // 160):
        rtp = struct.pack("!BBHII", 0x80, 0x80 if i == 0 else 0, i, i * 160, 0x1234) + ulaw[i * 160:(i + 1) * 160]
        udp = struct.pack("!HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0, bytes([127, 0, 0, 1]),
                         bytes([127, 0, 0, 1])) + udp
        frame = b"\x00" * 12 + b"\x08\x00" + ip
        out += struct.pack("<IIII", i // 50, (i % 50) * 20000, len(frame), len(frame)) + frame
    path = folder / f"{name}.pcap"
    path.write_bytes(bytes(out))
    return path


def callee(folder: Path, *, press: str | None = None, after_ms: int = 1500, hold_ms: int = 0,
           say: Path | None = None) -> str:
    """A sipp callee that answers; then presses ``press`` (RFC 2833) or plays ``say`` (a pcap) ``after_ms`` into
    the call and waits for the bot's BYE, or holds ``hold_ms`` and hangs up itself."""
    body = ('  <recv request="INVITE" crlf="true" rrs="true"/>\n'
            + _UAS_REPLY.format(status=180, reason="Ringing") + '  <pause milliseconds="300"/>\n'
            + _ANSWER.replace("{event_pt}", str(EVENT_PT)))
    if press is not None or say is not None:
        pcap = say if say is not None else dtmf_pcap(folder, press)
        body += f'  <pause milliseconds="{after_ms}"/>\n'
        body += f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
        body += _OK_BYE
    else:
        body = body.replace('  <recv request="ACK"/>\n', _KEEP_DIALOG)
        body += f'  <pause milliseconds="{hold_ms}"/>\n' + _SEND_BYE
    return _wrap(body)


def refusing(status: int, reason: str, ring_ms: int = 0) -> str:
    body = '  <recv request="INVITE"/>\n'
    if ring_ms:
        body += _UAS_REPLY.format(status=180, reason="Ringing") + f'  <pause milliseconds="{ring_ms}"/>\n'
    if status:
        body += _UAS_REPLY.format(status=status, reason=reason) + '  <recv request="ACK"/>\n'
    else:  # rings until the bot gives up: CANCEL, 200 to it, 487 to the INVITE
        body += ('  <recv request="CANCEL"/>\n' + _UAS_REPLY.format(status=200, reason="OK").replace(
            "[last_To:];tag=[pid]SIPpTag01[call_number]", "[last_To:]") + '  <send>\n    <![CDATA[\n'
            '      SIP/2.0 487 Request Terminated\n      [last_Via:]\n      [last_From:]\n'
            '      [last_To:];tag=[pid]SIPpTag01[call_number]\n      [last_Call-ID:]\n      CSeq: 1 INVITE\n'
            '      Content-Length: 0\n    ]]>\n  </send>\n  <recv request="ACK"/>\n')
    return _wrap(body)


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Bot:
    worker: object
    dialer: object
    clock: Clock
    deps: SessionDeps
    inbound: list


def bot_config(tmp_path: Path, block: Block, callee_port: int, **dialer) -> Config:
    config = sip_config(block.sip)
    config.base_dir = tmp_path
    config.dialer = DialerConfig(enabled=True, timezone="Europe/Berlin", dnc_file="dnc.txt",
                                 dial_uri=f"sip:{{number}}@127.0.0.1:{callee_port}", caller_id="+15550100000",
                                 ring_timeout_s=10, **dialer)
    return config


async def with_bot(tmp_path, block: Block, crm: Repository, config: Config, body, now: str = "2026-03-02T10:00",
                   voice: CallerVoice | None = None):
    """The bot's SIP endpoint (inbound calls: a handler that listens until the caller hangs up) and a dialer on
    it whose clock is ``now``; runs ``body(bot)``. ``voice``: the callee's phrasebook the fake transcriber hears."""
    from voicebot.telephony.sip_endpoint import SipWorker

    store = CallStore(tmp_path / "calls.db", tmp_path / "recordings")
    voice = voice or CallerVoice(sample_rate=config.audio.sample_rate)
    deps = SessionDeps(config, FakeTranscriber(voice), FakeSynthesizer(), ScriptedChat(), ScriptedVad(), crm, store,
                       today=TODAY)
    inbound: list = []

    async def on_call(call):
        inbound.append(call)
        async for _ in call.events():
            pass

    try:
        async with SipWorker(config, on_call, rtp_port=block.rtp, rtp_port_range=block.rtp_range) as worker:
            clock = Clock(at(now))
            dialer = build_dialer(config, deps, worker, lambda: len(worker.calls), clock=clock)
            return await body(Bot(worker, dialer, clock, deps, inbound))
    finally:
        store.close()


def sipp_or_fail():
    sipp_binary()  # fails with the install hint when sipp is missing (never a skip)


@pytest.mark.timeout(90)
def test_a_due_callback_is_dialed_in_the_window_only_and_the_key_opts_out(tmp_path, crm):
    """Outside the calling hours nothing is dialled; inside, the callback is dialled, the callee hears the opening
    with the callback's reason, presses 9 and is put on the do-not-call list; the attempt is on the row."""
    sipp_or_fail()
    block = Block.of(0)
    config = bot_config(tmp_path, block, block.sipp(0))
    cb = crm.request_callback(ALICE, "My order 10452 has not arrived.", customer_id=1)

    async def body(bot: Bot):
        bot.clock.now = at("2026-03-02T07:30")  # 08:30 in Berlin: before the calling hours
        assert await bot.dialer.round() == [] and bot.worker.stats.dialed == 0
        bot.clock.now = at("2026-03-07T12:00")  # Saturday noon: closed
        assert await bot.dialer.round() == []
        proc = start_sipp(tmp_path, block.sipp(0), block.media(0), xml=callee(tmp_path, press="9", after_ms=2500),
                          timeout_s=40)
        await asyncio.sleep(0.3)
        bot.clock.now = at("2026-03-02T10:00")  # Monday 11:00 in Berlin
        started = await bot.dialer.round()
        assert len(started) == 1
        status = await asyncio.wait_for(started[0], 40)
        return status, await asyncio.to_thread(wait_sipp, proc)

    status, sipp = asyncio.run(with_bot(tmp_path, block, crm, config, body))
    assert sipp.returncode == 0, sipp.stdout
    invite = sipp.messages[sipp.messages.index("INVITE sip:"):]
    assert invite.startswith(f"INVITE sip:{ALICE}@127.0.0.1:{block.sipp(0)}")
    assert "From: <sip:+15550100000@" in invite[:invite.index("\n\n")]
    assert status == "opted_out"
    row = crm.db["callbacks"].get(cb.id)
    assert (row["status"], row["attempts"], row["last_result"]) == ("opted_out", 1, "opted_out")
    assert row["last_attempt_at"].startswith("2026-03-02T10:00") and row["done_at"]
    attempt = crm.db["callback_attempts"].get(1)
    assert (attempt["result"], attempt["sip_status"]) == ("opted_out", 200) and attempt["call_id"]
    assert ALICE in DoNotCallList(tmp_path / "dnc.txt")
    store = CallStore(tmp_path / "calls.db", tmp_path / "recordings")
    try:
        said = [(t.role, t.text) for t in store.turns(attempt["call_id"])]
        record = store.get_call(attempt["call_id"])
    finally:
        store.close()
    assert record.caller_id == ALICE  # the session looked up the callee, not the company's own number
    opening_text = ("Hello, this is the automated assistant of Northwind Supplies calling back about: My order "
                    "10452 has not arrived. To stop these calls, say so or press 9.")
    assert said[0] == ("bot", opening_text)
    assert ("caller", "[DTMF 9]") in said and said[-1] == ("bot", config.dialer.opt_out_goodbye)


@pytest.mark.timeout(90)
def test_busy_then_no_answer_are_recorded_spaced_and_limited(tmp_path, crm):
    """486: recorded busy, not retried before the spacing; then rings unanswered: no_answer (CANCEL after the ring
    timeout), and with max_attempts 2 the callback is failed and never dialled again."""
    sipp_or_fail()
    block = Block.of(1)
    config = bot_config(tmp_path, block, block.sipp(0), max_attempts=2, spacing_min=30)
    config.dialer.ring_timeout_s = 2
    cb = crm.request_callback(BOB, "a quote for 20 desks")
    before = {r: attempts_metric(r) for r in ("busy", "no_answer")}

    async def body(bot: Bot):
        busy = start_sipp(tmp_path, block.sipp(0), block.media(0), xml=refusing(486, "Busy Here"), timeout_s=20)
        await asyncio.sleep(0.3)
        first = await bot.dialer.round()
        assert await asyncio.wait_for(first[0], 20) == "pending"
        busy_result = await asyncio.to_thread(wait_sipp, busy)
        bot.clock.now += timedelta(minutes=29)
        assert await bot.dialer.round() == []  # too soon
        bot.clock.now += timedelta(minutes=1)
        ringing = start_sipp(tmp_path, block.sipp(0), block.media(0), xml=refusing(0, "", ring_ms=100),
                             timeout_s=20)
        await asyncio.sleep(0.3)
        second = await bot.dialer.round()
        assert await asyncio.wait_for(second[0], 20) == "failed"
        ring_result = await asyncio.to_thread(wait_sipp, ringing)
        bot.clock.now += timedelta(hours=2)
        assert await bot.dialer.round() == []  # attempts used up
        return busy_result, ring_result, bot.worker.stats

    busy, ringing, stats = asyncio.run(with_bot(tmp_path, block, crm, config, body))
    assert busy.returncode == 0, busy.stdout
    assert "CANCEL sip:" in ringing.messages
    assert stats.dialed == 0 and stats.dial_failed == 2
    row = crm.db["callbacks"].get(cb.id)
    assert (row["status"], row["attempts"], row["last_result"]) == ("failed", 2, "no_answer")
    attempts = list(crm.db["callback_attempts"].rows_where("callback_id = ?", [cb.id], order_by="id"))
    assert [(a["result"], a["sip_status"]) for a in attempts] == [("busy", 486), ("no_answer", 408)]
    assert attempts[1]["at"].startswith("2026-03-02T10:30")
    assert {r: attempts_metric(r) - n for r, n in before.items()} == {"busy": 1, "no_answer": 1}
    assert REGISTRY.get_sample_value("voicebot_dialer_outbound_calls") == 0


def attempts_metric(result: str) -> float:
    return REGISTRY.get_sample_value("voicebot_dialer_attempts_total", {"result": result}) or 0.0


@pytest.mark.timeout(90)
def test_at_the_cap_nothing_more_is_dialed_and_inbound_calls_are_still_answered(tmp_path, crm):
    """max_concurrent 1: with one callback call up, a second due callback waits, and an inbound sipp caller is
    answered meanwhile; when the first call ends the second is dialled."""
    sipp_or_fail()
    block = Block.of(2)
    config = bot_config(tmp_path, block, block.sipp(0), max_concurrent=1, free_lines=1)
    first = crm.request_callback(ALICE, "order 10452")
    second = crm.request_callback(BOB, "a quote")

    async def body(bot: Bot):
        # one callee process takes both calls, one after the other: hold 6 s, then hang up
        scen = tmp_path / "callee.xml"
        scen.write_text(callee(tmp_path, hold_ms=6000))
        cmd = [sipp_binary(), "-sf", str(scen), "-i", "127.0.0.1", "-p", str(block.sipp(0)), "-mp",
               str(block.media(0)), "-m", "2", "-l", "1", "-nostdin", "-trace_err", "-trace_msg", "-message_file",
               str(tmp_path / "callee-messages.log"), "-timeout", "60s", "-timeout_error"]
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        await asyncio.sleep(0.3)
        started = await bot.dialer.round()
        assert len(started) == 1  # the cap
        for _ in range(50):
            if bot.worker.calls:
                break
            await asyncio.sleep(0.1)
        assert await bot.dialer.round() == []  # at the cap: nothing more
        caller = await asyncio.to_thread(run_sipp, tmp_path, scenario(hold_ms=1000), block.sip, block.sipp(1),
                                         block.media(1))
        assert not started[0].done(), "the callback call ended before the inbound call was tested"
        peak = bot.dialer.stats.peak_outbound
        assert await asyncio.wait_for(started[0], 30) == "done"
        later = await bot.dialer.round()
        assert len(later) == 1
        assert await asyncio.wait_for(later[0], 30) == "done"
        out, _ = await asyncio.to_thread(proc.communicate, timeout=30)
        return caller, peak, proc.returncode, out, bot

    caller, peak, rc, out, bot = asyncio.run(with_bot(tmp_path, block, crm, config, body))
    assert caller.returncode == 0, caller.stdout  # the inbound call was answered (200) while the dialer was at its cap
    assert len(bot.inbound) == 1 and peak == 1
    assert rc == 0, out
    for cb in (first, second):
        row = crm.db["callbacks"].get(cb.id)
        assert (row["status"], row["attempts"], row["last_result"]) == ("done", 1, "answered")


@pytest.mark.timeout(90)
def test_serve_runs_the_dialer_in_one_worker_only_and_records_the_callback(tmp_path, crm):
    """``Worker.serve`` with the dialer enabled: the loop finds the due callback on its own (real clock, open all
    week), dials it through the worker's endpoint, the callee presses 9, and the row and the list say so; the
    call counted in the worker's live calls. Worker 1 of ``serve --workers N`` does not run a dialer."""
    from voicebot.telephony.kamailio import WorkerSlot
    from voicebot.telephony.sip_endpoint import SipWorker
    from voicebot.worker import Worker

    sipp_or_fail()
    block = Block.of(3)
    config = bot_config(tmp_path, block, block.sipp(0), poll_s=0.5)
    config.dialer.hours = {day: "00:00-24:00" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    cb = crm.request_callback(ALICE, "my order 10452")

    def endpoint(cfg, on_call, rtp_port):
        return SipWorker(cfg, on_call, rtp_port=block.rtp, rtp_port_range=block.rtp_range)

    async def main():
        store = CallStore(tmp_path / "calls.db", tmp_path / "recordings")
        voice = CallerVoice(sample_rate=config.audio.sample_rate)
        deps = SessionDeps(config, FakeTranscriber(voice), FakeSynthesizer(), ScriptedChat(), ScriptedVad(), crm,
                           store, today=TODAY)
        proc = start_sipp(tmp_path, block.sipp(0), block.media(0), xml=callee(tmp_path, press="9", after_ms=1500),
                          timeout_s=40)
        worker = Worker(config, "main", drain_timeout_s=2, endpoint=endpoint)
        worker.start(deps, analysis=False)
        stop = asyncio.Event()
        serving = asyncio.create_task(worker.serve(stop))
        live_seen = 0
        for _ in range(300):
            live_seen = max(live_seen, worker.live)
            if crm.db["callbacks"].get(cb.id)["status"] != "pending":
                break
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(serving, 20)
        other = Worker(config, "w1", drain_timeout_s=1, endpoint=endpoint)
        other.slot = WorkerSlot(1, "127.0.0.1", "127.0.0.1", block.sip, block.rtp, block.rtp_range)
        other.start(deps, analysis=False)
        stop_other = asyncio.Event()
        serving = asyncio.create_task(other.serve(stop_other))
        await asyncio.sleep(1.0)
        stop_other.set()
        await asyncio.wait_for(serving, 20)
        store.close()
        return worker, other, live_seen, await asyncio.to_thread(wait_sipp, proc)

    worker, other, live_seen, sipp = asyncio.run(main())
    assert sipp.returncode == 0, sipp.stdout
    assert worker.dialer is not None and worker.dialer.stats.opted_out == 1 and other.dialer is None
    assert live_seen == 1 and worker.finished == 1
    row = crm.db["callbacks"].get(cb.id)
    assert (row["status"], row["attempts"], row["last_result"]) == ("opted_out", 1, "opted_out")
    assert ALICE in DoNotCallList(tmp_path / "dnc.txt")


def test_a_round_closes_callbacks_that_will_never_be_dialled(tmp_path, crm):
    """A number on the do-not-call list, or no number at all (an anonymous caller): closed without a call."""
    (tmp_path / "dnc.txt").write_text(f"{BOB}\n")

    class NoPhone:
        async def dial(self, *args, **kwargs):
            raise AssertionError("nothing may be dialled")

    config = Config.model_validate({"dialer": {"enabled": True, "dnc_file": "dnc.txt"}})
    config.base_dir = tmp_path
    listed, anonymous = crm.request_callback(BOB, "a quote"), crm.request_callback("", "call me")
    dialer = build_dialer(config, SessionDeps(config, None, None, None, None, crm, None), NoPhone(), lambda: 0,
                          clock=Clock(at("2026-03-02T10:00")))
    assert asyncio.run(dialer.round()) == []
    assert [crm.db["callbacks"].get(c.id)["status"] for c in (listed, anonymous)] == ["do_not_call", "no_number"]
    assert crm.db["callback_attempts"].count == 0


@pytest.mark.timeout(90)
def test_an_opt_out_said_over_sip_is_honoured(tmp_path, crm):
    """The callee says "please don't call me again" (a CallerVoice tone the fake transcriber hears as those
    words, sent as PCMU RTP by sipp) after the opening: the bot says goodbye, hangs up, and the number is on the
    do-not-call list."""
    sipp_or_fail()
    block = Block.of(4)
    config = bot_config(tmp_path, block, block.sipp(0))
    cb = crm.request_callback(ALICE, "my order 10452")
    voice = CallerVoice(sample_rate=8000)
    words = voice.pcm("please don't call me again", 1.5)
    pipeline = CallerVoice(sample_rate=config.audio.sample_rate, texts=voice.texts)
    pcap = speech_pcap(tmp_path, b"\x00\x00" * 800 + words + b"\x00\x00" * 8000, "dont-call")

    async def body(bot: Bot):
        proc = start_sipp(tmp_path, block.sipp(0), block.media(0), xml=callee(tmp_path, say=pcap, after_ms=5000),
                          timeout_s=40)
        await asyncio.sleep(0.3)
        started = await bot.dialer.round()
        status = await asyncio.wait_for(started[0], 40)
        return status, await asyncio.to_thread(wait_sipp, proc)

    status, sipp = asyncio.run(with_bot(tmp_path, block, crm, config, body, voice=pipeline))
    assert sipp.returncode == 0, sipp.stdout
    assert status == "opted_out"
    assert crm.db["callbacks"].get(cb.id)["status"] == "opted_out"
    assert ALICE in DoNotCallList(tmp_path / "dnc.txt")
    call_id = crm.db["callback_attempts"].get(1)["call_id"]
    store = CallStore(tmp_path / "calls.db", tmp_path / "recordings")
    try:
        said = [(t.role, t.text) for t in store.turns(call_id)]
    finally:
        store.close()
    # the phrase, once or (a frame of RTP lost on a loaded machine splits the tone) twice in the caller's turn
    assert any(role == "caller" and "please don't call me again" in text for role, text in said), said
    assert said[-1] == ("bot", config.dialer.opt_out_goodbye)
