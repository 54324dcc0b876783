"""The review app in an 800 px wide window (headless Chromium, Debian's, through Playwright): the call list, a call
page and the dashboard fit without sideways scrolling (document scrollWidth <= clientWidth), and the marks, the
outbound call, the comparison and the drop-off are on screen. Screenshots go to test-artifacts/review/.

A missing Chromium is a failure with the fix in its message, never a skip: scripts/setup.sh installs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from review_export_support import build_export_env, serve_on
from review_support import browser_context_args, browser_type_launch_args  # noqa: F401 - fixtures
from review_support import SUPERVISOR
from voicebot.review.app import create_app

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "review"
PORT = 24533  # this module's port (the review tests' range is 24500-24999)
WIDTH = 800


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env = build_export_env(tmp_path_factory.mktemp("review-layout"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serve_on(create_app(env.config, redact_logs=False), PORT) as url:
        yield url, env


def overflow(page) -> tuple[int, int]:
    return page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")


def scrolled_inside(page) -> list[str]:
    """Boxes whose content is wider than they are (a table scrolling inside its card counts: the reader still has
    to scroll sideways to see it)."""
    return page.evaluate("""() => [...document.querySelectorAll('main *')].filter(el => {
        const x = getComputedStyle(el).overflowX;
        return (x === 'auto' || x === 'scroll' || x === 'hidden') && el.scrollWidth > el.clientWidth + 1;
    }).map(el => `${el.tagName.toLowerCase()}.${[...el.classList].join('.')} ${el.scrollWidth}>${el.clientWidth}`)""")


def test_list_call_and_dashboard_fit_800_px(page, server):
    url, env = server
    page.set_viewport_size({"width": WIDTH, "height": 900})
    page.goto(f"{url}/login")
    page.fill("input[name=username]", SUPERVISOR[0])
    page.fill("input[name=password]", SUPERVISOR[1])
    with page.expect_navigation():
        page.click("button[type=submit]")

    # the reviewer marks the outbound call on its page
    page.goto(f"{url}/calls/out-call")
    page.fill("#review input[name=tags]", "callback, follow-up")
    page.fill("#review textarea[name=note]", "Customer asked for a second call.")
    page.check("#review input[name=reviewed]")
    with page.expect_navigation():
        page.click("#review button[type=submit]")
    assert "saved=1" in page.url and page.locator(".badge.reviewed").count() == 1
    assert page.locator("dd.purpose").inner_text() == "callback · my order 10452 is late"
    width, client = overflow(page)
    page.screenshot(path=str(ARTIFACTS / "call-800.png"), full_page=True)
    assert width <= client, f"the call page scrolls sideways at {WIDTH} px: {width} > {client}"
    assert scrolled_inside(page) == []

    page.goto(f"{url}/calls")
    row = page.locator('tr[data-href="/calls/out-call"]')
    assert "outbound" in row.inner_text() and "answered" in row.inner_text() and "callback" in row.inner_text()
    assert row.locator(".phone").is_visible() and row.locator(".summary").is_visible()
    width, client = overflow(page)
    page.screenshot(path=str(ARTIFACTS / "calls-800.png"), full_page=True)
    assert width <= client, f"the call list scrolls sideways at {WIDTH} px: {width} > {client}"
    assert scrolled_inside(page) == []

    page.goto(f"{url}/dashboard?days=7")
    assert page.locator("#compare tbody tr").count() == 6
    assert page.locator("#dropoff svg.chart").count() == 3
    width, client = overflow(page)
    page.screenshot(path=str(ARTIFACTS / "dashboard-800.png"), full_page=True)
    assert width <= client, f"the dashboard scrolls sideways at {WIDTH} px: {width} > {client}"
    assert scrolled_inside(page) == []
