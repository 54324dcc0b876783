"""The SIP endpoint's library lifecycle: pjsua2 created, configured and started; calls and ports shut down.

Why apart, and why so careful: pjsua2 is a process-wide singleton whose objects must die on the pjsua2 thread
while the library is alive. A Call object destroyed after ``libDestroy`` asserts and aborts the process, a media
port deleted while the clock thread runs corrupts the heap, and garbage left by an earlier endpoint collected on
another thread crashed in ``codecEnum2``. So the order here is fixed: ports checked and passwords read before any
pjsua2 object exists; at the end, calls hung up, ports disconnected and kept, accounts shut down, survivors
disowned, then ``libDestroy``.

A mixin of ``SipWorker`` (``sip_endpoint``): every method runs on the pjsua2 thread and uses the worker's state.
"""

from __future__ import annotations

import gc
import logging
import queue
import time

import pjsua2 as pj

from voicebot.telephony import sip_guard
from voicebot.telephony.sip_headers import port_free_or_raise
from voicebot.telephony.sip_media import PORT_GRACE_S
from voicebot.telephony.sip_pjsua import PjAccount, PjEndpoint, PjLogWriter
from voicebot.telephony.sip_tls import configure_srtp, configure_tls_transport

log = logging.getLogger("voicebot.telephony.sip_endpoint")

CODEC_IDS = {"PCMU": "PCMU/8000", "PCMA": "PCMA/8000", "G722": "G722/16000"}


class Lifecycle:
    """Creating and destroying the pjsua2 library, mixed into ``SipWorker``."""

    def _create(self) -> None:
        if self.port:  # before any pjsua2 object exists: an error after Endpoint() would leave it half made
            port_free_or_raise(self.sip.listen_address, self.port, self.transports)
        secrets = self._check_accounts()  # same: passwords, registrar addresses, transports
        # pjsua2 is a process-wide singleton: garbage left by an earlier endpoint (a proxy in a reference cycle)
        # must die now, with no library alive, not later from a GC pass on another thread while this endpoint
        # is half made (a segfault in codecEnum2 seen once in CI)
        gc.collect()
        ep = PjEndpoint(self)
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
        self._log_writer = PjLogWriter()  # kept alive as long as the endpoint
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
        account = PjAccount(self)
        account.create(acfg, True)
        self._account = account
        for reg, secret in zip(self.registrations, secrets):
            self._register(reg, secret)

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
