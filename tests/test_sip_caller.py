"""The scripted caller (`voicebot call`): its audio analysis on synthetic PCM, and the real thing over loopback:
a caller process (its own pjsua2 endpoint) calls a SipWorker in this process, which answers, transfers (blind
REFER, which the caller follows, or warm, bridging it to a sipp operator) and hears its DTMF."""

from __future__ import annotations

import asyncio
import json
import math
import struct
import sys
import threading
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from asr_support import assert_heard, assert_heard_any
from sip_support import Ports, sip_config, sipp_binary, start_sipp, uas_scenario, wait_sipp
from voicebot.audio import AudioFrame, rms_dbfs, write_wav
from voicebot.telephony.base import DtmfReceived
from voicebot.telephony.sip import SipCall, SipWorker
from voicebot.tools.caller import (CallReport, CallScriptError, StepRecord, bot_finished, describe_dial_failure,
                                   dtmf_step, find_onset, frame_levels, reply_delays, split_utterances, step_order,
                                   wav_step)

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent
RATE = 16000


def tone(seconds: float, freq: float = 440.0, amplitude: int = 8000) -> bytes:
    n = int(seconds * RATE)
    return b"".join(struct.pack("<h", int(amplitude * math.sin(2 * math.pi * freq * i / RATE))) for i in range(n))


def quiet(seconds: float) -> bytes:
    return b"\0" * (int(seconds * RATE) * 2)


# -- pure functions ------------------------------------------------------------------------------------------
def test_frame_levels_and_onset():
    pcm = quiet(0.5) + tone(0.3) + quiet(0.2)
    levels = frame_levels(pcm)
    assert len(levels) == 50
    assert levels[0] == -120.0 and -16 < levels[30] < -14  # 8000/32768 peak: -12.2 dBFS, rms 3 dB lower
    assert find_onset(levels) == 25
    assert find_onset(levels, start=40) is None
    click = quiet(0.2) + tone(0.04) + quiet(0.2)  # two frames: not speech
    assert find_onset(frame_levels(click)) is None
    assert find_onset(frame_levels(quiet(0.5) + tone(0.1, amplitude=200))) is None  # below -40 dBFS


def test_bot_finished_needs_speech_then_quiet():
    quiet_frames = 50
    assert not bot_finished(frame_levels(quiet(3)), 0, quiet_frames)  # never spoke
    assert not bot_finished(frame_levels(tone(1) + quiet(0.5)), 0, quiet_frames)  # not quiet long enough
    assert bot_finished(frame_levels(tone(1) + quiet(1.0)), 0, quiet_frames)
    assert not bot_finished(frame_levels(tone(1) + quiet(1.0)), 60, quiet_frames)  # nothing said after frame 60
    assert not bot_finished(frame_levels(tone(1) + quiet(1.2) + tone(0.2)), 0, quiet_frames)  # speaking again


def test_split_utterances_joins_short_gaps():
    pcm = quiet(0.4) + tone(1.0) + quiet(0.3) + tone(0.5) + quiet(1.5) + tone(0.6) + quiet(1.5) + tone(0.04)
    spans = split_utterances(frame_levels(pcm), min_gap_frames=50)
    assert spans == [(20, 110), (185, 215)], spans  # the 0.3 s pause joins; the lone click at the end is dropped
    assert split_utterances(frame_levels(tone(0.6) + quiet(0.2) + tone(0.04)), min_gap_frames=50) == [(0, 42)]


def test_reply_delays_and_report():
    assert reply_delays([2.0, 6.0], [1.0, 5.0], [0.1, 2.5, 5.5, 6.8]) == [0.5, 0.8]
    assert reply_delays([2.0, 6.0], [1.0, 5.0], [0.1]) == [None, None]  # no reply before the next step
    heard = quiet(0.2) + tone(1.0) + quiet(1.5) + tone(0.8) + quiet(1.0)
    report = CallReport("sip:x@h", "+1", steps=[StepRecord("dtmf", "1", 1.3, 2.0)], heard=heard)
    report.analyse()
    assert [(u.start_s, u.end_s) for u in report.bot_utterances] == [(0.2, 1.2), (2.7, 3.5)]
    assert report.steps[0].reply_s == 0.7 and report.voice_to_voice_s == [0.7]
    assert report.greeting_s == 0.2  # answered -> the bot's first audio, at the caller
    out = report.to_json()
    assert set(out) >= {"steps", "bot_utterances", "transfers", "recording", "voice_to_voice_s", "greeting_s"}
    json.dumps(out)
    assert CallReport("sip:x@h", "+1", heard=quiet(2.0)).greeting_s is None  # a silent bot has no greeting


def test_step_order_and_script_errors(tmp_path):
    argv = ["sip:a@b", "--say", "hi", "--dtmf", "12", "--wav=x.wav", "--hold", "3", "--say", "--wav"]
    assert step_order(argv, {"say": 2, "wav": 1, "dtmf": 1}) == ["say", "dtmf", "wav", "say"]
    assert step_order(["pytest"], {"say": 1, "wav": 1, "dtmf": 0}) == ["say", "wav"]  # argv does not match
    with pytest.raises(CallScriptError, match="does not exist"):
        wav_step(tmp_path / "missing.wav")
    (tmp_path / "text.wav").write_text("not a wav")
    with pytest.raises(CallScriptError, match="cannot read WAV"):
        wav_step(tmp_path / "text.wav")
    write_wav(tmp_path / "8k.wav", tone(0.5, amplitude=4000)[::2][:8000], 8000)
    step = wav_step(tmp_path / "8k.wav")
    assert step.kind == "wav" and abs(len(step.pcm) - RATE) < 64  # 0.5 s at 16 kHz
    with pytest.raises(CallScriptError, match="DTMF"):
        dtmf_step("12x")
    assert "403" in describe_dial_failure("sip:a@b", 403, "Forbidden", 20) and "allowed_sources" in \
        describe_dial_failure("sip:a@b", 403, "Forbidden", 20)
    assert "did not answer within 20 s" in describe_dial_failure("sip:a@b", 408, "", 20)


# -- the caller process against a worker in this process ---------------------------------------------------
def transfers(mode: str, result: str) -> float:
    return REGISTRY.get_sample_value("voicebot_transfers_total", {"mode": mode, "result": result}) or 0.0


async def run_caller(uri: str, *args: str, transcribe: bool = False, timeout_s: float = 45.0) -> tuple[int, dict, str]:
    """Run `voicebot call URI ... --json` as its own process; returns (exit code, parsed JSON, stderr)."""
    cmd = [sys.executable, "-m", "voicebot.call_cli", uri, *args, "--json", "--config", str(ROOT / "config.yaml")]
    if not transcribe:
        cmd.append("--no-transcribe")
    proc = await asyncio.create_subprocess_exec(*cmd, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
    text = out.decode(errors="replace").strip()
    try:
        data = json.loads(text.splitlines()[-1]) if text else {}
    except json.JSONDecodeError:
        pytest.fail(f"the caller printed no JSON: {text!r}\nstderr: {err.decode(errors='replace')[-3000:]}")
    return proc.returncode, data, err.decode(errors="replace")


class Bot:
    """A stub on_call: optionally plays a greeting, transfers, plays after a failed transfer; records events."""

    def __init__(self, greeting: bytes = b"", transfer_to: str | None = None, brief: bytes | None = None,
                 after_failure: bytes = b"", transfer_after_s: float = 0.3):
        self.greeting, self.transfer_to, self.brief = greeting, transfer_to, brief
        self.after_failure, self.transfer_after_s = after_failure, transfer_after_s
        self.calls: list[SipCall] = []
        self.events: list[object] = []
        self.results = []
        self.done = asyncio.Event()

    async def __call__(self, call: SipCall) -> None:
        self.calls.append(call)
        try:
            call.play(self.greeting)
            if self.transfer_to:
                await asyncio.sleep(self.transfer_after_s)
                result = await call.transfer(self.transfer_to, timeout_s=10, brief=self.brief)
                self.results.append(result)
                if result.ok:
                    return  # blind: the bot's leg is gone; warm: the pair lives on without the session
                call.play(self.after_failure)
            async for event in call.events():
                self.events.append(event)
        finally:
            self.done.set()


async def with_worker(ports: Ports, bot: Bot, caller_args: list[str], operator=None, **sip):
    """Start a worker answering with ``bot``, run the caller process against it, then wait for the operator
    sipp (if any) and for the worker's calls to end."""
    sipp_binary()
    if bot.transfer_to:
        sip.setdefault("operator_uri", bot.transfer_to)  # a call may be transferred nowhere else
    async with SipWorker(sip_config(ports.sip, **sip), bot, rtp_port=ports.rtp,
                         rtp_port_range=ports.rtp_range) as worker:
        code, data, err = await run_caller(f"sip:voicebot@127.0.0.1:{ports.sip}", *caller_args)
        sipp = await asyncio.to_thread(wait_sipp, operator, 20) if operator is not None else None
        for _ in range(100):
            if not worker.calls:
                break
            await asyncio.sleep(0.05)
        left = dict(worker.calls)
        stats = worker.stats
    assert not [t for t in threading.enumerate() if t.name.startswith("pjsua2-")], "pjsua2 thread left running"
    return code, data, err, sipp, stats, left


def test_caller_waits_for_greeting_and_sends_dtmf():
    ports = Ports.block(20)
    bot = Bot(greeting=tone(1.0))
    code, data, err, _, stats, left = asyncio.run(
        with_worker(ports, bot, ["--dtmf", "12#", "--from", "+15557654321", "--hold", "2"]))
    assert code == 0, err
    digits = [e.digit for e in bot.events if isinstance(e, DtmfReceived)]
    assert digits == ["1", "2", "#"], digits
    assert bot.calls[0].info.caller_id == "+15557654321"
    [step] = data["steps"]
    assert step["kind"] == "dtmf" and step["value"] == "12#"
    assert 1.8 <= step["start_s"] <= 3.0, step  # after the 1 s greeting and 1 s of quiet
    first = data["bot_utterances"][0]
    assert first["start_s"] < 0.3 and 0.8 <= first["end_s"] - first["start_s"] <= 1.3, data["bot_utterances"]
    assert data["ended_by"] == "caller" and data["transfers"] == [] and left == {}
    assert stats.answered == 1


def test_caller_follows_blind_transfer(tmp_path):
    ports = Ports.block(21)
    write_wav(tmp_path / "tone.wav", tone(3.0), RATE)
    target = f"sip:operator@127.0.0.1:{ports.sipp()}"
    bot = Bot(transfer_to=target, transfer_after_s=0.5)

    async def main():
        operator = start_sipp(tmp_path, ports.sipp(), ports.media(), builtin="uas", rtp_echo=True)
        await asyncio.sleep(0.3)
        return await with_worker(ports, bot, ["--no-wait-greeting", "--wav", str(tmp_path / "tone.wav"),
                                              "--hold", "3"], operator)

    code, data, err, sipp, stats, left = asyncio.run(main())
    assert code == 0, err
    [result] = bot.results
    assert (result.ok, result.status) == (True, 200), result
    assert bot.calls[0].hung_up_by == "bot"  # the bot left after the NOTIFY 200
    assert data["transfers"] == [{"target": target, "status": 200}], data
    assert sipp.returncode == 0, sipp.stdout  # the operator got the call, then the caller's BYE
    heard = sum(u["end_s"] - u["start_s"] for u in data["bot_utterances"] if u["start_s"] > 0.5)
    assert heard >= 1.5, data["bot_utterances"]  # the operator echoed the caller's tone on the new leg
    assert data["ended_by"] == "caller" and left == {}


def test_refer_to_busy_operator_keeps_the_call(tmp_path):
    ports = Ports.block(22)
    write_wav(tmp_path / "tone.wav", tone(0.5), RATE)
    target = f"sip:operator@127.0.0.1:{ports.sipp()}"
    bot = Bot(transfer_to=target, after_failure=tone(1.0, freq=660))

    async def main():
        operator = start_sipp(tmp_path, ports.sipp(), ports.media(), xml=uas_scenario(486, "Busy Here"))
        await asyncio.sleep(0.3)
        return await with_worker(ports, bot, ["--no-wait-greeting", "--wav", str(tmp_path / "tone.wav"),
                                              "--hold", "8"], operator)

    code, data, err, sipp, stats, left = asyncio.run(main())
    assert code == 0, err
    [result] = bot.results
    assert (result.ok, result.status) == (False, 486), result
    assert data["transfers"] == [{"target": target, "status": 486}], data
    assert sipp.returncode == 0, sipp.stdout
    assert bot.calls[0].hung_up_by == "caller"  # the call went on with the bot until the caller hung up
    after = [u for u in data["bot_utterances"] if u["end_s"] - u["start_s"] >= 0.8]
    assert after, data["bot_utterances"]  # the caller heard the bot's tone played after the failure


def test_warm_transfer_bridges_caller_and_operator(tmp_path):
    ports = Ports.block(23)
    write_wav(tmp_path / "tone.wav", tone(4.0), RATE)
    target = f"sip:operator@127.0.0.1:{ports.sipp()}"
    bot = Bot(transfer_to=target, brief=tone(0.6, freq=880), transfer_after_s=0.2)

    async def main():
        operator = start_sipp(tmp_path, ports.sipp(), ports.media(), builtin="uas", rtp_echo=True)
        await asyncio.sleep(0.3)
        return await with_worker(ports, bot, ["--no-wait-greeting", "--wav", str(tmp_path / "tone.wav"),
                                              "--hold", "3", "--record", str(tmp_path / "heard.wav")], operator)

    counted = transfers("warm", "ok")
    code, data, err, sipp, stats, left = asyncio.run(main())
    assert code == 0, err
    [result] = bot.results
    assert (result.ok, result.status) == (True, 200), result
    assert transfers("warm", "ok") == counted + 1
    call = bot.calls[0]
    operator_leg = call.bridged
    assert operator_leg is not None and operator_leg.bridged is call
    assert call.hung_up_by == "caller" and operator_leg.hung_up_by == "bot"  # the worker ended the pair
    assert sipp.returncode == 0, sipp.stdout  # the worker hung the operator up when the caller left
    assert "INVITE sip:operator@" in sipp.messages and "BYE sip:" in sipp.messages
    op_heard, op_sent = operator_leg.recordings()
    assert sum(rms_dbfs(op_sent[i:i + 640]) > -30 for i in range(0, len(op_sent), 640)) >= 25  # the brief
    caller_heard_from_bot = call.recordings()[1]
    assert max((rms_dbfs(caller_heard_from_bot[i:i + 640]) for i in range(0, len(caller_heard_from_bot), 640)),
               default=-120) < -60  # the caller never heard the brief or the bot
    bridged = sum(u["end_s"] - u["start_s"] for u in data["bot_utterances"])
    assert bridged >= 2.0, data["bot_utterances"]  # its own tone, echoed by the operator through the bridge
    assert data["recording"] and Path(data["recording"]).is_file()
    assert left == {} and stats.dialed == 1


def test_warm_transfer_to_busy_operator_keeps_the_caller(tmp_path):
    ports = Ports.block(24)
    write_wav(tmp_path / "tone.wav", tone(0.5), RATE)
    target = f"sip:operator@127.0.0.1:{ports.sipp()}"
    bot = Bot(transfer_to=target, brief=tone(0.5), after_failure=tone(1.0, freq=660))

    async def main():
        operator = start_sipp(tmp_path, ports.sipp(), ports.media(), xml=uas_scenario(486, "Busy Here"))
        await asyncio.sleep(0.3)
        return await with_worker(ports, bot, ["--no-wait-greeting", "--wav", str(tmp_path / "tone.wav"),
                                              "--hold", "8"], operator)

    counted = transfers("warm", "failed")
    code, data, err, sipp, stats, left = asyncio.run(main())
    assert code == 0, err
    [result] = bot.results
    assert (result.ok, result.status, result.reason) == (False, 486, "Busy Here"), result
    assert transfers("warm", "failed") == counted + 1
    assert sipp.returncode == 0, sipp.stdout
    assert bot.calls[0].bridged is None and bot.calls[0].hung_up_by == "caller"
    assert any(u["end_s"] - u["start_s"] >= 0.8 for u in data["bot_utterances"]), data["bot_utterances"]
    assert (stats.dialed, stats.dial_failed) == (0, 1)


def test_caller_reports_refusals_and_bad_input(tmp_path):
    ports = Ports.block(25)

    async def main():
        out = {}
        async with SipWorker(sip_config(ports.sip, allowed_sources=["127.0.0.2/32"]), Bot(), rtp_port=ports.rtp,
                             rtp_port_range=ports.rtp_range):
            out[403] = await run_caller(f"sip:voicebot@127.0.0.1:{ports.sip}", "--no-wait-greeting")
        busy = start_sipp(tmp_path, ports.sipp(), ports.media(), xml=uas_scenario(486, "Busy Here"))
        await asyncio.sleep(0.3)
        out[486] = await run_caller(f"sip:voicebot@127.0.0.1:{ports.sipp()}")
        await asyncio.to_thread(wait_sipp, busy, 10)
        out[408] = await run_caller(f"sip:voicebot@127.0.0.1:{ports.sipp(1)}", "--timeout", "1.5")
        out["wav"] = await run_caller(f"sip:voicebot@127.0.0.1:{ports.sip}", "--wav", str(tmp_path / "none.wav"))
        return out

    out = asyncio.run(main())
    for status in (403, 486, 408):
        code, data, err = out[status]
        assert code == 1 and data["status"] == status, (status, data, err)
        assert f"{status}" in err or "did not answer" in err, err
    assert "allowed_sources" in out[403][1]["error"] and "busy" in out[486][1]["error"]
    code, data, err = out["wav"]
    assert code == 1 and "does not exist" in data["error"] and data["status"] is None


@pytest.mark.models
def test_caller_speaks_and_transcribes_the_bot(synthesizer, transcriber):
    """--say with Piper, the bot's speech transcribed with Whisper; the bot replies after the caller spoke."""
    ports = Ports.block(26)
    greeting = synthesizer.cached("Hello, thanks for calling the demo company.", RATE)
    reply = synthesizer.cached("Your order has shipped.", RATE)
    heard_caller: list[bytes] = []

    class Talker(Bot):
        async def __call__(self, call: SipCall) -> None:
            self.calls.append(call)
            call.play(greeting)
            await call.wait_played()
            loud = silent = 0
            async for event in call.events():
                if not isinstance(event, AudioFrame):
                    continue
                if rms_dbfs(event.pcm) > -40:
                    loud, silent = loud + 1, 0
                    heard_caller.append(event.pcm)
                elif loud:
                    silent += 1
                    heard_caller.append(event.pcm)
                if loud >= 25 and silent >= 40:  # 0.5 s of speech, then 0.8 s of quiet: the caller's turn ended
                    call.play(reply)
                    loud = silent = 0
            self.done.set()

    bot = Talker()

    async def main():
        async with SipWorker(sip_config(ports.sip), bot, rtp_port=ports.rtp, rtp_port_range=ports.rtp_range):
            return await run_caller(f"sip:voicebot@127.0.0.1:{ports.sip}", "--say", "I want to check my order.",
                                    "--hold", "8", transcribe=True, timeout_s=55)

    code, data, err = asyncio.run(main())
    assert code == 0, err
    texts = [u["text"] for u in data["bot_utterances"]]
    assert len(texts) == 2, data["bot_utterances"]
    # what Whisper heard, tolerant of its errors ("Your order has shipped" came back as "Your order has shit.")
    assert_heard(texts[0], "Hello, thanks for calling the demo company.")
    assert_heard(texts[1], "Your order has shipped.")
    assert data["bot_utterances"][0]["start_s"] < 0.5
    [step] = data["steps"]
    assert step["kind"] == "say" and step["start_s"] > data["bot_utterances"][0]["end_s"]
    assert 0.5 < step["reply_s"] < 3.0 and data["voice_to_voice_s"] == [step["reply_s"]]
    said = transcriber.transcribe(b"".join(heard_caller), RATE).text
    assert_heard_any(said, "check", "order")  # the caller's "I want to check my order." reached the bot
