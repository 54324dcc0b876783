"""The dialer inside ``voicebot serve``: who owns it and how it is put together from a worker's parts.

Why one owner: with ``serve --workers N`` every worker reads the same CRM, and two dialers would call one
customer twice. The supervisor loads no models and has no SIP endpoint, so the owner is worker 0 (as for the
registrations at a PBX, whose trunk outbound calls use); a single ``serve`` process owns it itself.

Why the worker's own endpoint dials: the outbound call then shares the worker's lines with its inbound calls
(4 per process), and the cap and the free lines are counted on the same endpoint that answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo
from typing import TYPE_CHECKING, Protocol

from voicebot.config import Config
from voicebot.dialer.answered import run_answered
from voicebot.dialer.callback_call import CallbackOutcome
from voicebot.dialer.checkin import queue_checkins
from voicebot.dialer.reminders import close_stale, queue_reminders
from voicebot.dialer.dnc import DoNotCallList
from voicebot.dialer.ledger import CallbackLedger
from voicebot.dialer.loop import Clock, Dialer, Phone, utc_now
from voicebot.dialer.policy import DialPolicy, DueCallback
from voicebot.session.deps import SessionDeps
from voicebot.telephony.base import CallTransport

if TYPE_CHECKING:
    from voicebot.telephony.kamailio import WorkerSlot


class Worker(Protocol):
    """What ``start_for_worker`` uses of ``voicebot.worker.Worker`` (typed here: the worker imports this module)."""

    config: Config
    slot: WorkerSlot | None
    deps: SessionDeps | None
    dialer: Dialer | None
    live: int
    finished: int

log = logging.getLogger(__name__)


def owns_dialer(config: Config, worker_index: int | None) -> bool:
    """Whether this process runs the dialer: it is enabled, and this is the only worker or worker 0."""
    return config.dialer.enabled and (worker_index is None or worker_index == 0)


def describe(config: Config) -> str:
    """The line ``voicebot serve`` prints under "answering calls" when the dialer is on."""
    d = config.dialer
    days = ", ".join(f"{day} {spans}" for day, spans in d.hours.items() if spans.strip() != "closed") or "never"
    return (f"dialer on: due callbacks, {days} ({d.timezone}); at most {d.max_concurrent} outbound, "
            f"{d.free_lines} line(s) kept for inbound; {d.max_attempts} attempts {d.spacing_min:g} min apart; "
            f"do-not-call list {config.path(d.dnc_file)}; answering machines: "
            f"{d.amd.action.replace('_', ' ') if d.amd.enabled else 'not detected'}"
            f"{'; reminders the day before' if d.reminders.enabled else ''}"
            f"{'; check-ins the next morning' if d.checkin.enabled else ''}")


def as_callee(call: CallTransport, phone: str) -> CallTransport:
    """The session looks the far end up in the CRM by ``info.caller_id``: on a call the bot placed that is the
    number it called (the From it sent is the company's)."""
    call.info = dataclasses.replace(call.info, caller_id=phone)
    return call


def build_dialer(config: Config, deps: SessionDeps, phone: Phone, busy_lines: Callable[[], int],
                 counted: Callable[[CallTransport, DueCallback], object] | None = None,
                 clock: Clock = utc_now) -> Dialer:
    """A Dialer over the worker's CRM, the do-not-call file and ``phone``; each answered call runs as a
    CallbackSession on ``deps``. ``counted`` wraps a call's run (the worker counts it in its live calls)."""
    dialer_config = config.dialer

    async def run_call(call: CallTransport, callback: DueCallback) -> CallbackOutcome:
        run = run_answered(as_callee(call, callback.phone), callback, deps)
        return await (counted(call, run) if counted is not None else run)  # type: ignore[misc]

    policy = DialPolicy(dialer_config, config.sip.max_calls)
    ledger = CallbackLedger(deps.crm, dialer_config.max_attempts)
    dnc = DoNotCallList(config.path(dialer_config.dnc_file), config.crm.default_region)
    return Dialer(policy, ledger, dnc, phone, run_call, busy_lines, clock, schedulers(config, deps))


def schedulers(config: Config, deps: SessionDeps) -> list[Callable[[datetime], int]]:
    """What each round does first: close reminders and check-ins whose booking is gone, and reminders whose booking
    has moved (``reminders.close_stale``), then queue the day-before reminders (a moved booking's for its new time)
    and the next-morning check-ins, when enabled."""
    d, region, zone = config.dialer, config.crm.default_region, ZoneInfo(config.dialer.timezone)
    jobs: list[Callable[[datetime], int]] = [lambda now: close_stale(deps.crm, now)]  # gone or moved
    if d.reminders.enabled:
        jobs.append(lambda now: queue_reminders(deps.crm, now, zone, region))
    if d.checkin.enabled:
        jobs.append(lambda now: queue_checkins(deps.crm, now, zone, d.checkin, region))
    return jobs


def start_for_worker(worker: Worker, endpoint: object, stop: asyncio.Event) -> asyncio.Task | None:
    """Start the dialer as a task of ``worker`` when it owns it (see ``owns_dialer``); None otherwise."""
    index = worker.slot.index if worker.slot is not None else None
    if not owns_dialer(worker.config, index):
        return None
    if not hasattr(endpoint, "dial") or worker.deps is None:
        raise RuntimeError("dialer.enabled needs a SIP endpoint that dials and the worker's databases")

    async def counted(call: CallTransport, run):
        worker.live += 1  # the idle gate: the analysis leaves the model to this call
        try:
            return await run
        finally:
            worker.live -= 1
            worker.finished += 1

    calls = getattr(endpoint, "calls", {})
    dialer = build_dialer(worker.config, worker.deps, endpoint, lambda: len(calls), counted)  # type: ignore[arg-type]
    worker.dialer = dialer
    return asyncio.create_task(dialer.run(stop), name="dialer")
