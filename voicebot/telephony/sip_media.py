"""The SIP endpoint's media links: each call's audio to its media port (or to another call), and their ends.

Why apart: this is where the process crashed. pjmedia's conference bridge applies connects and removals on its own
clock thread at a later tick, so a media port freed at once could still be called back (a use-after-free seen as
rare segfaults in garbage collection). Ports are therefore disconnected, kept ``PORT_GRACE_S`` in a graveyard,
recycled for later calls, and never deleted while the library runs (at shutdown they are kept for the life of
the process: ``sip_pjsua.KEPT_PORTS``). Here too: the RTP watchdog (a far end that sent nothing for
``sip.rtp_timeout_s``, RTP from an address that is not the call's) and the warm transfer's bridge of two calls.

A mixin of ``SipWorker`` (``sip_endpoint``): every method runs on the pjsua2 thread and uses the worker's state.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import pjsua2 as pj

from voicebot import metrics
from voicebot.telephony.sip_call import FRAME_MS, SipCall
from voicebot.telephony.sip_headers import source_allowed, source_ip
from voicebot.telephony.sip_pjsua import KEPT_PORTS, MediaPort, PjCall

log = logging.getLogger("voicebot.telephony.sip_endpoint")

PORT_GRACE_S = 0.3  # a released media port lives this long before it is recycled (see MediaLinks._release)


class MediaLinks:
    """Media ports, the RTP watchdog and bridges, mixed into ``SipWorker``."""

    def _on_media_state(self, call: PjCall) -> None:
        self._connect_media(call)

    def _connect_media(self, call: PjCall) -> None:
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
                        port = MediaPort(t.media)
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

    def _disconnect_media(self, call: PjCall) -> None:
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

    def _rtp_hijacked(self, call: PjCall) -> bool:
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

    def _release(self, call: PjCall) -> None:
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
        the ports, never deleted, for the life of the process (``KEPT_PORTS``). Why: pjmedia's bridge removes a
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
            KEPT_PORTS.append(port)
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
