"""The end of a call: the outcome, the metrics, the recordings, the call's last records and its CRM interaction.

Whatever failed during the call, this runs: the records still queued get a last few seconds and are otherwise
spilled (``records.CallRecords.close``), a full disk costs the recordings only, a failing CRM only its copy of the
summary (the call record keeps it).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from voicebot import metrics
from voicebot.audio import mix
from voicebot.outcomes import decide, from_ops
from voicebot.session.faults import StageFailed, customer_id, in_thread, safe_summary
from voicebot.session.state import State
from voicebot.store_journal import finish_op

CallSession = Any
"""A voicebot.session.core.CallSession: core calls this module, so it is not imported back (no import circle);
the functions here use the session's state and its helpers as core defines them."""

log = logging.getLogger(__name__)


async def finish(session: CallSession) -> None:
    if session.gate is not None:  # a generation cut by the hang-up stops first
        await asyncio.to_thread(session.gate.wait_released, 10.0)
    if session.outcome is None:  # no transfer: resolved only on evidence (voicebot.outcomes)
        decision = decide(from_ops(session.records.log))
        session.outcome, session.outcome_reason = decision.outcome, decision.reason
    session.state = State.ENDED
    metrics.CALLS.labels(outcome=str(session.outcome)).inc()
    for clock in session.clocks:
        metrics.observe_turn({"endpointing": clock.endpoint_delay, **clock.marks})
    await session.records.flush(1.0)  # the call row first: recordings are noted on it
    store = session.deps.store
    caller, bot = session.t.recordings()
    try:
        await asyncio.to_thread(store.save_recording, session.call_id, "caller", caller, session.rate)
        await asyncio.to_thread(store.save_recording, session.call_id, "bot", bot, session.rate)
        await asyncio.to_thread(store.save_recording, session.call_id, "mixed", mix(caller, bot), session.rate)
    except Exception:  # a full disk must not lose the call record
        log.exception("call %s: recordings not saved", session.call_id)
    summary = safe_summary(session, session.outcome_reason or "")
    session.records.add(finish_op(session.call_id, session.outcome, session.outcome_reason,
                                  transfer_target=session.transfer_target, summary=summary))
    await session.records.close()  # what the store could not take is spilled, imported at the next start
    try:
        await in_thread("crm", session.config.faults.crm_timeout_s, session.deps.crm.add_interaction, summary,
                        str(session.outcome), phone=session.t.info.caller_id, customer_id=customer_id(session),
                        call_id=session.call_id)
    except StageFailed as exc:  # the call record holds the same summary
        log.error("call %s: the CRM did not take the call's interaction (%s)", session.call_id, exc)
        metrics.ERRORS.labels(kind="crm").inc()
    if session.deps.on_call_end is not None:
        session.deps.on_call_end(session.call_id)
