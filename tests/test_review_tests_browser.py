"""Test calls and the playback log in headless Chromium (Debian's /usr/bin/chromium driven by Playwright): a test
call (chat, simulate, bench) is hidden in the call list and the dashboard until the filter shows it; "play
recording" reaches the access log when someone presses play, not when the page and its audio load.
Screenshots go to test-artifacts/review/.

A missing Chromium is a failure with the fix in its message, never a skip: scripts/setup.sh installs it.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from review_support import browser_context_args, browser_type_launch_args  # noqa: F401 - fixtures
from review_support import SUPERVISOR, build_env, live_server, open_store
from voicebot.review.app import create_app
from voicebot.review.demo import write_demo_call
from voicebot.review.users import ReviewDB

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "review"
TEST_CALL = "chat-test-call"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = build_env(tmp_path_factory.mktemp("review-tests-browser"), background_calls=20)
    with open_store(env.config) as store:  # the newest call of all, made with `voicebot chat`
        write_demo_call(store, "order status", datetime.now(timezone.utc) - timedelta(minutes=20), call_id=TEST_CALL,
                        recording=False, test=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with live_server(create_app(env.config, redact_logs=False)) as url:
        yield url, env


def log_in(page, url: str, user: tuple[str, str]) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", user[0])
    page.fill("input[name=password]", user[1])
    with page.expect_navigation():
        page.click("button[type=submit]")


def plays(env, call_id: str) -> list[tuple[str, str | None]]:
    db = ReviewDB(env.config.path(env.config.review.database))
    try:
        return [(e.action, e.detail) for e in db.access_entries(1000) if e.call_id == call_id and e.username == "sue"]
    finally:
        db.close()


def test_test_calls_are_hidden_until_the_filter_shows_them(page, server):
    url, env = server
    log_in(page, url, SUPERVISOR)
    assert page.url.endswith("/calls")
    assert page.locator(f'a[href^="/calls/{TEST_CALL}?"]').count() == 0  # hidden by default
    assert page.locator("span.badge.test").count() == 0

    page.select_option("select[name=tests]", "include")
    with page.expect_navigation():
        page.click("#filters button[type=submit]")
    assert "tests=include" in page.url
    row = page.locator("table.calls tbody tr").first  # the newest call of all
    assert row.locator(f'a[href^="/calls/{TEST_CALL}?"]').count() == 1
    assert row.locator("span.badge.test").inner_text() == "test"
    page.screenshot(path=str(ARTIFACTS / "calls-with-tests.png"), full_page=True)

    page.select_option("select[name=tests]", "only")
    with page.expect_navigation():
        page.click("#filters button[type=submit]")
    assert page.locator("table.calls tbody tr").count() == 1

    page.goto(f"{url}/dashboard")
    hidden = int(page.locator(".kpi .v").first.inner_text())
    assert "hidden" in page.inner_text(".tests-toggle")
    assert "Abandoned unresolved" in page.inner_text("section.defs")  # the outcome definitions are stated
    with page.expect_navigation():
        page.click(".tests-toggle a")
    assert "tests=include" in page.url
    assert int(page.locator(".kpi .v").first.inner_text()) == hidden + 1
    page.screenshot(path=str(ARTIFACTS / "dashboard-with-tests.png"), full_page=True)


def test_playing_a_recording_is_logged_when_played_not_when_loaded(page, server):
    url, env = server
    log_in(page, url, SUPERVISOR)
    page.goto(f"{url}/calls/{env.order_call}")
    page.wait_for_function("() => document.getElementById('recording').readyState >= 1", timeout=15_000)
    time.sleep(0.5)  # a request the page might have made on load would be in by now
    assert ("view_call", None) in plays(env, env.order_call)
    assert ("play_recording", "mixed") not in plays(env, env.order_call)  # loaded, not played

    page.locator("li.turn.caller button.seek").first.click()
    page.wait_for_function("() => { const a = document.getElementById('recording');"
                           " return a.currentTime > 0.3 && !a.paused; }", timeout=15_000)
    deadline = time.monotonic() + 10
    while ("play_recording", "mixed") not in plays(env, env.order_call) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert plays(env, env.order_call).count(("play_recording", "mixed")) == 1

    page.evaluate("document.getElementById('recording').pause()")  # pause and play on: the same listen
    page.evaluate("document.getElementById('recording').play()")
    page.wait_for_function("() => !document.getElementById('recording').paused", timeout=5_000)
    time.sleep(0.5)
    assert plays(env, env.order_call).count(("play_recording", "mixed")) == 1
    page.screenshot(path=str(ARTIFACTS / "call-played.png"), full_page=True)
