"""The dialer's outbound purposes over real SIP on loopback (issue 18): sipp is the callee, its audio real Piper
speech as PCMU RTP. A voicemail greeting with a beep gets the short message and no account data; a callee who
says "hello?" is a person and hears the opening at once; a reminder queued by the dialer's own round from a CRM
booking is confirmed with two key presses and the booking says so; a check-in and a CLI campaign. Ports
23000-23249 (the dialer's share).

The bot runs the real SipWorker (pjsua2), the real loop, machine detection and sessions; its own voice is the
fake synthesizer (what is tested is what the callee's audio makes the bot do, and what the CRM and the call
store record).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pytest

from sip_support import _wrap, _UAS_REPLY, start_sipp, wait_sipp
from test_dialer import _ANSWER, _OK_BYE, ALICE, EVENT_PT, bot_config, dtmf_pcap, sipp_or_fail, with_bot
from voicebot.crm.repository import Repository
from voicebot.dialer.amd import tone_hz
from voicebot.dialer.answered import machine_message
from voicebot.store import CallStore
from voicebot.tools.rtp_pcap import write_rtp_pcap

pytestmark = [pytest.mark.models, pytest.mark.timeout(120)]

RATE = 16000
GREETING = ("Hi, you have reached the voicemail of Alice Smith. I can't take your call right now. "
            "Please leave a message after the tone.")


@dataclass(frozen=True)
class Block:
    """One test's 50 ports in 23000-23249: the bot's SIP port, sipp's, the bot's RTP range, sipp's media."""

    base: int
    rtp_range = 20

    def __post_init__(self):
        assert 23000 <= self.base and self.base + 49 <= 23249

    sip = property(lambda self: self.base)
    rtp = property(lambda self: self.base + 10)

    def sipp(self, i: int) -> int:
        return self.base + 1 + i

    def media(self, i: int) -> int:
        return self.base + 34 + 4 * i


def piper(caller_voice, text: str) -> bytes:
    return b"".join(chunk.pcm for chunk in caller_voice.stream(text, RATE))


def beep(hz: float = 1000.0, seconds: float = 0.5) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * 32767 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    return b"\0\0" * int(seconds * RATE)


def answering(*plays: tuple[int, str]) -> str:
    """A sipp callee that answers, then for each (pause ms, pcap) waits and plays it; then waits for the BYE."""
    body = ('  <recv request="INVITE" crlf="true" rrs="true"/>\n' + _UAS_REPLY.format(status=180, reason="Ringing")
            + '  <pause milliseconds="200"/>\n' + _ANSWER.replace("{event_pt}", str(EVENT_PT)))
    for pause_ms, pcap in plays:
        body += f'  <pause milliseconds="{pause_ms}"/>\n' if pause_ms else ""
        body += f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'
    return _wrap(body + _OK_BYE)


def stored(tmp_path, call_id: str, which: str = "bot"):
    """The call's row, its turns, and one of its recordings (PCM; empty when none was saved)."""
    store = CallStore(tmp_path / "calls.db", tmp_path / "recordings")
    try:
        call = store.get_call(call_id)
        path = store.recording_file(call, which)
        return call, store.turns(call_id), path.read_bytes()[44:] if path is not None else b""
    finally:
        store.close()


def first_loud_s(pcm: bytes) -> float | None:
    for i in range(0, len(pcm), 640):
        if np.abs(np.frombuffer(pcm[i:i + 640], "<i2")).max(initial=0) > 300:
            return i / 2 / RATE
    return None


def later_key(folder, digit: str, shift: int = 1) -> str:
    """``dtmf_pcap(digit)`` with its RTP timestamps and sequence numbers moved on: a receiver takes a replay of
    the same capture for a retransmission of the first key (RFC 4733 events are told apart by timestamp)."""
    import struct

    data = bytearray(dtmf_pcap(folder, digit).read_bytes())
    offset = 24
    while offset + 16 <= len(data):
        length = struct.unpack_from("<I", data, offset + 8)[0]
        packet = offset + 16
        rtp = packet + 14 + (data[packet + 14] & 0x0F) * 4 + 8
        seq, stamp = struct.unpack_from("!HI", data, rtp + 2)
        struct.pack_into("!HI", data, rtp + 2, (seq + 1000 * shift) & 0xFFFF, (stamp + 160000 * shift) & 0xFFFFFFFF)
        offset = packet + length
    path = folder / f"dtmf_{digit}_later{shift}.pcap"
    path.write_bytes(bytes(data))
    return str(path)


def fresh_crm(tmp_path) -> Repository:
    crm = Repository.open(tmp_path / "crm.db", clock=lambda: datetime(2026, 3, 2, 11, 0))  # Berlin time
    crm.add_customer("Alice Smith", [ALICE], pin="1234")
    return crm


def test_a_voicemail_greeting_gets_the_message_and_no_account_data(tmp_path, caller_voice):
    """Piper's greeting (about 6 s, so longer than max_greeting_s) and a 1 kHz beep: the bot waits for the beep,
    leaves the configured message (company and call-back number only), hangs up; the callback is done with
    result voicemail, the call stored as outbound/callback/voicemail."""
    sipp_or_fail()
    block = Block(23000)
    crm = fresh_crm(tmp_path)
    config = bot_config(tmp_path, block, block.sipp(0))
    config.dialer.amd.callback_number = "+1 555 010 0000"
    crm.request_callback(ALICE, "My order 10452 has not arrived, PIN 4821", customer_id=1)
    greeting = piper(caller_voice, GREETING)
    pcap = tmp_path / "voicemail.pcap"
    write_rtp_pcap(silence(0.3) + greeting + silence(0.4) + beep() + silence(10), RATE, pcap, codec="PCMU")
    beep_ends_s = 0.3 + len(greeting) / 2 / RATE + 0.4 + 0.5

    async def body(bot):
        proc = start_sipp(tmp_path, block.sipp(0), block.media(0), xml=answering((0, str(pcap))), timeout_s=60)
        await asyncio.sleep(0.3)
        [call] = await bot.dialer.round()
        return await asyncio.wait_for(call, 60), await asyncio.to_thread(wait_sipp, proc)

    try:
        status, sipp = asyncio.run(with_bot(tmp_path, block, crm, config, body))
        assert sipp.returncode == 0, sipp.stdout  # the bot hung up (BYE) after the message
        assert status == "done"
        attempt = crm.db["callback_attempts"].get(1)
        assert (attempt["result"], attempt["sip_status"]) == ("voicemail", 200)
        assert attempt["detail"].startswith("speech for more than")
    finally:
        crm.close()
    call, turns, bot_audio = stored(tmp_path, attempt["call_id"])
    heard = stored(tmp_path, attempt["call_id"], "caller")[2]
    message = machine_message(config, "callback")
    assert (call.direction, call.purpose, call.dial_result) == ("outbound", "callback", "voicemail")
    assert [t.role for t in turns] == ["system", "bot"] and turns[1].text == message
    assert "10452" not in message and "4821" not in message and "Alice" not in message
    assert "+1 555 010 0000" in message
    # on the bot's own recordings (caller and bot tracks aligned sample for sample): the beep as it arrived,
    # then the message; the pcap's nominal times differ by however late the bot's media started
    beep_frames = [i for i in range(0, len(heard), 640) if abs((tone_hz(heard[i:i + 640], RATE) or 0) - 1000) < 30]
    assert beep_frames, "the beep did not reach the bot"
    beep_end = (beep_frames[-1] + 640) / 2 / RATE
    assert beep_ends_s - 1.0 < beep_end <= beep_ends_s + 0.1, (beep_end, beep_ends_s)
    spoke_at = first_loud_s(bot_audio)
    assert spoke_at is not None and beep_end + 0.1 < spoke_at < beep_end + 1.5, (spoke_at, beep_end)
    assert sum(1 for i in range(0, len(bot_audio), 640)
               if np.abs(np.frombuffer(bot_audio[i:i + 640], "<i2")).max(initial=0) > 300) * 0.02 > 2.0  # played


def test_a_callee_saying_hello_is_a_person_and_hears_the_opening_at_once(tmp_path, caller_voice):
    """Piper's "Hello?" then silence: a person after the pause (well before the 3 s of 'nothing said'); the
    opening follows, and the 9 pressed later opts out as ever."""
    sipp_or_fail()
    block = Block(23050)
    crm = fresh_crm(tmp_path)
    config = bot_config(tmp_path, block, block.sipp(0))
    crm.request_callback(ALICE, "my order 10452", customer_id=1)
    hello = tmp_path / "hello.pcap"
    write_rtp_pcap(silence(0.2) + piper(caller_voice, "Hello?") + silence(6), RATE, hello, codec="PCMU")

    async def body(bot):
        xml = answering((0, str(hello)), (7000, str(dtmf_pcap(tmp_path, "9"))))
        proc = start_sipp(tmp_path, block.sipp(0), block.media(0), xml=xml, timeout_s=60)
        await asyncio.sleep(0.3)
        [call] = await bot.dialer.round()
        return await asyncio.wait_for(call, 60), await asyncio.to_thread(wait_sipp, proc)

    try:
        status, sipp = asyncio.run(with_bot(tmp_path, block, crm, config, body))
        assert sipp.returncode == 0, sipp.stdout
        assert status == "opted_out"
        attempt = crm.db["callback_attempts"].get(1)
    finally:
        crm.close()
    call, turns, _ = stored(tmp_path, attempt["call_id"])
    assert (call.direction, call.purpose, call.dial_result) == ("outbound", "callback", "opted_out")
    assert turns[0].role == "bot" and turns[0].text.startswith("Hello, this is the automated assistant")
    assert all(t.role != "system" for t in turns)  # no machine note
    assert turns[0].started_at < 2.6, turns[0].started_at  # "unknown" would have waited 3 s of silence


def test_a_reminder_queued_by_the_round_is_confirmed_by_keys_and_the_booking_says_so(tmp_path, caller_voice):
    """reminders.enabled: the round finds tomorrow's booking, queues its reminder and dials it; the callee says
    hello, presses 1 (confirm), hears the read-back, presses 1 (yes): the booking is confirmed, the attempt
    and the call record say confirmed."""
    sipp_or_fail()
    block = Block(23100)
    crm = fresh_crm(tmp_path)
    config = bot_config(tmp_path, block, block.sipp(0))
    config.dialer.reminders.enabled = True
    slot = crm.add_slot("Printer repair", datetime(2026, 3, 3, 10, 0), resource="Tech A")
    booking = crm.book_slot(slot.id, name="Alice Smith", customer_id=1)
    hello = tmp_path / "hello.pcap"
    write_rtp_pcap(silence(0.2) + piper(caller_voice, "Hello?"), RATE, hello, codec="PCMU")
    one = str(dtmf_pcap(tmp_path, "1"))

    async def body(bot):
        xml = answering((0, str(hello)), (8000, one), (6000, later_key(tmp_path, "1")))
        proc = start_sipp(tmp_path, block.sipp(0), block.media(0), xml=xml, timeout_s=60)
        await asyncio.sleep(0.3)
        [call] = await bot.dialer.round()
        return await asyncio.wait_for(call, 60), await asyncio.to_thread(wait_sipp, proc)

    try:
        status, sipp = asyncio.run(with_bot(tmp_path, block, crm, config, body))
        assert sipp.returncode == 0, sipp.stdout
        assert status == "done"
        row = next(crm.db["callbacks"].rows_where("purpose = 'reminder'"))
        assert (row["booking_id"], row["last_result"]) == (booking.id, "confirmed")
        assert crm.db["bookings"].get(booking.id)["confirmed_at"] is not None
        attempt = crm.db["callback_attempts"].get(1)
        assert attempt["detail"] == f"booking {booking.id} confirmed"
    finally:
        crm.close()
    call, turns, _ = stored(tmp_path, attempt["call_id"])
    assert (call.direction, call.purpose, call.dial_result) == ("outbound", "reminder", "confirmed")
    said = [(t.role, t.text) for t in turns]
    assert said[0][1].startswith("Hello, this is the automated assistant of Northwind Supplies with a reminder of "
                                 "your appointment for Printer repair on Tuesday, March 3 at 10:00.")
    keys = [i for i, (role, text) in enumerate(said) if text == "[DTMF 1]"]
    assert len(keys) == 2 and said[keys[0] + 1][1].startswith("You will come to your appointment")
    assert said[-1][1].startswith("Thank you, your appointment for Printer repair")


def test_a_checkin_queued_by_the_round_takes_a_rating_and_a_request_for_a_person_by_keys(tmp_path, caller_voice):
    """checkin.enabled: yesterday's visit gets its check-in; the callee presses 4 (rating), # (no comment) and
    1 (yes, call me): the answers are stored, a callback for a person is queued and not dialled."""
    sipp_or_fail()
    block = Block(23150)
    crm = fresh_crm(tmp_path)
    config = bot_config(tmp_path, block, block.sipp(0))
    config.dialer.checkin.enabled = True
    slot = crm.add_slot("Printer repair", datetime(2026, 3, 1, 10, 0), resource="Tech A")  # yesterday
    crm.db["bookings"].insert({"slot_id": slot.id, "customer_id": 1, "name": "Alice Smith",
                               "created_at": "2026-02-20T10:00:00"})
    crm.db.conn.commit()
    hello = tmp_path / "hello.pcap"
    write_rtp_pcap(silence(0.2) + piper(caller_voice, "Hello?"), RATE, hello, codec="PCMU")

    async def body(bot):
        keys = [(7000, str(dtmf_pcap(tmp_path, "4"))), (4000, str(dtmf_pcap(tmp_path, "pound"))),
                (4000, str(dtmf_pcap(tmp_path, "1")))]
        proc = start_sipp(tmp_path, block.sipp(0), block.media(0), xml=answering((0, str(hello)), *keys),
                          timeout_s=60)
        await asyncio.sleep(0.3)
        [call] = await bot.dialer.round()
        status = await asyncio.wait_for(call, 60)
        return status, await asyncio.to_thread(wait_sipp, proc), await bot.dialer.round()

    try:
        status, sipp, later = asyncio.run(with_bot(tmp_path, block, crm, config, body))
        assert sipp.returncode == 0, sipp.stdout
        assert status == "done" and later == []  # the person's callback is not for the dialer
        result = crm.db["checkin_results"].get(1)
        assert (result["rating"], result["comment"], result["wants_call"]) == (4, None, 1)
        person = next(crm.db["callbacks"].rows_where("purpose = 'person'"))
        assert (person["phone"], person["status"]) == (ALICE, "pending") and "rating 4" in person["reason"]
        attempt = crm.db["callback_attempts"].get(1)
        assert attempt["result"] == "rated" and attempt["detail"] == f"rating 4, callback {person['id']} for a person"
    finally:
        crm.close()
    call, turns, _ = stored(tmp_path, attempt["call_id"])
    assert (call.purpose, call.dial_result, call.rating, result["call_id"]) == ("checkin", "rated", 4, call.id)
    assert turns[0].text.startswith("Hello, this is the automated assistant of Northwind Supplies, calling about "
                                    "your visit for Printer repair yesterday.")


def test_a_message_campaign_added_with_the_cli_waits_while_paused_then_is_delivered(tmp_path, caller_voice):
    """`voicebot campaign add` queues the message for the serving dialer; paused, the round dials nothing;
    resumed, the callee hears the message and presses 2: delivered."""
    from typer.testing import CliRunner

    from voicebot.cli import app

    sipp_or_fail()
    block = Block(23200)
    crm = fresh_crm(tmp_path)
    config = bot_config(tmp_path, block, block.sipp(0))
    (tmp_path / "cli.yaml").write_text("crm:\n  database: crm.db\n")
    (tmp_path / "targets.csv").write_text(f"phone\n{ALICE}\n")
    cli = CliRunner()
    message = "Our shop moves to 12 Main Street on April 1."
    for args in (["campaign", "add", "news", "--csv", str(tmp_path / "targets.csv"), "--message", message],
                 ["campaign", "pause", "news"]):
        result = cli.invoke(app, [*args, "--config", str(tmp_path / "cli.yaml")])
        assert result.exit_code == 0, result.output
    hello = tmp_path / "hello.pcap"
    write_rtp_pcap(silence(0.2) + piper(caller_voice, "Hello?"), RATE, hello, codec="PCMU")

    async def body(bot):
        assert await bot.dialer.round() == []  # paused
        result = cli.invoke(app, ["campaign", "resume", "news", "--config", str(tmp_path / "cli.yaml")])
        assert result.exit_code == 0, result.output
        xml = answering((0, str(hello)), (7000, str(dtmf_pcap(tmp_path, "2"))))
        proc = start_sipp(tmp_path, block.sipp(0), block.media(0), xml=xml, timeout_s=60)
        await asyncio.sleep(0.3)
        [call] = await bot.dialer.round()
        return await asyncio.wait_for(call, 60), await asyncio.to_thread(wait_sipp, proc)

    try:
        status, sipp = asyncio.run(with_bot(tmp_path, block, crm, config, body))
        assert sipp.returncode == 0, sipp.stdout
        assert status == "done"
        attempt = crm.db["callback_attempts"].get(1)
        assert attempt["result"] == "delivered"
    finally:
        crm.close()
    call, turns, _ = stored(tmp_path, attempt["call_id"])
    assert (call.direction, call.purpose, call.dial_result) == ("outbound", "message", "delivered")
    assert message in turns[0].text and turns[-1].text == "Thank you. Goodbye."
