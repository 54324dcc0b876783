"""A hang never means silence, through the real parts: `voicebot serve` with the Ollama backend against an
Ollama-protocol server that takes the call's request and never answers, `voicebot call` (pjsua2) as the caller.

What the caller hears, transcribed on their side: the greeting, their question, then within ~3 s of their turn's
end the hold line (pre-rendered: the model is the part that hangs, the synthesiser is fine, but the line needs
neither), again after any further 2.5 s of quiet (the filler may come in between), and at the model's limit the
apology and the transfer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from asr_support import heard_phrase
from fakes import ScriptedChat
from ollama_server import FakeOllama
from serve_support import serving

pytestmark = [pytest.mark.models, pytest.mark.timeout(400)]

PORT = 22520  # the bot (RTP from +2); the operator URI points at PORT+70, where nothing listens
MODEL = "qwen2.5-coder:1.5b-instruct-q4_K_M"
LLM_LIMIT_S = 8.0


def test_a_model_that_never_answers_gets_the_hold_line_then_the_apology_over_sip(tmp_path):
    release = threading.Event()
    asked = []

    def never(i: int) -> None:  # the call's request: accepted, then nothing (warm-up asks 1 token: no pieces)
        asked.append(i)
        release.wait(60)

    extra = (f"llm:\n  backend: ollama\n  ollama:\n    url: {{url}}\n    model: {MODEL}\n"
             f"faults:\n  llm_timeout_s: {LLM_LIMIT_S}\n  hold_after_s: 2.5\n")
    sip_extra = f"  operator_uri: sip:operator@127.0.0.1:{PORT + 70}\n"
    with FakeOllama(ScriptedChat(['{"say": "We sell coffee."}'], repeat=True, on_piece=never), MODEL) as ollama:
        try:
            with serving(tmp_path, PORT, extra=extra.format(url=ollama.url), sip_extra=sip_extra,
                         load_timeout_s=400) as served:
                cmd = [sys.executable, "-m", "voicebot.cli", "call", f"sip:voicebot@127.0.0.1:{PORT}", "--config",
                       str(served.config), "--from", "+15550102030", "--json", "--hold", "4", "--stay", "20",
                       # small talk: a turn only the model answers ("something about your company" is a question
                       # for the knowledge base now, answered or declined in code)
                       "--say", "Can you tell me a joke?"]
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=200, cwd=tmp_path)
                assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
                report = json.loads(done.stdout[done.stdout.index("{"):])
        finally:
            release.set()
    assert asked, "the model was never asked: the question did not reach it"
    said_end = report["steps"][-1]["end_s"]
    after = [u for u in report["bot_utterances"] if u["start_s"] > said_end]
    assert after, report["bot_utterances"]
    # the caller's turn ends ~0.6-1 s after their speech (endpointing); the filler ("One moment, let me check
    # that.") may come first, at filler_after_ms; the hold line follows 2.5 s of quiet later
    assert after[0]["start_s"] - said_end <= 4.5, (said_end, after)
    holds = [u for u in after[:3] if heard_phrase(u["text"], "taking a moment") or
             heard_phrase(u["text"], "stay on the line")]
    assert holds, after
    apology = next(i for i, u in enumerate(after) if "went wrong" in u["text"] or "colleague" in u["text"])
    gaps = [b["start_s"] - a["end_s"] for a, b in zip(after[:apology + 1], after[1:apology + 1])]
    assert max(gaps, default=0) <= 3.2, after  # never silent longer than the hold interval (+ a frame or so)
    row = served.store().list_calls(limit=1)[0]
    events = served.store().events(row.id)
    kinds = [e.kind for e in events]
    assert [e.data["stage"] for e in events if e.kind == "error"] == ["llm"], kinds
    assert "transfer_requested" in kinds, (kinds, report)
    bot = [t.text for t in served.store().turns(row.id) if t.role == "bot"]
    assert "Sorry, this is taking a moment. Please stay on the line." in bot[1:3], bot  # on record as said
    assert "voicebot.session.watchdog" in served.text or "hold line played" in served.text
