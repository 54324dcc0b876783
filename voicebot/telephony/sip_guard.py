"""A pjsip module, registered through ctypes, that answers the requests pjsua would answer wrongly itself.

Why: in a single ``voicebot serve`` process (no Kamailio in front) pjsua answers some requests before any pjsua2
Python callback runs: a CSeq method other than the request's got 500 (the transaction cannot be made), OPTIONS
and MESSAGE from anyone got 200 (pjsua's own modules) and a method pjsua does not know got no answer at all.
Behind Kamailio (``serve --workers N``) its routing script answers those (400, 403, 405); this module gives the
same answers here: 400, 403 to a refused source, 501 (with the endpoint's Allow header).

How: pjsua2 exposes no hook below the transaction layer, but its extension exports pjsip's C API, so a
``pjsip_module`` with priority 15 (after the transport layer, 8, before the transaction layer, 16) sees each
request first. The decision (``decide``) is pure Python over the raw message and the source IP, unit-tested on
its own. Reading ``pjsip_rx_data`` needs its layout, which depends on the wheel's compile-time
``PJSIP_MAX_PKT_LEN``: it is found once at run time (``_Layout.calibrate``) and checked on every request; a
request it cannot be checked on passes to pjsua untouched (one warning), so nothing legitimate is ever dropped.

The callback runs on the pjsua2 thread (pjsip's only worker here): it parses and answers, nothing blocks, and no
exception ever goes back into C.
"""

from __future__ import annotations

import ctypes
import ipaddress
import logging
import os
import re
import socket
import struct
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from voicebot import metrics

log = logging.getLogger(__name__)

PRIORITY = 15  # PJSIP_MOD_PRIORITY_TRANSPORT_LAYER (8) < this < PJSIP_MOD_PRIORITY_TSX_LAYER (16)
# what pjsua handles itself (pjsua_core, pjsua_call, pjsua_pres, pjsua_im, the dialog and invite layers)
KNOWN_METHODS = frozenset({"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "MESSAGE", "REFER", "NOTIFY", "SUBSCRIBE",
                           "INFO", "UPDATE", "PRACK"})
# out of a dialog, pjsua answers these 200 to anyone: only an allowed source gets that (a PBX's OPTIONS ping)
REFUSED_SOURCE_CHECKED = frozenset({"OPTIONS", "MESSAGE"})
REASONS = {400: b"Bad Request", 403: b"Forbidden", 501: b"Not Implemented"}
PJ_TRUE, PJ_FALSE = 1, 0
PJSIP_H_ALLOW = 4  # pjsip_hdr_e: ACCEPT, ACCEPT_ENCODING_UNIMP, ACCEPT_LANGUAGE_UNIMP, ALERT_INFO_UNIMP, ALLOW
LOG_EVERY_S = 10.0  # one log line per (code, method, source) this often: a scanner's flood is not a log flood

_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")
_TAG = re.compile(r";\s*tag\s*=", re.I)


@dataclass(frozen=True)
class Refusal:
    """What to answer instead of pjsua, and why (for the log: methods and codes only, no caller number)."""

    code: int
    method: str
    why: str


def _headers(message: bytes) -> tuple[str, dict[str, str]]:
    """The start line and the first value of each header (lower-case names, folded lines joined)."""
    head = message.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode("latin-1")
    lines = re.sub(r"\r?\n[ \t]+", " ", head).splitlines()
    found: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            found.setdefault(name.strip().lower(), value.strip())
    return (lines[0] if lines else ""), found


def decide(message: bytes, ip: str, allowed: Callable[[str], bool]) -> Refusal | None:
    """The answer this module gives instead of pjsua, or None to let pjsua handle the request.

    In order: a CSeq method other than the request line's: 400 (RFC 3261 8.1.1.5; pjsua: 500); out of a dialog,
    OPTIONS, MESSAGE or a method pjsua does not know from a source that is not ``allowed``: 403 (pjsua: 200, or
    nothing); a method pjsua does not know: 501 (pjsua: nothing). An ACK is never answered, and requests in a
    dialog (a To tag) pass to pjsua whatever their source: a dialled callee's OPTIONS is not a stranger's."""
    start, headers = _headers(message)
    parts = start.split(" ")
    if len(parts) != 3 or not parts[2].upper().startswith("SIP/") or not _TOKEN.match(parts[0]):
        return None  # a response, or nothing pjsip would have parsed as a request
    method = parts[0]
    if method == "ACK":
        return None
    cseq = headers.get("cseq", "").split()
    if len(cseq) == 2 and cseq[1] != method:
        return Refusal(400, method, f"CSeq method {cseq[1][:20]!r} is not the request's")
    known = method in KNOWN_METHODS
    to = headers.get("to", headers.get("t", ""))
    in_dialog = bool(_TAG.search(to.rsplit(">", 1)[-1]))
    if (not known or method in REFUSED_SOURCE_CHECKED) and not in_dialog and not allowed(ip):
        return Refusal(403, method[:20], "not in allowed_sources")
    if not known:
        return Refusal(501, method[:20], "a method the bot does not implement")
    return None


# -- pjsip structures (x86_64 / LP64 layout, pjproject 2.x headers) ----------------------------------------------
class _PjStr(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_char_p), ("slen", ctypes.c_ssize_t)]


_ON_RX = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)


class _Module(ctypes.Structure):
    """``struct pjsip_module`` (sip_module.h)."""

    _fields_ = [("prev", ctypes.c_void_p), ("next", ctypes.c_void_p), ("name", _PjStr), ("id", ctypes.c_int),
                ("priority", ctypes.c_int), ("load", ctypes.c_void_p), ("start", ctypes.c_void_p),
                ("stop", ctypes.c_void_p), ("unload", ctypes.c_void_p), ("on_rx_request", _ON_RX),
                ("on_rx_response", ctypes.c_void_p), ("on_tx_request", ctypes.c_void_p),
                ("on_tx_response", ctypes.c_void_p), ("on_tsx_state", ctypes.c_void_p)]


class _TpInfo(ctypes.Structure):
    """``rdata->tp_info``: pool, transport, tp_data, then pjsip_rx_data_op_key (pj_ioqueue_op_key_t: 32 internal
    pointers, activesock_data, user_data; then the rdata pointer)."""

    _fields_ = [("pool", ctypes.c_void_p), ("transport", ctypes.c_void_p), ("tp_data", ctypes.c_void_p),
                ("op_key", ctypes.c_void_p * 34), ("rdata", ctypes.c_void_p)]


def _pkt_info(max_pkt_len: int) -> type[ctypes.Structure]:
    """``rdata->pkt_info`` for a wheel built with ``PJSIP_MAX_PKT_LEN = max_pkt_len``."""

    class PktInfo(ctypes.Structure):
        _fields_ = [("sec", ctypes.c_long), ("msec", ctypes.c_long), ("packet", ctypes.c_char * max_pkt_len),
                    ("zero", ctypes.c_uint32), ("len", ctypes.c_ssize_t), ("src_addr", ctypes.c_uint32 * 7),
                    ("src_addr_len", ctypes.c_int), ("src_name", ctypes.c_char * 46), ("src_port", ctypes.c_int)]

    return PktInfo


PACKET_AT = ctypes.sizeof(_TpInfo) + 16  # the packet follows tp_info and pkt_info.timestamp, whatever its size
SCAN_LIMIT = 1 << 17  # the largest rdata looked for at calibration (PJSIP_MAX_PKT_LEN up to ~128 KiB)


def _read_safely(address: int, size: int) -> bytes:
    """Up to ``size`` bytes at ``address`` of this process, stopping at the first unmapped page instead of
    crashing: calibration reads past what the rdata is known to hold (through /proc/self/mem, Linux)."""
    out = bytearray()
    try:
        fd = os.open("/proc/self/mem", os.O_RDONLY)
    except OSError:  # not Linux, or a hardened /proc: no calibration, the guard stays out of the way
        return b""
    try:
        while len(out) < size:
            at = address + len(out)
            chunk = min(size - len(out), 4096 - at % 4096)
            try:
                out += os.pread(fd, chunk, at)
            except OSError:
                break
    finally:
        os.close(fd)
    return bytes(out)


def _address_of(sockaddr: bytes) -> tuple[str, int] | None:
    """(IP, port) of a pj_sockaddr (sa_family first, as on Linux), or None."""
    family, port = struct.unpack_from("<H", sockaddr)[0], struct.unpack_from(">H", sockaddr, 2)[0]
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, sockaddr[4:8]), port
    if family == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, sockaddr[8:24]), port
    return None


@dataclass(frozen=True)
class _Layout:
    """Where msg_info (msg_buf, len, msg, info) and pkt_info's len/src_* lie in this wheel's pjsip_rx_data."""

    max_pkt_len: int
    msg_info_at: int
    pkt_len_at: int
    src_addr_at: int
    src_name_at: int
    src_port_at: int

    @classmethod
    def calibrate(cls, rdata: int, info: int) -> _Layout | None:
        """Find the layout from one request: ``msg_info.info`` holds the pointer ``pjsip_rx_data_get_info`` just
        returned, ``msg_info.msg_buf`` points into the packet, and the pkt_info fields before msg_info must agree
        with each other (src_name is the text of src_addr, src_port its port, len within the packet)."""
        data = _read_safely(rdata, SCAN_LIMIT)
        needle = struct.pack("<Q", info)
        at = data.find(needle, PACKET_AT)
        while at != -1:
            if at % 8 == 0:
                layout = cls._fit(rdata, data, at - 24)
                if layout is not None:
                    return layout
            at = data.find(needle, at + 1)
        return None

    @classmethod
    def _fit(cls, rdata: int, data: bytes, msg_info_at: int) -> _Layout | None:
        msg_buf = struct.unpack_from("<Q", data, msg_info_at)[0]
        for size in range(msg_info_at - PACKET_AT, max(0, msg_info_at - PACKET_AT - 160), -1):  # the largest fit
            pkt = _pkt_info(size)
            if ctypes.sizeof(_TpInfo) + ctypes.sizeof(pkt) != msg_info_at:
                continue
            base = ctypes.sizeof(_TpInfo)
            layout = cls(size, msg_info_at, base + pkt.len.offset, base + pkt.src_addr.offset,
                         base + pkt.src_name.offset, base + pkt.src_port.offset)
            if rdata + PACKET_AT <= msg_buf < rdata + PACKET_AT + size and layout.source(data) is not None:
                return layout
        return None

    def source(self, data: bytes) -> str | None:
        """The source IP, if pkt_info is consistent in ``data`` (the rdata's bytes from its start)."""
        pkt_len = struct.unpack_from("<q", data, self.pkt_len_at)[0]
        name = data[self.src_name_at:self.src_name_at + 46].split(b"\0", 1)[0].decode("ascii", "replace")
        port = struct.unpack_from("<i", data, self.src_port_at)[0]
        try:
            ip = str(ipaddress.ip_address(name))
            address = _address_of(data[self.src_addr_at:self.src_addr_at + 28])
        except (ValueError, OSError):
            return None
        if not 0 < pkt_len <= self.max_pkt_len or address is None or address != (ip, port):
            return None
        return ip

    def message(self, rdata: int, info: int) -> tuple[bytes, str] | None:
        """The request's raw bytes and source IP, or None where this rdata does not fit the layout."""
        data = ctypes.string_at(rdata, self.src_port_at + 4)
        if struct.unpack_from("<Q", ctypes.string_at(rdata + self.msg_info_at + 24, 8))[0] != info:
            return None
        msg_buf, msg_len = struct.unpack_from("<Qi", ctypes.string_at(rdata + self.msg_info_at, 12))
        packet = rdata + PACKET_AT
        ip = self.source(data)
        if ip is None or not packet <= msg_buf or msg_len <= 0 or msg_buf + msg_len > packet + self.max_pkt_len:
            return None
        return ctypes.string_at(msg_buf, msg_len), ip


class _Pjsip:
    """The few pjsip functions used, from the same shared object (same library instance) pjsua2 loaded."""

    def __init__(self) -> None:
        import pjsua2  # noqa: F401 (loaded first: the handle below is then the very same library)
        from pjsua2 import _pjsua2

        # RTLD_NOLOAD: the library already loaded or nothing (never a second copy with its own globals)
        lib = ctypes.CDLL(_pjsua2.__file__, mode=os.RTLD_NOLOAD | os.RTLD_NOW)
        self.endpt = lib.pjsua_get_pjsip_endpt
        self.endpt.restype, self.endpt.argtypes = ctypes.c_void_p, []
        self.register = lib.pjsip_endpt_register_module
        self.register.restype, self.register.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]
        self.info = lib.pjsip_rx_data_get_info
        self.info.restype, self.info.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
        self.respond = lib.pjsip_endpt_respond_stateless
        self.respond.restype = ctypes.c_int
        self.respond.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                                 ctypes.c_void_p]
        self.capability = lib.pjsip_endpt_get_capability
        self.capability.restype = ctypes.c_void_p
        self.capability.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        self.clone = lib.pjsip_hdr_clone
        self.clone.restype, self.clone.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_void_p]


class SipGuard:
    """One registered module for one pjsua endpoint. ``allowed(ip)`` (held weakly when it is a bound method, so
    the guard does not keep a stopped worker alive) says whether a source may have pjsua's 200."""

    def __init__(self, lib: _Pjsip, endpt: int, allowed: Callable[[str], bool]):
        self.lib, self.endpt = lib, endpt
        self._allowed = weakref.WeakMethod(allowed) if hasattr(allowed, "__self__") else (lambda: allowed)
        self.layout: _Layout | None = None
        self.failed_calibrations = 0
        self.warned = False
        self.answered: dict[int, int] = {}  # code -> count, for tests and a look in a debugger
        self._logged: dict[tuple[int, str, str], float] = {}
        self._callback = _ON_RX(self._on_rx_request)  # referenced as long as the guard: C calls it
        self._name = b"mod-voicebot-guard"
        self.module = _Module(name=_PjStr(self._name, len(self._name)), id=-1, priority=PRIORITY,
                              on_rx_request=self._callback)

    def _on_rx_request(self, rdata: int | None) -> int:
        try:
            return self._handle(rdata) if rdata else PJ_FALSE
        except Exception:  # never into C
            log.exception("the SIP guard failed on a request; passed to pjsua")
            return PJ_FALSE

    def _handle(self, rdata: int) -> int:
        allowed = self._allowed()
        if allowed is None:
            return PJ_FALSE
        info = self.lib.info(rdata)
        if not info:
            return PJ_FALSE
        if self.layout is None:
            if self.failed_calibrations >= 20:
                return PJ_FALSE
            self.layout = _Layout.calibrate(rdata, info)
            if self.layout is None:
                self.failed_calibrations += 1
                if self.failed_calibrations == 20:
                    self._warn("its pjsip_rx_data layout could not be found")
                return PJ_FALSE
            log.debug("SIP guard: PJSIP_MAX_PKT_LEN %d", self.layout.max_pkt_len)
        found = self.layout.message(rdata, info)
        if found is None:
            self._warn("a request did not fit its pjsip_rx_data layout")
            return PJ_FALSE
        message, ip = found
        refusal = decide(message, ip, allowed)
        if refusal is None:
            return PJ_FALSE
        if not self._answer(rdata, refusal.code):
            return PJ_FALSE
        self.answered[refusal.code] = self.answered.get(refusal.code, 0) + 1
        if refusal.method == "INVITE":
            metrics.REJECTED.labels(reason="malformed" if refusal.code == 400 else "forbidden").inc()
        self._log(refusal, ip)
        return PJ_TRUE

    def _answer(self, rdata: int, code: int) -> bool:
        """A stateless response (501 with the endpoint's Allow header); False if pjsip could not send it."""
        head = None
        if code == 501:
            allow = self.lib.capability(self.endpt, PJSIP_H_ALLOW, None)
            pool = ctypes.c_void_p.from_address(rdata).value  # rdata->tp_info.pool
            hdr = self.lib.clone(pool, allow) if allow and pool else None
            if hdr:  # a one-header list: head <-> hdr (pjsip_hdr begins with prev, next)
                head = (ctypes.c_void_p * 2)(hdr, hdr)
                links = (ctypes.c_void_p * 2).from_address(hdr)
                links[0] = links[1] = ctypes.addressof(head)
        status = self.lib.respond(self.endpt, rdata, code, None, ctypes.addressof(head) if head is not None else None,
                                   None)
        if status != 0:
            log.warning("SIP guard: sending %d failed (pj_status %d); pjsua answers instead", code, status)
        return status == 0

    def _log(self, refusal: Refusal, ip: str) -> None:
        key = (refusal.code, refusal.method, ip)
        now = time.monotonic()
        if now - self._logged.get(key, -LOG_EVERY_S) < LOG_EVERY_S:
            return
        if len(self._logged) > 1000:
            self._logged.clear()
        self._logged[key] = now
        log.info("%s from %s refused (%d): %s", refusal.method, ip, refusal.code, refusal.why)

    def _warn(self, why: str) -> None:
        if not self.warned:
            self.warned = True
            log.warning("SIP guard: %s; requests pass to pjsua unchecked (no 400/403/501 of its own)", why)


_KEEP: list[SipGuard] = []  # every module ever registered: pjsip holds pointers to them until libDestroy and beyond


def install(allowed: Callable[[str], bool]) -> SipGuard | None:
    """Register the guard on the pjsua endpoint of this process (after ``libInit``). None, with one warning, where
    it cannot be (the endpoint or the symbols missing): pjsua then answers as it always did."""
    try:
        lib = _Pjsip()
        endpt = lib.endpt()
        if not endpt:
            log.warning("SIP guard not installed: pjsua has no endpoint yet")
            return None
        guard = SipGuard(lib, endpt, allowed)
        _KEEP.append(guard)
        status = lib.register(endpt, ctypes.byref(guard.module))
        if status != 0:
            log.warning("SIP guard not installed: pjsip_endpt_register_module returned %d", status)
            return None
        return guard
    except (OSError, AttributeError, ImportError) as exc:
        log.warning("SIP guard not installed: %s", exc)
        return None
