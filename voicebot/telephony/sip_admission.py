"""Who may call the SIP endpoint, and on which account: admission of INVITEs and registrations at a PBX.

Why together: both answer "is this peer one of ours?". An INVITE is answered only from ``sip.allowed_sources`` or
from the registrar (or outbound proxy) of a ``sip.accounts`` entry, and only once its SIP, its SRTP offer and its
digest credentials (``sip.auth_users_file``) pass; a refusal is counted and logged with the source and the reason,
before any model work. Registrations are made, refreshed and retried here; their logic lives in ``sip_register``.

A mixin of ``SipWorker`` (``sip_endpoint``): every method runs on the pjsua2 thread and uses the worker's state.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import pjsua2 as pj

from voicebot import metrics
from voicebot.telephony.base import CallInfo
from voicebot.telephony.sip_auth import DigestAuth, Verdict, load_users
from voicebot.telephony.sip_call import SipCall
from voicebot.telephony.sip_headers import caller_id_from_message, invite_refusal, source_allowed, source_ip
from voicebot.telephony.sip_pjsua import PjAccount, PjCall, PjRegAccount, to_loop
from voicebot.telephony.sip_register import (Registration, RegistrationError, read_password, refresh_margin,
                                             trusted_addresses, uri_host_port, with_transport)
from voicebot.telephony.sip_tls import check_tls_files, configure_srtp, srtp_refusal
from voicebot.telephony.sip_transfer import reason_of

log = logging.getLogger("voicebot.telephony.sip_endpoint")


class Admission:
    """INVITE admission and PBX registrations, mixed into ``SipWorker``."""

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
        account = PjRegAccount(self, reg)
        self._reg_accounts.append(account)
        account.create(acfg, False)

    def _on_reg_state(self, account: PjRegAccount, prm: Any) -> None:
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

    # -- INVITEs (pjsua2 thread) ------------------------------------------------------------------------------
    def _reject(self, call: PjCall, status: int, reason: str) -> None:
        call.rejected = True
        metrics.REJECTED.labels(reason=reason).inc()
        op = pj.CallOpParam(True)
        op.statusCode = status
        call.hangup(op)

    def _challenge(self, call: PjCall, verdict: Verdict, ip: str) -> None:
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

    def _on_incoming(self, account: PjAccount, prm: Any) -> None:
        call = PjCall(self, account, prm.callId)
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
            to_loop(self.loop, self.calls.__setitem__, info.call_id, transport)
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
