"""A realistic demo company, "Northwind Supplies" (office supplies and a service desk), for the default config,
the tests and demos. Deterministic: the same ``seed`` and ``today`` give the same database, and every date is
relative to ``today`` so the demo never goes stale.

Two callers are fixed for demos and tests (see ``DEMO_CALLERS``); the other customers are drawn at random.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from voicebot.crm.models import ORDER_STATUSES, Customer, OrderItem
from voicebot.crm.repository import Repository

COMPANY = "Northwind Supplies"


@dataclass(frozen=True)
class DemoCaller:
    name: str
    phone: str
    pin: str | None
    date_of_birth: date
    postcode: str
    orders: tuple[str, ...]


DEMO_CALLERS = (
    DemoCaller("Alice Johnson", "+1 555 010 2030", "1234", date(1985, 3, 14), "98101", ("10452", "10398")),
    DemoCaller("Tom Baker", "+44 20 7946 0958", None, date(1979, 11, 2), "SW1A 1AA", ("10460",)),
)

CATALOG = [
    ("PAP-A4-5", "A4 copy paper, box of 5 reams", "24.99"), ("CHR-ERG-01", "Ergonomic office chair", "189.00"),
    ("DSK-SIT-140", "Sit-stand desk, 140 cm", "429.00"), ("TON-HP-26X", "Toner cartridge HP 26X", "98.50"),
    ("PEN-BL-50", "Ballpoint pens, blue, pack of 50", "12.40"), ("STP-HD-01", "Heavy-duty stapler", "27.95"),
    ("MON-27-4K", "27-inch 4K monitor", "319.00"), ("LMP-LED-02", "LED desk lamp", "45.00"),
    ("NTB-A5-10", "A5 notebooks, pack of 10", "18.75"), ("SHR-CC-12", "Cross-cut paper shredder", "139.99"),
    ("CAB-3D-GR", "Three-drawer filing cabinet", "159.00"), ("HDS-USB-01", "USB headset with microphone", "59.90"),
]
CARRIERS = ("UPS", "FedEx", "USPS", "DHL")
FIRST = ["James", "Mary", "Robert", "Patricia", "Michael", "Linda", "David", "Barbara", "Daniel", "Susan", "Kevin",
         "Karen", "Jason", "Nancy", "Ryan", "Lisa", "Eric", "Sandra", "Brian", "Emily", "Oliver", "Amelia", "Harry",
         "Isla", "George", "Sophie", "Aisha", "Mateo", "Yuki", "Priya", "Omar", "Elena"]
LAST = ["Smith", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Wilson", "Anderson", "Taylor", "Thomas",
        "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "Lewis", "Walker", "Hughes",
        "Patel", "Khan", "Evans", "Wright", "Okafor", "Novak", "Schmidt", "Rossi", "Tanaka"]
US_AREAS = ["206", "312", "415", "503", "512", "617", "720", "212"]
US_ZIPS = ["98101", "60601", "94105", "97205", "78701", "02108", "80202", "10001"]
UK_POSTCODES = ["EC1A 1BB", "W1A 0AX", "M1 1AE", "B33 8TH", "CR2 6XH", "DN55 1PT", "LS1 4AP", "BS1 5TR"]
SERVICES = [("printer repair", "Sam Ortiz"), ("laptop setup", "Priya Nair"), ("furniture fitting", "Luis Romero")]
TICKET_SUBJECTS = [("Damaged item on delivery", "The box arrived crushed and the item is scratched."),
                   ("Wrong item received", "Received a different model than ordered."),
                   ("Invoice copy request", "Needs a copy of the invoice for accounting."),
                   ("Missing parts", "Assembly screws are missing from the package."),
                   ("Printer still jams after repair", "The office printer jams again since the last visit.")]
CALL_SUMMARIES = [("Asked where an order is; gave the delivery estimate.", "resolved"),
                  ("Reported a damaged delivery; ticket opened.", "ticket"),
                  ("Booked a printer repair visit.", "booking"),
                  ("Wanted to discuss a bulk discount; transferred to sales.", "transferred"),
                  ("Asked for a call back about an invoice.", "callback"),
                  ("Hung up during verification.", "abandoned")]
LEAD_INTERESTS = ["20 ergonomic chairs for a new branch", "Monthly paper and toner subscription",
                  "Standing desks for a team of 12", "Service contract for office printers",
                  "Quote for a full office fit-out", "Bulk headsets for a call centre"]


@dataclass(frozen=True)
class SeedSummary:
    today: date
    seed: int
    counts: dict[str, int]
    demo_callers: tuple[DemoCaller, ...] = DEMO_CALLERS


def _order_dates(status: str, today: date, rng: random.Random) -> dict:
    """Placed date, carrier, tracking, ETA and delivery date that make sense for ``status`` on ``today``."""
    days = lambda a, b: timedelta(days=rng.randint(a, b))  # noqa: E731
    carrier = rng.choice(CARRIERS)
    tracking = {"UPS": "1Z" + "".join(rng.choices("0123456789ABCDEFGHJKLMNPRSTUVWXYZ", k=16)),
                "FedEx": "".join(rng.choices("0123456789", k=12)),
                "USPS": "9400" + "".join(rng.choices("0123456789", k=18)),
                "DHL": "".join(rng.choices("0123456789", k=10))}[carrier]
    shipped = {"carrier": carrier, "tracking": tracking}
    if status == "pending":
        return {"placed_at": today - days(0, 1)}
    if status == "processing":
        return {"placed_at": today - days(0, 2), "eta": today + days(3, 6)}
    if status == "shipped":
        return {"placed_at": today - days(2, 5), "eta": today + days(1, 4), **shipped}
    if status == "out_for_delivery":
        return {"placed_at": today - days(2, 4), "eta": today, **shipped}
    if status == "delayed":
        return {"placed_at": today - days(8, 14), "eta": today + days(2, 5), **shipped}
    if status == "cancelled":
        return {"placed_at": today - days(5, 40)}
    placed = today - days(10, 90)
    return {"placed_at": placed, "delivered_at": placed + days(3, 7), **shipped}  # delivered, returned


def _item(index: int, quantity: int) -> OrderItem:
    sku, description, price = CATALOG[index]
    return OrderItem(sku, description, quantity, Decimal(price))


def _items(rng: random.Random) -> list[OrderItem]:
    return [_item(index, rng.randint(1, 4)) for index in rng.sample(range(len(CATALOG)), rng.randint(1, 3))]


def _random_customers(repo: Repository, rng: random.Random, today: date, count: int) -> list[Customer]:
    customers, used = [], {"+15550102030", "+442079460958"}
    while len(customers) < count:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        uk = rng.random() < 0.15
        phone = f"+44 20 7946 0{rng.randint(0, 999):03d}" if uk else \
            f"+1 {rng.choice(US_AREAS)} 555 01{rng.randint(0, 99):02d}"
        phones = [phone] + ([f"+1 {rng.choice(US_AREAS)} 555 01{rng.randint(0, 99):02d}"]
                            if not uk and rng.random() < 0.1 else [])
        if any(p.replace(" ", "") in used for p in phones):
            continue
        used.update(p.replace(" ", "") for p in phones)
        with_pin = rng.random() < 0.8
        birth = date(rng.randint(1950, 2003), rng.randint(1, 12), rng.randint(1, 28))
        customers.append(repo.add_customer(
            f"{first} {last}", phones, email=f"{first}.{last}{rng.randint(1, 99)}@example.com".lower(),
            pin=f"{rng.randint(0, 9999):04d}" if with_pin else None, pin_salt=rng.randbytes(16),
            date_of_birth=birth if (not with_pin or rng.random() < 0.7) else None,
            postcode=rng.choice(UK_POSTCODES if uk else US_ZIPS),
            created_at=datetime.combine(today - timedelta(days=rng.randint(30, 900)), time(9))))
    return customers


def _demo_customers(repo: Repository, rng: random.Random, today: date) -> list[Customer]:
    out = []
    for caller in DEMO_CALLERS:
        out.append(repo.add_customer(caller.name, [caller.phone], email=f"{caller.name.split()[0].lower()}@example.com",
                                     pin=caller.pin, pin_salt=rng.randbytes(16), date_of_birth=caller.date_of_birth,
                                     postcode=caller.postcode,
                                     created_at=datetime.combine(today - timedelta(days=400), time(9))))
    alice, tom = out
    repo.add_order("10452", alice.id, "shipped", today - timedelta(days=3), [_item(1, 1), _item(0, 2)],
                   carrier="UPS", tracking="1Z999AA10123456784", eta=today + timedelta(days=2))
    repo.add_order("10398", alice.id, "delivered", today - timedelta(days=40),
                   [_item(0, 1)], carrier="USPS",
                   tracking="9400111899223344556677", delivered_at=today - timedelta(days=36))
    repo.add_order("10460", tom.id, "delayed", today - timedelta(days=10), [_item(2, 1)], currency="GBP", carrier="DHL",
                   tracking="4839201746", eta=today + timedelta(days=4))
    repo.create_ticket("Delivery delayed", "Desk for order 10460 has not arrived.", customer_id=tom.id,
                       order_number="10460", phone=tom.phones[0],
                       created_at=datetime.combine(today - timedelta(days=2), time(11, 5)))
    repo.add_interaction("Asked about the chair order; gave the tracking number.", "resolved", phone=alice.phones[0],
                         customer_id=alice.id, started_at=datetime.combine(today - timedelta(days=20), time(10, 12)),
                         sentiment=0.4)
    return out


def _slots(repo: Repository, today: date) -> list:
    slots = []
    for offset in range(1, 15):
        day = today + timedelta(days=offset)
        if day.weekday() >= 5:
            continue
        for hour in (9, 10, 11, 13, 14, 15, 16):
            for service, resource in SERVICES:
                slots.append(repo.add_slot(service, datetime.combine(day, time(hour)), resource=resource))
    return slots


def seed_demo(repo: Repository, today: date | None = None, seed: int = 7, *, wipe: bool = False) -> SeedSummary:
    """Fill an empty CRM database with the demo company (``wipe`` empties a non-empty one first)."""
    today = today or date.today()
    rng = random.Random(seed)
    # The seed writes history and future bookings as of 08:00 on ``today``, whatever the real clock says.
    at = repo.with_clock(lambda: datetime.combine(today, time(8)))
    with repo.transaction():
        if any(repo.counts().values()):
            if not wipe:
                raise ValueError("the CRM database is not empty (use --force to replace its contents)")
            for table in ("bookings", "appointment_slots", "interactions", "callbacks", "leads", "tickets",
                          "order_items", "orders", "customer_phones", "customers"):
                repo.db.execute(f"delete from {table}")
        customers = _demo_customers(at, rng, today) + _random_customers(at, rng, today, 48)
        statuses = list(ORDER_STATUSES)  # the first orders cover every status, the rest are drawn
        number = 10500
        for customer in customers[2:]:
            for _ in range(rng.choice((0, 1, 1, 2, 2, 3, 4))):
                status = statuses.pop(0) if statuses else rng.choices(
                    ORDER_STATUSES, weights=(1, 2, 3, 1, 1, 8, 1, 1))[0]
                at.add_order(str(number), customer.id, status, items=_items(rng), **_order_dates(status, today, rng))
                number += 1
        for customer in rng.sample(customers[2:], 12):
            subject, text = rng.choice(TICKET_SUBJECTS)
            at.create_ticket(subject, text, customer_id=customer.id, phone=customer.phones[0],
                             status=rng.choice(("open", "open", "pending", "closed")),
                             priority=rng.choice(("low", "normal", "normal", "high")),
                             created_at=datetime.combine(today - timedelta(days=rng.randint(0, 30)), time(14)))
        for slot in rng.sample(_slots(at, today), 50):
            customer = rng.choice(customers[2:])
            at.book_slot(slot.id, name=customer.name, phone=customer.phones[0], customer_id=customer.id)
        for index, interest in enumerate(LEAD_INTERESTS):
            at.create_lead(f"{rng.choice(FIRST)} {rng.choice(LAST)}", interest,
                           phone=f"+1{rng.choice(US_AREAS)}55501{rng.randint(0, 99):02d}",
                           created_at=datetime.combine(today - timedelta(days=index * 3), time(16)))
        for customer in rng.sample(customers[2:], 5):
            at.request_callback(customer.phones[0], "Question about an invoice", preferred_time="weekday mornings",
                                customer_id=customer.id, status=rng.choice(("pending", "done")),
                                created_at=datetime.combine(today - timedelta(days=rng.randint(0, 7)), time(12)))
        for customer in customers[2:]:
            for _ in range(rng.randint(0, 3)):
                summary, outcome = rng.choice(CALL_SUMMARIES)
                started = datetime.combine(today - timedelta(days=rng.randint(1, 120)),
                                           time(rng.randint(8, 17), rng.randint(0, 59)))
                at.add_interaction(summary, outcome, phone=customer.phones[0], customer_id=customer.id,
                                   started_at=started, sentiment=round(rng.uniform(-0.8, 0.8), 2))
    return SeedSummary(today, seed, repo.counts())
