"""The read-only API (/api/v1/calls) as a timeline: tokens made by `voicebot review add-token` (shown once, stored
hashed), each role's view redacted like the pages, a missing/bad/revoked token 401 with no data, no writes, and
every request in the access log. One test runs over real HTTP (uvicorn on a port of this module's range)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
import urllib.error
import urllib.request

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from review_export_support import DOB, PIN_SPOKEN, PURPOSE, build_export_env, secrets_in, serve_on
from voicebot.cli import app
from voicebot.review.api import ApiTokens, TokenError
from voicebot.review.app import create_app
from voicebot.review.users import ReviewDB

PORT = 24517  # this module's port (the review tests' range is 24500-24999)
runner = CliRunner()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    folder = tmp_path_factory.mktemp("review-api")
    return build_export_env(folder)


def add_token(env, name: str, role: str) -> str:
    result = runner.invoke(app, ["review", "add-token", name, "--role", role,
                                 "--config", str(env.config.base_dir / "config.yaml")])
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def tokens(env):
    return {"supervisor": add_token(env, "bi-viewer", "supervisor"), "admin": add_token(env, "auditor", "admin")}


@pytest.fixture
def client(env):
    with TestClient(create_app(env.config, redact_logs=False), follow_redirects=False) as c:
        yield c


def get(client, path: str, token: str | None):
    return client.get(path, headers={"Authorization": f"Bearer {token}"} if token else {})


def test_tokens_are_shown_once_and_stored_hashed(env, tokens):
    supervisor = tokens["supervisor"]
    assert supervisor.startswith("vbr_") and len(supervisor) > 40
    db = sqlite3.connect(env.config.path(env.config.review.database))
    stored = db.execute("SELECT name, role, token_hash FROM api_tokens ORDER BY name").fetchall()
    db.close()
    assert ("bi-viewer", "supervisor", hashlib.sha256(supervisor.encode()).hexdigest()) in stored
    assert supervisor not in repr(stored)
    store = ApiTokens(env.config.path(env.config.review.database))
    try:
        with pytest.raises(TokenError, match="exists"):
            store.add("bi-viewer", "supervisor")
        with pytest.raises(TokenError, match="role"):
            store.add("someone", "root")
        with pytest.raises(TokenError, match="role"):  # an operator sees the live screen only, never the history
            store.add("someone", "operator")
    finally:
        store.close()


def test_a_supervisor_token_sees_what_a_supervisor_sees(client, tokens):
    listing = get(client, "/api/v1/calls?per_page=100", tokens["supervisor"])
    assert listing.status_code == 200 and listing.headers["cache-control"] == "no-store"
    body = listing.json()
    assert body["total"] == 18 and len(body["calls"]) == 18
    assert secrets_in(listing.text) == []
    out = next(c for c in body["calls"] if c["id"] == "out-call")
    assert (out["direction"], out["purpose"], out["result"]) == ("out", PURPOSE, "answered")
    for call_id in ("dob-call", "pin-call", "card-call"):
        one = get(client, f"/api/v1/calls/{call_id}", tokens["supervisor"])
        assert one.status_code == 200 and one.json()["turns"]
        assert secrets_in(one.text) == [], call_id
    turns_csv = get(client, "/api/v1/calls?format=csv&table=turns", tokens["supervisor"])
    assert turns_csv.headers["content-type"].startswith("text/csv")
    assert len(list(csv.DictReader(io.StringIO(turns_csv.text)))) > 30 and secrets_in(turns_csv.text) == []


def test_an_admin_token_sees_the_record(client, tokens):
    text = get(client, "/api/v1/calls/dob-call", tokens["admin"]).text
    assert DOB in text and "1980-03-12" in text
    assert PIN_SPOKEN in get(client, "/api/v1/calls/pin-call", tokens["admin"]).text


@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer vbr_not-a-token", "Basic dXNlcjpwYXNz", "vbr_x"])
def test_a_missing_or_bad_token_is_401_with_no_data(client, header):
    for path in ("/api/v1/calls", "/api/v1/calls/card-call", "/api/v1/calls?format=csv"):
        response = client.get(path, headers={"Authorization": header} if header else {})
        assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
        assert set(response.json()) == {"error"} and "card-call" not in response.text


def test_a_session_cookie_is_no_token_and_the_api_is_read_only(client, tokens):
    from review_support import SUPERVISOR
    import re

    page = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    client.post("/login", data={"csrf_token": csrf, "username": SUPERVISOR[0], "password": SUPERVISOR[1]})
    assert client.get("/calls").status_code == 200  # logged in
    assert client.get("/api/v1/calls").status_code == 401
    assert client.post("/api/v1/calls", headers={"Authorization": f"Bearer {tokens['admin']}"}).status_code == 405
    assert client.delete("/api/v1/calls/card-call",
                         headers={"Authorization": f"Bearer {tokens['admin']}"}).status_code == 405


def test_bad_filters_are_400_and_unknown_calls_404(client, tokens):
    assert get(client, "/api/v1/calls?outcome=won", tokens["admin"]).status_code == 400
    assert get(client, "/api/v1/calls?format=xml", tokens["admin"]).status_code == 400
    assert get(client, "/api/v1/calls/nope", tokens["admin"]).status_code == 404


def test_requests_are_logged_and_a_revoked_token_stops_working(env, client):
    token = add_token(env, "short-lived", "supervisor")
    assert get(client, "/api/v1/calls/order-call", token).status_code == 200
    assert get(client, "/api/v1/calls?q=4111111111111111&outcome=resolved", token).status_code == 200
    result = runner.invoke(app, ["review", "revoke-token", "short-lived",
                                 "--config", str(env.config.base_dir / "config.yaml")])
    assert result.exit_code == 0, result.output
    assert get(client, "/api/v1/calls/order-call", token).status_code == 401
    db = ReviewDB(env.config.path(env.config.review.database))
    try:
        entries = db.access_entries(500)
    finally:
        db.close()
    assert any(e.username == "token:short-lived" and e.action == "api_call" and e.call_id == "order-call"
               and e.role == "supervisor" for e in entries)
    searched = next(e for e in entries if e.username == "token:short-lived" and e.action == "api_calls")
    assert "outcome=resolved" in searched.detail and "q=(set)" in searched.detail and "4111" not in searched.detail


def test_over_real_http(env, tokens):
    """uvicorn on 127.0.0.1:PORT, urllib as the client: the same answers on the wire."""
    with serve_on(create_app(env.config, redact_logs=False), PORT):
        request = urllib.request.Request(f"http://127.0.0.1:{PORT}/api/v1/calls?per_page=5",
                                         headers={"Authorization": f"Bearer {tokens['supervisor']}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
        assert body["total"] == 18 and len(body["calls"]) == 5 and body["pages"] == 4
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/v1/calls", timeout=10)
        assert refused.value.code == 401 and b"card-call" not in refused.value.read()
