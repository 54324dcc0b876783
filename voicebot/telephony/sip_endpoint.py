"""The SIP endpoint: the one module that imports pjsua2. A pjsua2 endpoint that answers calls and dials them,
and hands each call to the asyncio side as a SipCall.

Threads:
- the *pjsua2 thread* (one per worker) creates the endpoint, polls ``libHandleEvents`` and is the only thread
  that calls pjsua2; every other thread posts work to it through ``SipWorker.post`` (a thread-safe queue);
- the *media clock thread* (pjmedia's) calls ``_MediaPort.onFrameReceived/onFrameRequested`` every 20 ms: they
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
import gc
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
from voicebot.audio import AudioFrame, gained
from voicebot.config import Config, SipAccountConfig
from voicebot.telephony.base import CallInfo
from voicebot.telephony.sip_call import FRAME_MS, MediaBuffers, SipCall
from voicebot.telephony.sip_auth import DigestAuth, Verdict, load_users
from voicebot.telephony.sip_headers import (invite_refusal, caller_id_from_message, port_free_or_raise,
                                            source_allowed, source_ip)
from voicebot.telephony import sip_guard
from voicebot.telephony.sip_register import (Registration, RegistrationError, read_password, refresh_margin,
                                             trusted_addresses, uri_host_port, with_transport)
from voicebot.telephony.sip_tls import check_tls_files, configure_srtp, configure_tls_transport, srtp_refusal
from voicebot.telephony.sip_transfer import SipDialError, reason_of

log = logging.getLogger(__name__)

PORT_GRACE_S = 0.3  # a released media port lives this long before it is deleted (see SipWorker._release)
CODEC_IDS = {"PCMU": "PCMU/8000", "PCMA": "PCMA/8000", "G722": "G722/16000"}

OnCall = Callable[[SipCall], Awaitable[None]]


# -- media: runs on pjmedia's clock thread, only moves bytes ------------------------------------------------
_KEPT_PORTS: list[Any] = []  # the media ports of endpoints that have shut down, never deleted (see _drop_ports)


class _MediaPort(pj.AudioMediaPort):
    """The call's audio in and out of Python, on pjmedia's clock thread every 20 ms: only moves bytes.

    Its lifetime belongs to the SipWorker: a port is disconnected, kept in the graveyard for PORT_GRACE_S and
    deleted on the pjsua2 thread with its ``media`` link cut first, so it is never in a reference cycle that the
    garbage collector could tear down on another thread while the clock still calls it. The callbacks still
    check ``media`` themselves: an exception must never travel back into pjmedia's C++ thread."""

    def __init__(self, media: MediaBuffers):
        super().__init__()
        self.media: MediaBuffers | None = media

    def onFrameReceived(self, frame: Any) -> None:  # noqa: N802 (pjsua2 name)
        m = getattr(self, "media", None)
        if m is None or m.ended:
            return
        try:
            self._received(m, frame)
        except Exception:  # noqa: BLE001 - never into pjmedia's thread
            m.ended = True

    def onFrameRequested(self, frame: Any) -> None:  # noqa: N802 (pjsua2 name)
        m = getattr(self, "media", None)
        try:
            if m is not None and self._requested(m, frame):
                return
        except Exception:  # noqa: BLE001 - never into pjmedia's thread
            pass
        frame.type = pj.PJMEDIA_FRAME_TYPE_NONE
        frame.size = 0

    @staticmethod
    def _received(m: MediaBuffers, frame: Any) -> None:
        pcm = bytes(list(frame.buf)) if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO else b""
        if len(pcm) != m.frame_bytes:
            pcm = pcm[:m.frame_bytes].ljust(m.frame_bytes, b"\0")
        ts = m.received * (m.frame_bytes // 2)
        m.received += 1
        m.caller += pcm
        # keep the tracks aligned even if the bridge asks for a frame less often than it delivers one
        if len(m.bot) < len(m.caller) - 4 * m.frame_bytes:
            m.bot += m.silence
        try:
            m.loop.call_soon_threadsafe(m.events.put_nowait, (AudioFrame(pcm, m.sample_rate, ts), m.last_sent))
        except RuntimeError:  # loop closed
            m.ended = True

    @staticmethod
    def _requested(m: MediaBuffers, frame: Any) -> bool:
        """Fill ``frame`` with the bot's next 20 ms; False: send nothing this tick."""
        pcm = None
        if not m.paused and not m.ended:
            try:
                pcm = m.out.popleft()
            except IndexError:
                pcm = None
            if pcm is not None and not m.out:
                try:
                    m.loop.call_soon_threadsafe(m.on_drained)
                except RuntimeError:
                    pass
            if pcm is not None and m.gain_db:
                pcm = gained(pcm, m.gain_db)  # ducked: one 20 ms frame scaled, microseconds
        m.last_sent = pcm or b""
        if pcm is None:
            if len(m.bot) < len(m.caller):
                m.bot += m.silence
            return False
        if len(m.bot) < len(m.caller) + 4 * m.frame_bytes:
            m.bot += pcm
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        frame.buf = pj.ByteVector(pcm)
        frame.size = len(pcm)
        return True


pj_log = logging.getLogger("voicebot.pjsip")


class _PjLogWriter(pj.LogWriter):
    """pjsip's own log lines (which quote whole SIP messages, caller numbers included) go through Python
    logging, and so through the redaction filter the CLI installs, instead of straight to stdout."""

    LEVELS = {0: logging.CRITICAL, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO}
    # reported once, clearly, by sip_register (pjsip repeats them at error level on every retry)
    QUIET = ("SIP registration error", "SIP registration failed",
             "Error initializing media channel")  # an INVITE pjsua refused: _on_rejected says who and why

    def write(self, entry: Any) -> None:
        try:
            msg = str(entry.msg).rstrip()
            level = self.LEVELS.get(int(entry.level), logging.DEBUG)
            if level > logging.DEBUG and any(q in msg for q in self.QUIET):
                level = logging.DEBUG
            pj_log.log(level, "%s", msg)
        except Exception:  # noqa: BLE001 - called from pjsip's threads: never raise into C
            pass


class _Endpoint(pj.Endpoint):
    """The library, with its report of INVITEs pjsua refuses itself (e.g. a plain-RTP offer to mandatory SRTP:
    488 before onIncomingCall) going to ``SipWorker._on_rejected``."""

    def __init__(self, worker: SipWorker):
        super().__init__()
        # weak: no reference cycle, so the endpoint dies when the worker drops it, never later in a GC pass
        # (a stale Endpoint's destructor would run libDestroy against the next worker's library)
        self.worker = weakref.ref(worker)

    def onRejectedIncomingCall(self, prm: Any) -> None:  # noqa: N802
        worker = self.worker()
        if worker is not None:
            worker._on_rejected(prm)

    def onSelectAccount(self, prm: Any) -> None:  # noqa: N802
        worker = self.worker()
        if worker is not None:
            worker._select_account(prm)


def _to_loop(loop: asyncio.AbstractEventLoop | None, fn: Callable[..., Any], *args: Any) -> None:
    """Hand ``fn(*args)`` to the asyncio loop from a pjsua2 thread; a closed loop only loses the event."""
    if loop is None:
        return
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        log.debug("event loop closed; dropped %s", fn)


# -- pjsua2 objects (pjsua2 thread only) --------------------------------------------------------------------
class _PjCall(pj.Call):
    def __init__(self, worker: SipWorker, account: pj.Account, call_id: int = pj.PJSUA_INVALID_ID,
                 outgoing: bool = False):
        super().__init__(account, call_id)
        worker._every_call.add(self)
        self.worker = worker
        self.account = account
        self.outgoing = outgoing
        self.transport: SipCall | None = None
        self.port: _MediaPort | None = None
        self.connected = False
        self.dispatched = False
        self.rejected = False
        self.media_index = -1
        self.rx_packets = 0
        self.rx_at = time.monotonic()
        self.rtp_dead = False
        self.peer_ip = ""  # where the call's SIP came from (its RTP may come from there, or its SDP address)
        self.follow_for: SipCall | None = None  # a REFER's new call: the transport it takes over when answered
        self.follow_target = ""
        self.bridged_with: _PjCall | None = None  # warm transfer: the call this one's audio is connected to
        self.hung_up_here = False  # the worker hung it up on its own (the other leg of a bridge ended)

    def onCallState(self, prm: Any) -> None:  # noqa: N802
        self.worker._on_call_state(self)

    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
        self.worker._on_media_state(self)

    def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802
        t = self.transport
        if t is not None and not t.ended:
            _to_loop(t.loop, t.on_dtmf, prm.digit, t.elapsed_s)

    def onCallTransferStatus(self, prm: Any) -> None:  # noqa: N802
        t = self.transport
        log.info("call %s transfer status %s %s final=%s", self.getId(), prm.statusCode, prm.reason,
                 prm.finalNotify)
        if t is not None:
            _to_loop(t.loop, t.on_transfer_status, int(prm.statusCode), str(prm.reason), bool(prm.finalNotify))

    def onCallTransferRequest(self, prm: Any) -> None:  # noqa: N802
        self.worker._on_transfer_request(self, prm)


class _Account(pj.Account):
    def __init__(self, worker: SipWorker):
        super().__init__()
        self.worker = worker

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
        self.worker._on_incoming(self, prm)

    def onIncomingSubscribe(self, prm: Any) -> None:  # noqa: N802
        """The bot offers no presence: pjsua would accept a SUBSCRIBE with 200 and then send NOTIFYs to whoever
        asked (a reflector), so every one is refused: 403 from a source not allowed, 489 Bad Event otherwise."""
        try:
            allowed = source_allowed(source_ip(prm.rdata.srcAddress), self.worker.networks)
        except Exception:  # never into pjsua2
            allowed = False
        prm.code, prm.reason = (489, "Bad Event") if allowed else (403, "Forbidden")


class _RegAccount(_Account):
    """An account registered at a PBX (``sip.accounts``); its state lives in ``reg`` (sip_register)."""

    def __init__(self, worker: SipWorker, reg: Registration):
        super().__init__(worker)
        self.reg = reg

    def onRegState(self, prm: Any) -> None:  # noqa: N802
        self.worker._on_reg_state(self, prm)


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


class SipWorker:
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
        self._pj_calls: dict[int, _PjCall] = {}  # pjsua2 thread only
        self._unborn: list[_PjCall] = []  # REFER calls pjsua has not given an id yet (kept alive here)
        # ended calls' objects, deleted only once no live call has their id: pjsua reuses ids, and a Call's
        # destructor hangs up whatever call holds its id then (a flood once left every caller getting 603)
        self._stale: list[_PjCall] = []
        # every Call object this worker made, weakly: one still alive when the library goes (held by a log record's
        # traceback, a test's variable) must not run its C++ destructor after libDestroy, which asserts in
        # pjsua_call_set_user_data (max_calls is 0 then) and aborts the process; _destroy disowns those
        self._every_call: weakref.WeakSet[_PjCall] = weakref.WeakSet()
        # Media ports are created once and recycled, never deleted while the endpoint runs: deleting one while
        # pjmedia's clock thread runs crashed the process now and then (a segfault in the port's destructor in a
        # run of 40 short calls). A port idle for PORT_GRACE_S in the graveyard goes to _free_ports; a new call
        # takes one from there. At most max_calls (+ transfers) exist; at shutdown all are kept (_drop_ports).
        self._all_ports: list[_MediaPort] = []
        self._free_ports: list[_MediaPort] = []
        self._ep: pj.Endpoint | None = None
        self._account: _Account | None = None
        self._reg_accounts: list[_RegAccount] = []
        self._transports: list[int] = []
        self._local_host = self.sip.listen_address
        self._graveyard: deque[tuple[float, _MediaPort]] = deque()  # released media ports, deleted later

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

    def _create(self) -> None:
        if self.port:  # before any pjsua2 object exists: an error after Endpoint() would leave it half made
            port_free_or_raise(self.sip.listen_address, self.port, self.transports)
        secrets = self._check_accounts()  # same: passwords, registrar addresses, transports
        # pjsua2 is a process-wide singleton: garbage left by an earlier endpoint (a proxy in a reference cycle)
        # must die now, with no library alive, not later from a GC pass on another thread while this endpoint
        # is half made (a segfault in codecEnum2 seen once in CI)
        gc.collect()
        ep = _Endpoint(self)
        self._ep = ep
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = 4  # the wheel's PJSUA_MAX_CALLS; max_calls is enforced in _on_incoming (486, counted)
        cfg.uaConfig.userAgent = ""  # no User-Agent/product banner in what pjsua answers (OPTIONS, MESSAGE...)
        cfg.logConfig.level = self.log_level
        cfg.logConfig.consoleLevel = self.log_level
        cfg.logConfig.decor = pj.PJ_LOG_HAS_SENDER | pj.PJ_LOG_HAS_TIME
        self._log_writer = _PjLogWriter()  # kept alive as long as the endpoint
        cfg.logConfig.writer = self._log_writer
        cfg.medConfig.clockRate = self.sample_rate
        cfg.medConfig.sndClockRate = self.sample_rate
        cfg.medConfig.channelCount = 1
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        ep.libInit(cfg)
        self._guard = sip_guard.install(self._source_trusted)  # 400/403/501 pjsua would get wrong (sip_guard)
        ep.audDevManager().setNullDev()
        kinds = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP, "tls": pj.PJSIP_TRANSPORT_TLS}
        port = self.port
        for name in self.transports:
            tcfg = pj.TransportConfig()
            tcfg.port = port
            if name == "tls":  # its own port (sip.tls.port; any free one for a dialling endpoint on port 0)
                configure_tls_transport(tcfg, self.sip, self.config.path, any_port=not self.port)
            tcfg.boundAddress = self.sip.listen_address
            tid = ep.transportCreate(kinds[name], tcfg)
            self._transports.append(tid)
            if not self.bound_port:  # port 0: the first transport picks one, the others share it
                host, _, bound = ep.transportGetInfo(tid).localName.rpartition(":")
                self.bound_port = port = int(bound)
                self._local_host = host.strip("[]") or self.sip.listen_address
        self._set_codecs(ep)
        ep.libStart()
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:voicebot@{self._host_port()}"
        acfg.regConfig.registerOnAdd = False
        acfg.mediaConfig.transportConfig.port = self.rtp_port
        acfg.mediaConfig.transportConfig.portRange = self.rtp_port_range
        acfg.mediaConfig.transportConfig.boundAddress = self.sip.listen_address
        configure_srtp(acfg.mediaConfig, self.sip)
        acfg.callConfig.timerUse = pj.PJSUA_SIP_TIMER_OPTIONAL
        account = _Account(self)
        account.create(acfg, True)
        self._account = account
        for reg, secret in zip(self.registrations, secrets):
            self._register(reg, secret)

    # -- registrations (sip.accounts; the logic is in sip_register) -------------------------------------------
    def _check_accounts(self) -> list[str]:
        """Each account's password and registrar addresses, before any pjsua2 object exists (errors are clear
        and name the account, never the password)."""
        self.registrations = []
        check_tls_files(self.sip, self.config.path, self.transports)
        if self.sip.auth_users_file and self.on_call is not None:
            self.auth = DigestAuth(load_users(self.config.path(self.sip.auth_users_file)), self.sip.auth_realm)
        secrets = []
        for acc in self.accounts:
            if acc.transport not in self.transports:
                raise RegistrationError(f"sip.accounts {acc.name}: transport {acc.transport} is not in "
                                        f"sip.transports {self.transports}")
            secrets.append(read_password(acc, self.config.path))
            self.registrations.append(Registration(acc, trusted_addresses(acc)))
        return secrets

    def _register(self, reg: Registration, secret: str) -> None:
        acc = reg.account
        host, port = uri_host_port(acc.registrar)
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{acc.user}@{host}" + (f":{port}" if port else "")
        rc = acfg.regConfig
        rc.registrarUri = with_transport(acc.registrar, acc.transport)
        rc.registerOnAdd = True
        rc.timeoutSec = acc.expiry_s
        rc.delayBeforeRefreshSec = refresh_margin(acc.expiry_s)
        rc.firstRetryIntervalSec = acc.retry_s  # pjsua's own retries of 408/5xx/6xx (see sip_register)
        rc.retryIntervalSec = acc.max_retry_s
        rc.randomRetryIntervalSec = min(10, acc.retry_s // 2)
        rc.dropCallsOnFail = False
        acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", acc.realm, acc.auth_user or acc.user, 0, secret))
        if acc.contact_host:  # an address the registrar reaches this endpoint at (a forwarded public port)
            # calls on this account answer with this Contact too: it must lead to this endpoint, not to a proxy
            tail = "" if acc.transport == "udp" else f";transport={acc.transport}"
            acfg.sipConfig.contactForced = f"<sip:{acc.user}@{acc.contact_host}{tail}>"
        if acc.outbound_proxy:
            acfg.sipConfig.proxies.append(with_transport(acc.outbound_proxy, acc.transport) + ";lr")
        acfg.mediaConfig.transportConfig.port = self.rtp_port
        acfg.mediaConfig.transportConfig.portRange = self.rtp_port_range
        acfg.mediaConfig.transportConfig.boundAddress = self.sip.listen_address
        configure_srtp(acfg.mediaConfig, self.sip)
        acfg.callConfig.timerUse = pj.PJSUA_SIP_TIMER_OPTIONAL
        reg.starting()
        account = _RegAccount(self, reg)
        self._reg_accounts.append(account)
        account.create(acfg, False)

    def _on_reg_state(self, account: _RegAccount, prm: Any) -> None:
        try:
            info = account.getInfo()
            account.reg.result(int(prm.code), str(prm.reason), bool(info.regIsActive), int(prm.expiration),
                               time.monotonic(), unregistering=self.draining or self._stopping.is_set())
        except Exception:  # never into pjsua2
            log.exception("registration state of %s", account.reg.name)

    def _retry_registrations(self) -> None:
        if self.draining:
            return
        now = time.monotonic()
        for account in self._reg_accounts:
            if account.reg.due(now):
                account.reg.attempt()
                try:
                    account.setRegistration(True)
                except Exception as exc:
                    log.warning("registration %s: retry failed to start: %s", account.reg.name, reason_of(exc))
                    account.reg.result(503, "not sent", False, 0, now)

    def _unregister(self) -> int:
        """Send REGISTER with expiry 0 for every active registration; the number sent."""
        sent = 0
        for account in self._reg_accounts:
            account.reg.retry_at = None
            try:
                if account.getInfo().regIsActive:
                    account.setRegistration(False)
                    sent += 1
            except Exception as exc:
                log.warning("unregistering %s failed: %s", account.reg.name, reason_of(exc))
        return sent

    def _host_port(self) -> str:
        host = f"[{self._local_host}]" if ":" in self._local_host else self._local_host
        return f"{host}:{self.bound_port}"

    def _set_codecs(self, ep: pj.Endpoint) -> None:
        wanted = {CODEC_IDS[name]: 250 - i for i, name in enumerate(self.sip.codecs)}
        for codec in ep.codecEnum2():
            cid = codec.codecId
            base = "/".join(cid.split("/")[:2])
            ep.codecSetPriority(cid, wanted.get(base, 0))

    def _shutdown(self) -> None:
        ep = self._ep
        try:
            if ep is not None:
                for call in list(self._pj_calls.values()):
                    try:
                        call.hangup(pj.CallOpParam(True))
                    except Exception:
                        pass
                deadline = time.monotonic() + 2
                while self._pj_calls and time.monotonic() < deadline:
                    ep.libHandleEvents(10)
                    self._drain_work()
                self._drain_work()
                for call in list(self._pj_calls.values()):
                    self._release(call)
                self._pj_calls.clear()
                # let the bridge's clock apply the disconnects, delete the ports, let it apply the removals
                deadline = time.monotonic() + PORT_GRACE_S
                while self._graveyard and time.monotonic() < deadline:
                    ep.libHandleEvents(10)
                    self._reap()
                self._graveyard.clear()
                self._drop_ports()
                if self._unregister():  # wait briefly for the registrars' answers
                    deadline = time.monotonic() + 2
                    while time.monotonic() < deadline and any(a.reg.state == "registered"
                                                               for a in self._reg_accounts):
                        ep.libHandleEvents(10)
                deadline = time.monotonic() + 0.1
                while time.monotonic() < deadline:
                    ep.libHandleEvents(10)
        except Exception:
            log.exception("hanging up at shutdown failed")
        finally:
            self._destroy()
            # anything posted late fails instead of waiting forever
            while True:
                try:
                    _, _, fut = self._work.get_nowait()
                except queue.Empty:
                    break
                if fut.set_running_or_notify_cancel():
                    fut.set_exception(RuntimeError("the SIP worker stopped"))

    def _destroy(self) -> None:
        for call in list(self._pj_calls.values()):
            self._release(call)
        self._pj_calls.clear()
        self._unborn.clear()
        self._stale.clear()
        self._graveyard.clear()
        self._drop_ports()
        for account in [*self._reg_accounts, self._account]:
            if account is not None:
                try:
                    account.shutdown()
                except Exception:
                    pass
        self._reg_accounts.clear()
        self._account = None
        ep, self._ep = self._ep, None
        if ep is not None:
            # pjsua2 objects that only a reference cycle keeps are destroyed here, on this thread and while the
            # library is alive, instead of by a later GC pass on whatever thread allocates
            gc.collect()
            for survivor in list(self._every_call):
                try:
                    survivor.this.disown()  # its C++ object is left, unfreed, to the library's end
                except Exception:  # noqa: BLE001 - shutdown goes on
                    pass
            try:
                ep.libDestroy()  # also deletes the log writer (pjsua2 owns it once it is in the config)
            except Exception:
                log.exception("libDestroy failed")
            self._log_writer = None
            del ep

    # -- callbacks (pjsua2 thread) ---------------------------------------------------------------------------
    def _reject(self, call: _PjCall, status: int, reason: str) -> None:
        call.rejected = True
        metrics.REJECTED.labels(reason=reason).inc()
        op = pj.CallOpParam(True)
        op.statusCode = status
        call.hangup(op)

    def _challenge(self, call: _PjCall, verdict: Verdict, ip: str) -> None:
        """401 with a fresh digest challenge, or 403 for wrong credentials (the user named, never a password)."""
        if verdict.status == 401:
            self.stats.challenged += 1
            call.rejected = True
            op = pj.CallOpParam(True)
            op.statusCode = 401
            header = pj.SipHeader()
            header.hName = "WWW-Authenticate"
            header.hValue = self.auth.challenge(stale=verdict.why == "stale nonce")
            op.txOption.headers.append(header)
            log.info("INVITE from %s challenged (401): %s", ip, verdict.why)
            call.answer(op)  # a hangup from this callback would drop the header (pjsua answers it later, bare)
            return
        self.stats.rejected_unauthenticated += 1
        log.warning("INVITE from %s refused (403): %s for user %r", ip, verdict.why, verdict.user)
        self._reject(call, 403, "unauthenticated")

    def _map(self, cid: int, call: _PjCall) -> None:
        """``call`` holds pjsua call id ``cid`` now; an older object for the id (its end not yet forgotten) is
        retired, never dropped: dropping it would run its destructor against the new call."""
        old = self._pj_calls.get(cid)
        if old is not None and old is not call:
            log.warning("call id %s reused before its last call was forgotten", cid)
            self._retire(old)
        self._pj_calls[cid] = call

    def _retire(self, call: _PjCall) -> None:
        self._release(call)
        if call not in self._stale:
            self._stale.append(call)

    def _on_incoming(self, account: _Account, prm: Any) -> None:
        call = _PjCall(self, account, prm.callId)
        cid = call.getId()
        self._map(cid, call)
        ip = source_ip(prm.rdata.srcAddress)
        active = sum(1 for c in self._pj_calls.values() if not c.rejected) - 1
        try:
            trusted = self._registrar_of(ip)
            if trusted is not None and not source_allowed(ip, self.networks):
                log.info("INVITE from %s accepted: the registrar of %s", ip, trusted)
            elif not source_allowed(ip, self.networks):
                self.stats.rejected_forbidden += 1
                log.warning("INVITE from %s refused (403): not in allowed_sources", ip)
                self._reject(call, 403, "forbidden")
                return
            if refusal := invite_refusal(prm.rdata.wholeMsg):
                log.warning("INVITE from %s refused (%d): %s", ip, *refusal)
                self._reject(call, refusal[0], "malformed")
                return
            srtp_problem = srtp_refusal(self.sip, prm.rdata.wholeMsg)
            if srtp_problem:
                log.warning("INVITE from %s refused (488): %s", ip, srtp_problem)
                self._reject(call, 488, "srtp")
                return
            if self.auth is not None and trusted is None:
                verdict = self.auth.check(prm.rdata.wholeMsg, "INVITE")
                if not verdict.ok:
                    self._challenge(call, verdict, ip)
                    return
            if self.draining:
                self.stats.rejected_draining += 1
                log.info("INVITE from %s refused (503): draining", ip)
                self._reject(call, 503, "draining")
                return
            if active >= self.sip.max_calls or self.loop is None or self.on_call is None:
                self.stats.rejected_busy += 1
                why = f"{active} calls active" if self.on_call is not None else "this endpoint only dials"
                log.warning("INVITE from %s refused (486): %s", ip, why)
                self._reject(call, 486, "busy")
                return
            msg = prm.rdata.wholeMsg
            call.peer_ip = ip
            ci = call.getInfo()
            info = CallInfo(call_id=str(uuid.uuid4()), caller_id=caller_id_from_message(msg),
                            called=ci.localUri, remote=prm.rdata.srcAddress)
            transport = SipCall(self, cid, info, self.loop, sample_rate=self.sample_rate)
            call.transport = transport
            _to_loop(self.loop, self.calls.__setitem__, info.call_id, transport)
            op = pj.CallOpParam(True)
            op.statusCode = 200
            call.answer(op)
            self.stats.answered += 1
        except Exception:  # never let an exception out of a pjsua2 callback
            metrics.ERRORS.labels(kind="sip").inc()
            log.exception("handling the INVITE from %s failed", ip)
            call.transport, call.rejected = None, True
            try:
                op = pj.CallOpParam(True)
                op.statusCode = 500
                call.hangup(op)
            except Exception:
                pass

    def _on_rejected(self, prm: Any) -> None:
        """pjsua answered an INVITE itself with a failure (its media could not be set up): one clear line."""
        try:
            ip = source_ip(prm.rdata.srcAddress)
            why = srtp_refusal(self.sip, prm.rdata.wholeMsg)
            metrics.REJECTED.labels(reason="srtp" if why else "media").inc()
            log.warning("INVITE from %s refused (%d): %s", ip, prm.statusCode, why or f"pjsua: {prm.reason}")
        except Exception:  # never into pjsua2
            log.exception("reporting a refused INVITE")

    def _select_account(self, prm: Any) -> None:
        """pjsua picks the account for an incoming request by its To URI. A registered account whose Contact is
        elsewhere (``contact_host``: with workers, the Kamailio proxy) takes only what its registrar or outbound
        proxy sends directly; a call Kamailio dispatched here goes to the plain account, which answers with this
        endpoint's own Contact (the proxy's would send the caller's BYE back to the proxy, for nobody)."""
        try:
            for account in self._reg_accounts:
                if account.getId() == prm.accountIndex and account.reg.account.contact_host:
                    if source_ip(prm.rdata.srcAddress) not in account.reg.trusted and self._account is not None:
                        prm.accountIndex = self._account.getId()
                    return
        except Exception:  # never into pjsua2
            log.exception("choosing the account of an incoming request")

    def _source_trusted(self, ip: str) -> bool:
        """Whether ``ip`` may have what pjsua answers out of a dialog (OPTIONS, MESSAGE): allowed or a registrar."""
        return source_allowed(ip, self.networks) or self._registrar_of(ip) is not None

    def _registrar_of(self, ip: str) -> str | None:
        """The account whose registrar or outbound proxy has address ``ip``, or None."""
        for reg in self.registrations:
            if ip in reg.trusted:
                return reg.name
        return None

    def _account_for(self, uri: str) -> pj.Account:
        """Calls to a registrar's (or its outbound proxy's) host go out on that account, whose credentials then
        answer a 401/407 (a transfer target on the PBX); every other call on the plain account."""
        try:
            host, port = uri_host_port(uri)
        except (IndexError, ValueError):
            return self._account
        for account in self._reg_accounts:
            acc = account.reg.account
            hosts = {uri_host_port(u)[0] for u in (acc.registrar, acc.outbound_proxy) if u}
            if host in hosts or host in account.reg.trusted:
                return account
        return self._account

    def _make_call(self, transport: SipCall, uri: str, caller_id: str | None, headers: dict[str, str]) -> int:
        call = _PjCall(self, self._account_for(uri), outgoing=True)
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

    def _on_transfer_request(self, call: _PjCall, prm: Any) -> None:
        """A REFER on a call. Calls this endpoint dialed follow it: a new call of our own is made (pjsua dials
        it and reports its progress to the referrer in NOTIFYs) and takes over the SipCall once answered; the
        old leg is left for the referrer to hang up. Answered calls refuse (a caller must not steer the bot)."""
        t = call.transport
        if not call.outgoing or t is None:
            prm.statusCode = 403
            log.warning("call %s: REFER to %s refused", call.getId(), prm.dstUri)
            return
        child = _PjCall(self, call.account, outgoing=True)
        child.follow_for, child.follow_target = t, str(prm.dstUri)
        self._unborn.append(child)
        prm.newCall = child
        log.info("call %s: following REFER to %s", call.getId(), prm.dstUri)

    def _find(self, transport: SipCall) -> _PjCall | None:
        for call in self._pj_calls.values():
            if call.transport is transport:
                return call
        return None

    def _on_media_state(self, call: _PjCall) -> None:
        self._connect_media(call)

    def _connect_media(self, call: _PjCall) -> None:
        """Connect the call's active audio to its media port both ways (or, when bridged, to the other call)."""
        t = call.transport
        if t is None:
            return
        info = call.getInfo()
        for i, media in enumerate(info.media):
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            aud = call.getAudioMedia(i)
            if call.media_index != i:
                call.media_index, call.rx_at = i, time.monotonic()
            partner = call.bridged_with
            if partner is not None and partner.media_index >= 0:
                other = partner.getAudioMedia(partner.media_index)
                aud.startTransmit(other)
                other.startTransmit(aud)
            else:
                if call.port is None:
                    if self._free_ports:  # a port recycled from an ended call (see _reap)
                        port = self._free_ports.pop()
                        port.media = t.media
                    else:
                        port = _MediaPort(t.media)
                        fmt = pj.MediaFormatAudio()
                        fmt.init(pj.PJMEDIA_FORMAT_PCM, self.sample_rate, 1, FRAME_MS * 1000, 16)
                        port.createPort(f"port{len(self._all_ports)}", fmt)
                        self._all_ports.append(port)
                    call.port = port
                aud.startTransmit(call.port)
                call.port.startTransmit(aud)
            try:
                codec = call.getStreamInfo(i).codecName
                t.info = dataclasses.replace(t.info, codec=codec)
            except Exception:
                pass
            break

    def _disconnect_media(self, call: _PjCall) -> None:
        """Take the call's audio off its media port (both directions); the port itself stays with the call."""
        if call.port is None or call.media_index < 0:
            return
        try:
            if not call.isActive() or call.getInfo().state == pj.PJSIP_INV_STATE_DISCONNECTED:
                return  # pjsua took the call's audio off the bridge when it ended (asking an ended call's state
                # logged "ERROR ... INVITE session already terminated" after every call the caller hung up)
            aud = call.getAudioMedia(call.media_index)
            aud.stopTransmit(call.port)
            call.port.stopTransmit(aud)
        except Exception as exc:  # no traceback kept: its frames would hold pjsua2 objects past libDestroy
            log.debug("call %s: media already gone (%s)", call.getId(), str(exc))

    def _on_call_state(self, call: _PjCall) -> None:
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
                    _to_loop(self.loop, t.on_answered)
                else:
                    _to_loop(self.loop, self._dispatch, t)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            status, reason = int(info.lastStatusCode), str(info.lastReason)
            log.info("call %s ended: %s %s", cid, status, reason)
            if call.follow_for is not None:  # the REFER target did not answer: the original call goes on
                parent_t, call.follow_for = call.follow_for, None
                _to_loop(self.loop, parent_t.on_followed, call.follow_target, status)
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
                _to_loop(self.loop, self._ended, t, status, reason, call.hung_up_here)
            # delete the Call object outside its own callback, on the next poll
            self._work.put((self._forget, (cid, call), concurrent.futures.Future()))

    def _adopt(self, child: _PjCall) -> None:
        """A followed REFER's call was answered: it takes over the SipCall (the media port moves to it, so the
        recordings and events carry on) and the old leg, left to the referrer to hang up, no longer ends it."""
        t, child.follow_for = child.follow_for, None
        parent = self._find(t)
        if t.ended:
            child.hangup(pj.CallOpParam(True))
            _to_loop(self.loop, t.on_followed, child.follow_target, 0)
            return
        if parent is not None:
            self._disconnect_media(parent)
            child.port, parent.port = parent.port, None
            parent.transport = None
        child.transport = t
        child.dispatched = True
        t.call_id = child.getId()
        self._connect_media(child)
        _to_loop(self.loop, t.on_followed, child.follow_target, int(child.getInfo().lastStatusCode) or 200)

    def _check_rtp(self) -> None:
        """Hang up calls whose far end sent no RTP for ``rtp_timeout_s`` (a vanished phone)."""
        now = time.monotonic()
        for call in list(self._pj_calls.values()):
            if call.port is None or call.media_index < 0 or call.rtp_dead:
                continue
            try:
                # keep the StreamStat alive: .rtcp and .rxStat are views into its memory, and a chained
                # temporary is freed before .pkt is read (a use-after-free valgrind showed)
                stat = call.getStreamStat(call.media_index)
                packets = int(stat.rtcp.rxStat.pkt)
                del stat
            except Exception:
                continue
            if packets != call.rx_packets:
                call.rx_packets, call.rx_at = packets, now
                if self.sip.rtp_source_check and self._rtp_hijacked(call):
                    continue
            elif now - call.rx_at >= self.sip.rtp_timeout_s:
                call.rtp_dead = True
                self.stats.rtp_timeouts += 1
                metrics.ERRORS.labels(kind="rtp_timeout").inc()
                log.warning("call %s: no RTP for %.1f s, hanging up", call.getId(), now - call.rx_at)
                try:
                    call.hangup(pj.CallOpParam(True))
                except Exception:
                    log.exception("hangup after RTP timeout failed")

    def _rtp_hijacked(self, call: _PjCall) -> bool:
        """RTP from an address that is not the call's: pjmedia latches onto a new source after a few packets, so
        the bot's speech (account details included) would follow it. Such a call is hung up at once."""
        try:
            tinfo = call.getMedTransportInfo(call.media_index)
            src = source_ip(str(tinfo.srcRtpName))
            sinfo = call.getStreamInfo(call.media_index)
            sdp = source_ip(str(sinfo.remoteRtpAddress))
        except Exception:
            return False
        if not src or src in (sdp, call.peer_ip) or source_allowed(src, self.networks):
            return False
        call.rtp_dead = True
        metrics.ERRORS.labels(kind="rtp_hijack").inc()
        log.warning("call %s: RTP from %s, which is neither the caller (%s) nor its SDP address (%s): hanging up",
                    call.getId(), src, call.peer_ip or "?", sdp or "?")
        try:
            call.hangup(pj.CallOpParam(True))
        except Exception:
            log.warning("hangup after foreign RTP failed")
        return True

    def _forget(self, cid: int, call: _PjCall) -> None:
        if self._pj_calls.get(cid) is call:
            del self._pj_calls[cid]
        self._retire(call)

    def _release(self, call: _PjCall) -> None:
        """Forget a call's objects. Its media port is not deleted at once: pjmedia's conference bridge applies
        disconnect/remove operations on its own clock thread at a later tick, so a port freed now could still
        be called back (a use-after-free that corrupted the heap, seen as rare segfaults in GC). The port waits
        in the graveyard, disconnected here, and is deleted by ``_reap`` PORT_GRACE_S later."""
        if call.transport is not None:
            call.transport.media.ended = True
        self._disconnect_media(call)
        port, call.port = call.port, None
        if port is not None:
            self._graveyard.append((time.monotonic(), port))
        call.transport = None
        call.bridged_with = None
        call.follow_for = None

    def _drop_ports(self) -> None:
        """Cut every media port's link to its call (shutdown only, on the pjsua2 thread, before libDestroy) and keep
        the ports, never deleted, for the life of the process (``_KEPT_PORTS``). Why: pjmedia's bridge removes a
        port on its clock thread, which runs until libDestroy, and a port deleted here could still be called or
        written after its memory was freed: `voicebot call` died with SIGSEGV after its call had ended, in an
        unrelated allocation (a heap corrupted at shutdown). After libDestroy nothing calls them; a few per
        endpoint is all that is kept."""
        for port in self._all_ports:
            port.media = None
            try:
                port.this.disown()  # its C++ object is never deleted, not even when Python lets go of it
            except Exception:  # noqa: BLE001 - shutdown goes on
                pass
            _KEPT_PORTS.append(port)
        self._free_ports.clear()
        self._all_ports.clear()

    def _reap(self, age_s: float = PORT_GRACE_S) -> None:
        """Delete, here on the pjsua2 thread, the ports disconnected long enough ago and the ended calls whose
        id no live call holds (so their destructors touch nothing alive)."""
        now = time.monotonic()
        while self._graveyard and now - self._graveyard[0][0] >= age_s:
            _, port = self._graveyard.popleft()
            port.media = None
            self._free_ports.append(port)  # recycled, not deleted: see _free_ports
        if self._stale:
            busy = {c.getId() for c in self._pj_calls.values()} | {c.getId() for c in self._unborn}
            self._stale = [c for c in self._stale if c.getId() in busy]

    def _live(self, transport: SipCall) -> _PjCall:
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

    def _bridge(self, a: SipCall, b: SipCall) -> None:
        """Connect two confirmed calls' audio both ways and take both off their media ports (the bot leaves the
        conversation; its recordings of the two legs end here)."""
        calls = [self._live(a), self._live(b)]
        for call in calls:
            if call.getInfo().state != pj.PJSIP_INV_STATE_CONFIRMED or call.media_index < 0:
                raise RuntimeError("a leg has no active audio")
        for call in calls:
            self._disconnect_media(call)
        first, second = calls
        first.bridged_with, second.bridged_with = second, first
        try:
            self._connect_media(first)
        except Exception:
            metrics.ERRORS.labels(kind="sip").inc()
            first.bridged_with = second.bridged_with = None
            for call in calls:  # back to the bot, as before
                try:
                    self._connect_media(call)
                except Exception:
                    log.exception("call %s: reconnecting media failed", call.getId())
            raise

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

