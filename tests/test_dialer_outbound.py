"""The dialer's outbound purposes (issue 18): answering-machine detection on audio, appointment reminders and
next-morning check-ins (queued from the CRM, scripted by key and voice, CRM written only after the read-back),
the dialer's table as a queue of purposes (windows, per-row limits, paused campaigns, rows for a person), and the
call store's outbound fields. Real SQLite; the calls run on the simulated line with the fake models of fakes.py
(the real SIP and Piper versions are in test_dialer_sip_outbound.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from fakes import CallerVoice, FakeSynthesizer, FakeTranscriber, ScriptedChat, ScriptedVad, tone
from voicebot.config_dialer import AmdConfig, CheckinConfig, DialerConfig
from voicebot.crm.repository import Repository
from voicebot.dialer.amd import Detector, MessagePoint, tone_hz
from voicebot.dialer.answered import machine_message, run_answered
from voicebot.dialer.checkin import CheckinScript, checkin_counts, queue_checkins
from voicebot.dialer.ledger import Attempt, CallbackLedger
from voicebot.dialer.policy import DialPolicy, DueCallback
from voicebot.dialer.reminders import BookingDesk, ReminderScript, queue_reminders
from voicebot.dialer.scripted import Answer
from voicebot.session import SessionDeps
from voicebot.store import CallStore
from voicebot.telephony.sim import HangUp, Press, Say, Silence, SimulatedLine, WaitForBot

RATE = 16000
ALICE = "+15550102030"
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 2, 10, 0)  # Monday 10:00, the CRM's local clock (Berlin)


def noise_speech(seconds: float, seed: int = 1) -> bytes:
    """Speech-like sound for the detector: noise whose loudness swings at a syllable rate (never one tone)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * np.arange(n) / RATE)
    return (rng.normal(0, 3000, n) * envelope).astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    return b"\0\0" * int(seconds * RATE)


def verdict_of(pcm: bytes, config: AmdConfig | None = None):
    detector = Detector(config or AmdConfig(), RATE)
    for i in range(0, len(pcm), 640):
        verdict = detector.feed(pcm[i:i + 640])
        if verdict is not None:
            return verdict
    return None


# -- answering-machine detection on audio ---------------------------------------------------------------------------
def test_a_short_hello_then_a_pause_is_a_person():
    verdict = verdict_of(silence(0.4) + noise_speech(0.6) + silence(2))
    assert verdict.kind == "human" and verdict.after_s == pytest.approx(0.4 + 0.6 + 0.8, abs=0.05)


def test_a_greeting_that_talks_on_is_a_machine_even_with_pauses_between_words():
    words = b"".join(noise_speech(0.7, seed=i) + silence(0.3) for i in range(8))  # 0.3 s gaps: one run
    verdict = verdict_of(silence(0.3) + words)
    assert verdict.kind == "machine" and "speech for more than 4 s" in verdict.reason
    assert 4.3 < verdict.after_s < 5.0


def test_a_beep_is_a_machine_and_nothing_said_is_unknown():
    verdict = verdict_of(silence(0.5) + tone(1000, 0.4, RATE, -20) + silence(1))
    assert verdict.kind == "machine" and verdict.reason == "beep at 1000 Hz"
    assert verdict_of(silence(5)).kind == "unknown"
    assert verdict_of(silence(5), AmdConfig(initial_silence_s=1.0)).after_s == pytest.approx(1.0, abs=0.03)


def test_tones_are_found_speech_noise_is_not():
    assert tone_hz(tone(440, 0.02, RATE, -20), RATE) == pytest.approx(440, abs=15)
    assert tone_hz(tone(440, 0.02, RATE, -60), RATE) is None  # too quiet
    assert tone_hz(tone(120, 0.02, RATE, -20), RATE) is None  # hum, below the phone band
    assert tone_hz(noise_speech(0.02), RATE) is None
    two = (np.frombuffer(tone(500, 0.02, RATE, -20), "<i2").astype(int)
           + np.frombuffer(tone(1500, 0.02, RATE, -20), "<i2")).astype("<i2").tobytes()
    assert tone_hz(two, RATE) is None  # a chord is not a beep


def test_the_message_waits_for_the_end_of_the_beep_or_of_the_greeting():
    point = MessagePoint(AmdConfig(), RATE)
    audio = noise_speech(1.0) + silence(0.4) + tone(800, 0.5, RATE, -20) + silence(1)
    at = next(i for i in range(0, len(audio), 640) if point.feed(audio[i:i + 640]))
    assert point.reason == "after the beep" and at / 2 / RATE == pytest.approx(1.0 + 0.4 + 0.5 + 0.2, abs=0.05)
    point = MessagePoint(AmdConfig(), RATE)
    audio = noise_speech(1.0) + silence(3)
    at = next(i for i in range(0, len(audio), 640) if point.feed(audio[i:i + 640]))
    assert point.reason == "after the greeting (no beep)" and at / 2 / RATE == pytest.approx(2.2, abs=0.05)


# -- the CRM: a booking tomorrow, free slots, a customer ---------------------------------------------------------
@pytest.fixture
def crm(tmp_path):
    repo = Repository.open(tmp_path / "crm.db", clock=lambda: NOW)
    alice = repo.add_customer("Alice Smith", [ALICE], pin="1234")
    slots = [repo.add_slot("Printer repair", datetime(2026, 3, d, h), resource="Tech A")
             for d, h in ((3, 10), (3, 14), (4, 9), (5, 9), (6, 9))]
    booking = repo.book_slot(slots[0].id, name="Alice Smith", customer_id=alice.id)
    repo.test_ids = (alice.id, booking.id, [s.id for s in slots])
    yield repo
    repo.close()


def test_reminders_are_queued_once_for_tomorrows_bookings_with_their_window(crm):
    _, booking_id, _ = crm.test_ids
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    assert queue_reminders(crm, now, BERLIN) == 1
    assert queue_reminders(crm, now, BERLIN) == 0  # once
    row = next(crm.db["callbacks"].rows_where("purpose = 'reminder'"))
    assert (row["booking_id"], row["phone"], row["status"]) == (booking_id, ALICE, "pending")
    assert row["not_after"] == "2026-03-03T10:00:00"  # useless once the appointment starts
    assert queue_reminders(crm, datetime(2026, 3, 3, 9, 0, tzinfo=UTC), BERLIN) == 0  # nothing on the 4th
    due = CallbackLedger(crm, 3).pending()[0]
    assert due.purpose == "reminder" and due.booking_id == booking_id
    policy = DialPolicy(DialerConfig(timezone="Europe/Berlin"), 4)
    assert policy.why_not(due, datetime(2026, 3, 3, 9, 0, tzinfo=UTC), set()) == "window closed"
    assert policy.why_not(due, now, set()) is None


def test_a_reminder_whose_booking_was_cancelled_is_closed_not_dialled(crm):
    from voicebot.dialer.reminders import close_stale

    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    queue_reminders(crm, now, BERLIN)
    assert close_stale(crm, now) == 0
    BookingDesk(crm).cancel(crm.test_ids[1])  # cancelled by phone meanwhile: its reminder is closed with it
    row = next(crm.db["callbacks"].rows_where("purpose = 'reminder'"))
    assert (row["status"], row["last_result"]) == ("expired", "booking cancelled")
    assert close_stale(crm, now) == 0  # nothing left for the round (a row deleted otherwise: see
    # test_reminders_follow_bookings)
    assert CallbackLedger(crm, 3).pending() == []


def script_for(crm) -> ReminderScript:
    desk = BookingDesk(crm)
    return ReminderScript(desk, desk.booking(crm.test_ids[1]))


def test_a_reminder_confirmation_is_written_only_after_the_read_back(crm):
    script = script_for(crm)
    reply = script.step(Answer(digit="1"))
    assert reply.text.startswith("You will come to your appointment for Printer repair on Tuesday, March 3 at 10:00")
    assert crm.db["bookings"].get(crm.test_ids[1])["confirmed_at"] is None  # not yet
    assert script.step(Answer(text="hmm")) is None  # not understood: the question again
    reply = script.step(Answer(text="Yes, that's right."))
    assert reply.end and "confirmed" in reply.text
    assert crm.db["bookings"].get(crm.test_ids[1])["confirmed_at"] == "2026-03-02T10:00:00"
    assert (script.result, script.detail) == ("confirmed", f"booking {crm.test_ids[1]} confirmed")


def test_a_no_to_the_read_back_changes_nothing_and_asks_again(crm):
    script = script_for(crm)
    script.step(Answer(text="cancel it please"))
    reply = script.step(Answer(digit="2"))
    assert reply.text.startswith("Nothing has been changed.") and not reply.end
    assert crm.db["bookings"].count == 1 and script.stage == "choose"
    script.step(Answer(digit="2"))
    assert script.step(Answer(digit="1")).end
    assert crm.db["bookings"].count == 0 and script.result == "cancelled"  # the slot is free again


def test_reschedule_offers_free_slots_from_the_crm_reads_back_then_moves(crm):
    _, booking_id, slots = crm.test_ids
    crm.book_slot(slots[1], name="Bob")  # the 14:00 slot is taken
    script = script_for(crm)
    reply = script.step(Answer(text="I need to reschedule"))
    assert reply.text == ("I can offer 1: Wednesday, March 4 at 09:00; 2: Thursday, March 5 at 09:00; "
                          "3: Friday, March 6 at 09:00. Press or say the number of the time you want.")
    assert script.step(Answer(digit="7")) is None
    reply = script.step(Answer(text="the second one"))
    assert "to Thursday, March 5 at 09:00" in reply.text
    assert crm.db["bookings"].get(booking_id)["slot_id"] == slots[0]  # not before the yes
    assert script.step(Answer(digit="1")).end
    assert crm.db["bookings"].get(booking_id)["slot_id"] == slots[3]
    assert script.detail == f"booking {booking_id} moved from slot {slots[0]} to slot {slots[3]}"


def test_a_slot_taken_during_the_read_back_is_not_double_booked(crm):
    _, booking_id, slots = crm.test_ids
    script = script_for(crm)
    script.step(Answer(digit="3"))
    script.step(Answer(digit="1"))  # the 14:00 slot
    crm.book_slot(slots[1], name="Bob")  # someone else takes it meanwhile
    reply = script.step(Answer(digit="1"))
    assert reply.text.startswith("I am sorry, that time was just taken.") and not reply.end
    assert crm.db["bookings"].get(booking_id)["slot_id"] == slots[0] and script.stage == "pick"


# -- check-ins ------------------------------------------------------------------------------------------------------
def test_checkins_are_queued_for_yesterdays_visits_and_resolved_tickets(crm):
    alice_id, booking_id, _ = crm.test_ids
    ticket = crm.create_ticket("Printer jams", "It jams", customer_id=alice_id)
    crm.db["tickets"].update(ticket.id, {"status": "resolved", "resolved_at": "2026-03-03T16:00:00"})
    crm.db.conn.commit()
    now = datetime(2026, 3, 4, 6, 0, tzinfo=UTC)  # Wednesday 07:00 in Berlin: the visit was yesterday
    assert queue_checkins(crm, now, BERLIN, CheckinConfig(from_hour=11)) == 2
    assert queue_checkins(crm, now, BERLIN, CheckinConfig()) == 0
    rows = list(crm.db["callbacks"].rows_where("purpose = 'checkin'", order_by="id"))
    assert [(r["booking_id"], r["ticket_id"]) for r in rows] == [(booking_id, None), (None, ticket.id)]
    assert rows[0]["preferred_time"] == "2026-03-04T11:00" and rows[0]["not_after"] == "2026-03-05T00:00:00"
    policy = DialPolicy(DialerConfig(timezone="Europe/Berlin"), 4)
    due = CallbackLedger(crm, 3).pending()[0]
    assert policy.why_not(due, now + timedelta(hours=3), set()) == "preferred time not reached"  # 10:00 local
    assert policy.why_not(due, now + timedelta(hours=4), set()) is None


def test_a_checkin_stores_the_rating_the_masked_comment_and_a_callback_for_a_person(crm):
    alice_id, booking_id, _ = crm.test_ids
    cb = DueCallback(99, ALICE, "check-in", customer_id=alice_id, purpose="checkin", booking_id=booking_id)
    crm.db["callbacks"].insert({"id": 99, "phone": ALICE, "reason": "check-in", "status": "pending",
                                "created_at": "2026-03-04T09:00:00", "purpose": "checkin"})
    script = CheckinScript(crm, cb, "call-1")
    assert script.step(Answer(digit="7")) is None  # 1 to 5 only
    assert script.step(Answer(text="I'd say four")).text.startswith("Thank you. Is there anything")
    assert crm.db["checkin_results"].get(1)["rating"] == 4  # written at once: a hang-up now still counts
    script.step(Answer(text="The technician was great, my card number is 4111 1111 1111 1111"))
    assert script.step(Answer(text="yes please")).end
    row = crm.db["checkin_results"].get(1)
    assert "4111 1111" not in row["comment"] and "technician was great" in row["comment"]
    assert (row["wants_call"], row["call_id"], row["booking_id"]) == (1, "call-1", booking_id)
    person = next(crm.db["callbacks"].rows_where("purpose = 'person'"))
    assert person["phone"] == ALICE and "rating 4" in person["reason"]
    assert all(c.purpose != "person" for c in CallbackLedger(crm, 3).pending())  # the dialer never dials it
    assert [c.id for c in crm.pending_callbacks(alice_id)] == [person["id"]]  # the agent sees it, not the check-in
    counts = checkin_counts(crm, date(2026, 3, 2), date(2026, 3, 2))
    assert (counts.answered, counts.mean_rating, counts.ratings[4], counts.want_call) == (1, 4.0, 1, 1)


# -- the queue: windows, per-row limits, paused campaigns -----------------------------------------------------
def test_a_campaigns_limit_holds_and_a_paused_campaign_waits(crm):
    crm.db["campaigns"].insert({"id": 1, "name": "spring", "purpose": "message", "target": "csv:x.csv",
                                "status": "active", "created_at": "2026-03-01T00:00:00", "max_attempts": 1})
    crm.db["callbacks"].insert({"id": 7, "phone": ALICE, "reason": "Our shop moves.", "status": "pending",
                                "created_at": "2026-03-01T00:00:00", "purpose": "message", "campaign_id": 1,
                                "max_attempts": 1})
    crm.db.conn.commit()
    ledger = CallbackLedger(crm, max_attempts=5)
    [due] = ledger.pending()
    assert (due.campaign_id, due.max_attempts, due.purpose) == (1, 1, "message")
    crm.db["campaigns"].update(1, {"status": "paused"})
    crm.db.conn.commit()
    assert ledger.pending() == []
    crm.db["campaigns"].update(1, {"status": "active"})
    crm.db.conn.commit()
    assert ledger.record(Attempt(7, datetime(2026, 3, 2, 9, tzinfo=UTC), "machine")) == "failed"  # 1 of 1
    assert ledger.record(Attempt(7, datetime(2026, 3, 2, 9, tzinfo=UTC), "voicemail")) == "done"


# -- whole calls on the simulated line -----------------------------------------------------------------------------
@pytest.fixture
def deps(tmp_path, config, crm):
    store = CallStore(tmp_path / "calls.db", tmp_path / "recordings")
    cfg = config.model_copy(deep=True)
    cfg.dialer = DialerConfig(amd=AmdConfig(callback_number="+1 555 010 0000"))
    voice = CallerVoice(sample_rate=RATE)
    synth = FakeSynthesizer()
    yield SessionDeps(cfg, FakeTranscriber(voice), synth, ScriptedChat(), ScriptedVad(), crm, store,
                      today=NOW.date())
    store.close()


def run(deps, callback: DueCallback, script: list) -> tuple:
    line = SimulatedLine(script, caller_id=ALICE, speed=float("inf"), sample_rate=RATE)
    outcome = asyncio.run(asyncio.wait_for(run_answered(line, callback, deps), 30))
    assert not line.failures, line.failures
    return outcome, line, deps.store.get_call(outcome.call_id)


def test_a_machine_gets_the_message_after_the_beep_and_no_account_data(deps):
    callback = DueCallback(5, ALICE, "My order 10452 for Alice Smith is late", purpose="callback")
    greeting = noise_speech(5.0)
    outcome, line, call = run(deps, callback, [Say(greeting, RATE, "greeting"), Silence(0.3),
                                                Say(tone(1000, 0.5, RATE, -20), RATE, "beep"), Silence(0.5),
                                                WaitForBot(timeout_s=10)])
    message = machine_message(deps.config, "callback")
    assert message == ("Hello, this is the automated assistant of Northwind Supplies. We tried to reach you about "
                       "your request. Please call us back at +1 555 010 0000. Thank you, goodbye.")
    assert (outcome.result, outcome.opted_out) == ("voicemail", False)
    assert deps.synthesizer.texts == [message] and line.hung_up_by == "bot"
    assert (call.direction, call.purpose, call.dial_result) == ("outbound", "callback", "voicemail")
    said = " ".join(t.text for t in deps.store.turns(call.id))
    assert "10452" not in said and "Alice" not in said
    bot = deps.store.recording_file(call, "bot").read_bytes()[44:]
    first_loud = next(i for i in range(0, len(bot), 640) if np.abs(np.frombuffer(bot[i:i + 640], "<i2")).max() > 300)
    assert first_loud / 2 / RATE >= 5.0 + 0.3 + 0.5  # nothing said over the greeting or the beep


def test_hang_up_on_a_machine_when_configured_and_retry(deps):
    deps.config.dialer.amd.action = "hang_up"
    outcome, line, call = run(deps, DueCallback(5, ALICE, "order 10452"), [Say(noise_speech(6.0), RATE, "greeting"),
                                                                         WaitForBot(timeout_s=3)])
    assert outcome.result == "machine" and deps.synthesizer.texts == [] and line.hung_up_by == "bot"
    assert call.dial_result == "machine"


def test_a_person_answering_gets_the_reminder_and_confirms_by_keys(deps, crm):
    _, booking_id, _ = crm.test_ids
    callback = DueCallback(5, ALICE, "reminder", purpose="reminder", booking_id=booking_id)
    outcome, line, call = run(deps, callback, [Say(noise_speech(0.6), RATE, "hello?"), WaitForBot(), Press("1"),
                                                WaitForBot(), Press("1"), WaitForBot()])
    said = " ".join(deps.synthesizer.texts)  # the opening is made for the call, sentence by sentence
    assert said.startswith("Hello, this is the automated assistant of Northwind Supplies with a reminder of your "
                           "appointment for Printer repair on Tuesday, March 3 at 10:00.")
    assert (outcome.result, call.direction, call.purpose, call.dial_result) == ("confirmed", "outbound", "reminder",
                                                                                 "confirmed")
    assert crm.db["bookings"].get(booking_id)["confirmed_at"] and line.hung_up_by == "bot"


def test_the_opt_out_key_works_in_a_scripted_call_too(deps, crm):
    callback = DueCallback(5, ALICE, "reminder", purpose="reminder", booking_id=crm.test_ids[1])
    outcome, line, _ = run(deps, callback, [Say(noise_speech(0.6), RATE, "hello?"), WaitForBot(), Press("9"),
                                             WaitForBot()])
    assert outcome.opted_out and outcome.result == "opted_out"
    assert crm.db["bookings"].get(crm.test_ids[1])["confirmed_at"] is None


def test_a_campaign_message_is_delivered_and_repeated_on_1(deps):
    callback = DueCallback(5, ALICE, "Our shop moves to 12 Main Street on April 1.", purpose="message")
    outcome, line, call = run(deps, callback, [Say(noise_speech(0.6), RATE, "hello?"), WaitForBot(), Press("1"),
                                                WaitForBot(), HangUp()])
    assert outcome.result == "delivered" and call.dial_result == "delivered"
    assert sum("12 Main Street" in t for t in deps.synthesizer.texts) == 2


def test_a_checkin_call_puts_its_rating_on_the_call_row_and_the_dashboard_shows_the_mean(deps, crm):
    from voicebot.review.kpis import compute_dashboard

    callback = DueCallback(5, ALICE, "check-in", purpose="checkin", booking_id=crm.test_ids[1])
    crm.db["callbacks"].insert({"id": 5, "phone": ALICE, "reason": "check-in", "status": "pending",
                                "created_at": "2026-03-02T09:00:00", "purpose": "checkin"})
    crm.db.conn.commit()
    outcome, _, call = run(deps, callback, [Say(noise_speech(0.6), RATE, "hello?"), WaitForBot(), Press("2"),
                                             WaitForBot(), HangUp()])
    assert (outcome.result, call.purpose, call.dial_result, call.rating) == ("rated", "checkin", "rated", 2)
    day = call.started_at.date()
    d = compute_dashboard(deps.store, day, day, ZoneInfo("UTC"), tests=True)
    assert (d.checkins_rated, d.checkin_rating) == (1, 2.0)
