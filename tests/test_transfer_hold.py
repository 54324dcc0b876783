"""While a transfer rings the caller is told they are being connected; when nobody answers, they are told that.

Timelines at line pace on the simulated line, whose transfer rings for ``ring_s`` before its result (the operator
not answering, busy, or answering). The real thing (sipp as an operator that never answers, and one that answers
486, with `voicebot serve` in warm mode) is in test_transfer_hold_sip.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fakes import ScriptedChat, ScriptedVad
from test_session import ALICE, TODAY, Call, with_dialog

import test_faults
from voicebot.session import CallSession, SessionDeps
from voicebot.session.faults import FallbackSpeech
from voicebot.store import Outcome
from voicebot.telephony.base import TransferResult
from voicebot.telephony.script import HangUp, Press, Silence, WaitForBot
from voicebot.telephony.sim import SimulatedLine

crm_template, env = test_faults.crm_template, test_faults.env  # the fixtures these tests share
RING_S = 8.0


@dataclass
class RingingLine(SimulatedLine):
    """The transfer rings ``ring_s`` (call audio = wall time at line pace) before its result comes."""

    ring_s: float = RING_S
    rang_at: float | None = None

    async def transfer(self, target: str, brief: bytes | None = None) -> TransferResult:
        self.rang_at = self.now_s
        await asyncio.sleep(self.ring_s)
        return await super().transfer(target, brief)


def dial_zero(env, result: TransferResult) -> Call:
    """The caller presses 0 after the greeting, stays on the line through the ringing and the news, hangs up."""
    config = test_faults.limits(with_dialog(test_faults.short(env)), hold_after_s=2.5)
    rate = config.audio.sample_rate
    fallback = FallbackSpeech.render(env.synth, config.dialog.prompts, rate)
    env.synth.said.clear()
    line = RingingLine([WaitForBot(), Press("0"), Silence(RING_S + 4.0), HangUp()], caller_id=ALICE, speed=1.0,
                       sample_rate=rate, transfer_result=result)
    deps = SessionDeps(config, env.transcriber, env.synth, ScriptedChat(), ScriptedVad(), env.crm, env.store,
                       today=TODAY, fallback=fallback)
    session = CallSession(line, deps)
    outcome = asyncio.run(asyncio.wait_for(session.run(), timeout=90))
    assert not line.failures, line.failures
    return Call(line, session, outcome, env.store)


def silences(call: Call, from_s: float, to_s: float) -> list[float]:
    spans = [(u.start_s, u.end_s) for u in call.line.bot_utterances(min_gap_s=0) if from_s <= u.end_s]
    gaps, last = [], from_s
    for start, end in spans:
        if start > to_s:
            break
        gaps.append(start - last)
        last = max(last, end)
    return gaps


def test_an_operator_who_never_answers_the_caller_hears_still_connecting_then_is_told(env):
    operator = env.config.sip.operator_uri
    callbacks = env.crm.counts()["callbacks"]
    call = dial_zero(env, TransferResult(operator, ok=False, status=408, reason="Request Timeout"))
    prompts = call.session.config.dialog.prompts

    said = call.said("bot")
    assert said[1] == prompts.transfer and said[-1] == prompts.transfer_failed
    connecting = said.count(prompts.still_connecting)
    assert connecting >= 2, said  # 8 s of ringing: told more than once
    told = call.turn("bot", prompts.transfer_failed)
    rang_at, answered_at = call.line.rang_at, call.line.rang_at + RING_S
    assert max(silences(call, rang_at, told.started_at)) <= 3.0  # never silent for long while it rang
    assert told.started_at - answered_at <= 0.3  # the rest of "still connecting" gave way to the news
    assert call.outcome == Outcome.TRANSFER_FAILED and call.record.outcome == Outcome.TRANSFER_FAILED
    assert "no_input" not in call.kinds()  # the silence while it rang was not taken for an unanswered question
    assert env.crm.counts()["callbacks"] == callbacks + 1  # offered and created
    assert "408" in env.crm.db["callbacks"].get(call.event("callback_created").data["id"])["reason"]


def test_a_busy_operator_after_ringing_the_caller_is_told_and_a_callback_made(env):
    call = dial_zero(env, TransferResult(env.config.sip.operator_uri, ok=False, status=486, reason="Busy Here"))
    assert call.said("bot")[-1] == call.session.config.dialog.prompts.transfer_failed
    assert call.outcome == Outcome.TRANSFER_FAILED and "callback_created" in call.kinds()


def test_an_operator_who_answers_ends_the_hold_and_the_call_is_transferred(env):
    call = dial_zero(env, TransferResult(env.config.sip.operator_uri, ok=True, status=200, reason="OK"))
    prompts = call.session.config.dialog.prompts
    assert prompts.still_connecting in call.said("bot") and prompts.transfer_failed not in call.said("bot")
    assert call.outcome == Outcome.TRANSFERRED
