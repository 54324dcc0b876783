"""One answered callback call: the bot says who it is and why, then the normal dialogue runs; an opt-out ends it.

Why the opening uses only the callback's reason: whoever picks up has not been verified yet, so the bot says
nothing the caller did not say themselves (the reason as they gave it, secrets masked, cut to its first
sentence); a callback the system wrote for a failed transfer (its reason is the operator's note, with the
caller's name) is announced generically. Everything after the opening is the inbound dialogue unchanged, so
account data still needs verification first.

Why the opt-out is checked before the escalation guard and the menu: "don't call me again" must win over
everything, said at any point of the call, and the opt-out key (``dialer.opt_out_key``, 9) may be a menu key on
inbound calls. The session records the caller's words or key as a turn (as ever), says ``opt_out_goodbye`` and
hangs up; the dialer then puts the number on the do-not-call list and records the attempt as ``opted_out``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from voicebot.config import DialerConfig
from voicebot.events import DtmfReceived
from voicebot.review.redact import mask_secrets
from voicebot.session.core import CallSession
from voicebot.session.deps import SessionDeps
from voicebot.session.speaker import TurnClock
from voicebot.session.state import State
from voicebot.store_journal import update_op
from voicebot.telephony.base import CallTransport

log = logging.getLogger(__name__)

TRANSFER_FAILED = "Transfer failed"  # how session.core writes the reason of a failed transfer's callback
GENERIC_REASON = "your earlier call, when no one was free to take it"
MAX_REASON_CHARS = 160


def spoken_reason(reason: str) -> str:
    """The callback's reason as the opening may say it (see the module docstring)."""
    if reason.startswith(TRANSFER_FAILED):
        return GENERIC_REASON
    text = " ".join(mask_secrets(reason).split())
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0].rstrip(".!? ")
    if len(first) > MAX_REASON_CHARS:
        first = first[:MAX_REASON_CHARS].rsplit(" ", 1)[0]
    return first or "your request"


def opening(config: DialerConfig, company: str, reason: str) -> str:
    return config.opening.format(company=company, reason=spoken_reason(reason), key=config.opt_out_key)


def _words(text: str) -> str:
    text = text.lower().replace("\u2019", "'").replace("do not", "don't")
    return " ".join(re.sub(r"[^a-z' ]+", " ", text).split())


def said_opt_out(text: str, phrases: list[str]) -> bool:
    """Whether ``text`` (a transcript) asks not to be called again: any phrase, case and punctuation ignored,
    "do not" and "don't" alike."""
    said = f" {_words(text)} "
    return any(f" {_words(phrase)} " in said for phrase in phrases)


@dataclass(frozen=True)
class CallbackOutcome:
    call_id: str
    opted_out: bool
    outcome: str
    result: str = "answered"  # the attempt's result (ledger.Attempt): answered, confirmed, voicemail, machine, ...
    detail: str | None = None


class CallbackSession(CallSession):
    """A CallSession that opens with ``opening`` and honours an opt-out said or pressed."""

    def __init__(self, transport: CallTransport, deps: SessionDeps, opening: str, dialer: DialerConfig,
                 purpose: str = "callback"):
        super().__init__(transport, deps, opening=opening)
        self.dialer = dialer
        self.purpose = purpose
        self.opted_out = False

    async def _answer(self):
        """The call's row says it was placed by the dialer, and why (``calls.direction``, ``calls.purpose``)."""
        try:
            return await super()._answer()
        finally:  # after the row's start op (the first thing _answer queues), even when the CRM failed
            self.records.add(update_op(self.call_id, direction="outbound", purpose=self.purpose))

    async def _on_caller_text(self, text: str, clock: TurnClock | None, backchannel: bool = False,
                              heard_also: tuple[str, ...] = ()) -> None:
        if said_opt_out(text, self.dialer.opt_out_phrases):
            return await self._opt_out()
        await super()._on_caller_text(text, clock, backchannel, heard_also)

    async def _on_dtmf(self, event: DtmfReceived) -> None:
        if event.digit == self.dialer.opt_out_key:
            await self._turn("caller", f"[DTMF {event.digit}]", started_at=event.at_s)
            return await self._opt_out()
        await super()._on_dtmf(event)

    async def _opt_out(self) -> None:
        self.opted_out = True
        self.outcome_reason = "opted out of calls"
        await self._speak([self.dialer.opt_out_goodbye], fixed=True)
        self._set(State.ENDED)
        await self.t.hangup()
