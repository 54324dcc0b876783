"""The dialer's loop: every ``dialer.poll_s`` (and at once when a call ends) it reads the pending callbacks,
lets the policy choose, dials each chosen one through the worker's SIP endpoint and records the result.

Why the lines are counted at the endpoint (``busy_lines``) and not here: inbound calls come and go on their own,
and the rule is about the worker's lines in all (``policy.DialPolicy.room``). Two guards remain outside this
module: the endpoint itself answers 486 past ``sip.max_calls`` (an INVITE that arrives while a call is being
placed), and a dial that the endpoint refuses counts as a ``failed`` attempt like any other.

Numbers are never logged in full (``review.redact.mask_phone``), reasons never at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from voicebot import metrics
from voicebot.dialer.callback_call import CallbackOutcome
from voicebot.dialer.dnc import DoNotCallList
from voicebot.dialer.ledger import Attempt, CallbackLedger
from voicebot.dialer.policy import DialPolicy, DueCallback, Lines, result_of
from voicebot.review.redact import mask_phone
from voicebot.telephony.base import CallTransport
from voicebot.telephony.sip_transfer import SipDialError

log = logging.getLogger(__name__)


class Phone(Protocol):
    """What the dialer needs of the SIP endpoint: ``telephony.sip_endpoint.SipWorker.dial``."""

    async def dial(self, uri: str, caller_id: str | None = None, headers: dict[str, str] | None = None,
                   timeout_s: float = 20.0) -> CallTransport: ...


RunCall = Callable[[CallTransport, DueCallback], Awaitable[CallbackOutcome]]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class DialerStats:
    rounds: int = 0
    dialed: int = 0
    answered: int = 0
    unanswered: int = 0
    opted_out: int = 0
    peak_outbound: int = 0


class Dialer:
    """Works the callbacks of ``ledger`` through ``phone``; ``run_call`` runs each answered call (a
    ``callback_call.CallbackSession``); ``busy_lines()`` is the worker's calls in progress, inbound and outbound."""

    def __init__(self, policy: DialPolicy, ledger: CallbackLedger, dnc: DoNotCallList, phone: Phone,
                 run_call: RunCall, busy_lines: Callable[[], int], clock: Clock = utc_now,
                 schedulers: Sequence[Callable[[datetime], int]] = ()):
        self.policy = policy
        self.config = policy.config
        self.ledger = ledger
        self.dnc = dnc
        self.phone = phone
        self.run_call = run_call
        self.busy_lines = busy_lines
        self.clock = clock
        self.schedulers = list(schedulers)  # each queues what is due at a time (reminders, check-ins)
        self.stats = DialerStats()
        self.live: dict[int, asyncio.Task] = {}  # callback id -> its call in progress
        self._live_numbers: set[str] = set()
        self._wake = asyncio.Event()

    def lines(self) -> Lines:
        return Lines(busy=self.busy_lines(), outbound=len(self.live))

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds until ``stop`` is set; the calls in progress then go on (the worker's drain ends them)."""
        log.info("dialer: working due callbacks (at most %d at once, %d line(s) kept for inbound callers)",
                 self.config.max_concurrent, self.config.free_lines)
        while not stop.is_set():
            self._wake.clear()  # before the round: a call that ends during it wakes the next one at once
            try:
                await self.round()
            except Exception:  # a locked CRM, a bad row: logged, tried again next round; the worker goes on
                log.exception("dialer: the round failed")
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            await asyncio.wait(waits, timeout=self.config.poll_s, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()

    async def round(self) -> list[asyncio.Task]:
        """One pass: close callbacks whose number is on the do-not-call list, then start the chosen calls."""
        self.stats.rounds += 1
        now = self.clock()
        for schedule in self.schedulers:
            await asyncio.to_thread(schedule, now)
        pending = await asyncio.to_thread(self.ledger.pending)
        closing = {"do-not-call": "do_not_call", "no number to call": "no_number", "window closed": "expired"}
        for callback in pending:  # never to be dialled: closed now, without an attempt
            why = self.policy.why_not(callback, now, self.dnc)
            if callback.id not in self.live and why in closing:
                status = closing[why]
                await asyncio.to_thread(self.ledger.close_unreachable, callback.id, status, now)
                log.info("dialer: callback %d (%s) not called: %s", callback.id, mask_phone(callback.phone), why)
        chosen = self.policy.choose([c for c in pending if c.id not in self.live], now, self.lines(), self.dnc,
                                    self._live_numbers)
        started = []
        for callback in chosen:
            task = asyncio.create_task(self._attempt(callback), name=f"callback-{callback.id}")
            self.live[callback.id] = task
            self._live_numbers.add(callback.phone)
            task.add_done_callback(lambda _t, cb=callback: self._done(cb))
            started.append(task)
        self.stats.peak_outbound = max(self.stats.peak_outbound, len(self.live))
        return started

    def _done(self, callback: DueCallback) -> None:
        self.live.pop(callback.id, None)
        self._live_numbers.discard(callback.phone)
        self._wake.set()  # a line is free: look again now rather than at the next poll

    async def _attempt(self, callback: DueCallback) -> str:
        """Dial one callback, run the call when answered, record the attempt; returns the callback's status. A
        row that must not be called any more (``CallbackLedger.dialling``: closed meanwhile, or its booking
        cancelled or moved since the round read it) is not dialled and gets no attempt: ``not dialled``."""
        at = self.clock()
        why = await asyncio.to_thread(self.ledger.dialling, callback.id, at)
        if why is not None:
            log.info("dialer: callback %d (%s) not called: %s", callback.id, mask_phone(callback.phone), why)
            return "not dialled"
        metrics.OUTBOUND_CALLS.inc()
        try:
            attempt = await self._call(callback, at)
        finally:
            metrics.OUTBOUND_CALLS.dec()
        metrics.DIALER_ATTEMPTS.labels(result=attempt.result).inc()
        status = await asyncio.to_thread(self.ledger.record, attempt)
        log.info("dialer: callback %d: %s, now %s", callback.id, attempt.result, status)
        return status

    async def _call(self, callback: DueCallback, at: datetime) -> Attempt:
        uri = self.config.dial_uri.format(number=callback.phone)
        self.stats.dialed += 1
        log.info("dialer: calling %s back (callback %d, attempt %d of %d)", mask_phone(callback.phone), callback.id,
                 callback.attempts + 1, self.config.max_attempts)
        try:
            call = await self.phone.dial(uri, caller_id=self.config.caller_id,
                                         headers={"X-Voicebot-Callback": str(callback.id)},
                                         timeout_s=self.config.ring_timeout_s)
        except SipDialError as exc:
            self.stats.unanswered += 1
            attempt = Attempt(callback.id, at, result_of(exc.status), exc.status)
            log.info("dialer: callback %d not answered: %s %s", callback.id, exc.status, exc.reason)
        except Exception as exc:  # never let one call stop the dialer
            self.stats.unanswered += 1
            attempt = Attempt(callback.id, at, "failed", 0)
            log.error("dialer: callback %d could not be dialled: %s", callback.id, exc)
        else:
            self.stats.answered += 1
            attempt = await self._converse(callback, call, at)
        return attempt

    async def _converse(self, callback: DueCallback, call: CallTransport, at: datetime) -> Attempt:
        try:
            outcome = await self.run_call(call, callback)
        except Exception:
            log.exception("dialer: callback %d: the call failed", callback.id)
            await call.hangup()
            return Attempt(callback.id, at, "failed", 200, call.info.call_id)
        if outcome.opted_out:
            self.stats.opted_out += 1
            await asyncio.to_thread(self.dnc.add, callback.phone, f"opted out on callback {callback.id}")
            await asyncio.to_thread(self.ledger.opt_out_number, callback.phone, self.clock())
            return Attempt(callback.id, at, "opted_out", 200, outcome.call_id, outcome.detail)
        return Attempt(callback.id, at, outcome.result, 200, outcome.call_id, outcome.detail)

    async def wait_idle(self, timeout_s: float = 30.0) -> None:
        """Wait until no callback call is in progress (tests; drain)."""
        if self.live:
            await asyncio.wait(list(self.live.values()), timeout=timeout_s)
