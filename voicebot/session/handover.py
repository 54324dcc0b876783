"""What the operator is told when a caller is handed over: who is calling, verified or not, what for, and why.

The note is the escalation guard's ``summary`` (typed facts, no model: instant, and nothing invented), with the
order numbers the CRM confirmed on this call. It goes into the transfer event, the callback when nobody answers,
the call store and the CRM's call history. In warm mode the bot also speaks it to the operator before joining the
calls; that spoken brief leaves out the caller's number, which the operator's phone shows already.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from voicebot.crm.verification import CallerContext
from voicebot.dialog.guard import Escalation, EscalationGuard, confirmed_orders
from voicebot.events import StoredEvent, to_row

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
