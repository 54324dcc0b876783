"""CSV import: every row checked, bad rows reported with line and reason, nothing imported on any failure."""

from __future__ import annotations

from datetime import datetime

import pytest
from crm_support import dump, make_repo

from voicebot.crm.importer import RejectedRow, import_csv
from voicebot.crm.repository import Repository

CUSTOMERS = """name,phone,email,pin,date_of_birth,postcode
Alice Johnson,+1 555 010 2030,alice@example.com,1234,1985-03-14,98101
Tom Baker,0044 20 7946 0958;555-010-2040,,,1979-11-02,SW1A 1AA
"""

ORDERS = """order_number,customer_phone,status,placed_at,sku,description,quantity,unit_price,carrier,tracking,eta
10452,555-010-2030,shipped,2026-02-27,CHR-1,Office chair,1,189.00,UPS,1Z999AA10123456784,2026-03-04
10452,555-010-2030,shipped,2026-02-27,PAP-5,Copy paper,2,$24.99,UPS,1Z999AA10123456784,2026-03-04
10453,+44 20 7946 0958,delivered,2026-01-10,LMP-2,Desk lamp,1,45,,,
"""

SLOTS = """service,starts_at,duration_min,resource
printer repair,2026-03-04 09:00,90,Sam Ortiz
printer repair,2026-03-04T09:00,,Priya Nair
  Laptop Setup ,2026-03-05 14:30,,
"""


@pytest.fixture
def repo():
    return make_repo()


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_customers_then_orders_import(repo, tmp_path):
    report = import_csv(repo, write(tmp_path, "customers.csv", CUSTOMERS))
    assert (report.ok, report.kind, report.imported) == (True, "customers", 2)
    tom = repo.find_customer_by_phone("555-010-2040")
    assert tom.name == "Tom Baker" and tom.phones == ("+442079460958", "+15550102040")
    assert repo.verification_record(tom.id).pin_hash is None
    report = import_csv(repo, write(tmp_path, "orders.csv", ORDERS))
    assert (report.ok, report.kind, report.rows, report.imported) == (True, "orders", 3, 2)
    order = repo.get_order("10452")
    assert str(order.total) == "238.98" and len(order.items) == 2 and order.carrier == "UPS"
    assert repo.get_order("10453", tom.id).currency == "USD"


def test_a_malformed_customers_file_reports_its_bad_rows_and_imports_nothing(repo, tmp_path):
    repo.add_customer("Existing", ["+1 312 555 0100"])
    before = dump(repo)
    bad = CUSTOMERS + (
        ",555-010-2050,,,,\n"                                # line 4: no name
        "Carol,not a phone,carol@example,12,1990-02-30,\n"    # line 5: four problems
        "\n"                                                 # line 6: blank, skipped
        "Dave,555-010-2030,,,,\n"                            # line 7: phone also on line 2
        "Erin,312-555-0100,,,,\n"                            # line 8: phone already in the database
        "Frank,555-010-2060,,,,,extra\n"                     # line 9: too many fields
    )
    report = import_csv(repo, write(tmp_path, "customers.csv", bad))
    assert not report.ok and report.imported == 0
    lines = {r.line: r.reason for r in report.rejected}
    assert sorted(lines) == [4, 5, 7, 8, 9]
    assert "name is empty" in lines[4]
    for part in ("'not a phone' is not a phone number", "email", "pin must be 4 to 8 digits", "date_of_birth"):
        assert part in lines[5]
    assert "also on line 2" in lines[7]
    assert "already belongs to Existing" in lines[8]
    assert "7 fields" in lines[9]
    assert dump(repo) == before  # the good rows on lines 2 and 3 were not imported either


def test_bad_order_rows_are_reported(repo, tmp_path):
    import_csv(repo, write(tmp_path, "customers.csv", CUSTOMERS))
    before = dump(repo)
    bad = ORDERS + (
        "10454,555-010-9999,lost,2026-13-01,X,,0,abc,,,\n"     # line 5
        "10452,555-010-2030,delivered,2026-02-27,Y,Pen,1,1.00,UPS,1Z999AA10123456784,2026-03-04\n"  # line 6
    )
    report = import_csv(repo, write(tmp_path, "orders.csv", bad))
    assert [r.line for r in report.rejected] == [5, 6]
    reason = report.rejected[0].reason
    for part in ("no customer has the phone +15550109999", "status 'lost'", "placed_at", "description is empty",
                 "quantity '0'", "unit_price 'abc'"):
        assert part in reason
    assert "status differ from line 2" in report.rejected[1].reason
    assert dump(repo) == before


def test_a_header_problem_is_line_one(repo, tmp_path):
    report = import_csv(repo, write(tmp_path, "x.csv", "name,phone,shoe_size\nAl,555-010-2030,9\n"))
    assert report.rejected == (RejectedRow(1, "unknown column 'shoe_size'"),)
    report = import_csv(repo, write(tmp_path, "y.csv", "foo,bar\n1,2\n"))
    assert report.rejected[0].line == 1 and "cannot tell customers, orders or slots" in report.rejected[0].reason
    report = import_csv(repo, write(tmp_path, "z.csv", "service,starts_at,room\nrepair,2026-03-04 09:00,1\n"))
    assert report.rejected == (RejectedRow(1, "unknown column 'room'"),) and report.kind == "slots"
    assert repo.counts()["customers"] == 0 and repo.counts()["appointment_slots"] == 0


def test_a_failure_while_writing_rolls_everything_back(repo, tmp_path, monkeypatch):
    real_add = Repository.add_customer
    calls = []

    def failing_add(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_add(self, *args, **kwargs)

    monkeypatch.setattr(Repository, "add_customer", failing_add)
    with pytest.raises(OSError):
        import_csv(repo, write(tmp_path, "customers.csv", CUSTOMERS))
    assert len(calls) == 2 and repo.counts()["customers"] == 0 and repo.counts()["customer_phones"] == 0


def test_slots_import_and_are_offered(repo, tmp_path):
    report = import_csv(repo, write(tmp_path, "slots.csv", SLOTS))
    assert (report.ok, report.kind, report.rows, report.imported) == (True, "slots", 3, 3)
    repair = repo.list_free_slots(service="repair")
    assert [(s.service, s.starts_at, s.duration_min, s.resource) for s in repair] == [
        ("printer repair", datetime(2026, 3, 4, 9), 60, "Priya Nair"),
        ("printer repair", datetime(2026, 3, 4, 9), 90, "Sam Ortiz")]
    (laptop,) = repo.list_free_slots(service="laptop")
    assert (laptop.service, laptop.resource, laptop.duration_min) == ("Laptop Setup", "Laptop Setup", 60)
    assert repo.services() == ["Laptop Setup", "printer repair"]
    stored = [r["starts_at"] for r in repo.db["appointment_slots"].rows]
    assert stored == ["2026-03-04T09:00:00", "2026-03-04T09:00:00", "2026-03-05T14:30:00"]  # as the seed stores them


def test_bad_slot_rows_are_reported_and_nothing_is_imported(repo, tmp_path):
    repo.add_slot("printer repair", datetime(2026, 3, 6, 10), resource="Sam Ortiz")
    before = dump(repo)
    bad = SLOTS + (
        ",2026-03-06 09:00,,Sam Ortiz\n"                   # line 5: no service
        "printer repair,next Tuesday,,\n"                  # line 6: not a date-time
        "printer repair,2026-03-06,,\n"                    # line 7: a date without a time
        "printer repair,2026-03-06 09:00+01:00,,\n"        # line 8: not local wall-clock time
        "printer repair,2026-03-02 09:00,,\n"              # line 9: before NOW (09:30)
        "printer repair,2026-03-06 11:00,0,\n"             # line 10: too short
        "printer repair,2026-03-06 12:00,1.5,\n"           # line 11: not whole
        "printer repair,2026-03-06 13:00,1441,\n"          # line 12: longer than a day
        "printer repair,2026-03-04 09:00,30,Sam Ortiz\n"   # line 13: Sam Ortiz at 09:00 is also on line 2
        "Printer Repair,2026-03-06T10:00,,Sam Ortiz\n"     # line 14: Sam Ortiz has that slot in the database
    )
    report = import_csv(repo, write(tmp_path, "slots.csv", bad))
    assert not report.ok and report.imported == 0
    lines = {r.line: r.reason for r in report.rejected}
    assert sorted(lines) == list(range(5, 15))
    assert lines[5] == "service is empty"
    for line in (6, 7, 8):
        assert "is not a date and time (YYYY-MM-DD HH:MM, local time)" in lines[line]
    assert lines[9] == "starts_at 2026-03-02T09:00:00 is in the past (now is 2026-03-02T09:30:00)"
    for line, value in ((10, "'0'"), (11, "'1.5'"), (12, "'1441'")):
        assert lines[line] == f"duration_min {value} is not a whole number of minutes from 5 to 1440"
    assert lines[13] == "resource 'Sam Ortiz' at 2026-03-04T09:00:00 is also on line 2"
    assert lines[14] == "resource 'Sam Ortiz' already has a slot at 2026-03-06T10:00:00"
    assert dump(repo) == before  # lines 2 to 4 were written to be checked, then rolled back


def test_a_slot_clashing_with_the_database_rejects_the_whole_file(repo, tmp_path):
    import_csv(repo, write(tmp_path, "slots.csv", SLOTS))
    before = dump(repo)
    again = "service,starts_at\nlaptop setup,2026-03-09 10:00\nLaptop Setup,2026-03-05 14:30\n"
    report = import_csv(repo, write(tmp_path, "more.csv", again))
    assert report.rejected == (RejectedRow(3, "resource 'Laptop Setup' already has a slot at 2026-03-05T14:30:00"),)
    assert dump(repo) == before  # line 2 is not imported either
    assert import_csv(repo, write(tmp_path, "ok.csv", again.replace("14:30", "15:30"))).imported == 2
