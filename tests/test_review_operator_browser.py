"""The operator screen in headless Chromium during a REAL call (issue 17): `voicebot serve` answers over SIP on
loopback with the real models, `voicebot call` is the caller (pjsua2, Piper speech), sipp plays the human operator.

Timeline: the operator opens /operator before anyone calls; the caller asks for an order, gives the PIN, then asks
for a person. Without a reload, the page shows the call live (the CRM's name, the number masked for the operator
role, verified or not, the bot's tool calls), then pops it up as a transfer. What the page showed is checked
against what the bot stored: every tool call before the transfer was listed while the call was live, and
"verified" exactly when ``verify_caller`` succeeded (on a machine too slow for Whisper the bot may hand the caller
over before the PIN, and the page must say "not verified" then). A recorder in the page (a MutationObserver
on the board) keeps every state the page showed, so a state that lasted only a few seconds is still checked.
Screenshots go to test-artifacts/review/.

A missing Chromium, sipp or model is a failure with the fix in its message, never a skip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from review_support import browser_context_args, browser_type_launch_args  # noqa: F401 - fixtures
from review_support import live_server
from serve_support import operator, serving
from voicebot.cli.common import get_config
from voicebot.review.app import create_app
from voicebot.review.users import ReviewDB
from voicebot.store import CallStore

pytestmark = [pytest.mark.models, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "review"
PORT = 23500  # the bot (RTP from 23502, 100 ports); this test ports are 23500-23999
OP = 23900  # sipp as the operator (RTP 23902)
HTTP = 23970  # the review app
OPERATOR = ("otto", "operator-pass-77")
MASKED = "+1 555 ••• 2030"  # the seeded CRM's Alice Johnson calls from +15550102030

RECORDER = """() => {
  window.sameDocument = true;
  window.seen = [];
  const wrap = document.getElementById("board-wrap");
  const record = () => document.querySelectorAll(".opcall").forEach((card) => window.seen.push({
    at: Date.now(), id: card.dataset.call, state: card.dataset.state, verified: card.dataset.verified,
    name: card.querySelector(".opname").textContent, caller: card.querySelector(".opcaller").textContent,
    popup: card.classList.contains("popup"),
    actions: Array.from(card.querySelectorAll(".opactions .alabel")).map((a) => a.textContent)}));
  new MutationObserver(record).observe(wrap, {childList: true, subtree: true});
}"""


def log_in(page, url: str, user: tuple[str, str]) -> None:
    page.goto(f"{url}/login?next=/operator")
    page.fill("input[name=username]", user[0])
    page.fill("input[name=password]", user[1])
    with page.expect_navigation():
        page.click("button[type=submit]")


def test_a_transferred_call_shows_live_and_pops_up_without_a_reload(page, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "knowledge", tmp_path / "knowledge")
    sip = f"  operator_uri: sip:operator@127.0.0.1:{OP}\n  transfer_mode: blind\n"
    with serving(tmp_path, PORT, sip_extra=sip) as served, operator(tmp_path, OP, timeout_s=400) as op:
        config = get_config(served.config)
        users = ReviewDB(config.path(config.review.database))
        users.add_user(*OPERATOR, "operator")
        users.close()
        with live_server(create_app(config, redact_logs=False), HTTP) as url:
            log_in(page, url, OPERATOR)
            assert page.url == f"{url}/operator"
            page.wait_for_selector("#live-status[data-state=live]")
            assert page.locator(".opcall").count() == 0
            navigations: list[str] = []
            page.on("framenavigated", lambda frame: navigations.append(frame.url))
            page.evaluate(RECORDER)

            caller = subprocess.Popen(
                [sys.executable, "-m", "voicebot.cli", "call", f"sip:voicebot@127.0.0.1:{PORT}", "--config",
                 str(served.config), "--from", "+15550102030", "--json", "--hold", "10", "--stay", "40",
                 "--say", "Where is my order?", "--say", "My PIN is one two three four.",
                 "--say", "Operator, please."],
                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                # live: the call shows up while the caller is still with the bot (what it showed is checked below)
                page.wait_for_function("() => window.seen.some((s) => s.state === 'live')", timeout=300_000)
                page.screenshot(path=str(ARTIFACTS / "operator-live.png"), full_page=True)
                try:
                    page.wait_for_function("() => window.operatorFeed.popped.length > 0", timeout=240_000)
                except Exception:
                    caller.kill()
                    out, err = caller.communicate()
                    pytest.fail(f"no transfer popped up\ncaller: {out[-1500:]}\n{err[-1500:]}\n"
                                f"bot: {served.text[-3000:]}")
                page.wait_for_selector(".opcall.popup")
                page.screenshot(path=str(ARTIFACTS / "operator-transfer.png"), full_page=True)
                banner = page.inner_text("#transfer-alert")
                popped = page.evaluate("window.operatorFeed.popped")
                seen = page.evaluate("window.seen")
                same = page.evaluate("window.sameDocument === true")
                navigated = list(navigations)
                page.goto("about:blank")  # closes the event stream before the server stops
                out, err = caller.communicate(timeout=300)
            finally:
                if caller.poll() is None:
                    caller.kill()
                    caller.wait()
            code, log = op.wait(30)
    assert caller.returncode == 0, out[-2000:] + err[-3000:]
    report = json.loads(out[out.index("{"):])
    assert [t["status"] for t in report["transfers"]] == [200], report["transfers"]
    assert code == 0, log

    with CallStore(tmp_path / "data" / "calls.db", tmp_path / "data" / "recordings", readonly=True) as store:
        [call] = store.list_calls()
        events = store.events(call.id)
    assert call.outcome == "transferred", call
    live = [s for s in seen if s["id"] == call.id and s["state"] == "live"]
    assert live and {(s["name"], s["caller"]) for s in live} == {("Alice Johnson", MASKED)}, seen[-3:]
    # every tool the bot ran before the transfer was on the screen while the call was live, with the verification
    before = [e for e in events if e.kind == "tool_call" and e.id < min(
        x.id for x in events if x.kind == "transfer_requested")]
    # the caller asked for an order, so the bot went to the CRM (unless it failed first: then say how)
    assert before, f"the bot ran no CRM tool before the transfer: {[(e.kind, dict(e.data)) for e in events]}"
    tools = [str(e.data["tool"]).replace("_", " ") for e in before]
    assert any(s["actions"] == tools for s in live), (tools, live[-1])
    verified = any(e.data["tool"] == "verify_caller" and e.data["result"].get("result", {}).get("verified")
                   for e in before)
    assert {s["verified"] for s in live if s["actions"] == tools} == {"yes" if verified else "no"}, live[-1]
    assert "+15550102030" not in json.dumps(seen)  # the operator role sees the number masked
    # then the transfer popped up, on the same card and in the banner, on the same page: no reload, no navigation
    assert [p["id"] for p in popped] == [call.id]
    assert any(s["state"] in ("transferring", "transferred") and s["popup"] for s in seen if s["id"] == call.id)
    assert banner.startswith("Transfer to a person: Alice Johnson") and MASKED in banner, banner
    assert same and navigated == [], navigated
    # how long the pop-up took after the bot wrote the transfer (a figure for the report, not a pass mark)
    [requested] = [e for e in events if e.kind == "transfer_requested"]
    lag = popped[0]["at"] / 1000 - requested.recorded_at.timestamp()
    print(f"transfer written {requested.recorded_at:%H:%M:%S.%f} -> popped up after {lag:.2f} s "
          f"({datetime.now(timezone.utc):%H:%M:%S})")
