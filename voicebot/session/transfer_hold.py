"""While a transfer is under way, the caller hears that they are being connected, not silence.

A warm transfer first synthesises the operator's brief (seconds on busy cores), then dials the operator and waits
up to 20 s for an answer; a blind one waits as long for the REFER's final NOTIFY. A caller left in silence after
"Please hold" for that long (11-20 s) thinks the line died and hangs up, and was never told when the operator did
not answer. So ``holding`` covers the whole hand-over: whenever the line has been quiet for
``faults.hold_after_s`` it plays the pre-rendered ``dialog.prompts.still_connecting``; the no-input timer is off
(the caller's silence is no unanswered question); when the result is in, what is still queued of the prompt is
dropped and the session says what happened (connected, or ``prompts.transfer_failed`` with a callback:
``handover.hand_over``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from voicebot.session.prerendered import CallSession, play_prerendered

log = logging.getLogger(__name__)

POLL_S = 0.05


async def _hold(session: CallSession, counter: list[int]) -> None:
    """Play the hold prompt after every ``hold_after_s`` of quiet, until cancelled."""
    hold_after_s = session.config.faults.hold_after_s
    quiet_since = session.detector.now_s
    while not session.hung_up.is_set():
        await asyncio.sleep(POLL_S)
        now = session.detector.now_s
        if session.t.playing:
            quiet_since = now
        elif now - quiet_since >= hold_after_s:
            if not await play_prerendered(session, "still_connecting"):
                return  # nothing pre-rendered (or the caller left): quiet, as before
            counter[0] += 1
            quiet_since = now


@contextlib.asynccontextmanager
async def holding(session: CallSession) -> AsyncIterator[None]:
    """``async with holding(session): <make the brief, transfer>``: the hold prompt plays meanwhile; on the way out
    it stops and whatever is queued of it is dropped."""
    session.detector.cancel_no_input()
    played = [0]
    task = asyncio.ensure_future(_hold(session, played))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if played[0]:
            session.t.flush()  # the rest of "still connecting" gives way to what the session says next
            log.info("call %s: 'still connecting' played %d time(s) during the transfer", session.call_id, played[0])

