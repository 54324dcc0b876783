"""`voicebot crm seed | import | show` through typer's CliRunner, on a database the test's config names."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from crm_support import dump
from typer.testing import CliRunner

from voicebot.cli import app
from voicebot.crm.repository import Repository

runner = CliRunner()


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("crm:\n  database: data/crm.db\n  default_region: US\n", encoding="utf-8")
    return path


def crm(config, *args):
    return runner.invoke(app, ["crm", *args, "--config", str(config)])


def open_db(config) -> Repository:
    return Repository.open(config.parent / "data" / "crm.db")


def test_seed_creates_the_demo_company_where_the_config_says(config):
    result = crm(config, "seed", "--today", "2026-03-02")
    assert result.exit_code == 0, result.output
    assert re.search(r"customers\s*│\s*50\b", result.output)
    assert "Alice" in result.output and "1234" in result.output  # the demo callers to try
    repo = open_db(config)
    assert repo.counts()["customers"] == 50
    assert repo.get_order("10452").eta.isoformat() == "2026-03-04"
    before = dump(repo)
    again = crm(config, "seed", "--today", "2026-03-02")
    assert again.exit_code == 1 and "not empty" in again.output
    assert dump(repo) == before
    assert crm(config, "seed", "--today", "2026-03-09", "--force").exit_code == 0
    assert repo.get_order("10452").eta.isoformat() == "2026-03-11"


def test_show_prints_what_the_bot_knows_about_a_caller(config):
    crm(config, "seed", "--today", "2026-03-02")
    result = crm(config, "show", "555-010-2030")
    assert result.exit_code == 0, result.output
    out = result.output
    for expected in ("Alice Johnson", "+15550102030", "verification on file: PIN or date of birth + postcode",
                     "10452", "shipped", "UPS", "recent calls"):
        assert expected in out, expected
    assert "pbkdf2" not in out and "1985-03-14" not in out  # secrets stay out
    tom = crm(config, "show", "0044 20 7946 0958")
    assert tom.exit_code == 0 and "Tom Baker" in tom.output and "Delivery delayed" in tom.output
    unknown = crm(config, "show", "+1 999 000 1111")
    assert unknown.exit_code == 1 and "unknown caller +19990001111" in unknown.output


def test_import_reports_bad_rows_and_changes_nothing(config, tmp_path):
    crm(config, "seed", "--today", "2026-03-02")
    before = dump(open_db(config))
    bad = tmp_path / "customers.csv"
    bad.write_text("name,phone\nZoe Park,555-010-2099\nNo Phone,\nAlice Again,+1 555 010 2030\n", encoding="utf-8")
    result = crm(config, "import", str(bad))
    assert result.exit_code == 1
    assert "2 row(s) rejected, nothing imported" in result.output
    assert re.search(r"│ 3\s+│ phone is empty", result.output)
    assert re.search(r"│ 4\s+│ phone \+15550102030 already belongs to Alice", result.output)
    assert dump(open_db(config)) == before

    good = tmp_path / "new.csv"
    good.write_text("name,phone,pin\nZoe Park,555-010-2099,4321\n", encoding="utf-8")
    result = crm(config, "import", str(good))
    assert result.exit_code == 0 and "imported 1 customer (1 row(s))" in result.output
    assert open_db(config).find_customer_by_phone("5550102099").name == "Zoe Park"
    assert crm(config, "import", str(good), "--kind", "parrots").exit_code == 2


def test_import_slots_makes_them_bookable(config, tmp_path):
    day = date.today() + timedelta(days=30)  # the CLI's clock is the real one
    slots = tmp_path / "slots.csv"
    slots.write_text(f"service,starts_at,resource\nbike fitting,{day} 10:00,Bay 2\nbike fitting,{day}T10:00,Bay 1\n",
                     encoding="utf-8")
    result = crm(config, "import", str(slots))
    assert result.exit_code == 0, result.output
    assert "imported 2 slots (2 row(s))" in result.output and "services with slots: bike fitting" in result.output
    free = open_db(config).list_free_slots(service="Bike")
    assert [(s.resource, s.starts_at.isoformat(), s.duration_min) for s in free] == [
        ("Bay 1", f"{day}T10:00:00", 60), ("Bay 2", f"{day}T10:00:00", 60)]
    before = dump(open_db(config))
    again = crm(config, "import", str(slots), "--kind", "slots")
    assert again.exit_code == 1 and "2 row(s) rejected, nothing imported" in again.output
    assert re.search(r"│ 3\s+│ resource 'Bay 1' already has a slot", again.output)
    assert dump(open_db(config)) == before
