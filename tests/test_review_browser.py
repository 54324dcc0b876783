"""The review app in headless Chromium (Debian's /usr/bin/chromium driven by Playwright): log in, filter, open a
call, play it from a turn, see the card number redacted. Screenshots go to test-artifacts/review/.

A missing Chromium is a failure with the fix in its message, never a skip: scripts/setup.sh installs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from review_support import browser_context_args, browser_type_launch_args  # noqa: F401 - fixtures
from review_support import ADMIN, CARD, SUPERVISOR, build_env, live_server
from voicebot.review.app import create_app

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "review"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = build_env(tmp_path_factory.mktemp("review-browser"), background_calls=60)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with live_server(create_app(env.config, redact_logs=False)) as url:
        yield url, env


def log_in(page, url: str, user: tuple[str, str]) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", user[0])
    page.fill("input[name=password]", user[1])
    with page.expect_navigation():
        page.click("button[type=submit]")


def test_a_visitor_without_a_login_is_sent_to_the_login_page(page, server):
    url, env = server
    page.goto(f"{url}/calls/{env.card_call}")
    assert "/login?next=" in page.url
    assert page.locator("h1").inner_text() == "Log in"
    page.screenshot(path=str(ARTIFACTS / "login.png"))


def test_a_supervisor_filters_opens_and_plays_a_call(page, server):
    url, env = server
    log_in(page, url, SUPERVISOR)
    assert page.url.endswith("/calls")
    total = page.locator("table.calls tbody tr").count()
    assert total == 25  # one full page of the seeded calls

    page.select_option("select[name=outcome]", "transferred")
    page.fill("input[name=q]", "card")
    with page.expect_navigation():
        page.click("#filters button[type=submit]")
    assert "outcome=transferred" in page.url and "q=card" in page.url
    rows = page.locator("table.calls tbody tr")
    assert 1 <= rows.count() < total
    assert page.locator(f'a[href^="/calls/{env.card_call}?"]').count() == 1
    page.screenshot(path=str(ARTIFACTS / "calls-filtered.png"), full_page=True)

    with page.expect_navigation():
        page.click(f'a[href^="/calls/{env.card_call}?"]')
    caller_turn = page.locator("li.turn.caller").first
    assert "[card •••• 1111]" in caller_turn.inner_text()
    assert CARD not in page.content()
    assert "+1 555 ••• 2030" in page.locator("h1").inner_text()

    start = float(caller_turn.get_attribute("data-start"))
    caller_turn.locator("button.seek").click()
    page.wait_for_function("() => { const a = document.getElementById('recording');"
                           " return a.currentTime > 0.3 && !a.paused; }", timeout=15_000)
    position = page.evaluate("document.getElementById('recording').currentTime")
    assert position >= start - 0.05  # it jumped to the turn
    page.wait_for_function("() => document.querySelector('li.turn.playing') !== null", timeout=5_000)
    page.screenshot(path=str(ARTIFACTS / "call.png"), full_page=True)

    page.goto(f"{url}/dashboard")
    assert page.locator(".kpi").count() == 8  # the check-in rating (dialer) is the eighth
    assert "containment" in page.inner_text("section.kpis").lower()
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)


def test_an_admin_sees_the_card_number(page, server):
    url, env = server
    log_in(page, url, ADMIN)
    page.goto(f"{url}/calls/{env.card_call}")
    assert CARD in page.locator("li.turn.caller").first.inner_text()
    assert page.locator("a", has_text="Access log").count() == 1
