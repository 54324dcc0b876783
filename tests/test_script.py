"""The one caller-script vocabulary (voicebot.telephony.script): the simulated line and the SIP scripted caller
read the same steps."""

from __future__ import annotations

import asyncio

import pytest

from voicebot.telephony.base import CallerHungUp, DtmfReceived
from voicebot.telephony.script import HangUp, Press, Say, Silence, WaitForBot
from voicebot.telephony.sim import SimulatedLine
from voicebot.tools.caller import MAX_SPEECH_S, QUIET_S, CallScriptError, caller_script, dtmf_step, say_step


def test_actions_describe_themselves_for_reports() -> None:
    said, played, pressed = Say(b"\0\0", 16000, "Hi there"), Say(b"\0\0", 8000, "t.wav", file="/x/t.wav"), Press("12#")
    assert [(s.kind, s.value, s.describe()) for s in (said, played, pressed)] == [
        ("say", "Hi there", "say 'Hi there'"), ("wav", "/x/t.wav", "play /x/t.wav"), ("dtmf", "12#", "press 12#")]
    with pytest.raises(ValueError, match="DTMF digits"):
        Press("1x")
    with pytest.raises(ValueError):
        Press("")


def test_the_scripted_caller_waits_for_the_bot_before_each_action_and_holds_after_the_last() -> None:
    hello, zero = say_step("Hello", b"\1\0" * 160), dtmf_step("0")
    reply = WaitForBot(gap_s=QUIET_S, timeout_s=MAX_SPEECH_S)
    assert caller_script([hello, zero], hold_s=4) == [reply, hello, reply, zero, WaitForBot(QUIET_S, 4)]
    assert caller_script([hello], wait_greeting=False, hold_s=0) == [hello]
    assert caller_script([], hold_s=2) == [WaitForBot(QUIET_S, 2)]
    assert hello.sample_rate == 16000 and len(say_step("Hi", b"\1\0" * 80, 8000).pcm) == 320  # made 16 kHz
    assert dtmf_step("12ab").digits == "12AB"
    with pytest.raises(CallScriptError, match="DTMF digits"):
        dtmf_step("12x")


def test_the_simulated_line_presses_each_digit_of_a_press() -> None:
    async def run() -> list:
        line = SimulatedLine([Press("12#"), Silence(0.04), HangUp()], speed=float("inf"))
        return [e for e in [event async for event in line.events()] if not hasattr(e, "pcm")]

    events = asyncio.run(run())
    assert [e.digit for e in events if isinstance(e, DtmfReceived)] == ["1", "2", "#"]
    assert isinstance(events[-1], CallerHungUp)
