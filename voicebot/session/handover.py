"""What the operator is told when a caller is handed over: who is calling, verified or not, what for, and why.

The note is the escalation guard's ``summary`` (typed facts, no model: instant, and nothing invented), with the
order numbers the CRM confirmed on this call. It goes into the transfer event, the callback when nobody answers,
the call store and the CRM's call history. In warm mode the bot also speaks it to the operator before joining the
calls; that spoken brief leaves out the caller's number, which the operator's phone shows already.

``hand_over`` is the hand-over itself, for every path that reaches a person (a menu, the model, the guard).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from voicebot.crm.verification import CallerContext
from voicebot.dialog.guard import Escalation, EscalationGuard, confirmed_orders
from voicebot.events import CallbackCreated, StoredEvent, TransferEnded, TransferStarted, to_row
from voicebot.session import transfer_hold
from voicebot.session.faults import warm_brief
from voicebot.session.prerendered import CallSession
from voicebot.session.speaker import TurnClock
from voicebot.session.state import State
from voicebot.store import Outcome

BRIEF_INTRO = "Call from the automated assistant."


def caller_note(context: CallerContext, caller_id: str, number: bool = True) -> str | None:
    """Who the CRM says is calling: "Alice Smith (+15550102030), not verified" (without the number: "Alice
    Smith, not verified"); None for a caller the CRM does not know."""
    customer = context.verified_customer or context.customer
    if customer is None:
        return None
    verified = "verified" if context.verified_customer is not None else "not verified"
    return f"{customer.name}{f' ({caller_id})' if number else ''}, {verified}"


def operator_note(guard: EscalationGuard, transcript: Sequence[tuple[str, str]], events: Iterable[StoredEvent],
                  context: CallerContext, caller_id: str, escalation: Escalation | None = None,
                  number: bool = True) -> str:
    """The note for the operator on this call so far (``escalation`` defaults to the guard's last one)."""
    return guard.summary(transcript, caller=caller_note(context, caller_id, number), escalation=escalation,
                         orders=confirmed_orders(map(to_row, events)))


def spoken_brief(note: str) -> str:
    """What the operator hears first in a warm transfer (``note`` made with ``number=False``)."""
    return f"{BRIEF_INTRO} {note}"


async def hand_over(session: CallSession, reason: str, detail: str, prompt: str = "transfer",
                    escalation: Escalation | None = None, clock: TurnClock | None = None) -> None:
    """The whole hand-over to a person: "Please hold", the transfer event with the operator's note, the hold line
    while it rings (warm: after the spoken brief), then either the end of the bot's part or, when nobody answers,
    a callback in the CRM and ``prompts.transfer_failed``, with the caller kept on the line."""
    context = session._context
    caller = context.verified_customer or context.customer
    summary = session._summary(escalation)
    target = session.config.sip.operator_uri  # only ever from the config, never from what a caller says
    mode = session.config.sip.transfer_mode
    await session._say(prompt, clock)  # ``clock``: the caller's turn this answers (its first audio, for the bench)
    session._set(State.TRANSFERRING)
    await session._record(TransferStarted(reason, detail, target, summary))
    brief = None  # warm: the bot tells the operator who is calling (not the number their phone shows), then bridges
    async with transfer_hold.holding(session):  # "still connecting you" while the brief is made and it rings
        if mode == "warm" and (brief := await warm_brief(session, spoken_brief(session._summary(escalation, False)))):
            result = await session.t.transfer(target, brief=brief)
        else:  # blind, or warm when the brief could not be synthesised
            result = await session.t.transfer(target)
    await session._record(TransferEnded.of(result, mode if brief else "blind"))
    if result.ok:
        session.outcome, session.outcome_reason, session.transfer_target = Outcome.TRANSFERRED, reason, target
        session._set(State.ENDED)
        return
    callback = await asyncio.to_thread(session.deps.crm.request_callback, session.t.info.caller_id,
                                       f"Transfer failed ({result.status} {result.reason}). {summary}",
                                       customer_id=caller.id if caller else None)
    await session._record(CallbackCreated(callback.id))
    session.outcome, session.outcome_reason = Outcome.TRANSFER_FAILED, f"{reason}; callback {callback.id}"
    session.guard.reset()
    session._set(State.LISTENING)
    await session._say("transfer_failed")
