"""The review app over HTTP (Starlette's TestClient): login, sessions, CSRF, redaction by role, access log."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from review_support import ADMIN, CARD, SUPERVISOR, Clock, build_env, review_config
from voicebot.audio import read_wav
from voicebot.review.app import StoreMissing, create_app
from voicebot.review.users import ReviewDB
from voicebot.store import CallStore


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return build_env(tmp_path_factory.mktemp("review-app"))


@pytest.fixture
def client(env):
    with TestClient(create_app(env.config, redact_logs=False), follow_redirects=False) as c:
        yield c


def login(client: TestClient, user: tuple[str, str], next_path: str = "/calls"):
    client.cookies.clear()  # a fresh browser: a logged-in one is sent on from /login
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post("/login", data={"csrf_token": token, "username": user[0], "password": user[1],
                                       "next": next_path})


def csrf(client: TestClient) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/calls").text).group(1)


def access_log(env):
    db = ReviewDB(env.config.path(env.config.review.database))
    try:
        return db.access_entries(1000)
    finally:
        db.close()


@pytest.mark.parametrize("path", ["/", "/calls?outcome=resolved", "/calls/card-call",
                                  "/calls/card-call/recording/mixed.wav", "/dashboard", "/admin/access"])
def test_without_login_every_page_redirects_to_the_login(client, path):
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    assert client.get("/healthz").text == "ok" and client.get("/static/app.css").status_code == 200


def test_login_sets_a_strict_http_only_session_cookie(client):
    response = login(client, SUPERVISOR, "/dashboard?days=7")
    assert response.status_code == 303 and response.headers["location"] == "/dashboard?days=7"
    cookie = next(v for v in response.headers.get_list("set-cookie") if v.startswith("voicebot_review="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Max-Age" not in cookie and "Secure" not in cookie  # secure_cookies is off for plain-HTTP localhost
    assert client.get("/calls").status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
def test_login_never_redirects_off_site(client, target):
    assert login(client, SUPERVISOR, target).headers["location"] == "/calls"


def test_the_login_form_needs_its_token(client):
    client.get("/login")
    for data in ({}, {"csrf_token": "forged"}):
        response = client.post("/login", data={**data, "username": SUPERVISOR[0], "password": SUPERVISOR[1]})
        assert response.status_code == 403 and "CSRF" in response.text


def test_a_wrong_password_is_refused_and_logged(client, env):
    response = login(client, (SUPERVISOR[0], "wrong password"))
    assert response.status_code == 401 and "Wrong user name or password" in response.text
    assert any(e.action == "login_failed" and e.detail == SUPERVISOR[0] for e in access_log(env))


def test_repeated_failures_slow_the_guesser_down_but_never_lock_the_user_out(env):
    clock = Clock()
    ReviewDB(env.config.path(env.config.review.database), now=clock).add_user("locky", "harbour-lamp-7",
                                                                              "supervisor")
    guesser_app, user_app = (create_app(env.config, now=clock, redact_logs=False) for _ in range(2))
    with TestClient(guesser_app, follow_redirects=False, client=("10.0.0.66", 4000)) as guesser:
        for _ in range(3):
            assert login(guesser, ("locky", "nope nope")).status_code == 401
        throttled = login(guesser, ("locky", "harbour-lamp-7"))  # the guesser's address must wait now
        assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
        for _ in range(20):  # hammering while throttled is refused without checking, and adds no failures
            assert login(guesser, ("locky", "nope nope")).status_code == 429
        assert sum(e.action == "login_failed" and e.detail == "locky" for e in access_log(env)) == 3
        # the real user, from their own address, logs in at once: a guesser cannot lock them out
        with TestClient(user_app, follow_redirects=False, client=("10.0.0.7", 5000)) as user:
            assert login(user, ("locky", "harbour-lamp-7")).status_code == 303
        clock.value += timedelta(minutes=16)  # the window passes: the guesser's address may try again
        assert login(guesser, ("locky", "harbour-lamp-7")).status_code == 303


def test_a_flood_from_one_address_is_throttled_exponentially(env):
    clock = Clock()
    app = create_app(env.config, now=clock, redact_logs=False)
    with TestClient(app, follow_redirects=False, client=("10.0.0.99", 4000)) as guesser:
        statuses = []
        for i in range(30):  # 30 tries at 2 per second of the app's clock, a different name each time
            statuses.append(login(guesser, (f"guess{i}", "wrong guess 1")).status_code)
            clock.value += timedelta(seconds=0.5)
        assert statuses.count(401) < 12 and statuses.count(429) > 18, statuses
        assert login(guesser, SUPERVISOR).status_code == 429  # even the right password waits


def test_every_post_needs_the_session_token(client):
    login(client, SUPERVISOR)
    assert client.post("/logout", data={}).status_code == 403
    assert client.post("/logout", data={"csrf_token": csrf(client)},
                       headers={"Origin": "http://evil.example"}).status_code == 403
    assert client.post("/logout", data={"csrf_token": csrf(client)}).status_code == 303
    assert client.get("/calls").status_code == 303  # logged out


def test_sessions_expire_after_idle_minutes(env):
    clock = Clock()
    with TestClient(create_app(env.config, now=clock, redact_logs=False), follow_redirects=False) as client:
        login(client, SUPERVISOR)
        for _ in range(3):  # activity keeps it alive (sliding expiry) ...
            clock.value += timedelta(minutes=29)
            assert client.get("/calls").status_code == 200
        clock.value += timedelta(minutes=31)  # ... idleness ends it
        response = client.get("/calls")
        assert response.status_code == 303 and response.headers["location"] == "/login?next=%2Fcalls"


def test_supervisors_see_card_numbers_pins_and_phones_masked(client, env):
    login(client, SUPERVISOR)
    page = client.get(f"/calls/{env.card_call}").text
    assert "[card •••• 1111]" in page and CARD not in page and "4111111111111111" not in page
    assert "+1 555 ••• 2030" in page and "+15550102030" not in page
    assert "Alice Smith" in page and "10452: shipped" in page  # the CRM customer
    pin_page = client.get(f"/calls/{env.pin_call}").text
    assert "PIN is ••••" in pin_page and "4 8 2 1" not in pin_page and "4821" not in pin_page
    assert "replaced by a tone" in pin_page
    listing = client.get("/calls").text
    assert "+15550102030" not in listing and CARD not in listing


def test_admins_see_everything(client, env):
    login(client, ADMIN)
    page = client.get(f"/calls/{env.card_call}").text
    assert CARD in page and "+15550102030" in page
    assert "4 8 2 1" in client.get(f"/calls/{env.pin_call}").text


def test_views_and_plays_are_logged(client, env):
    """Loading the page and the audio logs a view only; the player's POST (app.js, on play) logs the listen."""
    login(client, SUPERVISOR)
    page = client.get(f"/calls/{env.order_call}").text
    assert f'data-played="/calls/{env.order_call}/played"' in page
    client.get(f"/calls/{env.order_call}/recording/mixed.wav", headers={"Range": "bytes=0-99"})

    def mine():
        return [(e.action, e.detail) for e in access_log(env) if e.username == "sue" and e.call_id == env.order_call]

    assert ("view_call", None) in mine() and ("play_recording", "mixed") not in mine()  # loaded, not played
    token = csrf(client)
    assert client.post(f"/calls/{env.order_call}/played", data={"csrf_token": token, "which": "mixed"}).status_code == 204
    assert mine().count(("play_recording", "mixed")) == 1
    assert client.post(f"/calls/{env.order_call}/played", data={"which": "mixed"}).status_code == 403  # no token
    assert client.post(f"/calls/{env.order_call}/played", data={"csrf_token": token, "which": "x"}).status_code == 404
    assert client.post("/calls/nope/played", data={"csrf_token": token, "which": "mixed"}).status_code == 404
    assert mine().count(("play_recording", "mixed")) == 1


def test_recordings_support_ranges_and_beep_out_secrets_for_supervisors(client, env):
    login(client, SUPERVISOR)
    url = f"/calls/{env.card_call}/recording/mixed.wav"
    part = client.get(url, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100
    assert re.fullmatch(r"bytes 0-99/\d+", part.headers["content-range"])
    assert part.headers["accept-ranges"] == "bytes"
    store = CallStore(env.config.path("calls.db"), env.config.path("recordings"), readonly=True)
    original, rate = read_wav(store.recording_file(store.get_call(env.card_call), "mixed"))
    card_turn = next(t for t in store.turns(env.card_call) if CARD in t.text)
    store.close()
    heard = client.get(url).content[44:]
    assert len(heard) == len(original) and heard != original
    start, end = int((card_turn.started_at - 0.3) * rate) * 2, int((card_turn.ended_at + 0.3) * rate) * 2
    assert heard[:start] == original[:start] and heard[end + 2:] == original[end + 2:]  # only the card is beeped
    login(client, ADMIN)
    assert client.get(url).content[44:] == original


def test_the_access_log_page_is_for_admins(client):
    login(client, SUPERVISOR)
    assert client.get("/admin/access").status_code == 403
    login(client, ADMIN)
    page = client.get("/admin/access")
    assert page.status_code == 200 and "login" in page.text and "sue" in page.text


def test_unknown_calls_and_tracks_are_404(client, env):
    login(client, SUPERVISOR)
    assert client.get("/calls/nope").status_code == 404
    assert client.get(f"/calls/{env.card_call}/recording/other.wav").status_code == 404
    assert client.get(f"/calls/{env.card_call}/recording/caller.wav").status_code == 404  # only mixed was saved


def test_list_filters_and_dashboard_render(client, env):
    login(client, SUPERVISOR)
    page = client.get("/calls", params={"outcome": "transferred", "q": "card"}).text
    assert f'href="/calls/{env.card_call}' in page and f'href="/calls/{env.order_call}' not in page
    assert "Ignored: qa_min" in client.get("/calls", params={"qa_min": "abc"}).text
    dashboard = client.get("/dashboard", params={"days": "30"})
    assert dashboard.status_code == 200
    assert "Containment" in dashboard.text and dashboard.text.count("<svg") >= 5


def test_pages_carry_security_headers(client):
    login(client, SUPERVISOR)
    response = client.get("/calls")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"


def test_a_missing_crm_is_a_note_not_an_error(env, tmp_path):
    config = env.config.model_copy(deep=True)
    config.crm.database = str(tmp_path / "absent.db")
    with TestClient(create_app(config, redact_logs=False), follow_redirects=False) as client:
        login(client, SUPERVISOR)
        page = client.get(f"/calls/{env.card_call}")
    assert page.status_code == 200 and "no CRM database at" in page.text
    assert not (tmp_path / "absent.db").exists()


def test_a_missing_store_says_how_to_create_one(tmp_path):
    with pytest.raises(StoreMissing, match="voicebot review seed-demo"):
        create_app(review_config(tmp_path))


def test_search_matches_only_what_the_role_is_shown(client, env):
    """A masked card number or phone number cannot be recovered digit by digit through the search box."""
    def found(query: str) -> bool:
        return f"/calls/{env.card_call}" in client.get(f"/calls?{query}").text

    login(client, SUPERVISOR)
    assert not found("q=4111")  # the card's hidden digits
    assert not found("caller=0102")  # the phone number's hidden middle digits
    assert found("caller=2030")  # what the supervisor sees still finds the call
    login(client, ADMIN)
    assert found("q=4111") and found("caller=0102")


def test_events_of_an_untimed_call_sit_at_the_turn_they_belong_to(tmp_path):
    """A chat/console call has no audio clock (every time 0): tool calls, guard events and barge-ins are placed by
    the order they were written, at their bot turn, not piled up on the last turn."""
    from datetime import datetime, timezone

    from review_support import add_users
    from voicebot.store import Turn

    class Ticking:
        value = datetime(2026, 3, 3, 9, tzinfo=timezone.utc)

        def __call__(self):
            Ticking.value += timedelta(milliseconds=5)
            return Ticking.value

    config = review_config(tmp_path)
    store = CallStore(config.path(config.store.database), config.path(config.store.recordings_dir), now=Ticking())
    store.start_call(None, call_id="chat-call", test=True)
    store.add_turn("chat-call", Turn("caller", "Where is order 10452?", 0.0, 0.0))
    store.add_turn("chat-call", Turn("bot", "Order 10452 has shipped.", 0.0, 0.0))
    store.add_event("chat-call", "tool_call", {"tool": "get_order", "args": {"number": "10452"},
                                               "result": {"ok": True}}, at=0.0)
    store.add_event("chat-call", "guard_ungrounded", {"original": "It arrives Friday.", "items": ["Friday"]}, at=0.0)
    store.add_turn("chat-call", Turn("caller", "And the other one?", 0.0, 0.0))
    store.add_turn("chat-call", Turn("bot", "Let me look that up for", 0.0, 0.0, barged_in=True))
    store.add_event("chat-call", "barge_in", {"text": "never mind", "speech_s": 0.8}, at=0.0)
    store.add_turn("chat-call", Turn("caller", "Never mind, thanks.", 0.0, 0.0))
    store.finish_call("chat-call", "resolved")
    store.close()
    add_users(config)
    with TestClient(create_app(config, redact_logs=False), follow_redirects=False) as client:
        login(client, SUPERVISOR)
        html = client.get("/calls/chat-call").text
    turns = {int(i): body for i, body in re.findall(r'<li class="turn \w+" id="turn-(\d+)"(.*?)</li>', html, re.S)}
    assert "get_order" in turns[1] and "Grounding guard" in turns[1] and "It arrives Friday" in turns[1]
    assert "Barge in" in turns[3] and "Barge in" not in turns[4]
    assert all(label not in turns[4] + turns[0] for label in ("get_order", "Grounding guard"))


def test_turns_of_an_untimed_call_show_when_they_were_said(tmp_path):
    """A console call has no call audio, so every turn was at 0:00: the page shows the time since the call began,
    from when each turn was written; a phone call keeps its audio times."""
    from datetime import datetime, timezone

    from review_support import add_users
    from voicebot.store import Turn

    moments = iter(datetime(2026, 3, 3, 9, 0, s, tzinfo=timezone.utc) for s in range(0, 60, 4))
    config = review_config(tmp_path)
    store = CallStore(config.path(config.store.database), config.path(config.store.recordings_dir),
                      now=lambda: next(moments))
    store.start_call(None, call_id="console-call", test=True)  # 9:00:00
    for role, text in [("bot", "Hello, how can I help?"), ("caller", "Where is order 10452?"),
                       ("bot", "Order 10452 has shipped."), ("caller", "Thanks, bye.")]:
        store.add_turn("console-call", Turn(role, text, 0.0, 0.0))  # 9:00:04, :08, :12, :16
    store.finish_call("console-call", "resolved")
    store.close()
    add_users(config)
    with TestClient(create_app(config, redact_logs=False), follow_redirects=False) as client:
        login(client, SUPERVISOR)
        html = client.get("/calls/console-call?tests=1").text
    times = re.findall(r'<span class="time">([0-9:]+)</span>', html)
    assert times == ["0:04", "0:08", "0:12", "0:16"], times
