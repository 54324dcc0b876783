"""An in-memory phone line: a scripted caller on one end, the CallSession on the other.

Time is audio time: each item ``events()`` yields is one frame of the call, and the next frame is made only
when the session asks for it, so the session has handled every frame before time moves on. ``speed`` sets the
pace: 1.0 is line pace (a frame every 20 ms of wall time), larger runs faster than real time. When running
faster than real time the clock stands still while the scripted caller waits for a reply that the bot is still
preparing (nothing is audible on either side), so model latency does not turn into minutes of silent audio.

The caller is a script of steps (``telephony.script``, the vocabulary the SIP scripted caller uses too), written
as a timeline: ``[WaitForBot(), Say(pcm, 16000), WaitForBot(), Press("0")]``.
Caller audio passes through the configured codec (8 kHz mu-law by default), as on a real phone line.
Everything the bot plays is recorded with its time, and ``bot_utterances()`` cuts it into what the bot said.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Literal

from voicebot.audio import AudioFrame, frame_bytes, gained, mix, phone_line
from voicebot.events import CallerHungUp, DtmfReceived, TransferResult, TransportEvent
from voicebot.telephony.base import CallInfo
from voicebot.telephony.script import HangUp, Press, Say, Silence, Step, WaitForBot, WaitIntoBot


@dataclass
class BotUtterance:
    start_s: float
    end_s: float
    pcm: bytes


@dataclass
class SimulatedLine:
    script: list[Step]
    sample_rate: int = 16000
    frame_ms: int = 20
    speed: float = 1.0
    caller_id: str = "+15550102030"
    codec: Literal["PCMU", "PCMA", "L16"] = "PCMU"
    dtmf_at: list[tuple[float, str]] = field(default_factory=list)
    transfer_result: TransferResult | None = None
    max_duration_s: float = 600.0
    wall_limit_s: float = 180.0  # a bot that never finishes fails the script instead of hanging the test
    decide_after_s: float = 1.5  # a paused bot first hears the caller out (the end-of-turn silence), then decides
    echo_db: float | None = None  # the bot's own voice leaking back into the caller's audio, this many dB down
    info: CallInfo = field(init=False)
    failures: list[str] = field(init=False, default_factory=list)
    transfers: list[str] = field(init=False, default_factory=list)
    briefs: list[bytes | None] = field(init=False, default_factory=list)  # warm transfer: what the operator heard
    dtmf_sent: list[tuple[float, str]] = field(init=False, default_factory=list)
    hung_up_by: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.info = CallInfo(call_id=str(uuid.uuid4()), caller_id=self.caller_id, called="voicebot",
                             remote="sim", codec=self.codec)
        self._frame = frame_bytes(self.sample_rate, self.frame_ms)
        self._out = bytearray()
        self._caller_track = bytearray()
        self._bot_track = bytearray()
        self._bot_active: list[bool] = []
        self._tick = 0
        self.last_played = b""
        self._caller_tick = 0  # the tick after the caller's last audio
        self._ended = False
        self._busy = False
        self._paused = False
        self._gain_db = 0.0  # < 0 while the bot's voice is ducked
        self._reply_started_tick: int | None = None
        self._held = 0  # decisions the session is waiting on (turn verdicts, partial transcripts): hold_clock
        self._audio_queued = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._pending_dtmf = sorted(self.dtmf_at)

    # -- the session's side (CallTransport) ----------------------------------------------------------------
    @property
    def now_s(self) -> float:
        return self._tick * self.frame_ms / 1000

    def play(self, pcm: bytes) -> None:
        if self._ended or not pcm:
            return
        if not self._out:
            self._reply_started_tick = None
        self._out += pcm
        self._drained.clear()
        self._audio_queued.set()

    def busy(self, working: bool) -> None:
        self._busy = working
        self._audio_queued.set()

    def pause(self) -> None:
        self._paused = True

    def hold_clock(self) -> None:
        """The session awaits a decision made off the loop (a turn verdict, a partial transcript). At line pace
        time runs on as on a real line; faster than line pace the clock waits for it, as for a reply being
        prepared, so a slow CPU never turns a 150 ms verdict into seconds of audio. ``release_clock`` ends it."""
        self._held += 1

    def release_clock(self) -> None:
        self._held = max(0, self._held - 1)
        self._audio_queued.set()

    def duck(self, db: float) -> None:
        self._gain_db = -abs(db)

    def resume(self) -> None:
        self._paused = False
        self._gain_db = 0.0
        self._audio_queued.set()

    def flush(self) -> int:
        dropped = len(self._out)
        self._paused = False
        self._gain_db = 0.0
        self._out.clear()
        self._drained.set()
        return dropped

    @property
    def playing(self) -> bool:
        return bool(self._out)

    async def wait_played(self) -> None:
        await self._drained.wait()

    async def transfer(self, target: str, brief: bytes | None = None) -> TransferResult:
        self.transfers.append(target)
        self.briefs.append(brief)
        result = self.transfer_result or TransferResult(target, ok=True, status=200, reason="OK")
        if result.ok:
            self._end("bot")
        return TransferResult(target, result.ok, result.status, result.reason)

    async def hangup(self) -> None:
        self._end("bot")

    def recordings(self) -> tuple[bytes, bytes]:
        return bytes(self._caller_track), bytes(self._bot_track)

    async def events(self) -> AsyncIterator[TransportEvent]:
        started = time.perf_counter()
        for step in self.script:
            async for event in self._run_step(step, started):
                yield event
            if self._ended:
                return
        if not self._ended:
            self._end("caller")
            yield CallerHungUp(self.now_s)

    # -- the caller's side ---------------------------------------------------------------------------------
    def _end(self, who: str) -> None:
        if not self._ended:
            self._ended = True
            self.hung_up_by = who
            self._out.clear()
            self._drained.set()

    def _bot_done_for(self, gap_s: float, since_tick: int) -> bool:
        if self._busy or self._out or self._paused:
            return False
        spoke = [i for i in range(since_tick, self._tick) if self._bot_active[i]]
        return bool(spoke) and (self._tick - spoke[-1] - 1) * self.frame_ms / 1000 >= gap_s

    async def _run_step(self, step: Step, started: float) -> AsyncIterator[TransportEvent]:
        if isinstance(step, Say):
            audio = phone_line(step.pcm, step.sample_rate, self.codec, self.sample_rate)
            for offset in range(0, len(audio), self._frame):
                async for event in self._advance(audio[offset:offset + self._frame], started):
                    yield event
                self._caller_tick = self._tick
                if self._ended:
                    return
        elif isinstance(step, Silence):
            for _ in range(round(step.seconds * 1000 / self.frame_ms)):
                if await self._hold(started):
                    self._end("caller")
                    yield CallerHungUp(self.now_s)
                    return
                async for event in self._advance(b"", started):
                    yield event
                if self._ended:
                    return
        elif isinstance(step, Press):
            for digit in step.digits:
                self.dtmf_sent.append((self.now_s, digit))
                yield DtmfReceived(digit, self.now_s)
        elif isinstance(step, HangUp):
            self._end("caller")
            yield CallerHungUp(self.now_s)
        elif isinstance(step, (WaitForBot, WaitIntoBot)):
            since = self._tick
            deadline = time.perf_counter() + step.timeout_s
            while not self._ended:
                if isinstance(step, WaitForBot) and self._bot_done_for(step.gap_s, since):
                    return
                if (isinstance(step, WaitIntoBot) and self._reply_started_tick is not None and self._out
                        and (self._tick - self._reply_started_tick) * self.frame_ms / 1000 >= step.seconds):
                    return
                if time.perf_counter() > deadline:
                    self.failures.append(f"{type(step).__name__} timed out at {self.now_s:.2f} s")
                    self._end("caller")
                    yield CallerHungUp(self.now_s)
                    return
                if self._holding():
                    await self._wait_for_audio()
                    continue
                async for event in self._advance(b"", started):
                    yield event

    def _holding(self) -> bool:
        """Fast mode: the bot is working (or deciding on a barge-in, or awaiting a turn verdict) and nothing is
        audible: time stands still, as if the bot answered instantly. Its real (wall-clock) latency is in the
        session's stage timings."""
        if self.speed <= 1 or (self._out and not self._paused):
            return False
        if self._held:
            return True
        if self._paused:  # listening to the caller until their turn has surely ended, then deciding
            return (self._tick - self._caller_tick) * self.frame_ms / 1000 >= self.decide_after_s
        return self._busy

    async def _wait_for_audio(self) -> None:
        self._audio_queued.clear()
        try:
            await asyncio.wait_for(self._audio_queued.wait(), timeout=0.05)
        except TimeoutError:
            pass

    async def _hold(self, started: float) -> bool:
        """Hold the clock while ``_holding``; True when the bot stayed busy past the wall-clock limit."""
        while self._holding() and not self._ended:
            if time.perf_counter() - started > self.wall_limit_s:
                self.failures.append(f"bot busy past {self.wall_limit_s} s of wall time at {self.now_s:.2f} s")
                return True
            await self._wait_for_audio()
        return False

    async def _advance(self, caller_pcm: bytes, started: float) -> AsyncIterator[TransportEvent]:
        """One frame of time: the caller's frame goes in, one frame of bot audio comes out."""
        if self.now_s >= self.max_duration_s:
            self.failures.append(f"call exceeded {self.max_duration_s} s of audio")
            self._end("caller")
            yield CallerHungUp(self.now_s)
            return
        caller = caller_pcm.ljust(self._frame, b"\0")
        bot = b"" if self._paused else bytes(self._out[:self._frame])
        del self._out[:len(bot)]
        bot = gained(bot, self._gain_db) if bot else bot
        if bot and self._reply_started_tick is None:
            self._reply_started_tick = self._tick
        if not self._out and not self._paused:
            self._drained.set()
        self._bot_active.append(bool(bot))
        self._bot_track += bot.ljust(self._frame, b"\0")
        self.last_played = bot
        if bot and self.echo_db is not None:
            caller = mix(caller, bot.ljust(self._frame, b"\0"), self.echo_db)  # a line or handset echo
        self._caller_track += caller
        frame = AudioFrame(caller, self.sample_rate, self._tick * (self._frame // 2))
        self._tick += 1
        while self._pending_dtmf and self._pending_dtmf[0][0] <= self.now_s:
            at, digit = self._pending_dtmf.pop(0)
            self.dtmf_sent.append((self.now_s, digit))
            yield DtmfReceived(digit, self.now_s)
        if self.speed != float("inf"):
            delay = started + self.now_s / self.speed - time.perf_counter()
            await asyncio.sleep(delay if delay > 0 else 0)
        else:
            await asyncio.sleep(0)
        yield frame

    # -- what the test looks at ----------------------------------------------------------------------------
    def bot_utterances(self, min_gap_s: float = 0.4) -> list[BotUtterance]:
        """What the bot said, cut at pauses longer than ``min_gap_s``."""
        out: list[BotUtterance] = []
        gap_ticks = round(min_gap_s * 1000 / self.frame_ms)
        start = last = None
        for i, active in enumerate(self._bot_active + [False] * (gap_ticks + 1)):
            if active:
                start = i if start is None else start
                last = i
            elif start is not None and i - last > gap_ticks:
                lo, hi = start * self._frame, (last + 1) * self._frame
                out.append(BotUtterance(start * self.frame_ms / 1000, (last + 1) * self.frame_ms / 1000,
                                        bytes(self._bot_track[lo:hi])))
                start = last = None
        return out


def script_from_wav(pcm: bytes, sample_rate: int, dtmf: Iterable[tuple[float, str]] = (),
                    tail_s: float = 8.0) -> tuple[list[Step], list[tuple[float, str]]]:
    """A caller who plays one recording from the start of the call, presses keys at given times, then listens."""
    return [Say(pcm, sample_rate), Silence(tail_s), HangUp()], sorted(dtmf)
