"""`voicebot review export` as each role: the same redaction as the pages (a supervisor never gets a PIN, card
number, date of birth or full phone number; an admin gets the record as stored), CSV and JSON, filters, outbound
calls with their purpose and result."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, timedelta

import pytest
from markupsafe import escape
from starlette.testclient import TestClient
from typer.testing import CliRunner

from review_export_support import CARD_DIGITS, DOB, OUT_PHONE, PIN_SPOKEN, PURPOSE, build_export_env, secrets_in
from review_support import SUPERVISOR
from voicebot.cli import app
from voicebot.review.app import create_app

runner = CliRunner()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    folder = tmp_path_factory.mktemp("review-export")
    return build_export_env(folder)


def export(env, *args: str):
    result = runner.invoke(app, ["review", "export", *args, "--config", str(env.config.base_dir / "config.yaml")])
    return result


def exported_json(env, *args: str) -> list[dict]:
    result = export(env, "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_supervisor_export_holds_no_secret_and_matches_the_call_page(env):
    calls = exported_json(env, "--role", "supervisor")
    ids = {c["id"] for c in calls}
    assert {"card-call", "pin-call", "order-call", "dob-call", "out-call"} <= ids and len(calls) == 18
    assert secrets_in(json.dumps(calls, ensure_ascii=False)) == []
    by_id = {c["id"]: c for c in calls}
    card_turns = [t["text"] for t in by_id["card-call"]["turns"]]
    assert any("[card •••• 1111]" in t for t in card_turns)
    dob_call = by_id["dob-call"]
    assert dob_call["turns"][1]["text"] == "My date of birth is ••••."
    tool = dob_call["turns"][2]["tools"][0]
    assert tool["arguments"]["date_of_birth"] == "••••" and tool["arguments"]["phone"] == "+1 555 ••• 2030"
    assert by_id["card-call"]["caller"] == "+1 555 ••• 2030"
    # the pages show the supervisor exactly these words
    with TestClient(create_app(env.config, redact_logs=False), follow_redirects=False) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        client.post("/login", data={"csrf_token": token, "username": SUPERVISOR[0], "password": SUPERVISOR[1]})
        for call_id in ("card-call", "pin-call", "dob-call"):
            shown = client.get(f"/calls/{call_id}").text
            for turn in by_id[call_id]["turns"]:
                assert str(escape(turn["text"])) in shown


def test_an_admin_export_is_the_record_as_stored(env):
    text = json.dumps(exported_json(env, "--role", "admin"), ensure_ascii=False)
    assert DOB in text and PIN_SPOKEN in text and "4111 1111 1111 1111" in text and "+15550102030" in text


def test_csv_calls_and_turns(env, tmp_path):
    out = tmp_path / "calls.csv"
    result = export(env, "--format", "csv", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "exported 18 call(s) as supervisor" in result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 18 and secrets_in(out.read_text(encoding="utf-8")) == []
    outbound = next(r for r in rows if r["id"] == "out-call")
    assert (outbound["direction"], outbound["purpose"], outbound["result"]) == ("out", PURPOSE, "answered")
    reminder = next(r for r in rows if r["id"] == "reminder-call")
    assert (reminder["direction"], reminder["purpose"], reminder["result"]) == ("out", "reminder", "confirmed")
    assert {r["direction"] for r in rows if r["id"] not in ("out-call", "reminder-call")} == {"in"}
    turns = export(env, "--format", "csv", "--table", "turns")
    assert turns.exit_code == 0, turns.output
    turn_rows = list(csv.DictReader(io.StringIO(turns.stdout)))
    assert {r["call_id"] for r in turn_rows} >= {"dob-call", "card-call"}
    assert secrets_in(turns.stdout) == [] and "[card •••• 1111]" in turns.stdout
    admin = export(env, "--format", "csv", "--table", "turns", "--role", "admin")
    assert CARD_DIGITS in admin.stdout.replace(" ", "") and DOB in admin.stdout
    from voicebot.review.users import ReviewDB

    db = ReviewDB(env.config.path(env.config.review.database))
    try:
        exports = [e for e in db.access_entries(100) if e.action == "export"]
    finally:
        db.close()
    assert exports[0].role == "admin" and exports[0].detail.startswith("csv turns")  # each export is on record


def test_filters_by_day_outcome_and_test_calls(env):
    future = (date.today() + timedelta(days=3)).isoformat()
    assert exported_json(env, "--from", future) == []
    resolved = exported_json(env, "--outcome", "resolved")
    assert resolved and {c["outcome"] for c in resolved} == {"resolved"}
    yesterday, before = (date.today() - timedelta(days=n) for n in (1, 2))
    assert "out-call" in {c["id"] for c in exported_json(env, "--from", yesterday.isoformat())}
    assert "out-call" not in {c["id"] for c in exported_json(env, "--to", before.isoformat())}


def test_bad_options_fail_without_output(env):
    for args in (["--role", "viewer"], ["--format", "xml"], ["--from", "yesterday"], ["--table", "events"]):
        result = export(env, *args)
        assert result.exit_code == 2, (args, result.output)
        assert not result.stdout.lstrip().startswith(("[", "id,"))


def test_the_outbound_caller_number_is_masked_for_supervisors(env):
    row = next(c for c in exported_json(env) if c["id"] == "out-call")
    assert row["caller"] != OUT_PHONE and row["caller"].endswith("9999")


def test_a_call_only_the_ledger_names_is_outbound_too():
    """Calls placed before the store recorded a direction: the CRM ledger's attempt marks them."""
    from datetime import datetime, timezone

    from voicebot.review.outbound import Outbound
    from voicebot.review.pages import list_row
    from voicebot.review.queries import CallRow
    from voicebot.store import Call, Outcome

    call = Call("old", datetime(2026, 3, 1, tzinfo=timezone.utc), "+15550109999", Outcome.RESOLVED)
    assert list_row(CallRow(call), "supervisor").direction == "in"
    row = list_row(CallRow(call), "supervisor", outbound=Outbound(7, "PIN 4821 problem", "busy", 486))
    assert (row.direction, row.purpose, row.result) == ("out", "callback · PIN •••• problem", "busy")
