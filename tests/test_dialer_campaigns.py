"""`voicebot campaign add|list|pause|resume` and `voicebot dial` (issue 18) through typer's CliRunner on a real
SQLite CRM: what they queue for the serving dialer (purpose, window, limits, one row per number), what they
refuse before writing anything, and that a paused campaign's calls wait. The dialling itself is tested over real
SIP in test_dialer_sip_outbound.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from voicebot.cli import app
from voicebot.config_dialer import DialerConfig
from voicebot.crm.repository import Repository
from voicebot.dialer.ledger import CallbackLedger
from voicebot.dialer.policy import DialPolicy

runner = CliRunner()
ALICE, BOB = "+15550102030", "+15550104040"


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("crm:\n  database: crm.db\n")
    repo = Repository.open(tmp_path / "crm.db")
    alice = repo.add_customer("Alice Smith", [ALICE])
    slot = repo.add_slot("Printer repair", datetime(2099, 3, 3, 10), resource="Tech A")
    repo.book_slot(slot.id, name="Alice Smith", customer_id=alice.id)
    repo.close()
    return path


def cli(config, *args):
    return runner.invoke(app, [*args, "--config", str(config)])


def rows(config) -> list[dict]:
    repo = Repository.open(config.parent / "crm.db")
    try:
        return list(repo.db.query("select * from callbacks order by id"))
    finally:
        repo.close()


def test_a_csv_campaign_queues_one_call_per_number_in_its_window(config, tmp_path):
    csv = tmp_path / "targets.csv"
    csv.write_text("phone,reason\n+15550102030,a\n(555) 010-4040,b\n+1 555 010 2030,again\n")
    result = cli(config, "campaign", "add", "spring", "--csv", str(csv), "--message", "Our shop moves on April 1.",
                 "--start", "2026-03-03T09:00", "--end", "2026-03-10", "--max-attempts", "2")
    assert result.exit_code == 0, result.output
    assert "campaign 1 'spring': message, 2 call(s) queued" in result.output
    queued = rows(config)
    assert [(r["phone"], r["purpose"], r["campaign_id"], r["max_attempts"]) for r in queued] == [
        (ALICE, "message", 1, 2), (BOB, "message", 1, 2)]
    assert queued[0]["reason"] == "Our shop moves on April 1."  # what the bot will say
    assert (queued[0]["preferred_time"], queued[0]["not_after"]) == ("2026-03-03T09:00:00", "2026-03-10T00:00:00")
    listing = cli(config, "campaign", "list")
    assert "spring" in listing.output and "pending 2" in listing.output


def test_bad_rows_or_a_reminder_without_bookings_queue_nothing(config, tmp_path):
    csv = tmp_path / "targets.csv"
    csv.write_text("phone\n+15550102030\nnot a phone\n")
    result = cli(config, "campaign", "add", "x", "--csv", str(csv), "--message", "hi")
    assert result.exit_code == 1 and "line 3: 'not a phone' is not a phone number" in result.output
    csv.write_text("phone\n+15550102030\n")
    result = cli(config, "campaign", "add", "y", "--purpose", "reminder", "--csv", str(csv))
    assert result.exit_code == 1 and "a reminder needs a booking" in result.output
    assert cli(config, "campaign", "add", "z", "--csv", str(csv)).exit_code == 1  # a message needs --message
    assert cli(config, "campaign", "add", "z", "--message", "hi").exit_code == 2  # no target list
    assert rows(config) == []


def test_a_reminder_campaign_from_the_crm_and_pause_resume(config):
    result = cli(config, "campaign", "add", "remind", "--purpose", "reminder", "--crm", "upcoming-bookings")
    assert result.exit_code == 0, result.output
    [row] = rows(config)
    assert (row["purpose"], row["booking_id"], row["phone"]) == ("reminder", 1, ALICE)
    repo = Repository.open(config.parent / "crm.db")
    try:
        ledger = CallbackLedger(repo, 3)
        assert [c.id for c in ledger.pending()] == [row["id"]]
        assert cli(config, "campaign", "pause", "remind").exit_code == 0
        assert ledger.pending() == []  # held
        assert "paused" in cli(config, "campaign", "list").output
        assert cli(config, "campaign", "resume", "1").exit_code == 0
        assert [c.id for c in ledger.pending()] == [row["id"]]
        assert cli(config, "campaign", "pause", "nope").exit_code == 1
    finally:
        repo.close()


def test_dial_queues_one_call_due_now(config):
    result = cli(config, "dial", "(555) 010-2030", "--purpose", "callback", "--reason", "your quote, PIN 4821")
    assert result.exit_code == 0 and "call 1 queued (callback)" in result.output
    [row] = rows(config)
    assert (row["phone"], row["customer_id"], row["status"], row["purpose"]) == (ALICE, 1, "pending", "callback")
    assert "4821" not in row["reason"]
    repo = Repository.open(config.parent / "crm.db")
    try:
        [due] = CallbackLedger(repo, 3).pending()
        open_now = DialerConfig(hours={d: "00:00-24:00" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
        assert DialPolicy(open_now, 4).why_not(due, datetime.now(UTC), set()) is None
    finally:
        repo.close()
    assert cli(config, "dial", "12", "--purpose", "callback").exit_code == 1
    assert cli(config, "dial", ALICE, "--purpose", "reminder").exit_code == 1  # no booking
    waited = cli(config, "dial", ALICE, "--reason", "x", "--wait", "0.6")
    assert waited.exit_code == 1 and "pending (not dialled yet, 0 attempt(s))" in waited.output  # no dialer ran
