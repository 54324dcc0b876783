"""The CallTransport protocol: what a call looks like to the CallSession, whatever carries it.

A transport delivers caller audio frames, DTMF digits, the caller hanging up and transfer results, all stamped
in audio time; it plays bot audio, can drop what is queued at once (barge-in), transfers and hangs up.
Implementations: ``sim.SimulatedLine`` (in memory, tests and `voicebot simulate`) and the SIP front end.
Media paths only move bytes: no model, no disk, no lock held for long.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from voicebot.events import CallerHungUp, DtmfReceived, TextReceived, TransferResult, TransportEvent

__all__ = ["CallInfo", "CallTransport", "CallerHungUp", "DtmfReceived", "TextReceived", "TransferResult",
           "TransportEvent"]  # the events are voicebot.events'; re-exported for the transports


@dataclass(frozen=True)
class CallInfo:
    call_id: str
    caller_id: str
    called: str = ""
    remote: str = ""
    codec: str = "PCMU"


@runtime_checkable
class CallTransport(Protocol):
    info: CallInfo
    sample_rate: int

    def events(self) -> AsyncIterator[TransportEvent]:
        """Caller audio (AudioFrame), DTMF and hang-up, in order; ends when the call ends. The next item is
        only asked for once the previous one has been handled, so handling must stay cheap."""
        ...

    def play(self, pcm: bytes) -> None:
        """Queue bot audio (s16le at ``sample_rate``) behind what is already queued; returns at once."""
        ...

    def busy(self, working: bool) -> None:
        """The session is handling a caller event (True) until its whole response is queued (False). A hint
        for transports that simulate time (they may hold their clock while nothing is audible); a real line
        ignores it."""
        ...

    def pause(self) -> None:
        """Stop sending bot audio now but keep what is queued (the caller may only be saying "mm-hmm")."""
        ...

    def duck(self, db: float) -> None:
        """Play on, ``db`` quieter, until ``resume`` or ``flush`` (the caller may only be saying "mm-hmm")."""
        ...

    def resume(self) -> None:
        """Carry on playing what was queued when paused, at full voice."""
        ...

    def flush(self) -> int:
        """Stop playback now and drop everything queued; returns the number of bytes dropped."""
        ...

    @property
    def playing(self) -> bool:
        """True while queued bot audio remains to be played."""
        ...

    @property
    def last_played(self) -> bytes:
        """The bot audio sent during the most recent frame (empty when silent): the echo gate's reference."""
        ...

    async def wait_played(self) -> None:
        """Return when the queued audio has been played out (or flushed)."""
        ...

    async def transfer(self, target: str, brief: bytes | None = None) -> TransferResult:
        """Hand the caller to ``target`` (a SIP URI from the config) and report how it went. Without ``brief``
        a blind transfer; with it (s16le at ``sample_rate``: the bot's summary for the operator) a warm one: the
        operator is called and hears the brief first, then caller and operator are connected. On failure the
        caller is still on the line with the bot."""
        ...

    async def hangup(self) -> None:
        ...

    def recordings(self) -> tuple[bytes, bytes]:
        """Caller and bot audio of the call so far, aligned sample for sample at ``sample_rate``."""
        ...
