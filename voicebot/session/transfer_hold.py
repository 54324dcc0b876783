"""While a transfer rings, the caller hears that they are being connected, not silence.

A warm transfer dials the operator and waits up to ``sip.transfer_timeout_s`` for an answer; a blind one waits as
long for the REFER's final NOTIFY. A caller left in silence after "Please hold" for that long (11-20 s) thinks the
line died and hangs up, and was never told when the operator did not answer. So ``transfer`` plays the pre-rendered
``dialog.prompts.still_connecting`` whenever the line has been quiet for ``faults.hold_after_s`` while the transfer
is under way, and drops what is still queued of it the moment the result is in: the session then says what
happened (connected, or ``prompts.transfer_failed`` with a callback; see ``core`` and ``faults.recover``).
"""

from __future__ import annotations

import asyncio
import logging

from voicebot.session.faults import CallSession, play_prerendered
from voicebot.telephony.base import TransferResult

log = logging.getLogger(__name__)

POLL_S = 0.05


async def transfer(session: CallSession, target: str, brief: bytes | None = None) -> TransferResult:
    """``session.t.transfer(target, brief)`` with the hold prompt repeated while it rings (module docstring)."""
    t = session.t
    session.detector.cancel_no_input()  # the caller's silence while it rings is no unanswered question
    ringing = asyncio.ensure_future(t.transfer(target, brief=brief) if brief is not None else t.transfer(target))
    hold_after_s = session.config.faults.hold_after_s
    quiet_since = session.detector.now_s
    played = 0
    try:
        while not ringing.done():
            await asyncio.wait({ringing}, timeout=POLL_S)
            now = session.detector.now_s
            if ringing.done() or session.hung_up.is_set():
                break
            if t.playing:
                quiet_since = now
            elif now - quiet_since >= hold_after_s:
                if not await play_prerendered(session, "still_connecting"):
                    quiet_since = float("inf")  # nothing pre-rendered: wait quietly, as before
                else:
                    played += 1
                    quiet_since = now
        result = await ringing
    finally:
        if not ringing.done():  # the call is being stopped: the transfer goes with it
            ringing.cancel()
            await asyncio.gather(ringing, return_exceptions=True)
    if not result.ok:
        t.flush()  # the rest of "still connecting" gives way to what the session says next
    if played:
        log.info("call %s: 'still connecting' played %d time(s) while the transfer rang", session.call_id, played)
    return result
