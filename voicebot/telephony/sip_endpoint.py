"""The SIP endpoint: ``SipWorker``, a pjsua2 endpoint that answers calls and dials them, and hands each call to
the asyncio side as a SipCall. pjsua2 is imported by this module and its four parts only: ``sip_pjsua`` (the
pjsua2 subclasses whose callbacks pjsua2 calls), ``sip_lifecycle`` (the library made and torn down, in an order
that does not crash), ``sip_admission`` (which INVITEs are answered, registrations at a PBX) and ``sip_media``
(each call's audio to its media port, the RTP watchdog, bridges). This module holds the threads, the call
bookkeeping and the CallControl that a SipCall uses.

Threads:
- the *pjsua2 thread* (one per worker) creates the endpoint, polls ``libHandleEvents`` and is the only thread
  that calls pjsua2; every other thread posts work to it through ``SipWorker.post`` (a thread-safe queue);
- the *media clock thread* (pjmedia's) calls ``MediaPort.onFrameReceived/onFrameRequested`` every 20 ms: they
  only move bytes between deques/bytearrays and hand caller frames to asyncio with ``call_soon_threadsafe``;
- the *asyncio loop* runs one ``on_call(SipCall)`` coroutine per answered call. ``SipCall`` (``sip_call``) is
  the CallTransport: it holds no pjsua2 object, only the call id and buffers, and reaches the endpoint through
  the public methods of ``CallControl`` that SipWorker implements (send_dtmf, refer, dial, bridge, hangup).

Besides answering, a worker dials (``SipWorker.dial``: the scripted caller ``voicebot call`` and the warm
transfer's operator leg), sends RFC 2833 DTMF, follows a REFER on the calls it dialed (the SipCall carries on
with the new leg), bridges two calls in pjsua's conference bridge (warm transfer) and drains (503 to new
INVITEs while live calls finish). Header parsing and source checks are in ``sip_headers``, the transfer
policy in ``sip_transfer``.

The wheel allows at most 4 calls per process (see docs/sip.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import ipaddress
import logging
import math
import queue
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import pjsua2 as pj

from voicebot import metrics
from voicebot.config import Config, SipAccountConfig
from voicebot.telephony.base import CallInfo
from voicebot.telephony.sip_admission import Admission
from voicebot.telephony.sip_auth import DigestAuth
from voicebot.telephony.sip_call import SipCall
from voicebot.telephony.sip_lifecycle import Lifecycle
from voicebot.telephony.sip_media import MediaLinks
from voicebot.telephony.sip_pjsua import MediaPort, PjAccount, PjCall, PjRegAccount, to_loop
from voicebot.telephony.sip_register import Registration
from voicebot.telephony.sip_transfer import SipDialError, reason_of

log = logging.getLogger(__name__)

OnCall = Callable[[SipCall], Awaitable[None]]


@dataclasses.dataclass
class WorkerStats:
    answered: int = 0
    rejected_forbidden: int = 0
    rejected_busy: int = 0
    rejected_draining: int = 0
    challenged: int = 0  # 401 sent to a direct caller without (fresh) credentials (sip.auth_users_file)
    rejected_unauthenticated: int = 0  # 403 for wrong credentials
    ended: int = 0
    rtp_timeouts: int = 0
    dialed: int = 0  # outgoing calls answered (scripted caller, warm-transfer operator legs)
    dial_failed: int = 0


class SipWorker(Lifecycle, Admission, MediaLinks):
    """One pjsua2 endpoint (UDP and/or TCP on ``config.sip.listen_address:port``) answering and making calls.

    Use ``async with SipWorker(config, on_call) as worker:`` (or ``start(loop)`` / ``stop()``). ``on_call``
    runs on the loop for every answered call; the call is hung up when it returns (unless a warm transfer
    bridged it to an operator). Without ``on_call`` the endpoint only dials: INVITEs to it get 486.
    ``port`` overrides the configured SIP port (0: any free port, see ``bound_port``); the RTP ports then
    default to any free ports too. Media runs at ``audio.sample_rate`` (the rate the session, recognition and
    synthesis then work at), unless ``sample_rate`` says otherwise (the scripted caller analyses at 16 kHz).
    ``accounts`` (default: ``sip.accounts`` when answering, none when only dialling) are registered at start,
    refreshed by pjsua, retried with backoff (``sip_register``) and unregistered on drain and stop."""

    def __init__(self, config: Config, on_call: OnCall | None = None, rtp_port: int | None = None,
                 rtp_port_range: int = 100, log_level: int = 1, port: int | None = None,
                 transports: list[str] | None = None, sample_rate: int | None = None,
                 accounts: list[SipAccountConfig] | None = None):
        self.config = config
        self.sip = config.sip
        self.sample_rate = sample_rate or config.audio.sample_rate
        self.on_call = on_call
        self.port = self.sip.port if port is None else port
        self.transports = list(transports or self.sip.transports)
        if rtp_port is None:
            rtp_port = self.port + 2 if self.port else 0
        self.rtp_port = rtp_port
        self.rtp_port_range = rtp_port_range if rtp_port else 0
        # registrations (sip.accounts): an answering endpoint registers the configured ones, a dialling one none
        self.accounts = list(self.sip.accounts if accounts is None and on_call is not None else accounts or [])
        self.registrations: list[Registration] = []  # pjsua2 thread only once started
        self.auth: DigestAuth | None = None  # digest of direct callers (sip.auth_users_file), answering only
        self.log_level = log_level
        self.networks = [ipaddress.ip_network(s, strict=False) for s in self.sip.allowed_sources]
        self.stats = WorkerStats()
        self.draining = False  # new INVITEs get 503 (read by the pjsua2 thread)
        self._hurry_at = math.inf  # loop time by which a drain under way must end (``hurry``)
        self.bound_port = 0  # the SIP port actually bound (known once started)
        self.calls: dict[str, SipCall] = {}  # live transports by CallInfo.call_id (loop-side view)
        self.tasks: set[asyncio.Task] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopping = threading.Event()
        self._pj_calls: dict[int, PjCall] = {}  # pjsua2 thread only
        self._unborn: list[PjCall] = []  # REFER calls pjsua has not given an id yet (kept alive here)
        # ended calls' objects, deleted only once no live call has their id: pjsua reuses ids, and a Call's
        # destructor hangs up whatever call holds its id then (a flood once left every caller getting 603)
        self._stale: list[PjCall] = []
        # every Call object this worker made, weakly: one still alive when the library goes (held by a log record's
        # traceback, a test's variable) must not run its C++ destructor after libDestroy, which asserts in
        # pjsua_call_set_user_data (max_calls is 0 then) and aborts the process; _destroy disowns those
        self._every_call: weakref.WeakSet[PjCall] = weakref.WeakSet()
        # Media ports are created once and recycled, never deleted while the endpoint runs: deleting one while
        # pjmedia's clock thread runs crashed the process now and then (a segfault in the port's destructor in a
        # run of 40 short calls). A port idle for PORT_GRACE_S in the graveyard goes to _free_ports; a new call
        # takes one from there. At most max_calls (+ transfers) exist; at shutdown all are kept (_drop_ports).
        self._all_ports: list[MediaPort] = []
        self._free_ports: list[MediaPort] = []
        self._ep: pj.Endpoint | None = None
        self._account: PjAccount | None = None
        self._reg_accounts: list[PjRegAccount] = []
        self._transports: list[int] = []
        self._local_host = self.sip.listen_address
        self._graveyard: deque[tuple[float, MediaPort]] = deque()  # released media ports, deleted later

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop, timeout_s: float = 10.0) -> None:
        self.loop = loop
        self._thread = threading.Thread(target=self._run, name=f"pjsua2-{self.port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError("the SIP endpoint did not start")
        if self._error is not None:
            self._thread.join(5)
            self._thread = None
            raise RuntimeError(f"the SIP endpoint failed to start: {reason_of(self._error)}") from self._error

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("the pjsua2 thread did not stop in %s s", timeout_s)
        self._thread = None

    async def __aenter__(self) -> SipWorker:
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.start, loop)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for call in list(self.calls.values()):
            await call.hangup()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.to_thread(self.stop)

    async def drain(self, timeout_s: float = 30.0, grace_s: float = 10.0) -> None:
        """Stop taking calls (new INVITEs get 503), let the live ones finish for up to ``timeout_s``, then hang
        up what is left (their sessions end and write their records, for up to ``grace_s``) and stop.
        ``timeout_s`` may be ``math.inf`` (a retiring worker: no call is cut); ``hurry`` shortens it later."""
        self.draining = True
        if self._reg_accounts:  # the registrar stops sending calls here; live calls go on
            try:
                await self._on_thread(self._unregister)
            except Exception:
                log.exception("unregistering at drain failed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        log.info("draining: %d live call(s), up to %.0f s", len(self.calls), timeout_s)
        while (self.calls or self.tasks) and loop.time() < min(deadline, self._hurry_at):
            await asyncio.sleep(0.1)
        if self.calls:
            log.warning("drain timeout: hanging up %d call(s)", len(self.calls))
            for call in list(self.calls.values()):
                await call.hangup()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=grace_s)
        await self.aclose()

    def hurry(self, timeout_s: float) -> None:
        """End a drain under way (or the next one) within ``timeout_s`` from now: SIGTERM to a retiring worker,
        whose drain has no deadline. Call it on the loop."""
        self._hurry_at = min(self._hurry_at, asyncio.get_running_loop().time() + timeout_s)

    def post(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        """Run ``fn(*args)`` on the pjsua2 thread; the future has its result (thread-safe)."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        if self._thread is None or self._stopping.is_set():
            fut.set_exception(RuntimeError("the SIP worker is not running"))
        else:
            self._work.put((fn, args, fut))
        return fut

    async def dial(self, uri: str, caller_id: str | None = None, headers: dict[str, str] | None = None,
                   timeout_s: float = 20.0) -> SipCall:
        """Call ``uri`` and return the answered call as a SipCall (same events/play/recordings as an answered
        one; "caller" there is the far end). ``caller_id`` becomes the From user (e.g. ``+15550102030``);
        ``headers`` are added to the INVITE. Raises SipDialError with the SIP status when the call is refused
        (403, 486, 503 ...) or not answered in ``timeout_s`` (408; the INVITE is cancelled)."""
        if self.loop is None or self._thread is None:
            raise RuntimeError("the SIP worker is not running")
        info = CallInfo(call_id=str(uuid.uuid4()), caller_id=caller_id or "", called=uri, remote=uri)
        call = SipCall(self, -1, info, self.loop, outgoing=True, sample_rate=self.sample_rate)
        answer = call.expect_answer()
        self.calls[info.call_id] = call
        try:
            try:
                await self._on_thread(self._make_call, call, uri, caller_id, dict(headers or {}))
            except Exception as exc:
                call.on_ended("bot")
                raise SipDialError(uri, 0, f"the call could not be made: {reason_of(exc)}") from exc
            try:
                status, reason = await asyncio.wait_for(asyncio.shield(answer), timeout_s)
            except TimeoutError:
                await call.hangup()  # CANCEL
                raise SipDialError(uri, 408, f"no answer within {timeout_s:g} s") from None
            except asyncio.CancelledError:
                await call.hangup()
                raise
            if not 200 <= status < 300:
                raise SipDialError(uri, status, reason)
        except SipDialError:
            self.stats.dial_failed += 1
            self.calls.pop(info.call_id, None)
            raise
        self.stats.dialed += 1
        return call

    # -- CallControl: what a SipCall asks of its endpoint (loop side; the work runs on the pjsua2 thread) ----
    async def _on_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.wrap_future(self.post(fn, *args))

    async def send_dtmf(self, call: SipCall, digits: str) -> None:
        await self._on_thread(self._dtmf, call, digits)

    async def refer(self, call: SipCall, target: str) -> None:
        await self._on_thread(self._xfer, call, target)

    async def bridge(self, a: SipCall, b: SipCall) -> None:
        await self._on_thread(self._bridge, a, b)

    async def hangup(self, call: SipCall) -> None:
        await self._on_thread(self._hangup, call)

    # -- the pjsua2 thread ---------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._create()
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            log.debug("the SIP endpoint failed to start", exc_info=True)
            # the traceback's frames hold the Endpoint; it must not outlive libDestroy (an abort at exit)
            self._error = exc.with_traceback(None)
            del exc
            self._destroy()
            self._ready.set()
            return
        self._ready.set()
        next_check = time.monotonic() + 0.5
        try:
            while not self._stopping.is_set():
                self._ep.libHandleEvents(10)
                self._drain_work()
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + 0.5
                    self._check_rtp()
                    self._reap()
                    self._retry_registrations()
        except Exception:
            metrics.ERRORS.labels(kind="sip").inc()
            log.exception("the pjsua2 loop failed")
        finally:
            self._shutdown()

    def _drain_work(self) -> None:
        while True:
            try:
                fn, args, fut = self._work.get_nowait()
            except queue.Empty:
                return
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn(*args))
                except BaseException as exc:  # noqa: BLE001
                    fut.set_exception(exc)

    def _map(self, cid: int, call: PjCall) -> None:
        """``call`` holds pjsua call id ``cid`` now; an older object for the id (its end not yet forgotten) is
        retired, never dropped: dropping it would run its destructor against the new call."""
        old = self._pj_calls.get(cid)
        if old is not None and old is not call:
            log.warning("call id %s reused before its last call was forgotten", cid)
            self._retire(old)
        self._pj_calls[cid] = call

    def _retire(self, call: PjCall) -> None:
        self._release(call)
        if call not in self._stale:
            self._stale.append(call)

    def _make_call(self, transport: SipCall, uri: str, caller_id: str | None, headers: dict[str, str]) -> int:
        call = PjCall(self, self._account_for(uri), outgoing=True)
        op = pj.CallOpParam(True)
        if caller_id:
            op.txOption.localUri = f"<sip:{caller_id}@{self._host_port()}>"
        for name, value in headers.items():
            header = pj.SipHeader()
            header.hName, header.hValue = name, value
            op.txOption.headers.append(header)
        try:
            call.makeCall(uri, op)
        except Exception:
            metrics.ERRORS.labels(kind="sip").inc()
            raise
        cid = call.getId()
        call.transport = transport
        transport.call_id = cid
        self._map(cid, call)
        return cid

    def _on_transfer_request(self, call: PjCall, prm: Any) -> None:
        """A REFER on a call. Calls this endpoint dialed follow it: a new call of our own is made (pjsua dials
        it and reports its progress to the referrer in NOTIFYs) and takes over the SipCall once answered; the
        old leg is left for the referrer to hang up. Answered calls refuse (a caller must not steer the bot)."""
        t = call.transport
        if not call.outgoing or t is None:
            prm.statusCode = 403
            log.warning("call %s: REFER to %s refused", call.getId(), prm.dstUri)
            return
        child = PjCall(self, call.account, outgoing=True)
        child.follow_for, child.follow_target = t, str(prm.dstUri)
        self._unborn.append(child)
        prm.newCall = child
        log.info("call %s: following REFER to %s", call.getId(), prm.dstUri)

    def _find(self, transport: SipCall) -> PjCall | None:
        for call in self._pj_calls.values():
            if call.transport is transport:
                return call
        return None

    def _on_call_state(self, call: PjCall) -> None:
        info = call.getInfo()
        cid = call.getId()
        if call in self._unborn:  # a REFER's new call has its id now
            self._unborn.remove(call)
            self._map(cid, call)
        t = call.transport
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            if call.follow_for is not None:
                self._adopt(call)
            elif t is not None and not call.dispatched:
                call.dispatched = True
                if call.outgoing:
                    to_loop(self.loop, t.on_answered)
                else:
                    to_loop(self.loop, self._dispatch, t)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            status, reason = int(info.lastStatusCode), str(info.lastReason)
            log.info("call %s ended: %s %s", cid, status, reason)
            if call.follow_for is not None:  # the REFER target did not answer: the original call goes on
                parent_t, call.follow_for = call.follow_for, None
                to_loop(self.loop, parent_t.on_followed, call.follow_target, status)
            partner, call.bridged_with = call.bridged_with, None
            if partner is not None:  # one side of a warm transfer hung up: so does the other
                partner.bridged_with = None
                try:
                    if partner.getInfo().state != pj.PJSIP_INV_STATE_DISCONNECTED:
                        partner.hung_up_here = True
                        partner.hangup(pj.CallOpParam(True))
                except Exception:
                    log.debug("hanging up the bridged call failed", exc_info=True)
            if t is not None:
                self.stats.ended += 1
                to_loop(self.loop, self._ended, t, status, reason, call.hung_up_here)
            # delete the Call object outside its own callback, on the next poll
            self._work.put((self._forget, (cid, call), concurrent.futures.Future()))

    def _adopt(self, child: PjCall) -> None:
        """A followed REFER's call was answered: it takes over the SipCall (the media port moves to it, so the
        recordings and events carry on) and the old leg, left to the referrer to hang up, no longer ends it."""
        t, child.follow_for = child.follow_for, None
        parent = self._find(t)
        if t.ended:
            child.hangup(pj.CallOpParam(True))
            to_loop(self.loop, t.on_followed, child.follow_target, 0)
            return
        if parent is not None:
            self._disconnect_media(parent)
            child.port, parent.port = parent.port, None
            parent.transport = None
        child.transport = t
        child.dispatched = True
        t.call_id = child.getId()
        self._connect_media(child)
        to_loop(self.loop, t.on_followed, child.follow_target, int(child.getInfo().lastStatusCode) or 200)

    def _forget(self, cid: int, call: PjCall) -> None:
        if self._pj_calls.get(cid) is call:
            del self._pj_calls[cid]
        self._retire(call)

    def _live(self, transport: SipCall) -> PjCall:
        call = self._find(transport)
        if call is None or not call.isActive() or call.getInfo().state == pj.PJSIP_INV_STATE_DISCONNECTED:
            raise RuntimeError("the call has ended")
        return call

    def _xfer(self, transport: SipCall, target: str) -> None:
        try:
            self._live(transport).xfer(target, pj.CallOpParam(True))
        except pj.Error:
            metrics.ERRORS.labels(kind="sip").inc()
            raise

    def _dtmf(self, transport: SipCall, digits: str) -> None:
        self._live(transport).dialDtmf(digits)

    def _hangup(self, transport: SipCall) -> None:
        call = self._find(transport)
        if call is None or not call.isActive():
            return  # the caller hung up first: asking pjsua for the ended call's state logged an error each time
        info = call.getInfo()
        if info.state != pj.PJSIP_INV_STATE_DISCONNECTED:
            try:
                call.hangup(pj.CallOpParam(True))
            except pj.Error:
                metrics.ERRORS.labels(kind="sip").inc()
                raise

    # -- loop side -------------------------------------------------------------------------------------------
    def _dispatch(self, call: SipCall) -> None:
        if self.on_call is None:
            return
        task = self.loop.create_task(self._run_call(call), name=f"sip-call-{call.info.call_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run_call(self, call: SipCall) -> None:
        metrics.ACTIVE_CALLS.inc()
        try:
            await self.on_call(call)
        except Exception:
            metrics.ERRORS.labels(kind="session").inc()
            log.exception("call %s: on_call failed", call.info.call_id)
        finally:
            metrics.ACTIVE_CALLS.dec()
            # a warm transfer's bridged pair lives on without the session
            if not call.ended and call.bridged is None and self._thread is not None:
                await call.hangup()

    def _ended(self, call: SipCall, status: int = 0, reason: str = "", by_bot: bool = False) -> None:
        who = "bot" if by_bot else "remote" if call.outgoing else "caller"
        call.on_ended(who, status, reason)  # no-op if the bot hung up first
        if self.calls.get(call.info.call_id) is call:
            del self.calls[call.info.call_id]


