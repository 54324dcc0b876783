"""Outbound scripted calls answered by voice with the real models (issue 18): the callee's words are Piper speech,
heard through the real VAD, turn detector and Whisper, after the real machine check (a "hello?" is a person).
A reminder is confirmed by saying yes twice; a check-in's rating is said ("four"), then a comment and "no".
The bot speaks with Piper too; the simulated line runs at full speed with 8 kHz mu-law in between."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from conftest import caller_says
from fakes import ScriptedChat
from voicebot.crm.repository import Repository
from voicebot.dialer.answered import run_answered
from voicebot.dialer.policy import DueCallback
from voicebot.session import SessionDeps
from voicebot.store import CallStore
from voicebot.telephony.sim import Silence, SimulatedLine, WaitForBot

pytestmark = [pytest.mark.models, pytest.mark.timeout(300)]

ALICE = "+15550102030"


@pytest.fixture
def env(tmp_path, config, transcriber, caller_voice, model_store):
    from voicebot.components import make_voice_activity

    crm = Repository.open(tmp_path / "crm.db", clock=lambda: datetime(2026, 3, 2, 11, 0))
    alice = crm.add_customer("Alice Smith", [ALICE])
    slot = crm.add_slot("Printer repair", datetime(2026, 3, 3, 10, 0), resource="Tech A")
    booking = crm.book_slot(slot.id, name="Alice Smith", customer_id=alice.id)
    store = CallStore(tmp_path / "calls.db", tmp_path / "recordings")
    deps = SessionDeps(config, transcriber, caller_voice, ScriptedChat(), make_voice_activity(config, model_store),
                       crm, store, today=datetime(2026, 3, 2).date())
    yield deps, booking
    store.close()
    crm.close()


def run(deps, callback, script):
    line = SimulatedLine(script, caller_id=ALICE, speed=float("inf"), sample_rate=deps.config.audio.sample_rate)
    outcome = asyncio.run(asyncio.wait_for(run_answered(line, callback, deps), 240))
    assert not line.failures, line.failures
    return outcome, [(t.role, t.text) for t in deps.store.turns(outcome.call_id)]


def test_a_reminder_is_confirmed_by_voice(env, caller_voice):
    deps, booking = env
    voice = lambda text: caller_says(caller_voice, text)  # noqa: E731
    callback = DueCallback(1, ALICE, "reminder", purpose="reminder", booking_id=booking.id)
    outcome, said = run(deps, callback, [voice("Hello?"), Silence(1.5), WaitForBot(timeout_s=60),
                                         voice("Yes, I will be there."), WaitForBot(timeout_s=60),
                                         voice("Yes, that's right."), WaitForBot(timeout_s=60)])
    assert outcome.result == "confirmed", said
    assert deps.crm.db["bookings"].get(booking.id)["confirmed_at"] == "2026-03-02T11:00:00"
    assert said[0][0] == "bot" and "reminder of your appointment for Printer repair" in said[0][1]
    assert [r for r, _ in said].count("caller") == 2  # the "hello?" went to the machine check, not the script


def test_a_checkin_rating_and_comment_said_are_stored(env, caller_voice):
    deps, booking = env
    voice = lambda text: caller_says(caller_voice, text)  # noqa: E731
    deps.crm.db["callbacks"].insert({"id": 3, "phone": ALICE, "reason": "check-in", "status": "pending",
                                     "created_at": "2026-03-04T09:00:00", "purpose": "checkin"})
    deps.crm.db.conn.commit()
    callback = DueCallback(3, ALICE, "check-in", customer_id=1, purpose="checkin", booking_id=booking.id)
    outcome, said = run(deps, callback, [voice("Hello?"), Silence(1.5), WaitForBot(timeout_s=60), voice("Four."),
                                         WaitForBot(timeout_s=60), voice("The technician was very friendly."),
                                         WaitForBot(timeout_s=60), voice("No, thank you."),
                                         WaitForBot(timeout_s=60)])
    row = deps.crm.db["checkin_results"].get(1)
    assert (outcome.result, row["rating"], row["wants_call"]) == ("rated", 4, 0), said
    assert "technician" in row["comment"].lower() and "friendly" in row["comment"].lower()
    assert deps.store.get_call(outcome.call_id).rating == 4
