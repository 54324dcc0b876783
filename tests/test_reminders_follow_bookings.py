"""A day-before reminder follows its booking: moved, it reminds of the new time on the day before that; cancelled
(or deleted in the CRM), it never calls.

Why whole timelines through the real dialer loop: the gap was between modules (``crm.bookings`` changes a booking,
``dialer.reminders`` queued a row for the old time, the loop dialled it), so each test walks the days on one
explicit clock, shared by the SQLite CRM and the dialer, runs the dialer's rounds as ``voicebot serve`` would
(``close_stale``, ``queue_reminders``, then the calls) and looks at what was dialled and what the callee heard.
The phone answers every call on a simulated line; the calling hours are 09:00-18:00 Berlin (Monday March 2, 2026
is a Monday), so a round at 08:30 queues without calling.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from fakes import CallerVoice, FakeSynthesizer, FakeTranscriber, ScriptedChat, ScriptedVad
from voicebot.config_dialer import AmdConfig, DialerConfig
from voicebot.crm import bookings
from voicebot.crm.models import Booking
from voicebot.crm.repository import Repository
from voicebot.dialer.answered import run_answered
from voicebot.dialer.dnc import DoNotCallList
from voicebot.dialer.ledger import CallbackLedger
from voicebot.dialer.loop import Dialer
from voicebot.dialer.policy import DialPolicy
from voicebot.dialer.reminders import close_stale, queue_reminders
from voicebot.session import SessionDeps
from voicebot.store import CallStore
from voicebot.telephony.sim import Press, Say, SimulatedLine, WaitForBot

RATE = 16000
BERLIN = ZoneInfo("Europe/Berlin")
ALICE, BOB = "+15550102030", "+15550104040"
CONFIRM = ["1", "1"]  # confirm, then yes to the read-back


def local(text: str) -> datetime:
    """A time on the company's clock (Berlin), naive as the CRM writes them."""
    return datetime.fromisoformat(text)


def hello() -> bytes:
    """A short "hello?" for the machine check: noise whose loudness swings at a syllable rate."""
    n = int(0.6 * RATE)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * np.arange(n) / RATE)
    return (np.random.default_rng(1).normal(0, 3000, n) * envelope).astype("<i2").tobytes()


@dataclass
class Clock:
    """One clock for the CRM (naive local time) and the dialer (aware)."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def aware(self) -> datetime:
        return self.now.replace(tzinfo=BERLIN)


@dataclass
class Placed:
    callback_id: int
    phone: str
    said: str  # everything the bot said on the call


@dataclass
class FakePhone:
    """Answers every call; the callee presses ``keys`` (each after the bot has spoken). ``on_ring`` runs while the
    phone rings (a change made in the CRM meanwhile)."""

    crm: Repository
    keys: list[str] = field(default_factory=lambda: list(CONFIRM))
    on_ring: object = None
    dialled: list[tuple[int, str]] = field(default_factory=list)

    async def dial(self, uri: str, caller_id: str | None = None, headers: dict[str, str] | None = None,
                   timeout_s: float = 20.0) -> SimulatedLine:
        callback_id = int((headers or {})["X-Voicebot-Callback"])
        phone = self.crm.db["callbacks"].get(callback_id)["phone"]
        self.dialled.append((callback_id, phone))
        if callable(self.on_ring):
            self.on_ring()
        script = [Say(hello(), RATE, "hello?"), WaitForBot()]
        for key in self.keys:
            script += [Press(key), WaitForBot()]
        return SimulatedLine(script, caller_id=phone, speed=float("inf"), sample_rate=RATE)


@dataclass
class World:
    clock: Clock
    crm: Repository
    deps: SessionDeps
    phone: FakePhone
    dialer: Dialer
    alice_id: int
    slots: dict[str, int]  # "03 10:00" -> slot id
    booking_id: int

    def round(self, when: str) -> list[Placed]:
        """Set the clock to ``when`` (local), run one dialer round and its calls to the end; the calls placed."""
        self.clock.now = local(when)
        texts, dialled = len(self.deps.synthesizer.texts), len(self.phone.dialled)

        async def go() -> None:
            tasks = await self.dialer.round()
            await asyncio.wait_for(asyncio.gather(*tasks), 30)

        asyncio.run(go())
        said = " ".join(self.deps.synthesizer.texts[texts:])
        return [Placed(cid, phone, said) for cid, phone in self.phone.dialled[dialled:]]

    def reminders(self) -> list[dict]:
        return list(self.crm.db["callbacks"].rows_where("purpose = 'reminder'", order_by="id"))


def build(tmp_path, config, schedulers: bool = True) -> World:
    clock = Clock(local("2026-03-02T08:00"))
    crm = Repository.open(tmp_path / "crm.db", clock=clock)
    alice = crm.add_customer("Alice Smith", [ALICE], pin="1234")
    slots = {f"{d:02d} {h:02d}:00": crm.add_slot("Printer repair", datetime(2026, 3, d, h), resource="Tech A").id
             for d, h in ((3, 10), (3, 14), (5, 9), (6, 9))}
    booking = crm.book_slot(slots["03 10:00"], name="Alice Smith", customer_id=alice.id)
    assert isinstance(booking, Booking)
    store = CallStore(tmp_path / "calls.db", tmp_path / "recordings")
    cfg = config.model_copy(deep=True)
    cfg.dialer = DialerConfig(timezone="Europe/Berlin", amd=AmdConfig(callback_number="+1 555 010 0000"))
    deps = SessionDeps(cfg, FakeTranscriber(CallerVoice(sample_rate=RATE)), FakeSynthesizer(), ScriptedChat(),
                       ScriptedVad(), crm, store, today=clock.now.date())
    phone = FakePhone(crm)
    jobs = [lambda now: close_stale(crm, now), lambda now: queue_reminders(crm, now, BERLIN)] if schedulers else []
    dialer = Dialer(DialPolicy(cfg.dialer, 4), CallbackLedger(crm, 3), DoNotCallList(tmp_path / "dnc.txt"), phone,
                    lambda call, callback: run_answered(call, callback, deps), lambda: 0, clock.aware, jobs)
    return World(clock, crm, deps, phone, dialer, alice.id, slots, booking.id)


@pytest.fixture
def world(tmp_path, config):
    w = build(tmp_path, config)
    yield w
    w.deps.store.close()
    w.crm.close()


def test_a_moved_booking_is_reminded_of_its_new_time_the_day_before_it_and_never_of_the_old(world):
    assert world.round("2026-03-02T08:30") == []  # queued, but the calling hours open at 09:00
    [queued] = world.reminders()
    assert (queued["booking_id"], queued["not_after"], queued["status"]) == (world.booking_id, "2026-03-03T10:00:00",
                                                                             "pending")
    world.clock.now = local("2026-03-02T08:45")  # Alice moves her visit from Tuesday 10:00 to Thursday 09:00
    moved = bookings.reschedule(world.crm, world.booking_id, world.slots["05 09:00"], world.alice_id)
    assert isinstance(moved, Booking) and moved.id == world.booking_id

    for when in ("2026-03-02T09:00", "2026-03-02T15:00", "2026-03-03T09:00", "2026-03-03T09:59"):
        assert world.round(when) == [], when  # the old day: nobody is called
    old = world.crm.db["callbacks"].get(queued["id"])
    assert (old["status"], old["last_result"], old["attempts"]) == ("expired", "booking moved", 0)
    assert world.dialer.ledger.attempts(queued["id"]) == []

    [call] = world.round("2026-03-04T09:00")  # the day before Thursday: a reminder for the new time, and the call
    new = world.crm.db["callbacks"].get(call.callback_id)
    assert call.callback_id != queued["id"] and call.phone == ALICE
    assert (new["booking_id"], new["not_after"]) == (world.booking_id, "2026-03-05T09:00:00")
    assert "appointment for Printer repair on Thursday, March 5 at 09:00" in call.said
    assert "March 3" not in call.said and "10:00" not in call.said
    assert (new["status"], new["last_result"]) == ("done", "confirmed")
    assert world.round("2026-03-04T11:00") == []  # once
    assert [r["not_after"] for r in world.reminders()] == ["2026-03-03T10:00:00", "2026-03-05T09:00:00"]


def test_a_cancelled_booking_never_gets_its_reminder_even_when_its_id_goes_to_the_next_booking(world):
    assert world.round("2026-03-02T08:30") == []
    [queued] = world.reminders()
    world.clock.now = local("2026-03-02T08:40")
    assert isinstance(bookings.cancel(world.crm, world.booking_id, world.alice_id), Booking)
    row = world.crm.db["callbacks"].get(queued["id"])
    assert (row["status"], row["last_result"]) == ("expired", "booking cancelled")  # at once, with the booking

    bob = world.crm.add_customer("Bob Jones", [BOB], pin="4321")  # Bob takes the freed Tuesday 10:00
    rebooked = world.crm.book_slot(world.slots["03 10:00"], name="Bob Jones", customer_id=bob.id)
    assert isinstance(rebooked, Booking) and rebooked.id == world.booking_id  # SQLite reuses the deleted row's id

    calls = world.round("2026-03-02T09:00") + world.round("2026-03-03T09:00")
    assert [(c.phone, c.callback_id != queued["id"]) for c in calls] == [(BOB, True)]  # Bob's own reminder only
    assert "Printer repair on Tuesday, March 3 at 10:00" in calls[0].said
    assert world.dialer.ledger.attempts(queued["id"]) == []


def test_a_booking_deleted_in_the_crm_is_closed_by_the_round_not_called(world):
    """What the helper said the dialer already did (``close_stale``), checked: a booking row deleted by other means
    than ``crm.bookings.cancel`` (a person in the CRM)."""
    assert world.round("2026-03-02T08:30") == []
    with world.crm.transaction():
        world.crm.db.execute("delete from bookings where id = ?", [world.booking_id])
    assert world.round("2026-03-02T09:00") == []
    [row] = world.reminders()
    assert (row["status"], row["last_result"], row["attempts"]) == ("expired", "booking gone", 0)


@pytest.mark.parametrize("change", ["move", "delete"])
def test_the_last_look_before_dialling_stops_a_stale_reminder_without_the_rounds_cleanup(tmp_path, config, change):
    """No ``close_stale`` at all (a dialer built without schedulers): the row is read as pending and chosen, and
    the check in the transaction that marks it dialled still closes it instead of calling."""
    w = build(tmp_path, config, schedulers=False)
    try:
        queue_reminders(w.crm, local("2026-03-02T08:30").replace(tzinfo=BERLIN), BERLIN)
        [queued] = w.reminders()
        w.clock.now = local("2026-03-02T08:45")
        if change == "move":
            assert isinstance(bookings.reschedule(w.crm, w.booking_id, w.slots["06 09:00"], w.alice_id), Booking)
        else:
            with w.crm.transaction():
                w.crm.db.execute("delete from bookings where id = ?", [w.booking_id])
        assert [c.id for c in w.dialer.ledger.pending()] == [queued["id"]]  # still pending when the round reads it
        assert w.round("2026-03-02T09:00") == []
        row = w.crm.db["callbacks"].get(queued["id"])
        assert (row["status"], row["last_result"], row["attempts"]) == (
            "expired", "booking moved" if change == "move" else "booking gone", 0)
        assert w.dialer.stats.dialed == 0
    finally:
        w.deps.store.close()
        w.crm.close()


def test_a_booking_cancelled_while_the_phone_rings_is_not_read_from_the_old_row(world):
    """The one moment left after the last look: the callee hears that nothing is booked, never the row's copy of
    the old time, and no dialogue about it."""
    assert world.round("2026-03-02T08:30") == []
    world.phone.keys = ["2"]  # 2: end the call
    world.phone.on_ring = lambda: bookings.cancel(world.crm, world.booking_id, world.alice_id)
    [call] = world.round("2026-03-02T09:00")
    assert "The appointment we called about is no longer booked" in call.said
    assert "March" not in call.said and "10:00" not in call.said and "Printer" not in call.said
    row = world.crm.db["callbacks"].get(call.callback_id)
    assert (row["status"], row["last_result"]) == ("done", "booking gone")


def test_a_move_made_on_the_reminder_call_is_not_reminded_again_the_same_day(world):
    """The callee moves the visit on the reminder call to Tuesday 14:00 (tomorrow): they have just said that time,
    so no second reminder call today; a move to a later day is reminded the day before it (first test)."""
    world.phone.keys = ["3", "1", "1"]  # another time, the first one offered (Tuesday 14:00), yes
    [call] = world.round("2026-03-02T09:00")
    assert "on Tuesday, March 3 at 10:00" in call.said and "now on Tuesday, March 3 at 14:00" in call.said
    assert world.crm.db["bookings"].get(world.booking_id)["slot_id"] == world.slots["03 14:00"]
    row = world.crm.db["callbacks"].get(call.callback_id)
    assert (row["status"], row["last_result"]) == ("done", "rescheduled")
    for when in ("2026-03-02T10:30", "2026-03-02T17:00", "2026-03-03T09:00"):
        assert world.round(when) == [], when
    assert len(world.reminders()) == 1
