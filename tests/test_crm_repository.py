"""Lookups by caller ID, number normalisation, orders, tickets, slots, leads, callbacks, history, the seed."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from crm_support import NOW, TODAY, make_repo, seeded_repo

from voicebot.crm.models import ORDER_STATUSES, Booking, Customer, NotFound, Order, OrderItem, SlotTaken
from voicebot.crm.phone import normalize_phone
from voicebot.crm.seed import seed_demo


@pytest.mark.parametrize("raw, region, expected", [
    ("+1 555 010 2030", "US", "+15550102030"),
    ("555-010-2030", "US", "+15550102030"),
    ("(555) 010-2030", "US", "+15550102030"),
    ("1-555-010-2030", "US", "+15550102030"),
    ("0044 20 7946 0958", "US", "+442079460958"),   # 00 is international even where the region uses 011
    ("0044 20 7946 0958", "GB", "+442079460958"),
    ("011 44 20 7946 0958", "US", "+442079460958"),
    ("020 7946 0958", "GB", "+442079460958"),
    ("sip:+15550102030@pbx.example.com", "US", "+15550102030"),
    ("<tel:+442079460958>", "US", "+442079460958"),
    ("anonymous", "US", None),
    ("12", "US", None),
    ("", "US", None),
    (None, "US", None),
])
def test_phone_numbers_are_normalised_to_e164(raw, region, expected):
    assert normalize_phone(raw, region) == expected


def test_customer_found_by_caller_id_in_any_format():
    repo = make_repo()
    alice = repo.add_customer("Alice Johnson", ["+1 555 010 2030", "206-555-0142"], email="a@example.com", pin="1234")
    repo.add_customer("Bob Stone", ["+1 312 555 0100"])
    assert alice.phones == ("+15550102030", "+12065550142")
    for raw in ("555-010-2030", "+1 (555) 010-2030", "15550102030", "(206) 555-0142"):
        found = repo.find_customer_by_phone(raw)
        assert isinstance(found, Customer) and found.id == alice.id, raw
    assert repo.find_customer_by_phone("+1 555 010 2031") == NotFound("customer", "with phone +15550102031")
    assert isinstance(repo.find_customer_by_phone("anonymous"), NotFound)
    assert isinstance(repo.find_customer_by_phone(None), NotFound)


def test_region_decides_how_national_numbers_read():
    repo = make_repo(region="GB")
    tom = repo.add_customer("Tom Baker", ["020 7946 0958"])
    assert tom.phones == ("+442079460958",)
    assert repo.find_customer_by_phone("+44 20 7946 0958").id == tom.id
    assert repo.find_customer_by_phone("0044 20 7946 0958").id == tom.id


def test_a_phone_number_belongs_to_one_customer():
    repo = make_repo()
    repo.add_customer("A", ["555-010-2030"])
    with pytest.raises(Exception, match="UNIQUE"):
        repo.add_customer("B", ["+15550102030"])
    assert repo.counts()["customers"] == 1  # the failed add left nothing behind


def _order(repo, number, customer_id, status, **extra):
    items = [OrderItem("CHR-1", "Office chair", 1, Decimal("189.00")), OrderItem("PAP-5", "Paper", 2, Decimal("24.99"))]
    return repo.add_order(number, customer_id, status, TODAY - timedelta(days=3), items, **extra)


def test_open_orders_and_order_by_number():
    repo = make_repo()
    alice = repo.add_customer("Alice", ["555-010-2030"])
    bob = repo.add_customer("Bob", ["555-010-2040"])
    _order(repo, "10452", alice.id, "shipped", carrier="UPS", tracking="1Z999", eta=TODAY + timedelta(days=2))
    _order(repo, "10398", alice.id, "delivered", delivered_at=TODAY - timedelta(days=1))
    _order(repo, "10500", bob.id, "processing")
    order = repo.get_order("10452")
    assert isinstance(order, Order)
    assert order.total == Decimal("238.98") and order.currency == "USD"
    assert [i.quantity for i in order.items] == [1, 2] and order.eta == TODAY + timedelta(days=2)
    assert repo.get_order("#10452", customer_id=alice.id) == order
    assert repo.get_order("10452", customer_id=bob.id) == NotFound("order", "10452")  # not Bob's to see
    assert repo.get_order("99999") == NotFound("order", "99999")
    assert [o.number for o in repo.open_orders(alice.id)] == ["10452"]
    assert {o.number for o in repo.recent_orders(alice.id)} == {"10452", "10398"}


def test_ticket_lead_callback_and_interaction_are_recorded():
    repo = make_repo()
    alice = repo.add_customer("Alice", ["555-010-2030"])
    _order(repo, "10452", alice.id, "shipped")
    ticket = repo.create_ticket("Damaged chair", "Arrived scratched.", customer_id=alice.id, order_number="10452",
                                phone="+15550102030")
    assert ticket.order_number == "10452" and ticket.status == "open" and ticket.created_at == NOW.replace(second=0)
    assert repo.open_tickets(alice.id) == [ticket]
    assert repo.create_ticket("x", "y", order_number="424242") == NotFound("order", "424242")
    assert repo.counts()["tickets"] == 1
    lead = repo.create_lead("Dana", "20 chairs", phone="+15550102099")
    assert lead.id and repo.db["leads"].get(lead.id)["interest"] == "20 chairs"
    callback = repo.request_callback("+15550102030", "invoice", preferred_time="tomorrow", customer_id=alice.id)
    assert repo.pending_callbacks(alice.id) == [callback]
    repo.add_interaction("Asked about 10452.", "resolved", phone="+15550102030", customer_id=alice.id,
                         started_at=NOW - timedelta(days=1))
    latest = repo.add_interaction("Opened a ticket.", "ticket", phone="+15550102030", customer_id=alice.id)
    assert [i.summary for i in repo.recent_interactions(alice.id)] == [latest.summary, "Asked about 10452."]
    profile = repo.caller_profile(alice.id)
    assert profile.customer == alice and profile.open_tickets == (ticket,) and len(profile.recent_interactions) == 2
    assert repo.caller_profile(999) == NotFound("customer", "999")


def test_free_slots_exclude_booked_and_past_ones():
    repo = make_repo()
    past = repo.add_slot("printer repair", NOW - timedelta(hours=1), resource="Sam")
    first = repo.add_slot("printer repair", datetime(2026, 3, 3, 9), resource="Sam")
    second = repo.add_slot("printer repair", datetime(2026, 3, 3, 10), resource="Sam")
    other = repo.add_slot("laptop setup", datetime(2026, 3, 4, 9), resource="Priya")
    assert [s.id for s in repo.list_free_slots()] == [first.id, second.id, other.id]
    booking = repo.book_slot(first.id, name="Alice", phone="+15550102030")
    assert isinstance(booking, Booking) and booking.slot == first
    assert [s.id for s in repo.list_free_slots(service="REPAIR")] == [second.id]
    assert [s.id for s in repo.list_free_slots(start=date(2026, 3, 4), end=date(2026, 3, 4))] == [other.id]
    assert repo.book_slot(first.id, name="Bob") == SlotTaken(first.id)
    assert repo.book_slot(past.id, name="Bob") == SlotTaken(past.id, "in the past")
    assert repo.book_slot(4242, name="Bob") == NotFound("appointment slot", "4242")
    assert repo.counts()["bookings"] == 1


def test_seed_is_deterministic_and_covers_every_order_state():
    a, b = seeded_repo(), make_repo()
    seed_demo(b, TODAY)
    names = a.db.table_names()
    assert all(list(a.db[t].rows) == list(b.db[t].rows) for t in names if t != "_sqlite_migrations")
    counts = a.counts()
    assert counts["customers"] == 50 and counts["orders"] > 60 and counts["interactions"] > 20
    statuses = {row["status"] for row in a.db["orders"].rows}
    assert statuses == set(ORDER_STATUSES)
    slot_days = {datetime.fromisoformat(r["starts_at"]).date() for r in a.db["appointment_slots"].rows}
    assert min(slot_days) > TODAY and max(slot_days) <= TODAY + timedelta(days=14)
    assert all(day.weekday() < 5 for day in slot_days)
    alice = a.find_customer_by_phone("555-010-2030")
    assert alice.name == "Alice Johnson" and a.get_order("10452", alice.id).status == "shipped"
    with pytest.raises(ValueError, match="not empty"):
        seed_demo(a, TODAY)
    other_day = seed_demo(a, TODAY + timedelta(days=30), wipe=True)
    assert other_day.counts["customers"] == 50
    assert a.get_order("10452").eta == TODAY + timedelta(days=32)  # dates follow the given day
