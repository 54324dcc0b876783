"""The SIP front end: a pjsua2 endpoint that answers calls and hands each one to the asyncio side.

Threads:
- the *pjsua2 thread* (one per worker) creates the endpoint, polls ``libHandleEvents`` and is the only thread
  that calls pjsua2; every other thread posts work to it through ``SipWorker.post`` (a thread-safe queue);
- the *media clock thread* (pjmedia's) calls ``_MediaPort.onFrameReceived/onFrameRequested`` every 20 ms: they
  only move bytes between deques/bytearrays and hand caller frames to asyncio with ``call_soon_threadsafe``;
- the *asyncio loop* runs one ``on_call(SipCall)`` coroutine per answered call (``CallSession.run`` in
  ``run_worker``). ``SipCall`` is the CallTransport: it holds no pjsua2 object, only the call id and buffers.

This is the only module that imports pjsua2. The wheel allows at most 4 calls per process (see docs/sip.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import ipaddress
import logging
import queue
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pjsua2 as pj

from voicebot.audio import AudioFrame
from voicebot.config import Config
from voicebot.telephony.base import CallerHungUp, CallInfo, DtmfReceived, TransferResult, TransportEvent

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * 2  # 640
SILENCE = b"\0" * FRAME_BYTES
PORT_GRACE_S = 0.3  # a released media port lives this long before it is deleted (see SipWorker._release)
CODEC_IDS = {"PCMU": "PCMU/8000", "PCMA": "PCMA/8000", "G722": "G722/16000"}

OnCall = Callable[["SipCall"], Awaitable[None]]


# -- header parsing (pure functions, tested without a network) ---------------------------------------------
def _header(message: str, *names: str) -> str | None:
    for line in message.split("\r\n\r\n", 1)[0].splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() in names:
            return value.strip()
    return None


def caller_id_from_message(message: str) -> str:
    """The caller's number from P-Asserted-Identity (if present) or From: ``+15550102030``-style digits, the
    URI's user part when it has no digits, ``anonymous`` when there is nothing."""
    for names in (("p-asserted-identity",), ("from", "f")):
        value = _header(message, *names)
        if not value:
            continue
        number = caller_id_from_uri(value)
        if number:
            return number
    return "anonymous"


def caller_id_from_uri(value: str) -> str:
    match = re.search(r"(?:sips?|tel):([^@;>\s]+)", value, re.IGNORECASE)
    if not match:
        return ""
    user = match.group(1)
    if ":" in user:  # sip:user:password@host
        user = user.split(":", 1)[0]
    digits = re.sub(r"[^\d]", "", user)
    if digits and re.fullmatch(r"[+\d\s().\-]+", user):
        return ("+" if user.strip().startswith("+") else "") + digits
    return user


def source_ip(src_address: str) -> str:
    """``127.0.0.1:5061`` / ``[::1]:5061`` -> the IP alone."""
    src = src_address.strip()
    if src.startswith("["):
        return src[1:src.index("]")]
    if src.count(":") == 1:
        return src.split(":", 1)[0]
    return src


def source_allowed(ip: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in net for net in networks)


# -- media: runs on pjmedia's clock thread, only moves bytes ------------------------------------------------
class _Media:
    """Buffers shared by the media port (clock thread) and the SipCall (asyncio)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, events: asyncio.Queue, on_drained: Callable[[], None]):
        self.loop = loop
        self.events = events
        self.on_drained = on_drained
        self.out: deque[bytes] = deque()
        self.paused = False
        self.caller = bytearray()
        self.bot = bytearray()
        self.received = 0  # frames received: the call's audio clock
        self.last_sent = b""  # the bot frame sent in the latest media tick (b"" when silent)
        self.ended = False


class _MediaPort(pj.AudioMediaPort):
    def __init__(self, media: _Media):
        super().__init__()
        self.media = media

    def onFrameReceived(self, frame: Any) -> None:  # noqa: N802 (pjsua2 name)
        m = self.media
        if m.ended:
            return
        pcm = bytes(list(frame.buf)) if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO else b""
        if len(pcm) != FRAME_BYTES:
            pcm = pcm[:FRAME_BYTES].ljust(FRAME_BYTES, b"\0")
        ts = m.received * (FRAME_BYTES // 2)
        m.received += 1
        m.caller += pcm
        # keep the tracks aligned even if the bridge asks for a frame less often than it delivers one
        if len(m.bot) < len(m.caller) - 4 * FRAME_BYTES:
            m.bot += SILENCE
        try:
            m.loop.call_soon_threadsafe(m.events.put_nowait, (AudioFrame(pcm, SAMPLE_RATE, ts), m.last_sent))
        except RuntimeError:  # loop closed
            m.ended = True

    def onFrameRequested(self, frame: Any) -> None:  # noqa: N802 (pjsua2 name)
        m = self.media
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
        m.last_sent = pcm or b""
        if pcm is None:
            if len(m.bot) < len(m.caller):
                m.bot += SILENCE
            frame.type = pj.PJMEDIA_FRAME_TYPE_NONE
            frame.size = 0
            return
        if len(m.bot) < len(m.caller) + 4 * FRAME_BYTES:
            m.bot += pcm
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        frame.buf = pj.ByteVector(pcm)
        frame.size = len(pcm)


# -- the transport the CallSession sees -------------------------------------------------------------------
class SipCall:
    """One answered call as a CallTransport. Lives on the asyncio loop; talks to pjsua2 only via the worker."""

    sample_rate = SAMPLE_RATE

    def __init__(self, worker: SipWorker, call_id: int, info: CallInfo, loop: asyncio.AbstractEventLoop):
        self.worker = worker
        self.call_id = call_id  # pjsua call id (reused after the call ends)
        self.info = info
        self.loop = loop
        self._events: asyncio.Queue = asyncio.Queue()
        self._drained = asyncio.Event()
        self._drained.set()
        self.media = _Media(loop, self._events, self._on_drained)
        self.ended = False
        self.hung_up_by: str | None = None
        self._transfer: asyncio.Future | None = None
        self.transfers: list[TransferResult] = []
        self._last_played = b""

    @property
    def last_played(self) -> bytes:
        """The bot audio sent in the media tick of the caller frame ``events()`` yielded last (b"" if none):
        the echo gate's reference."""
        return self._last_played

    # called on the loop (posted from the pjsua2 thread)
    def _on_drained(self) -> None:
        if not self.media.out:
            self._drained.set()

    def _push(self, item: TransportEvent | None) -> None:
        self._events.put_nowait(item)

    def _now_s(self) -> float:
        return self.media.received * FRAME_MS / 1000

    def _ended_by(self, who: str) -> None:
        if self.ended:
            return
        self.ended = True
        self.hung_up_by = who
        self.media.ended = True
        self.media.out.clear()
        self._drained.set()
        if who == "caller":
            self._push(CallerHungUp(self._now_s()))
        self._push(None)
        if self._transfer is not None and not self._transfer.done():
            self._transfer.set_result((0, "call ended"))

    # -- CallTransport --------------------------------------------------------------------------------------
    async def events(self) -> AsyncIterator[TransportEvent]:
        while True:
            item = await self._events.get()
            if item is None:
                return
            if isinstance(item, tuple):  # (caller frame, bot frame sent in the same media tick)
                item, self._last_played = item
            yield item

    def play(self, pcm: bytes) -> None:
        if self.ended or not pcm:
            return
        out = self.media.out
        for offset in range(0, len(pcm), FRAME_BYTES):
            out.append(pcm[offset:offset + FRAME_BYTES].ljust(FRAME_BYTES, b"\0"))
        self._drained.clear()

    def busy(self, working: bool) -> None:
        pass  # a real line keeps real time

    def pause(self) -> None:
        self.media.paused = True

    def resume(self) -> None:
        self.media.paused = False

    def flush(self) -> int:
        out = self.media.out
        dropped = 0
        while out:
            try:
                dropped += len(out.popleft())
            except IndexError:
                break
        self.media.paused = False
        self._drained.set()
        return dropped

    @property
    def playing(self) -> bool:
        return bool(self.media.out)

    async def wait_played(self) -> None:
        while self.media.out and not self.ended:
            self._drained.clear()
            if not self.media.out:
                break
            await self._drained.wait()

    async def transfer(self, target: str, timeout_s: float = 20.0) -> TransferResult:
        """Blind transfer (REFER). Waits for the final NOTIFY; on 2xx the bot's leg is hung up."""
        if self.ended:
            return TransferResult(target, False, 0, "call ended")
        self._transfer = self.loop.create_future()
        try:
            await asyncio.wrap_future(self.worker.post(self.worker._xfer, self.call_id, self, target))
        except Exception as exc:  # pjsua2.Error: bad URI, no dialog...
            self._transfer = None
            result = TransferResult(target, False, 0, f"REFER not sent: {getattr(exc, 'reason', None) or exc}")
            self.transfers.append(result)
            return result
        try:
            status, reason = await asyncio.wait_for(self._transfer, timeout_s)
        except TimeoutError:
            status, reason = 408, "no final NOTIFY"
        finally:
            self._transfer = None
        result = TransferResult(target, 200 <= status < 300, status, reason)
        self.transfers.append(result)
        if result.ok:
            await self.hangup()
        return result

    def _transfer_status(self, status: int, reason: str) -> None:
        if self._transfer is not None and not self._transfer.done():
            self._transfer.set_result((status, reason))

    async def hangup(self) -> None:
        if self.ended:
            return
        self._ended_by("bot")
        try:
            await asyncio.wrap_future(self.worker.post(self.worker._hangup, self.call_id, self))
        except Exception:
            log.debug("hangup of call %s failed", self.call_id, exc_info=True)

    def recordings(self) -> tuple[bytes, bytes]:
        caller, bot = bytes(self.media.caller), bytes(self.media.bot)
        n = max(len(caller), len(bot))
        return caller.ljust(n, b"\0"), bot.ljust(n, b"\0")


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
    def __init__(self, worker: SipWorker, account: pj.Account, call_id: int):
        super().__init__(account, call_id)
        self.worker = worker
        self.transport: SipCall | None = None
        self.port: _MediaPort | None = None
        self.connected = False
        self.dispatched = False
        self.rejected = False
        self.media_index = -1
        self.rx_packets = 0
        self.rx_at = time.monotonic()
        self.rtp_dead = False

    def onCallState(self, prm: Any) -> None:  # noqa: N802
        self.worker._on_call_state(self)

    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
        self.worker._on_media_state(self)

    def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802
        t = self.transport
        if t is not None and not t.ended:
            _to_loop(t.loop, t._push, DtmfReceived(prm.digit, t._now_s()))

    def onCallTransferStatus(self, prm: Any) -> None:  # noqa: N802
        t = self.transport
        log.info("call %s transfer status %s %s final=%s", self.getId(), prm.statusCode, prm.reason,
                 prm.finalNotify)
        if prm.finalNotify and t is not None:
            _to_loop(t.loop, t._transfer_status, int(prm.statusCode), str(prm.reason))


class _Account(pj.Account):
    def __init__(self, worker: SipWorker):
        super().__init__()
        self.worker = worker

    def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
        self.worker._on_incoming(self, prm)


@dataclasses.dataclass
class WorkerStats:
    answered: int = 0
    rejected_forbidden: int = 0
    rejected_busy: int = 0
    ended: int = 0
    rtp_timeouts: int = 0


class SipWorker:
    """One pjsua2 endpoint (UDP and/or TCP on ``config.sip.listen_address:port``) answering calls.

    Use ``async with SipWorker(config, on_call) as worker:`` (or ``start(loop)`` / ``stop()``). ``on_call``
    runs on the loop for every answered call; the call is hung up when it returns."""

    def __init__(self, config: Config, on_call: OnCall | None = None, rtp_port: int | None = None,
                 rtp_port_range: int = 100, log_level: int = 1):
        self.config = config
        self.sip = config.sip
        self.on_call = on_call
        self.rtp_port = rtp_port if rtp_port is not None else self.sip.port + 2
        self.rtp_port_range = rtp_port_range
        self.log_level = log_level
        self.networks = [ipaddress.ip_network(s, strict=False) for s in self.sip.allowed_sources]
        self.stats = WorkerStats()
        self.calls: dict[int, SipCall] = {}  # live transports, by pjsua call id (loop-side view)
        self.tasks: set[asyncio.Task] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopping = threading.Event()
        self._pj_calls: dict[int, _PjCall] = {}  # pjsua2 thread only
        self._ep: pj.Endpoint | None = None
        self._account: _Account | None = None
        self._transports: list[int] = []
        self._graveyard: deque[tuple[float, _MediaPort]] = deque()  # released media ports, deleted later

    # -- lifecycle -----------------------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop, timeout_s: float = 10.0) -> None:
        self.loop = loop
        self._thread = threading.Thread(target=self._run, name=f"pjsua2-{self.sip.port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError("the SIP endpoint did not start")
        if self._error is not None:
            self._thread.join(5)
            raise RuntimeError(f"the SIP endpoint failed to start: {self._error}") from self._error

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

    def post(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        """Run ``fn(*args)`` on the pjsua2 thread; the future has its result (thread-safe)."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        if self._thread is None or self._stopping.is_set():
            fut.set_exception(RuntimeError("the SIP worker is not running"))
        else:
            self._work.put((fn, args, fut))
        return fut

    # -- the pjsua2 thread ---------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._create()
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
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
        except Exception:
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
        ep = pj.Endpoint()
        self._ep = ep
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = 4  # the wheel's PJSUA_MAX_CALLS; max_calls is enforced in _on_incoming (486, counted)
        cfg.uaConfig.userAgent = "voicebot"
        cfg.logConfig.level = self.log_level
        cfg.logConfig.consoleLevel = self.log_level
        cfg.medConfig.clockRate = SAMPLE_RATE
        cfg.medConfig.sndClockRate = SAMPLE_RATE
        cfg.medConfig.channelCount = 1
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        ep.libInit(cfg)
        ep.audDevManager().setNullDev()
        kinds = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP}
        for name in self.sip.transports:
            tcfg = pj.TransportConfig()
            tcfg.port = self.sip.port
            tcfg.boundAddress = self.sip.listen_address
            self._transports.append(ep.transportCreate(kinds[name], tcfg))
        self._set_codecs(ep)
        ep.libStart()
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:voicebot@{self.sip.listen_address}:{self.sip.port}"
        acfg.regConfig.registerOnAdd = False
        acfg.mediaConfig.transportConfig.port = self.rtp_port
        acfg.mediaConfig.transportConfig.portRange = self.rtp_port_range
        acfg.mediaConfig.transportConfig.boundAddress = self.sip.listen_address
        acfg.callConfig.timerUse = pj.PJSUA_SIP_TIMER_OPTIONAL
        account = _Account(self)
        account.create(acfg, True)
        self._account = account

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
        self._graveyard.clear()
        if self._account is not None:
            try:
                self._account.shutdown()
            except Exception:
                pass
        self._account = None
        ep, self._ep = self._ep, None
        if ep is not None:
            try:
                ep.libDestroy()
            except Exception:
                log.exception("libDestroy failed")
            del ep

    # -- callbacks (pjsua2 thread) ---------------------------------------------------------------------------
    def _on_incoming(self, account: _Account, prm: Any) -> None:
        call = _PjCall(self, account, prm.callId)
        cid = call.getId()
        self._pj_calls[cid] = call
        ip = source_ip(prm.rdata.srcAddress)
        op = pj.CallOpParam(True)
        active = sum(1 for c in self._pj_calls.values() if not c.rejected) - 1
        if not source_allowed(ip, self.networks):
            call.rejected = True
            self.stats.rejected_forbidden += 1
            op.statusCode = 403
            log.warning("INVITE from %s refused (403): not in allowed_sources", ip)
            call.hangup(op)
            return
        if active >= self.sip.max_calls or self.loop is None:
            call.rejected = True
            self.stats.rejected_busy += 1
            op.statusCode = 486
            log.warning("INVITE from %s refused (486): %s calls active", ip, active)
            call.hangup(op)
            return
        msg = prm.rdata.wholeMsg
        ci = call.getInfo()
        info = CallInfo(call_id=str(uuid.uuid4()), caller_id=caller_id_from_message(msg),
                        called=ci.localUri, remote=prm.rdata.srcAddress)
        transport = SipCall(self, cid, info, self.loop)
        call.transport = transport
        _to_loop(self.loop, self.calls.__setitem__, cid, transport)
        op.statusCode = 200
        call.answer(op)
        self.stats.answered += 1

    def _on_media_state(self, call: _PjCall) -> None:
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
            if call.port is None:
                port = _MediaPort(t.media)
                fmt = pj.MediaFormatAudio()
                fmt.init(pj.PJMEDIA_FORMAT_PCM, SAMPLE_RATE, 1, FRAME_MS * 1000, 16)
                port.createPort(f"call{call.getId()}", fmt)
                call.port = port
            aud.startTransmit(call.port)
            call.port.startTransmit(aud)
            try:
                codec = call.getStreamInfo(i).codecName
                t.info = dataclasses.replace(t.info, codec=codec)
            except Exception:
                pass
            break

    def _on_call_state(self, call: _PjCall) -> None:
        info = call.getInfo()
        t = call.transport
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED and t is not None and not call.dispatched:
            call.dispatched = True
            _to_loop(self.loop, self._dispatch, t)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            cid = call.getId()
            log.info("call %s ended: %s %s", cid, info.lastStatusCode, info.lastReason)
            if t is not None:
                self.stats.ended += 1
                _to_loop(self.loop, self._ended, t)
            # delete the Call object outside its own callback, on the next poll
            self._work.put((self._forget, (cid, call), concurrent.futures.Future()))

    def _check_rtp(self) -> None:
        """Hang up answered calls whose caller sent no RTP for ``rtp_timeout_s`` (a vanished phone)."""
        now = time.monotonic()
        for call in list(self._pj_calls.values()):
            if call.port is None or call.media_index < 0 or call.rtp_dead:
                continue
            try:
                packets = call.getStreamStat(call.media_index).rtcp.rxStat.pkt
            except Exception:
                continue
            if packets != call.rx_packets:
                call.rx_packets, call.rx_at = packets, now
            elif now - call.rx_at >= self.sip.rtp_timeout_s:
                call.rtp_dead = True
                self.stats.rtp_timeouts += 1
                log.warning("call %s: no RTP for %.1f s, hanging up", call.getId(), now - call.rx_at)
                try:
                    call.hangup(pj.CallOpParam(True))
                except Exception:
                    log.exception("hangup after RTP timeout failed")

    def _forget(self, cid: int, call: _PjCall) -> None:
        if self._pj_calls.get(cid) is call:
            del self._pj_calls[cid]
        self._release(call)

    def _release(self, call: _PjCall) -> None:
        """Forget a call's objects. Its media port is not deleted at once: pjmedia's conference bridge applies
        disconnect/remove operations on its own clock thread at a later tick, so a port freed now could still
        be called back (a use-after-free that corrupted the heap, seen as rare segfaults in GC). The port waits
        in the graveyard, already disconnected, and is deleted by ``_reap`` PORT_GRACE_S later."""
        if call.transport is not None:
            call.transport.media.ended = True
        port, call.port = call.port, None
        if port is not None:
            self._graveyard.append((time.monotonic(), port))
        call.transport = None

    def _reap(self, age_s: float = PORT_GRACE_S) -> None:
        now = time.monotonic()
        while self._graveyard and now - self._graveyard[0][0] >= age_s:
            self._graveyard.popleft()

    def _xfer(self, cid: int, transport: SipCall, target: str) -> None:
        call = self._pj_calls.get(cid)
        if call is None or call.transport is not transport:
            raise RuntimeError("the call has ended")
        call.xfer(target, pj.CallOpParam(True))

    def _hangup(self, cid: int, transport: SipCall) -> None:
        call = self._pj_calls.get(cid)
        if call is None or call.transport is not transport:
            return
        info = call.getInfo()
        if info.state != pj.PJSIP_INV_STATE_DISCONNECTED:
            call.hangup(pj.CallOpParam(True))

    # -- loop side -------------------------------------------------------------------------------------------
    def _dispatch(self, call: SipCall) -> None:
        if self.on_call is None:
            return
        task = self.loop.create_task(self._run_call(call), name=f"sip-call-{call.info.call_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run_call(self, call: SipCall) -> None:
        try:
            await self.on_call(call)
        except Exception:
            log.exception("call %s: on_call failed", call.info.call_id)
        finally:
            if not call.ended and self._thread is not None:
                await call.hangup()

    def _ended(self, call: SipCall) -> None:
        call._ended_by("caller")  # no-op if the bot hung up first
        if self.calls.get(call.call_id) is call:
            del self.calls[call.call_id]


async def run_worker(config: Config, worker_name: str = "main", deps: Any = None,
                     stop: asyncio.Event | None = None, rtp_port: int | None = None) -> None:
    """Load the models (unless ``deps`` is given), then answer calls until ``stop`` is set (or forever):
    each call runs ``CallSession(SipCall, deps).run()`` on this loop."""
    from voicebot.session import CallSession

    if deps is None:
        from voicebot.components import load_components, open_session_deps

        parts = await asyncio.to_thread(load_components, config)
        deps = open_session_deps(config, parts, worker=worker_name)

    async def on_call(call: SipCall) -> None:
        outcome = await CallSession(call, deps).run()
        log.info("call %s from %s: %s", call.info.call_id, call.info.caller_id, outcome)

    async with SipWorker(config, on_call, rtp_port=rtp_port) as worker:
        log.info("SIP worker %s listening on %s:%s (%s)", worker_name, config.sip.listen_address,
                 config.sip.port, ",".join(config.sip.transports))
        await (stop or asyncio.Event()).wait()
