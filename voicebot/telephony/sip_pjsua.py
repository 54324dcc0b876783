"""The pjsua2 objects of the SIP endpoint: subclasses whose callbacks pjsua2 calls from its C++ threads.

Why a module of their own: each class here is a thin shim with one rule, never to let an exception or a slow step
travel back into pjsua2's threads. ``MediaPort`` runs on pjmedia's clock thread every 20 ms and only moves bytes;
the call, account and endpoint shims run on the pjsua2 thread and hand every event to the ``SipWorker``
(``sip_endpoint``) that owns them, or to the asyncio loop through ``to_loop``. Their lifetimes (when a port or a
Call object may be deleted) are the worker's business: see ``sip_media`` and ``sip_lifecycle``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

import pjsua2 as pj

from voicebot.audio import AudioFrame, gained
from voicebot.telephony.sip_call import MediaBuffers, SipCall
from voicebot.telephony.sip_headers import source_allowed, source_ip
from voicebot.telephony.sip_register import Registration

SipWorker = Any  # sip_endpoint.SipWorker, which owns these objects (not imported here: it imports this module)

log = logging.getLogger("voicebot.telephony.sip_endpoint")


# -- media: runs on pjmedia's clock thread, only moves bytes ------------------------------------------------
KEPT_PORTS: list[Any] = []  # the media ports of endpoints that have shut down, never deleted (see _drop_ports)


class MediaPort(pj.AudioMediaPort):
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


class PjLogWriter(pj.LogWriter):
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


class PjEndpoint(pj.Endpoint):
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


def to_loop(loop: asyncio.AbstractEventLoop | None, fn: Callable[..., Any], *args: Any) -> None:
    """Hand ``fn(*args)`` to the asyncio loop from a pjsua2 thread; a closed loop only loses the event."""
    if loop is None:
        return
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        log.debug("event loop closed; dropped %s", fn)


# -- pjsua2 objects (pjsua2 thread only) --------------------------------------------------------------------
class PjCall(pj.Call):
    def __init__(self, worker: SipWorker, account: pj.Account, call_id: int = pj.PJSUA_INVALID_ID,
                 outgoing: bool = False):
        super().__init__(account, call_id)
        worker._every_call.add(self)
        self.worker = worker
        self.account = account
        self.outgoing = outgoing
        self.transport: SipCall | None = None
        self.port: MediaPort | None = None
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
        self.bridged_with: PjCall | None = None  # warm transfer: the call this one's audio is connected to
        self.hung_up_here = False  # the worker hung it up on its own (the other leg of a bridge ended)

    def onCallState(self, prm: Any) -> None:  # noqa: N802
        self.worker._on_call_state(self)

    def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
        self.worker._on_media_state(self)

    def onDtmfDigit(self, prm: Any) -> None:  # noqa: N802
        t = self.transport
        if t is not None and not t.ended:
            to_loop(t.loop, t.on_dtmf, prm.digit, t.elapsed_s)

    def onCallTransferStatus(self, prm: Any) -> None:  # noqa: N802
        t = self.transport
        log.info("call %s transfer status %s %s final=%s", self.getId(), prm.statusCode, prm.reason,
                 prm.finalNotify)
        if t is not None:
            to_loop(t.loop, t.on_transfer_status, int(prm.statusCode), str(prm.reason), bool(prm.finalNotify))

    def onCallTransferRequest(self, prm: Any) -> None:  # noqa: N802
        self.worker._on_transfer_request(self, prm)


class PjAccount(pj.Account):
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


class PjRegAccount(PjAccount):
    """An account registered at a PBX (``sip.accounts``); its state lives in ``reg`` (sip_register)."""

    def __init__(self, worker: SipWorker, reg: Registration):
        super().__init__(worker)
        self.reg = reg

    def onRegState(self, prm: Any) -> None:  # noqa: N802
        self.worker._on_reg_state(self, prm)
