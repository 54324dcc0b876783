"""One SIP call as the CallSession sees it (a CallTransport), with no pjsua2.

A SipCall lives on the asyncio loop and holds no pjsua2 object: only the call id, its media buffers and its
state. What needs SIP (DTMF, REFER, dialing the operator, bridging, hanging up) it asks of its endpoint through
``CallControl``; what the endpoint learns (answered, ended, a digit, a NOTIFY, a REFER followed) it tells the
call through the ``on_*`` methods, always on the loop. The media port on pjmedia's clock thread only moves bytes
through ``MediaBuffers``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from voicebot.events import CallerHungUp, DtmfReceived, TransferResult, TransportEvent
from voicebot.telephony.base import CallInfo
from voicebot.telephony.sip_transfer import ReferProgress, TransferControl, transfer

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # the default media rate; each endpoint runs at its config's audio.sample_rate
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * 2  # 640 at the default rate; a call's own is media.frame_bytes
SILENCE = b"\0" * FRAME_BYTES

DTMF_DIGITS = re.compile(r"[0-9*#A-Da-d]+")


class CallControl(TransferControl, Protocol):
    """What a SipCall asks of its endpoint (SipWorker is one): the transfer's refer/dial/bridge, and these."""

    async def send_dtmf(self, call: SipCall, digits: str) -> None:
        """Queue ``digits`` as RFC 2833 telephone events on ``call``."""

    async def hangup(self, call: SipCall) -> None:
        """Hang ``call`` up (CANCEL when a dialed call is not answered yet)."""


class MediaBuffers:
    """Buffers shared by the media port (pjmedia's clock thread) and the SipCall (asyncio): s16le frames of
    FRAME_MS at ``sample_rate``."""

    def __init__(self, loop: asyncio.AbstractEventLoop, events: asyncio.Queue, on_drained: Callable[[], None],
                 sample_rate: int = SAMPLE_RATE):
        self.sample_rate = sample_rate
        self.frame_bytes = sample_rate * FRAME_MS // 1000 * 2
        self.silence = b"\0" * self.frame_bytes
        self.loop = loop
        self.events = events
        self.on_drained = on_drained
        self.out: deque[bytes] = deque()
        self.paused = False
        self.gain_db = 0.0  # < 0 while the bot's voice is ducked under the caller's (speech.overlap)
        self.caller = bytearray()
        self.bot = bytearray()
        self.received = 0  # frames received: the call's audio clock
        self.last_sent = b""  # the bot frame sent in the latest media tick (b"" when silent)
        self.ended = False


class SipCall:
    """One call as a CallTransport: answered (inbound) or dialed (``SipWorker.dial``). Lives on the asyncio loop;
    talks to pjsua2 only via ``control``. "caller" in ``recordings()`` and ``events()`` is always the far end.
    Audio both ways is s16le at ``sample_rate``, the endpoint's media clock."""

    def __init__(self, control: CallControl, call_id: int, info: CallInfo, loop: asyncio.AbstractEventLoop,
                 outgoing: bool = False, sample_rate: int = SAMPLE_RATE):
        self.control = control
        self.sample_rate = sample_rate
        self.call_id = call_id  # pjsua call id (reused after the call ends; changes when a REFER is followed)
        self.info = info
        self.loop = loop
        self.outgoing = outgoing
        self._events: asyncio.Queue = asyncio.Queue()
        self._drained = asyncio.Event()
        self._drained.set()
        self.media = MediaBuffers(loop, self._events, self._on_drained, sample_rate)
        self.ended = False
        self.hung_up_by: str | None = None
        self.end_status: int = 0  # the SIP status the call ended with (e.g. 486 for a dial that was refused)
        self.end_reason: str = ""
        self._ended_event = asyncio.Event()
        self._answer: asyncio.Future | None = None  # dialed calls: (status, reason) once answered or failed
        self.refer: ReferProgress | None = None  # the blind transfer's REFER in flight
        self.transfers: list[TransferResult] = []
        self.followed: list[tuple[str, int]] = []  # REFERs this (dialed) call followed: (target, final status)
        self.bridged: SipCall | None = None  # the other leg after a warm transfer connected the two
        self._last_played = b""

    @property
    def last_played(self) -> bytes:
        """The bot audio sent in the media tick of the caller frame ``events()`` yielded last (b"" if none):
        the echo gate's reference."""
        return self._last_played

    @property
    def elapsed_s(self) -> float:
        """Seconds of call audio so far (the media clock: frames received since the media started)."""
        return self.media.received * FRAME_MS / 1000

    def _on_drained(self) -> None:
        if not self.media.out:
            self._drained.set()

    def _push(self, item: TransportEvent | None) -> None:
        self._events.put_nowait(item)

    # -- the endpoint's side: called on the loop ------------------------------------------------------------
    def expect_answer(self) -> asyncio.Future:
        """A dialed call: the future of (status, reason), (200, "OK") once answered, the failure once ended."""
        self._answer = self.loop.create_future()
        return self._answer

    def on_answered(self) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_result((200, "OK"))

    def on_dtmf(self, digit: str, at_s: float) -> None:
        self._push(DtmfReceived(digit, at_s))

    def on_transfer_status(self, status: int, reason: str, final: bool) -> None:
        """A NOTIFY of the REFER in flight (ignored when none is)."""
        if self.refer is not None:
            self.refer.notified(status, reason, final)

    def on_followed(self, target: str, status: int) -> None:
        self.followed.append((target, status))

    def on_ended(self, who: str, status: int = 0, reason: str = "") -> None:
        """The call is over (``who``: bot, caller or remote); a no-op when it already was."""
        if self.ended:
            return
        self.ended = True
        self.hung_up_by = who
        self.end_status, self.end_reason = status, reason
        self.media.ended = True
        self.media.out.clear()
        self._drained.set()
        self._ended_event.set()
        if who != "bot":
            self._push(CallerHungUp(self.elapsed_s))
        self._push(None)
        if self._answer is not None and not self._answer.done():
            self._answer.set_result((status or 0, reason or "call ended"))
        if self.refer is not None:
            self.refer.call_ended()

    # -- CallTransport --------------------------------------------------------------------------------------
    async def events(self) -> AsyncIterator[TransportEvent]:
        while True:
            item = await self._events.get()
            if item is None:
                return
            if isinstance(item, tuple):  # (caller frame, bot frame sent in the same media tick)
                item, self._last_played = item
            yield item

    def play(self, pcm: bytes) -> None:
        if self.ended or not pcm:
            return
        out = self.media.out
        size = self.media.frame_bytes
        for offset in range(0, len(pcm), size):
            out.append(pcm[offset:offset + size].ljust(size, b"\0"))
        self._drained.clear()

    def busy(self, working: bool) -> None:
        pass  # a real line keeps real time

    def pause(self) -> None:
        self.media.paused = True

    def duck(self, db: float) -> None:
        self.media.gain_db = -abs(db)

    def resume(self) -> None:
        self.media.paused = False
        self.media.gain_db = 0.0

    def flush(self) -> int:
        out = self.media.out
        dropped = 0
        while out:
            try:
                dropped += len(out.popleft())
            except IndexError:
                break
        self.media.paused = False
        self.media.gain_db = 0.0
        self._drained.set()
        return dropped

    @property
    def playing(self) -> bool:
        return bool(self.media.out)

    async def wait_played(self) -> None:
        while self.media.out and not self.ended:
            self._drained.clear()
            if not self.media.out:
                break
            await self._drained.wait()

    async def wait_ended(self) -> None:
        await self._ended_event.wait()

    async def send_dtmf(self, digits: str) -> None:
        """Send ``digits`` (0-9 * # A-D) as RFC 2833 telephone events; returns once pjsua2 has queued them
        (each digit then takes about 0.2 s on the line)."""
        if not DTMF_DIGITS.fullmatch(digits or ""):
            raise ValueError(f"{digits!r}: DTMF digits are 0-9, *, # and A-D")
        if self.ended:
            raise RuntimeError("the call has ended")
        await self.control.send_dtmf(self, digits.upper())

    async def transfer(self, target: str, brief: bytes | None = None, timeout_s: float = 20.0) -> TransferResult:
        """Hand the far end to ``target``: blind (REFER) without ``brief``, warm with one (s16le, 16 kHz); see
        ``sip_transfer``. Either way a failure leaves this call as it was."""
        return await transfer(self, self.control, target, brief, timeout_s)

    async def hangup(self) -> None:
        if self.ended:
            return
        self.on_ended("bot")
        try:
            await self.control.hangup(self)
        except Exception:
            log.debug("hangup of call %s failed", self.call_id, exc_info=True)

    def received_audio(self, start: int = 0) -> bytes:
        """The far end's audio from byte ``start`` on (cheaper than ``recordings()`` for polling a long call)."""
        return bytes(self.media.caller[start:])

    def recordings(self) -> tuple[bytes, bytes]:
        caller, bot = bytes(self.media.caller), bytes(self.media.bot)
        n = max(len(caller), len(bot))
        return caller.ljust(n, b"\0"), bot.ljust(n, b"\0")
