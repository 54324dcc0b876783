"""Tags, notes and the reviewed mark as a timeline: a supervisor marks a call on its page (CSRF-protected POST),
the list filters by tag and by reviewed, the access log records it, the note keeps no PIN, and the call store
(opened read-only by the app) is not touched."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timezone

import pytest
from starlette.testclient import TestClient

from review_export_support import build_export_env
from review_support import ADMIN, SUPERVISOR
from voicebot.review.annotations import AnnotationError, Annotations, parse_tags
from voicebot.review.app import create_app
from voicebot.review.users import ReviewDB


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return build_export_env(tmp_path_factory.mktemp("review-annotations"))


@pytest.fixture
def client(env):
    with TestClient(create_app(env.config, redact_logs=False), follow_redirects=False) as c:
        yield c


def login(client, user) -> str:
    client.cookies.clear()
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    client.post("/login", data={"csrf_token": token, "username": user[0], "password": user[1]})
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/calls").text).group(1)


def list_ids(client, query: str) -> set[str]:
    return set(re.findall(r'data-href="/calls/([^"]+)"', client.get(f"/calls?{query}").text))


def test_tags_are_parsed_into_safe_words():
    assert parse_tags("Refund, follow-up  vip,refund") == ["refund", "follow-up", "vip"]
    assert parse_tags("  ") == []
    for bad in ("<script>", "a" * 31, "x/y", ",".join(f"t{i}" for i in range(11))):
        with pytest.raises(AnnotationError):
            parse_tags(bad)


def test_the_reviewed_mark_keeps_who_first_set_it(tmp_path):
    clock = iter([datetime(2026, 3, 3, 9, m, tzinfo=timezone.utc) for m in range(10)])
    notes = Annotations(tmp_path / "review.db", now=lambda: next(clock))
    try:
        first = notes.save("c1", tags=["vip"], note="", reviewed=True, user="sue")
        again = notes.save("c1", tags=["vip", "refund"], note="more", reviewed=True, user="ada")
        assert (again.reviewed_by, again.reviewed_at, again.updated_by) == ("sue", first.reviewed_at, "ada")
        cleared = notes.save("c1", tags=[], note="", reviewed=False, user="ada")
        assert (cleared.reviewed, cleared.reviewed_by, cleared.tags) == (False, None, [])
        assert notes.get("unknown").tags == [] and notes.ids_reviewed() == []
    finally:
        notes.close()


def test_a_supervisor_tags_notes_and_marks_a_call_and_the_list_filters_on_it(client, env):
    csrf = login(client, SUPERVISOR)
    before = list_ids(client, "")
    assert "order-call" in before and list_ids(client, "reviewed=yes") == set()
    # 1. marked on the call page
    saved = client.post("/calls/order-call/annotations", data={
        "csrf_token": csrf, "tags": "Refund, follow-up", "note": "Caller gave PIN 4821 again; check the refund.",
        "reviewed": "1"})
    assert saved.status_code == 303 and saved.headers["location"] == "/calls/order-call?saved=1#review"
    page = client.get("/calls/order-call?saved=1").text
    assert "✓ reviewed" in page and 'value="refund, follow-up"' in page and "Saved." in page
    assert "PIN ••••" in page and "4821" not in page
    # 2. the list filters by tag and by the mark
    assert list_ids(client, "tag=refund") == {"order-call"}
    assert list_ids(client, "reviewed=yes") == {"order-call"}
    assert list_ids(client, "reviewed=no") == before - {"order-call"}
    assert list_ids(client, "tag=vip") == set()
    assert list_ids(client, "direction=out") == {"out-call", "reminder-call"}
    assert list_ids(client, "direction=in") == before - {"out-call", "reminder-call"}
    listing = client.get("/calls").text
    assert '<span class="chip small tag">refund</span>' in listing
    # 3. the access log says who changed what (never the note's words)
    db = ReviewDB(env.config.path(env.config.review.database))
    try:
        entry = next(e for e in db.access_entries(200) if e.action == "annotate")
    finally:
        db.close()
    assert (entry.username, entry.call_id) == ("sue", "order-call")
    assert "tags=refund,follow-up" in entry.detail and "reviewed=yes" in entry.detail and "4821" not in entry.detail


def test_the_note_is_stored_without_secrets_and_not_in_the_call_store(env):
    db = sqlite3.connect(env.config.path(env.config.review.database))
    note = db.execute("SELECT note FROM call_annotations WHERE call_id = 'order-call'").fetchone()
    db.close()
    assert note and "4821" not in note[0] and "refund" in note[0]
    calls = sqlite3.connect(env.config.path(env.config.store.database))
    tables = {r[0] for r in calls.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    calls.close()
    assert "call_annotations" not in tables


def test_posts_need_the_token_and_valid_tags(client):
    csrf = login(client, ADMIN)
    assert client.post("/calls/pin-call/annotations", data={"tags": "x", "reviewed": "1"}).status_code == 403
    assert client.post("/calls/pin-call/annotations", data={"csrf_token": "wrong", "tags": "x"}).status_code == 403
    bad = client.post("/calls/pin-call/annotations", data={"csrf_token": csrf, "tags": "<b>bold</b>"})
    assert bad.status_code == 400 and "Not saved" in bad.text and "<b>bold" not in bad.text
    assert client.post("/calls/nope/annotations", data={"csrf_token": csrf, "tags": "x"}).status_code == 404
    assert list_ids(client, "tag=x") == set()


def test_a_bad_tag_in_the_filter_is_ignored_with_a_message(client):
    login(client, SUPERVISOR)
    page = client.get("/calls?tag=%3Cscript%3E").text
    assert "Ignored: tag:" in page and "<script>" not in page
