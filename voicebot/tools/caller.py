"""The scripted caller behind ``voicebot call``: dials the bot over SIP, runs a script of steps (speech, WAV
files, DTMF), listens to what the bot says and reports it with timings.

The script is a timeline in the vocabulary of ``voicebot.telephony.script``, the one the simulated line runs
too. ``voicebot call`` gives actions (``Say`` for --say and --wav, ``Press`` for --dtmf) and ``caller_script``
puts a ``WaitForBot`` before each (the greeting before the first, the reply to the previous step before the
others) and after the last. Turn-taking is judged from the bot's audio alone: the bot is speaking while its
audio is above SPEECH_DB, and has finished once an onset was followed by the wait's gap of quiet. Those audio
judgements are pure functions over PCM (``frame_levels``, ``find_onset``, ``bot_finished``,
``split_utterances``), tested on synthetic audio.

This module does not import pjsua2: ``place_call`` dials with the bot's own endpoint (SipWorker from
``voicebot.telephony.sip_endpoint``, whose modules alone import pjsua2), imported only when it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import wave
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from voicebot.audio import read_wav, resample
from voicebot.tools.levels import (  # noqa: F401 - part of the caller's interface
    FRAME_S, MIN_SPEECH_S, RATE, SILENT_FOR_S, SPEECH_DB, _min_frames, barge_in_latency, bot_finished, find_onset,
    frame_levels, quieter_latency, reply_delays, split_utterances)
from voicebot.telephony.script import Action, HangUp, Press, Say, Silence, Step, WaitForBot, WaitIntoBot

if TYPE_CHECKING:
    from voicebot.config import Config
    from voicebot.speech.stt import Transcriber
    from voicebot.telephony.call_endpoint import CallerEndpoint
    from voicebot.telephony.sip_call import SipCall

FRAME_BYTES = int(RATE * FRAME_S) * 2  # 640
QUIET_S = 1.0  # this much quiet after speech: the bot has finished (a WaitForBot's gap between steps)
MAX_WAIT_S = 15.0  # how long to wait for the bot to start speaking
MAX_SPEECH_S = 90.0  # how long to let it speak before going on anyway (a WaitForBot's timeout between steps)
DTMF_DIGIT_S = 0.25  # an RFC 2833 digit and the gap after it, as pjsua sends them
STEP_OPTIONS = {"--say": "say", "--wav": "wav", "--dtmf": "dtmf", "--over": "over"}
DEFAULT_CALLER_ID = "+15550102030"

StepKind = Literal["say", "wav", "dtmf"]  # ``Action.kind``


class CallScriptError(Exception):
    """A problem with the script itself (a WAV that cannot be read, bad DTMF digits): nothing was dialed."""


def step_order(argv: Sequence[str], counts: dict[str, int]) -> list[str]:
    """The order the step options (--say/--wav/--dtmf) were given in on the command line: click hands each
    repeated option over as a list of its own, losing how they interleave. Falls back to all says, then WAVs,
    then DTMF when ``argv`` does not match the parsed counts (e.g. under a test runner)."""
    order: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            break
        name, eq, _ = token.partition("=")
        if name in STEP_OPTIONS:
            order.append(STEP_OPTIONS[name])
            i += 1 if eq else 2
            continue
        i += 1
    if {kind: order.count(kind) for kind in counts} != counts or len(order) != sum(counts.values()):
        order = [kind for kind in ("say", "wav", "dtmf") for _ in range(counts.get(kind, 0))]
        return order[:-1] + ["over"] * counts.get("over", 0) + order[-1:]  # "over" goes before the last action
    return order


def describe_dial_failure(uri: str, status: int, reason: str, timeout_s: float) -> str:
    """A readable sentence for a call the bot did not answer."""
    if status == 408:
        return (f"{uri} did not answer within {timeout_s:g} s (is the bot running? `voicebot serve` starts it; "
                "check the address and port)")
    if status == 403:
        return f"{uri} refused the call: 403 {reason} (this address is not in the bot's sip.allowed_sources)"
    if status == 486:
        return f"{uri} is busy: 486 {reason} (every call slot of the bot is in use; try again shortly)"
    if status == 503:
        return f"{uri} is not taking calls: 503 {reason} (the bot is shutting down, or nothing is listening)"
    if status == 0:
        return f"could not call {uri}: {reason}"
    return f"{uri} did not take the call: {status} {reason}"


# -- the script -----------------------------------------------------------------------------------------------
def say_step(text: str, pcm: bytes, sample_rate: int = RATE) -> Say:
    """A step saying ``text`` (``pcm``: its speech, mono s16le; resampled to 16 kHz)."""
    return Say(resample(pcm, sample_rate, RATE), RATE, text)


def wav_step(path: str | Path) -> Say:
    """A step playing a WAV file (16-bit mono or stereo, any rate: resampled to 16 kHz)."""
    path = Path(path)
    if not path.is_file():
        raise CallScriptError(f"WAV file {path} does not exist")
    try:
        pcm, rate = read_wav(path)
    except (OSError, EOFError, ValueError, wave.Error) as exc:
        raise CallScriptError(f"cannot read WAV file {path}: {exc}") from None
    if not pcm:
        raise CallScriptError(f"WAV file {path} holds no audio")
    return Say(resample(pcm, rate, RATE), RATE, path.name, file=str(path))


def dtmf_step(digits: str) -> Press:
    try:
        return Press(digits.upper())
    except ValueError as exc:
        raise CallScriptError(str(exc)) from None


def caller_script(actions: Sequence[Action | WaitIntoBot], *, wait_greeting: bool = True,
                  hold_s: float = MAX_WAIT_S) -> list[Step]:
    """The timeline of ``voicebot call``: each action once the bot has finished speaking (the greeting first,
    unless ``wait_greeting`` is off), then at most ``hold_s`` for the bot's reply to the last. A ``WaitIntoBot``
    among the actions (``--over MS``) replaces the wait before the next action: it starts that long after the bot
    starts speaking, over the bot (barge-in)."""
    reply = WaitForBot(gap_s=QUIET_S, timeout_s=MAX_SPEECH_S)
    script: list[Step] = []
    done = 0
    over = False
    for action in actions:
        if isinstance(action, WaitIntoBot):
            script.append(action)
            over = True
            continue
        if not over and (done > 0 or wait_greeting):
            script.append(reply)
        script.append(action)
        done += 1
        over = False
    if hold_s > 0:
        script.append(WaitForBot(gap_s=QUIET_S, timeout_s=hold_s))
    return script


@dataclass
class StepRecord:
    kind: StepKind
    value: str
    start_s: float
    end_s: float
    reply_s: float | None = None  # end of this step to the bot's next onset
    over: bool = False  # said over the bot (``--over``)
    silent_s: float | None = None  # over the bot: the caller's speech onset to the bot silent, as received
    quieter_s: float | None = None  # ... to the bot's voice 15 dB down (ducked under the caller, or silent)


@dataclass
class Utterance:
    start_s: float
    end_s: float
    text: str = ""


@dataclass
class CallReport:
    uri: str
    caller_id: str
    codec: str = ""
    steps: list[StepRecord] = field(default_factory=list)
    bot_utterances: list[Utterance] = field(default_factory=list)
    transfers: list[tuple[str, int]] = field(default_factory=list)
    duration_s: float = 0.0
    ended_by: str = ""  # "caller" (the script hung up) or "bot"
    recording: str | None = None
    heard: bytes = b""  # what the caller heard (the bot), 16 kHz
    sent: bytes = b""  # what the caller sent

    @property
    def voice_to_voice_s(self) -> list[float]:
        return [s.reply_s for s in self.steps if s.reply_s is not None]

    @property
    def greeting_s(self) -> float | None:
        """The call's media up (answered) to the bot's first audio as the caller heard it; None: it said nothing."""
        return self.bot_utterances[0].start_s if self.bot_utterances else None

    def analyse(self, transcriber: Transcriber | None = None, pad_s: float = 0.2) -> None:
        """Cut the heard audio into utterances, transcribe each (when a transcriber is given) and work out each
        step's reply delay."""
        levels = frame_levels(self.heard)
        spans = split_utterances(levels, min_gap_frames=_min_frames(QUIET_S, FRAME_S),
                                 min_frames=_min_frames(MIN_SPEECH_S, FRAME_S))
        self.bot_utterances = []
        for first, end in spans:
            start_s, end_s = first * FRAME_S, end * FRAME_S
            text = ""
            if transcriber is not None:
                a = max(0, int((start_s - pad_s) * RATE) * 2)
                b = int((end_s + pad_s) * RATE) * 2
                text = transcriber.transcribe(self.heard[a:b], RATE).text.strip()
            self.bot_utterances.append(Utterance(round(start_s, 2), round(end_s, 2), text))
        delays = reply_delays([s.end_s for s in self.steps], [s.start_s for s in self.steps],
                              [u.start_s for u in self.bot_utterances])
        for step, delay in zip(self.steps, delays):
            step.reply_s = delay
            if step.over:
                sent = frame_levels(self.sent)
                step.silent_s = barge_in_latency(levels, sent, step.start_s, step.end_s)
                step.quieter_s = quieter_latency(levels, sent, step.start_s, step.end_s)

    def to_json(self) -> dict:
        return {
            "uri": self.uri,
            "caller_id": self.caller_id,
            "codec": self.codec,
            "duration_s": round(self.duration_s, 2),
            "ended_by": self.ended_by,
            "steps": [asdict(s) for s in self.steps],
            "bot_utterances": [asdict(u) for u in self.bot_utterances],
            "transfers": [{"target": t, "status": s} for t, s in self.transfers],
            "recording": self.recording,
            "voice_to_voice_s": self.voice_to_voice_s,
            "greeting_s": self.greeting_s,
        }


# -- running it over SIP --------------------------------------------------------------------------------------
async def wait_for_bot(call: SipCall, since_s: float, *, quiet_s: float | None = QUIET_S,
                       into_s: float | None = None, max_wait_s: float = MAX_WAIT_S,
                       max_speech_s: float = MAX_SPEECH_S, poll_s: float = 0.1) -> float | None:
    """Wait until the bot has spoken after ``since_s`` (seconds into the call) and then been quiet for
    ``quiet_s`` (a ``WaitForBot``), or until it has been speaking for ``into_s`` (a ``WaitIntoBot``); gives up
    when it has not started within ``max_wait_s`` or is still going after ``max_speech_s`` more, or the call
    ends. Returns the onset (seconds into the call) or None."""
    loop = asyncio.get_running_loop()
    first = int(since_s / FRAME_S)
    min_frames = _min_frames(MIN_SPEECH_S, FRAME_S)
    give_up = loop.time() + max_wait_s
    onset: int | None = None
    levels = np.zeros(0)
    while not call.ended:
        new = call.received_audio((first + len(levels)) * FRAME_BYTES)  # only what came since the last look
        levels = np.concatenate([levels, frame_levels(new[:len(new) // FRAME_BYTES * FRAME_BYTES])])
        if onset is None:
            onset = find_onset(levels, 0, SPEECH_DB, min_frames)
            if onset is not None:
                give_up = loop.time() + max_speech_s
        if onset is not None and into_s is not None and len(levels) - onset >= _min_frames(into_s, FRAME_S):
            break
        if (onset is not None and quiet_s is not None
                and bot_finished(levels, onset, _min_frames(quiet_s, FRAME_S), SPEECH_DB, min_frames)):
            break
        if loop.time() >= give_up:
            break
        await asyncio.sleep(poll_s)
    return None if onset is None else (first + onset) * FRAME_S


async def _drain_events(call: SipCall) -> None:
    """Consume the call's events (the far end's frames): nothing here needs them, but unread they pile up."""
    async for _ in call.events():
        pass


async def run_script(call: SipCall, script: Sequence[Step], *, answer_within_s: float = MAX_WAIT_S,
                     status: Callable[[str], None] = lambda _: None) -> list[StepRecord]:
    """Run a timeline (``telephony.script``) on an answered call and return a record of each action. A wait
    gives up when the bot has not started speaking within ``answer_within_s`` (or the wait's ``timeout_s``, if
    shorter), or has spoken for ``timeout_s`` without a pause, and the script goes on: over SIP a slow bot and a
    silent one sound the same. Stops early when the call ends; hangs up only at a ``HangUp`` step."""
    records: list[StepRecord] = []
    actions = [step for step in script if isinstance(step, (Say, Press))]
    since = 0.0  # the end of the last action: the bot's answer to it starts after this
    over_next = False  # the next action is said over the bot
    for step in script:
        if call.ended:
            break
        if isinstance(step, (WaitForBot, WaitIntoBot)):
            status("waiting for the bot's greeting ..." if not records and actions else
                   "waiting for the bot's reply ..." if actions else "listening ...")
            quiet, into = (step.gap_s, None) if isinstance(step, WaitForBot) else (None, step.seconds)
            await wait_for_bot(call, since, quiet_s=quiet, into_s=into,
                               max_wait_s=min(answer_within_s, step.timeout_s), max_speech_s=step.timeout_s)
        elif isinstance(step, Silence):
            await asyncio.sleep(step.seconds)
        elif isinstance(step, HangUp):
            await call.hangup()
        else:
            status(f"step {len(records) + 1}/{len(actions)}: {step.describe()}")
            start = call.elapsed_s
            if isinstance(step, Press):
                await call.send_dtmf(step.digits)
                await asyncio.sleep(DTMF_DIGIT_S * len(step.digits))
            else:
                call.play(step.pcm if step.sample_rate == RATE else resample(step.pcm, step.sample_rate, RATE))
                await call.wait_played()
            since = call.elapsed_s
            records.append(StepRecord(step.kind, step.value, round(start, 2), round(since, 2),
                                      over=over_next))
            over_next = False
        if isinstance(step, WaitIntoBot):
            over_next = True
    return records


async def place_call(config: Config, uri: str, steps: Sequence[Action], *, caller_id: str = DEFAULT_CALLER_ID,
                     wait_greeting: bool = True, hold_s: float = MAX_WAIT_S, stay_s: float = 0.0,
                     answer_timeout_s: float = 20.0, status: Callable[[str], None] = lambda _: None,
                     endpoint: CallerEndpoint | None = None) -> CallReport:
    """Dial ``uri`` from an endpoint of our own (a free local port), run ``caller_script(steps, ...)``, hang up
    and return what happened (audio not yet analysed: ``CallReport.analyse``). Raises SipDialError when the call
    is refused or not answered. ``endpoint``: accounts to register first and the RTP ports (call_endpoint)."""
    from voicebot.telephony.call_endpoint import CallerEndpoint, wait_registered
    from voicebot.telephony.sip_endpoint import SipWorker  # the pjsua2 side, only when a call is placed

    endpoint = endpoint or CallerEndpoint()
    async with SipWorker(config, None, sample_rate=RATE, **endpoint.worker_options()) as worker:
        if endpoint.accounts:
            status("registering ...")
            await wait_registered(worker, answer_timeout_s)
        status(f"calling {uri} ...")
        call = await worker.dial(uri, caller_id=caller_id, timeout_s=answer_timeout_s)
        events = asyncio.ensure_future(_drain_events(call))
        try:
            script = caller_script(steps, wait_greeting=wait_greeting, hold_s=hold_s)
            records = await run_script(call, script, status=status)
            if stay_s > 0 and not call.ended:
                status(f"staying on the line for {stay_s:g} s ...")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(call.wait_ended(), stay_s)
        finally:
            ended_by = "bot" if call.ended and call.hung_up_by != "bot" else "caller"
            await call.hangup()
            events.cancel()
        heard, sent = call.recordings()
        return CallReport(uri=uri, caller_id=caller_id, codec=call.info.codec, steps=records,
                          transfers=list(call.followed), duration_s=len(heard) / (2 * RATE), ended_by=ended_by,
                          heard=heard, sent=sent)
