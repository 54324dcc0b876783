"""The operator does not answer, or answers busy: real `voicebot serve` (warm transfers: the bot dials the operator
and the caller stays on its call), sipp as the operator, `voicebot call` (pjsua2) as the caller.

Before: after "Please hold" the caller heard 11-20 s of silence while the operator's phone rang, and on no answer
was left wondering. Now, transcribed on the caller's side: "still connecting you" repeats while it rings, then the
news and the callback (``prompts.transfer_failed``); the call's outcome is transfer_failed and the callback is in
the CRM with the reason.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from asr_support import assert_heard_any, heard_phrase
from serve_support import BUSY_UAS, last_call, operator, serving

pytestmark = [pytest.mark.models, pytest.mark.timeout(900)]

PORT = 22540  # the bot (RTP from +2); the operator on PORT+30 (RTP +2)
OP_PORT = PORT + 30

NO_ANSWER_UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="operator rings, never answers">
  <recv request="INVITE"/>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <recv request="CANCEL"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <send>
    <![CDATA[
      SIP/2.0 487 Request Terminated
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      CSeq: [cseq] INVITE
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK"/>
</scenario>
"""


def dial_zero(served, stay_s: float) -> dict:
    cmd = [sys.executable, "-m", "voicebot.cli", "call", f"sip:voicebot@127.0.0.1:{PORT}", "--config",
           str(served.config), "--from", "+15550102030", "--json", "--hold", "4", "--stay", str(stay_s),
           "--dtmf", "0"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=served.folder)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout[done.stdout.index("{"):])


def callbacks(served) -> list[dict]:
    from voicebot.crm.repository import Repository

    repo = Repository.open(served.folder / "data" / "crm.db")
    try:
        return list(repo.db["callbacks"].rows)
    finally:
        repo.close()


@pytest.fixture(scope="module")
def warm_bot(tmp_path_factory):
    sip_extra = f"  operator_uri: sip:operator@127.0.0.1:{OP_PORT}\n  transfer_mode: warm\n"
    extra = "  drain_timeout_s: 10\nfaults:\n  tts_timeout_s: 40\n"  # the operator's brief, synthesised on 2 busy cores: never blind here
    with serving(tmp_path_factory.mktemp("warm"), PORT, extra=extra, sip_extra=sip_extra,
                 load_timeout_s=400, stop_timeout_s=300) as served:
        yield served
    # (no exit-code check: SIGTERM waits for the after-call analysis of these calls, minutes on loaded cores)


def test_an_operator_who_never_answers_the_caller_hears_still_connecting_then_the_news(warm_bot, tmp_path):
    served = warm_bot
    with operator(tmp_path, OP_PORT, NO_ANSWER_UAS) as op:
        report = dial_zero(served, stay_s=45)  # the brief's synthesis, 20 s of ringing, the news
        code, log = op.wait(30)
    assert [e.data["mode"] for e in served.store().events(served.store().list_calls(limit=1)[0].id)
            if e.kind == "transfer_result"] == ["warm"]
    assert code == 0, log  # sipp rang, got the CANCEL after the bot's ring limit, and ended cleanly
    after = [u for u in report["bot_utterances"] if u["start_s"] > report["steps"][-1]["end_s"]]
    text = " ".join(u["text"] for u in after)
    assert_heard_any(after[0]["text"], "connect you with a colleague", "please hold")
    connecting = [u for u in after if heard_phrase(u["text"], "still connecting you")]
    assert len(connecting) >= 3, after  # 20 s of ringing, told every few seconds
    assert_heard_any(text, "call you back", "no one can take your call")
    told = next(i for i, u in enumerate(after) if heard_phrase(u["text"], "call you back")
                or heard_phrase(u["text"], "no one can take your call"))
    gaps = [b["start_s"] - a["end_s"] for a, b in zip(after[:told + 1], after[1:told + 1])]
    # never a long silence while the brief was made and it rang: 2.5 s of quiet, plus the caller's side of the
    # measurement (its own recording, media scheduling on loaded cores: up to ~1.3 s seen at load 20 on 2 cores;
    # the exact 2.5 s is pinned on the simulated line in test_transfer_hold.py)
    assert max(gaps) <= 4.0, after
    row = last_call(served)
    assert row.outcome == "transfer_failed", row
    [result] = [e.data for e in served.store().events(row.id) if e.kind == "transfer_result"]
    assert not result["ok"] and result["status"] == 408, result
    assert any("408" in c["reason"] and c["phone"] == "+15550102030" for c in callbacks(served))


def test_an_operator_who_answers_busy_the_caller_is_told_at_once(warm_bot, tmp_path):
    served = warm_bot
    with operator(tmp_path, OP_PORT, BUSY_UAS) as op:
        report = dial_zero(served, stay_s=12)
        code, log = op.wait(30)
    assert code == 0, log
    text = " ".join(u["text"] for u in report["bot_utterances"])
    assert_heard_any(text, "call you back", "no one can take your call")
    row = last_call(served)
    assert row.outcome == "transfer_failed", row
    assert any("486" in c["reason"] for c in callbacks(served))
