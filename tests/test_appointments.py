"""Moving and cancelling a booked appointment: the CRM operations (voicebot/crm/bookings.py), the tools, and whole
timelines through the dialogue agent with the real intent classifier and no model (voicebot/dialog/appointments.py).
"""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
from crm_support import NOW, dump, seeded_repo

from fakes import ScriptedChat
from voicebot.crm import bookings
from voicebot.crm.models import Booking, NotFound, SlotTaken
from voicebot.crm.repository import Repository
from voicebot.crm.seed import seed_demo
from voicebot.crm.tools import CRM_TOOLS
from voicebot.crm.verification import CallerContext
from voicebot.dialog.agent import DialogueAgent, IntentFound, Sentence, ToolCalled
from voicebot.dialog.rendered import offered_times
from voicebot.dialog.slots import spoken_time
from voicebot.dialog.writes import answer_to_readback, asked_for

ALICE = "+15550102030"  # demo caller, PIN 1234
TODAY = date(2026, 11, 22)  # a Sunday: "next week" is November 23rd to 29th


# -- the CRM operations ---------------------------------------------------------------------------------------


def _customer(repo: Repository, phone: str = ALICE):
    customer = repo.find_customer_by_phone(phone)
    assert not isinstance(customer, NotFound)
    return customer


def _book(repo: Repository, customer, service: str, day: date, hour: int) -> Booking:
    slot = next(s for s in repo.list_free_slots(service=service, start=day, end=day, limit=50)
                if s.starts_at.hour == hour)
    booking = repo.book_slot(slot.id, name=customer.name, phone=customer.phones[0], customer_id=customer.id)
    assert isinstance(booking, Booking)
    return booking


def _free(repo: Repository, service: str, day: date) -> list:
    return repo.list_free_slots(service=service, start=day, end=day, limit=50)


@pytest.fixture
def crm():
    repo = seeded_repo()  # clock: 2026-03-02 09:30, a Monday
    alice = _customer(repo)
    return repo, alice, _book(repo, alice, "printer repair", date(2026, 3, 4), 9)


def test_a_booking_moves_to_a_free_slot_of_its_service_and_its_old_slot_is_free_again(crm):
    repo, alice, booking = crm
    new = _free(repo, "printer repair", date(2026, 3, 5))[0]
    moved = bookings.reschedule(repo, booking.id, new.id, alice.id)
    assert isinstance(moved, Booking) and moved.id == booking.id and moved.slot.id == new.id
    assert [b.slot.id for b in repo.upcoming_bookings(alice.id)] == [new.id]
    assert booking.slot.id in {s.id for s in _free(repo, "printer repair", date(2026, 3, 4))}
    assert new.id not in {s.id for s in _free(repo, "printer repair", date(2026, 3, 5))}


def test_a_cancelled_booking_is_no_longer_upcoming_and_its_slot_can_be_booked_again(crm):
    repo, alice, booking = crm
    cancelled = bookings.cancel(repo, booking.id, alice.id)
    assert isinstance(cancelled, Booking) and cancelled.slot.id == booking.slot.id
    assert repo.upcoming_bookings(alice.id) == []
    assert isinstance(repo.book_slot(booking.slot.id, name="Dana Lee"), Booking)
    assert isinstance(bookings.cancel(repo, booking.id, alice.id), NotFound)  # already gone


def test_someone_elses_booking_is_not_found_and_left_as_it_was(crm):
    repo, alice, booking = crm
    tom = _customer(repo, "+44 20 7946 0958")
    before = dump(repo)
    new = _free(repo, "printer repair", date(2026, 3, 5))[0]
    assert bookings.reschedule(repo, booking.id, new.id, tom.id) == NotFound("booking", str(booking.id))
    assert bookings.cancel(repo, booking.id, tom.id) == NotFound("booking", str(booking.id))
    assert dump(repo) == before


def test_a_taken_past_or_other_service_slot_is_refused_and_nothing_moves(crm):
    repo, alice, booking = crm
    taken = _free(repo, "printer repair", date(2026, 3, 5))[0]
    assert isinstance(repo.book_slot(taken.id, name="Dana Lee"), Booking)
    past = repo.add_slot("printer repair", datetime(2026, 3, 2, 8), resource="Sam Ortiz")
    other = _free(repo, "laptop setup", date(2026, 3, 5))[0]
    before = dump(repo)
    assert bookings.reschedule(repo, booking.id, taken.id, alice.id) == SlotTaken(taken.id)
    assert bookings.reschedule(repo, booking.id, past.id, alice.id) == SlotTaken(past.id, "in the past")
    assert isinstance(bookings.reschedule(repo, booking.id, other.id, alice.id), SlotTaken)
    assert isinstance(bookings.reschedule(repo, booking.id, 999_999, alice.id), NotFound)
    assert dump(repo) == before


def test_a_booking_already_past_cannot_be_moved_or_cancelled(crm):
    repo, alice, _ = crm
    slot = repo.add_slot("printer repair", datetime(2026, 3, 2, 7), resource="Sam Ortiz")
    repo.db["bookings"].insert({"slot_id": slot.id, "customer_id": alice.id, "name": alice.name,
                                "created_at": NOW.isoformat()})
    old = repo.db.execute("select id from bookings where slot_id = ?", [slot.id]).fetchone()[0]
    assert isinstance(bookings.cancel(repo, old, alice.id), NotFound)
    assert repo.db.execute("select count(*) from bookings where id = ?", [old]).fetchone()[0] == 1


def test_the_tools_need_verification_and_change_only_the_callers_own_bookings(crm):
    repo, alice, booking = crm
    tom = _customer(repo, "+44 20 7946 0958")
    toms = _book(repo, tom, "laptop setup", date(2026, 3, 6), 9)
    ctx = CallerContext.start(repo, ALICE)
    for name, args in [("list_my_appointments", {}), ("cancel_appointment", {"booking_id": booking.id}),
                       ("reschedule_appointment", {"booking_id": booking.id, "slot_id": 1})]:
        assert CRM_TOOLS.call(name, args, ctx)["error"] == "verification_required"
    assert ctx.verify(pin="1234").verified
    listed = CRM_TOOLS.call("list_my_appointments", {}, ctx)
    assert [b["id"] for b in listed["result"]] == [booking.id] and "customer_id" not in listed["result"][0]
    assert CRM_TOOLS.call("cancel_appointment", {"booking_id": toms.id}, ctx)["error"] == "not_found"
    assert [b.id for b in repo.upcoming_bookings(tom.id)] == [toms.id]
    new = _free(repo, "printer repair", date(2026, 3, 5))[0]
    moved = CRM_TOOLS.call("reschedule_appointment", {"booking_id": booking.id, "slot_id": new.id}, ctx)
    assert moved["ok"] and moved["result"]["slot"]["id"] == new.id


def test_reschedule_and_cancel_words_ask_for_those_writes_and_no_others():
    assert asked_for("reschedule_appointment", ["I need to move my printer repair to next week"])
    assert asked_for("reschedule_appointment", ["Can we push the technician back a few days?"])
    assert not asked_for("reschedule_appointment", ["Can you move my delivery to Friday?"])
    assert asked_for("cancel_appointment", ["We don't need the technician any more"])
    assert not asked_for("cancel_appointment", ["I want to cancel my order"])
    assert answer_to_readback("Cancel it, please", "cancel_appointment") is True  # to "I'll cancel your ..."
    assert answer_to_readback("Cancel it", "create_ticket") is False  # anywhere else "cancel" is a no
    assert answer_to_readback("Don't cancel it", "cancel_appointment") is False


# -- whole timelines through the agent, with the real intent classifier and no model ---------------------------


@pytest.fixture
def demo():
    repo = Repository.open(None, clock=lambda: datetime.combine(TODAY, time(9)))
    seed_demo(repo, today=TODAY)
    alice = _customer(repo)
    assert repo.upcoming_bookings(alice.id) == []  # the seed books only other customers' visits
    return repo, alice


def _agent(repo: Repository, intents) -> DialogueAgent:
    return DialogueAgent(ScriptedChat(), CallerContext.start(repo, ALICE), "Northwind.", today=TODAY,
                         intents=intents)  # ScriptedChat(): any model call fails the test


def _said(events) -> str:
    return " ".join(e.text for e in events if isinstance(e, Sentence))


def _called(events) -> list[ToolCalled]:
    return [e for e in events if isinstance(e, ToolCalled)]


def _two_times(repo: Repository, service: str, first: date, last: date) -> list:
    """The first two different free times of ``service`` between the days, as the step offers them."""
    times: dict[datetime, object] = {}
    for slot in repo.list_free_slots(service=service, start=first, end=last, limit=50):
        times.setdefault(slot.starts_at, slot)
    return list(times.values())[:2]


def _verified_offer(agent: DialogueAgent, request: str, intent: str) -> str:
    events = list(agent.turn(request))
    assert any(isinstance(e, IntentFound) and e.intent.name == intent for e in events)
    assert "PIN" in _said(events) and not [c for c in _called(events) if c.result.get("ok")]
    return _said(agent.turn("1 2 3 4"))


def test_moving_a_visit_offers_two_times_of_its_service_next_week_reads_back_and_moves_on_yes(demo, intent_classifier):
    repo, alice = demo
    booking = _book(repo, alice, "printer repair", date(2026, 12, 1), 10)
    first = _two_times(repo, "printer repair", date(2026, 11, 23), date(2026, 11, 29))[0]
    repo.add_slot("printer repair", first.starts_at, resource="Kim Lee")  # two technicians free at one time
    agent = _agent(repo, intent_classifier)
    said = _verified_offer(agent, "I need to move my printer repair to next week", "reschedule")
    first, second = _two_times(repo, "printer repair", date(2026, 11, 23), date(2026, 11, 29))
    assert first.starts_at != second.starts_at  # one time to the caller
    assert "printer repair on Tuesday, December 1st at 10 AM" in said
    assert f"I can move it to {offered_times([{'starts_at': first.starts_at}, {'starts_at': second.starts_at}])}" in said
    events = list(agent.turn("the second one"))
    assert _called(events) == []  # read back first
    assert _said(events) == (f"I'll move your printer repair from Tuesday, December 1st at 10 AM to "
                             f"{spoken_time(second.starts_at.isoformat())}. Shall I do that?")
    events = list(agent.turn("yes"))
    assert [c.name for c in _called(events)] == ["reschedule_appointment"] and _called(events)[0].result["ok"]
    assert f"Done. Your printer repair is now on {spoken_time(second.starts_at.isoformat())}." in _said(events)
    assert [(b.id, b.slot.id) for b in repo.upcoming_bookings(alice.id)] == [(booking.id, second.id)]
    assert booking.slot.id in {s.id for s in _free(repo, "printer repair", date(2026, 12, 1))}
    assert agent.chat.calls == []


def test_cancelling_a_visit_reads_it_back_and_cancels_on_yes(demo, intent_classifier):
    repo, alice = demo
    booking = _book(repo, alice, "printer repair", date(2026, 12, 1), 10)
    agent = _agent(repo, intent_classifier)
    said = _verified_offer(agent, "I want to cancel my repair appointment", "cancel_booking")
    assert said == "I'll cancel your printer repair on Tuesday, December 1st at 10 AM. Shall I do that?"
    events = list(agent.turn("yes"))
    assert [c.name for c in _called(events)] == ["cancel_appointment"]
    assert "Done. Your printer repair on Tuesday, December 1st at 10 AM is cancelled." in _said(events)
    assert repo.upcoming_bookings(alice.id) == []
    assert booking.slot.id in {s.id for s in _free(repo, "printer repair", date(2026, 12, 1))}
    assert agent.chat.calls == []


@pytest.mark.parametrize("request_, intent, picks", [
    ("I need to move my printer repair to next week", "reschedule", ["the first one"]),
    ("I want to cancel my repair appointment", "cancel_booking", [])])
def test_a_no_to_the_read_back_leaves_the_crm_as_it_was(demo, intent_classifier, request_, intent, picks):
    repo, alice = demo
    _book(repo, alice, "printer repair", date(2026, 12, 1), 10)
    before = dump(repo)
    agent = _agent(repo, intent_classifier)
    _verified_offer(agent, request_, intent)
    for pick in picks:
        assert "Shall I do that?" in _said(agent.turn(pick))
    events = list(agent.turn("No, leave it."))
    assert not [c for c in _called(events) if c.name in ("reschedule_appointment", "cancel_appointment")]
    assert "won't" in _said(events)
    assert dump(repo) == before and agent.chat.calls == []


def test_the_booking_the_caller_names_is_moved_to_their_day_and_part_of_the_day(demo, intent_classifier):
    repo, alice = demo
    _book(repo, alice, "furniture fitting", date(2026, 11, 24), 10)
    laptop = _book(repo, alice, "laptop setup", date(2026, 11, 30), 11)
    agent = _agent(repo, intent_classifier)
    list(agent.turn("Can I reschedule my laptop setup to Thursday afternoon?"))
    said = _said(agent.turn("1234"))
    assert "laptop setup on Monday, November 30th at 11 AM" in said and "furniture" not in said
    offered = agent.appointments.offered
    assert offered and all(s["service"] == "laptop setup" for s in offered)
    assert all(str(s["starts_at"]).startswith("2026-11-26T") and int(str(s["starts_at"])[11:13]) >= 12
               for s in offered)
    events = list(agent.turn(offered[0]["starts_at"][11:13].lstrip("0") + " o'clock please"))
    assert f"from Monday, November 30th at 11 AM to {spoken_time(str(offered[0]['starts_at']))}" in _said(events)
    list(agent.turn("yes please"))
    upcoming = repo.upcoming_bookings(alice.id)
    assert [(b.id, b.slot.id) for b in upcoming if b.id == laptop.id] == [(laptop.id, offered[0]["id"])]
    assert [b.slot.service for b in upcoming if b.id != laptop.id] == ["furniture fitting"]  # untouched
    assert agent.chat.calls == []


def test_a_time_taken_before_the_yes_is_not_double_booked_and_other_times_are_offered(demo, intent_classifier):
    repo, alice = demo
    booking = _book(repo, alice, "printer repair", date(2026, 12, 1), 10)
    agent = _agent(repo, intent_classifier)
    _verified_offer(agent, "I need to move my printer repair to next week", "reschedule")
    picked = agent.appointments.offered[0]
    list(agent.turn("the first one"))
    assert isinstance(repo.book_slot(picked["id"], name="Dana Lee"), Booking)  # someone else was quicker
    events = list(agent.turn("yes"))
    assert _called(events)[0].result["error"] == "slot_taken"
    assert "that time was just taken" in _said(events) and "I can move it to" in _said(events)
    assert picked["id"] not in {s["id"] for s in agent.appointments.offered}
    assert [b.slot.id for b in repo.upcoming_bookings(alice.id)] == [booking.slot.id]


def test_no_booking_on_record_is_said_and_a_new_visit_is_offered(demo, intent_classifier):
    repo, _alice = demo
    agent = _agent(repo, intent_classifier)
    said = _verified_offer(agent, "I want to cancel my repair appointment", "cancel_booking")
    assert said == "I don't see any upcoming appointments on your account. Would you like to book one?"
    events = list(agent.turn("Yes, please."))
    listed = [c for c in _called(events) if c.name == "list_free_slots"]
    assert listed and listed[0].args["service"] == "printer repair"
    assert "I can offer a printer repair on" in _said(events) and agent.offered_slots


def test_the_model_may_choose_a_move_only_when_the_caller_asks_for_one(demo):
    repo, alice = demo
    _book(repo, alice, "printer repair", date(2026, 12, 1), 10)
    chat = ScriptedChat([{"action": "reply", "text": "Sure."},
                         {"action": "reschedule_appointment", "text": "another day"}])
    agent = DialogueAgent(chat, CallerContext.start(repo, ALICE), "Northwind.", today=TODAY)
    agent.context.verify(pin="1234")
    list(agent.turn("What a lovely day."))
    assert "reschedule_appointment" not in chat.calls[-1].json_schema["properties"]["action"]["enum"]
    said = _said(agent.turn("Could we put the technician off until later?"))
    assert "reschedule_appointment" in chat.calls[-1].json_schema["properties"]["action"]["enum"]
    assert "printer repair on Tuesday, December 1st at 10 AM" in said and "I can move it to" in said


def test_a_booking_whose_words_ask_to_move_or_cancel_one_is_that(demo, intent_classifier):
    """"Could I reschedule the printer repair?" was nearer the booking examples and got new slots offered."""
    from voicebot.dialog.appointments import placed
    from voicebot.dialog.intents import Intent

    booking = Intent("booking", 0.88, 0.009, "I want to schedule a repair")
    assert placed(booking, "Could I reschedule the printer repair?").name == "reschedule"
    assert placed(booking, "Please cancel the printer repair").name == "cancel_booking"
    assert placed(booking, "Can someone come and fix my printer on Friday?") is booking
    repo, alice = demo
    _book(repo, alice, "printer repair", date(2026, 12, 1), 10)
    agent = _agent(repo, intent_classifier)
    events = list(agent.turn("Could I reschedule the printer repair?"))
    assert [c.name for c in _called(events)] == ["list_my_appointments"] and "PIN" in _said(events)
    assert "printer repair on Tuesday, December 1st at 10 AM" in _said(agent.turn("1234"))
    assert agent.chat.calls == []


def test_when_no_offered_time_suits_the_caller_names_another_day(demo, intent_classifier):
    repo, alice = demo
    _book(repo, alice, "printer repair", date(2026, 12, 1), 10)
    agent = _agent(repo, intent_classifier)
    _verified_offer(agent, "I need to move my printer repair to next week", "reschedule")
    assert _said(agent.turn("None of those, sorry.")) == "All right. Which day would suit you better?"
    said = _said(agent.turn("Friday afternoon, please"))
    friday = [s for s in repo.list_free_slots(service="printer repair", start=date(2026, 11, 27),
                                              end=date(2026, 11, 27)) if s.starts_at.hour >= 12]
    assert friday and f"I can move it to {spoken_time(friday[0].starts_at.isoformat())}" in said
    assert [str(s["starts_at"])[:10] for s in agent.appointments.offered] == ["2026-11-27"] * 2
    said = _said(agent.turn("No, leave it as it is."))
    assert said.startswith("All right, your printer repair on Tuesday, December 1st at 10 AM stays as it is.")
    assert not agent.appointments.waiting and agent.chat.calls == []


def test_a_day_and_hour_with_no_free_time_that_day_are_answered_with_times_not_silence(demo, intent_classifier):
    """"Tomorrow at 10." to two offered times, tomorrow a Sunday (closed): the lookup found Monday at 10 free, the
    words picked no time on Monday, and the turn ended with nothing said (the caller left in silence). Now the
    times that are free are offered, as for any other day asked for; nothing is booked before a yes."""
    repo, _ = demo
    agent = _agent(repo, intent_classifier)
    assert "Which would suit you?" in _said(agent.turn("I'd like to book a printer repair."))
    events = list(agent.turn("Next Sunday at 10."))
    said = _said(events)
    assert said.startswith("I have nothing free then. The earliest I can offer is a printer repair on") and \
        said.endswith("Which would suit you?"), said
    assert "Sunday" not in said and agent.pending_write is None and agent.chat.calls == []
    assert [c.name for c in _called(events)] == ["list_free_slots"]
