"""The silence watchdog: a caller never waits more than ``faults.hold_after_s`` in silence after their turn.

Why: each stage has a time limit (``faults.*_timeout_s``, 10-25 s), and a hang only becomes a fault at that limit.
Until then the caller would hear nothing and hang up (a caller gives up after a few seconds of dead air). The filler
covers a slow model, but not a hung recogniser or synthesiser, and it is itself synthesised. So while a caller turn
is handled, ``watch`` follows the line in call audio time: when nothing has been audible for ``hold_after_s`` since
the caller stopped speaking (or since the last audio, e.g. the filler), it plays the hold line (``dialog.prompts.hold``), rendered
when the worker started (``faults.FallbackSpeech``), so it needs no synthesiser; again after each further
``hold_after_s`` of silence. The turn goes on waiting up to its stage's limit; the fault path (``faults.recover``)
then flushes whatever is queued and plays the apology. During a transfer the transfer's own hold audio speaks.

Call audio time, not wall time: on a real line the two run together; on the fast simulated line the clock stands
still while the bot works (nothing is audible to anyone), so the watchdog never fires there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from voicebot import metrics
from voicebot.events import DtmfReceived, Heard, TextReceived
from voicebot.speech.turns import TurnDetector, Utterance
from voicebot.telephony.base import CallTransport

log = logging.getLogger(__name__)

POLL_S = 0.02  # one frame: audio that starts is seen within a frame


@dataclass
class HoldPlayed:
    """The hold line played: when (call audio seconds) and after how long a silence."""

    at_s: float
    silence_s: float


class SilenceWatchdog:
    """Watches one caller turn at a time; ``play_hold`` plays the pre-rendered hold line and records it;
    ``standing_by`` says when the bot's silence is someone else's business (a transfer plays its own hold audio)."""

    def __init__(self, transport: CallTransport, detector: TurnDetector, hold_after_s: float,
                 play_hold: Callable[[float], Awaitable[bool]], standing_by: Callable[[], bool] = lambda: False):
        self.t = transport
        self.detector = detector
        self.hold_after_s = hold_after_s
        self.play_hold = play_hold
        self.standing_by = standing_by
        self.held: list[HoldPlayed] = []

    async def watch(self, turn_ended_s: float) -> None:
        """From ``turn_ended_s`` (call audio time) until cancelled with the turn it watches: whenever nothing has
        been audible for ``hold_after_s`` (since the turn ended, or since the last audio: the filler, a sentence
        whose successor hangs in synthesis), the hold line plays."""
        quiet_since = turn_ended_s
        while True:
            await asyncio.sleep(POLL_S)
            now = self.detector.now_s
            if self.t.playing or self.standing_by():
                quiet_since = now
                continue
            silence = now - quiet_since
            if silence < self.hold_after_s:
                continue
            started = time.perf_counter()
            if not await self.play_hold(silence):
                return  # nothing pre-rendered to play: the stage limits alone bound the silence
            self.held.append(HoldPlayed(now, round(silence, 3)))
            metrics.HOLD_LINES.inc()
            log.warning("call %s: nothing audible %.1f s after the caller's turn: hold line played (%.0f ms)",
                        self.t.info.call_id, silence, (time.perf_counter() - started) * 1000)
            quiet_since = self.detector.now_s


OWN_WAIT_S = 1.5
"""Of a turn the detector held open on purpose, all but this much counts as the caller's pause, not the bot's
silence (``turn_ended``): the hold line then comes no sooner than ``hold_after_s`` - 1.5 s (1 s by default) after
the bot took the turn, when its answer is usually playing already."""


def turn_ended(event: object) -> float | None:
    """When the bot's silence after the caller's turn behind ``event`` starts (call audio seconds); None for what is
    not a caller turn (a no-input timeout, a fault): the bot speaks at once on those. For speech that is the end of
    the caller's speech, not the moment the detector ended the turn: the caller's silence starts when they stop
    talking, and a turn ended late (a "complete" verdict left waiting for a partial transcript from a hung
    recogniser ends only at ``turns.incomplete_silence_ms``) must not push the hold line past ``hold_after_s`` of
    what the caller hears. Except where the detector waited on purpose: after dictation it waited
    ``turns.dictation_silence_ms`` (2.5 s) for the next group of digits, and every order number said that way heard
    "Sorry, this is taking a moment." just as its answer started, so the silence the bot owns starts when that wait
    ends; a first turn that set the scene ("Hi, I have a question about my order.") waited the open floor's 2.4 s
    and heard the same, so of any turn's wait only the last ``OWN_WAIT_S`` counts as the caller's."""
    if isinstance(event, Heard):
        event = event.utterance
    if isinstance(event, Utterance):
        if event.ended_by == "dictation":
            return event.at_s
        return max(event.speech_ended_at_s, event.at_s - OWN_WAIT_S)
    if isinstance(event, (DtmfReceived, TextReceived)):
        return event.at_s
    return None


async def guarded(watchdog: SilenceWatchdog | None, turn_ended_s: float | None, work: Awaitable[None]) -> None:
    """``await work`` with ``watchdog`` watching the silence after ``turn_ended_s`` (None: not a caller turn)."""
    if watchdog is None or turn_ended_s is None:
        await work
        return
    watching = asyncio.ensure_future(watchdog.watch(turn_ended_s))
    try:
        await work
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
