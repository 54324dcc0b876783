"""The "Unanswered" page in headless Chromium (Debian's /usr/bin/chromium driven by Playwright): a supervisor sees
the grouped questions and follows one to its call; an admin answers a group, a bad answer shows its error and
writes nothing, a good one lands in knowledge/learned.md. Screenshots go to test-artifacts/review/.

A missing Chromium or embedding model is a failure with the fix in its message, never a skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from review_support import browser_context_args, browser_type_launch_args  # noqa: F401 - fixtures
from review_support import ADMIN, SUPERVISOR, live_server
from unanswered_support import PHONE_MASKED, RETURN_ENTRY, seed
from voicebot.knowledge.files import read_markdown
from voicebot.review.app import create_app

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "review"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    seeded = seed(tmp_path_factory.mktemp("unanswered-browser"))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with live_server(create_app(seeded.config, redact_logs=False)) as url:
        yield url, seeded


def log_in(page, url: str, user: tuple[str, str]) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", user[0])
    page.fill("input[name=password]", user[1])
    with page.expect_navigation():
        page.click("button[type=submit]")


def test_a_supervisor_sees_the_groups_and_opens_a_call(page, server):
    url, _ = server
    log_in(page, url, SUPERVISOR)
    with page.expect_navigation():
        page.click("header nav a:has-text('Unanswered')")
    assert page.url.endswith("/unanswered")
    assert "embeddings (multilingual-e5-small)" in page.inner_text("div.pagehead")
    groups = page.locator("ol.ugroups.open > li.ugroup")
    assert groups.count() == 4
    first = groups.first
    assert first.locator(".utitle").inner_text() == "Do you repair cars?"
    assert first.locator(".count").inner_text() == "3×"
    assert first.locator(".wordings li").all_inner_texts() == ["Do you repair cars?", "Can you fix my car?",
                                                               "do you do car repairs"]
    assert PHONE_MASKED in page.inner_text("ol.ugroups.open")
    assert page.locator("form.answer-form").count() == 0  # supervisors read, admins answer
    page.screenshot(path=str(ARTIFACTS / "unanswered-supervisor.png"), full_page=True)

    with page.expect_navigation():
        first.locator(".ucalls a").first.click()
    assert "/calls/call-cars" in page.url
    used = page.locator("li.turn.bot .knowledge-used")
    assert used.count() == 1
    assert used.get_attribute("data-answer") in ("none", "weak")

    page.goto(f"{url}/calls/call-returns")
    line = page.locator("li.turn.bot .knowledge-used").first
    assert line.locator("code.entry-id").inner_text() == RETURN_ENTRY
    assert line.locator(".kscore").inner_text() == "0.71"
    page.screenshot(path=str(ARTIFACTS / "call-knowledge.png"), full_page=True)


def test_an_admin_answers_a_group(page, server):
    url, seeded = server
    learned = seeded.config.path("knowledge") / "learned.md"
    log_in(page, url, ADMIN)
    page.goto(f"{url}/unanswered")
    group = page.locator("ol.ugroups.open > li.ugroup").nth(1)
    assert group.locator(".utitle").inner_text() == "Do you sell gift cards?"
    group.locator("details.answer > summary").click()
    form = group.locator("form.answer-form")
    assert form.locator("input[name=title]").input_value() == "Do you sell gift cards?"  # prefilled

    form.locator("textarea[name=answer]").fill("Yes.\n# Gift cards\nFrom 25 dollars.")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    alert = page.locator("li.ugroup details.answer[open] .alert")
    assert "Nothing was written" in alert.inner_text() and "would start a new entry" in alert.inner_text()
    assert not learned.exists()
    page.screenshot(path=str(ARTIFACTS / "unanswered-error.png"), full_page=True)

    form = page.locator("li.ugroup details.answer[open] form.answer-form")
    assert "# Gift cards" in form.locator("textarea[name=answer]").input_value()  # kept for fixing
    form.locator("textarea[name=answer]").fill("Yes. Gift cards from 25 to 500 dollars are sold in our shop.")
    form.locator("input[name=tags]").fill("gift card, voucher, present")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert "added=learned%2Fdo-you-sell-gift-cards" in page.url
    assert "learned/do-you-sell-gift-cards" in page.inner_text("p.card.ok")
    assert "Do you sell gift cards?" not in page.locator("ol.ugroups.open").inner_text()
    done = page.locator("ol.ugroups.done > li.ugroup")
    assert done.count() == 1 and "learned/do-you-sell-gift-cards" in done.first.inner_text()
    entries, problems = read_markdown(learned)
    assert problems == [] and [(e.id, e.tags) for e in entries] == [
        ("learned/do-you-sell-gift-cards", ("gift card", "voucher", "present"))]
    page.screenshot(path=str(ARTIFACTS / "unanswered-answered.png"), full_page=True)
