"""`voicebot review ...` through typer's CliRunner, on databases the test's config names."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from voicebot.cli import app
from voicebot.review.analysis import load_analysis
from voicebot.review.users import ReviewDB
from voicebot.store import CallStore

runner = CliRunner()


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("store:\n  database: data/calls.db\n  recordings_dir: data/recordings\n"
                    "crm:\n  database: data/crm.db\nreview:\n  database: data/review.db\n", encoding="utf-8")
    return path


def review(config, *args, **kwargs):
    return runner.invoke(app, ["review", *args, "--config", str(config)], **kwargs)


def test_serving_without_a_store_says_how_to_make_one(config):
    for args in ([], ["serve"]):
        result = review(config, *args)
        assert result.exit_code == 1
        assert "no call store at" in result.output and "voicebot review seed-demo" in result.output


def test_review_serves_the_app_by_default(config, monkeypatch):
    import uvicorn

    served = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: served.append(self.config))
    assert review(config, "seed-demo", "--calls", "5", "--recordings", "0").exit_code == 0
    result = runner.invoke(app, ["review", "--config", str(config), "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8123/" in result.output and "no users yet" in result.output
    assert served[0].port == 8123 and served[0].host == "127.0.0.1"


def test_add_user_hashes_the_password(config):
    result = review(config, "add-user", "alice", "--role", "supervisor", input="harbour-lamp-7\nharbour-lamp-7\n")
    assert result.exit_code == 0, result.output
    assert "added supervisor 'alice'" in result.output
    db = ReviewDB(config.parent / "data" / "review.db")
    assert db.authenticate("alice", "harbour-lamp-7").role == "supervisor"
    stored = db._db.execute("SELECT password_hash FROM users").fetchone()[0]
    assert stored.startswith("$argon2id$") and "harbour-lamp-7" not in stored
    db.close()
    assert re.search(r"alice\s+supervisor", review(config, "users").output)


@pytest.mark.parametrize("args, message", [
    (["bob", "--role", "boss", "--password", "long-enough-1"], "role 'boss'"),
    (["bob", "--password", "short"], "at least 10 characters"),
    (["bad name!", "--password", "long-enough-1"], "user name"),
])
def test_add_user_refuses_bad_input(config, args, message):
    result = review(config, "add-user", *args)
    assert result.exit_code == 1 and message in result.output


def test_add_user_twice_needs_replace(config):
    assert review(config, "add-user", "ada", "--role", "admin", "--password", "admin-pass-1").exit_code == 0
    again = review(config, "add-user", "ada", "--password", "other-pass-1")
    assert again.exit_code == 1 and "--replace" in again.output
    assert review(config, "add-user", "ada", "--password", "other-pass-1", "--replace").exit_code == 0
    db = ReviewDB(config.parent / "data" / "review.db")
    assert db.authenticate("ada", "other-pass-1").role == "supervisor"
    db.close()


def test_seed_demo_then_analyze(config):
    result = review(config, "seed-demo", "--calls", "12", "--days", "3", "--recordings", "2")
    assert result.exit_code == 0, result.output
    assert "seeded 12 demo calls" in result.output
    again = review(config, "seed-demo", "--calls", "3")
    assert again.exit_code == 1 and "--seed" in again.output
    result = review(config, "analyze", "--all", "--no-model")
    assert result.exit_code == 0, result.output
    assert "analysed 12 call(s)" in result.output
    store = CallStore(config.parent / "data" / "calls.db", config.parent / "data" / "recordings")
    call_id = store.list_calls(limit=1)[0].id
    store.close()
    result = review(config, "analyze", call_id, "--no-model")
    assert result.exit_code == 0 and call_id in result.output
    store = CallStore(config.parent / "data" / "calls.db", config.parent / "data" / "recordings")
    assert load_analysis(store, call_id).model == "demo"  # --no-model keeps the earlier model part
    store.close()


def test_analyze_needs_exactly_one_choice(config):
    assert review(config, "analyze").exit_code == 2
    assert review(config, "analyze", "x", "--all").exit_code == 2
    result = review(config, "analyze", "--all", "--no-model")
    assert result.exit_code == 1 and "no call store" in result.output


def test_a_bad_time_zone_is_a_config_error(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("review:\n  timezone: Mars/Olympus_Mons\n", encoding="utf-8")
    result = review(path)
    assert result.exit_code == 2 and "review.timezone" in result.output and "not a known time zone" in result.output
