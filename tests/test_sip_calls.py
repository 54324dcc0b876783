"""Whole calls over real SIP on loopback: `voicebot serve` answers, `voicebot call` (pjsua2, its own process)
is the caller, sipp plays the human operator. Real models, CRM and call store."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from asr_support import assert_heard_any
from serve_support import BUSY_UAS, last_call, operator, serving

pytestmark = [pytest.mark.models, pytest.mark.timeout(400)]

PORT = 20000  # bots on PORT and PORT+300 (RTP from +2, 100 ports), their operator +OP (RTP +2); callers: free ports
OP = 900


def call(served, port: int, *script: str, hold_s: float = 3.0) -> dict:
    """Run `voicebot call` against the bot; returns its JSON report."""
    cmd = [sys.executable, "-m", "voicebot.cli", "call", f"sip:voicebot@127.0.0.1:{port}", "--config",
           str(served.config), "--from", "+15550102030", "--json", "--hold", str(hold_s),
           "--record", str(served.folder / f"heard-{port}.wav"), *script]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=served.folder)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout[done.stdout.index("{"):])


def heard(report: dict) -> str:
    return " ".join(u["text"] for u in report["bot_utterances"])


def sip_extra(port: int, mode: str = "blind") -> str:
    return (f"  operator_uri: sip:operator@127.0.0.1:{port + OP}\n  transfer_mode: {mode}\n")


def start(folder, port: int, mode: str = "blind"):
    # serving() writes `sip:` with port and transports; these lines extend that section
    return serving(folder, port, extra="", sip_extra=sip_extra(port, mode))


@pytest.fixture(scope="module")
def bot(tmp_path_factory):
    """One bot (blind transfers to an operator on PORT+OP) for the tests below: loading the models once."""
    with start(tmp_path_factory.mktemp("bot"), PORT) as served:
        yield served
    assert served.exit_code == 0, served.text[-3000:]


def test_scripted_caller_asks_for_an_order_and_hears_the_crm_answer(bot):
    """(b) The order's status, said by the bot, heard and transcribed on the caller's side."""
    served = bot
    report = call(served, PORT, "--say", "Where is my order?", "--say", "My PIN is one two three four.", hold_s=12)
    said = heard(report)
    assert_heard_any(said, "automated assistant", "speaking with", "Northwind Supplies")  # the greeting
    assert len(report["voice_to_voice_s"]) == 2 and all(d is not None and d < 10 for d in report["voice_to_voice_s"])
    assert report["greeting_s"] is not None and 0 < report["greeting_s"] < report["steps"][0]["start_s"]
    row = last_call(served)
    assert row.caller_id == "+15550102030" and row.outcome not in ("in_progress", "interrupted")
    # the CRM's facts: order 10452 (shipped with UPS) arrives on 2026-11-24. Exact in the bot's own words ...
    bot_text = " ".join(t.text for t in served.store().turns(row.id) if t.role == "bot")
    assert "10452" in bot_text and "UPS" in bot_text and "November 24" in bot_text, bot_text
    # ... and heard on the caller's side, where Whisper on a phone line may garble a word or two
    assert_heard_any(said, "10452", "UPS", "November 24", "arrive", at_least=2)


@pytest.mark.parametrize("how", ["say", "dtmf"])
def test_operator_or_zero_transfers_to_a_human_by_refer(bot, tmp_path, how):
    """(c) "operator" and (d) DTMF 0: a REFER to the configured operator, which sipp answers; sipp succeeds."""
    served, port = bot, PORT
    with operator(tmp_path, port + OP) as op:
        step = ["--say", "Operator, please."] if how == "say" else ["--dtmf", "0"]
        report = call(served, port, *step, hold_s=4)
        code, log = op.wait(30)  # the caller hung up the operator call at the end: sipp's one call succeeded
    assert code == 0, log
    assert [(t["target"], t["status"]) for t in report["transfers"]] == [(f"sip:operator@127.0.0.1:{port + OP}", 200)]
    row = last_call(served)
    assert row.outcome == "transferred", row
    events = served.store().events(row.id)
    assert "transfer_requested" in [e.kind for e in events]
    [result] = [e.data for e in events if e.kind == "transfer_result"]
    assert result["ok"] and result["progress"][-1][0] == 200, result  # the REFER's progress, as NOTIFYs reported it


def test_busy_operator_leaves_the_caller_with_the_bot_and_a_callback(bot, tmp_path):
    """(e) The operator answers 486: the caller stays with the bot, is told, and a callback is in the CRM."""
    served, port = bot, PORT
    with operator(tmp_path, port + OP, BUSY_UAS) as op:
        report = call(served, port, "--dtmf", "0", hold_s=10)
        code, log = op.wait(30)
    assert code == 0, log
    assert [t["status"] for t in report["transfers"]] == [486]
    # the failed-transfer prompt, not the "connect you with a colleague" before it
    assert_heard_any(heard(report), "call you back", "no one can take your call", "at this number")
    row = last_call(served)
    assert row.outcome == "transfer_failed", row
    from voicebot.crm.repository import Repository

    repo = Repository.open(served.folder / "data" / "crm.db")
    assert any("486" in r["reason"] and r["phone"] == "+15550102030" for r in repo.db["callbacks"].rows)


def test_warm_transfer_briefs_the_operator_then_bridges_the_caller(tmp_path):
    """transfer_mode: warm — the bot calls the operator, speaks the summary, then joins the caller to it."""
    port = PORT + 300
    with start(tmp_path, port, mode="warm") as served, operator(tmp_path, port + OP) as op:
        report = call(served, port, "--say", "I want to talk to a real person.", "--stay", "20", hold_s=8)
        code, log = op.wait(30)  # the caller's hang-up ends the operator's leg too
    assert code == 0, log
    [row] = served.store().list_calls()
    assert row.outcome == "transferred", row
    results = [e.data for e in served.store().events(row.id) if e.kind == "transfer_result"]
    assert results and results[0]["ok"] and results[0]["mode"] == "warm"
    assert report["transfers"] == []  # no REFER: the caller never left the bot's call
    assert report["ended_by"] == "caller" and report["duration_s"] > 30  # stayed on with the operator
