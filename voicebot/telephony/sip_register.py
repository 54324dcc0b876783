"""Registrations at a PBX or SIP trunk (``sip.accounts``): the logic without pjsua2.

``sip_endpoint`` creates one pjsua2 account per entry and feeds each registration result to its
``Registration`` here, which keeps the state, logs a line at start and on every change (a refused password once,
clearly, never again for the same refusal), sets the ``voicebot_sip_registered`` gauge and decides when to try
again:

- temporary failures (408 no answer, 500, 502, 503, 504, 6xx) are retried by pjsua itself, after
  ``regConfig.firstRetryIntervalSec`` (``retry_s``) and then every ``retryIntervalSec`` (``max_retry_s``);
- every other refusal (401/407 wrong password, 403, 404 ...) pjsua gives up on; ``Registration`` schedules the
  retry itself with a doubling backoff (``retry_s``, ``2 x retry_s`` ... up to ``max_retry_s``) and the endpoint
  calls ``setRegistration(True)`` when ``due``.

Passwords are read here (``password``, ``password_file`` or ``password_env``) and go nowhere but pjsua2's
credentials: no log line, metric label or error message carries one.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

from voicebot import metrics
from voicebot.config import SipAccountConfig

log = logging.getLogger("voicebot.telephony.sip_register")

# the codes pjsua retries on its own when regConfig.retryIntervalSec is set (pjsua_acc.c, regc_cb)
PJSUA_RETRIES = frozenset({408, 500, 502, 503, 504})
AUTH_REFUSED = frozenset({401, 407})


class RegistrationError(RuntimeError):
    """An account that cannot be set up (no password, an unknown registrar host, a transport not enabled)."""


def read_password(account: SipAccountConfig, resolve: Callable[[str], Path]) -> str:
    """The account's password from the config, its file (first line) or its environment variable."""
    if account.password is not None:
        secret = account.password.get_secret_value()
    elif account.password_file is not None:
        path = resolve(account.password_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise RegistrationError(f"sip.accounts {account.name}: cannot read password_file {path}: "
                                    f"{exc.strerror}") from None
        secret = lines[0].strip() if lines else ""
    else:
        secret = os.environ.get(account.password_env or "", "")
        if not secret:
            raise RegistrationError(f"sip.accounts {account.name}: the environment variable {account.password_env} "
                                    "(password_env) is not set or empty")
    if not secret:
        raise RegistrationError(f"sip.accounts {account.name}: the password is empty")
    return secret


def uri_host_port(uri: str) -> tuple[str, int | None]:
    """``sip:host[:port][;params]`` -> (host, port or None); IPv6 hosts in brackets come back without them."""
    rest = uri.split(":", 1)[1].split(";", 1)[0].split("@")[-1]
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        return host, int(tail[1:]) if tail.startswith(":") else None
    host, _, port = rest.partition(":")
    return host, int(port) if port else None


def with_transport(uri: str, transport: str) -> str:
    """The URI with ``;transport=tcp`` added for TCP (pjsua picks the transport from the URI)."""
    if transport == "udp" or ";transport=" in uri.lower():
        return uri
    return f"{uri};transport={transport}"


def trusted_addresses(account: SipAccountConfig) -> frozenset[str]:
    """The IP addresses of the account's registrar and outbound proxy (resolved now): INVITEs from these are
    answered even from outside ``sip.allowed_sources``."""
    found: set[str] = set()
    for uri in (account.registrar, account.outbound_proxy):
        if uri is None:
            continue
        host, port = uri_host_port(uri)
        try:
            infos = socket.getaddrinfo(host, port or 5060, proto=socket.IPPROTO_UDP)
        except OSError as exc:
            raise RegistrationError(f"sip.accounts {account.name}: cannot resolve {host!r} ({uri}): {exc}") from None
        found.update(str(info[4][0]) for info in infos)
    return frozenset(found)


def refresh_margin(expiry_s: int) -> int:
    """Seconds before the expiry at which pjsua refreshes (its default 5 s, less for very short expiries)."""
    return max(1, min(5, expiry_s // 3))


def backoff(account: SipAccountConfig, failures: int) -> float:
    """The wait before retry number ``failures`` (1, 2, ...): retry_s, doubled each time, at most max_retry_s."""
    return float(min(account.max_retry_s, account.retry_s * 2 ** max(0, failures - 1)))


def explain(code: int, reason: str) -> str:
    if code in AUTH_REFUSED:
        return f"{code} {reason}: wrong password or auth user (check password and auth_user)"
    if code == 403:
        return f"{code} {reason}: the registrar refuses this account"
    if code == 404:
        return f"{code} {reason}: the registrar does not know this user"
    if code == 408:
        return f"{code} {reason}: no answer from the registrar"
    return f"{code} {reason}"


@dataclasses.dataclass
class Registration:
    """One account's registration state (touched on the pjsua2 thread only)."""

    account: SipAccountConfig
    trusted: frozenset[str] = frozenset()
    state: str = "unregistered"  # unregistered, registering, registered, failed
    code: int = 0
    failures: int = 0  # consecutive failed attempts
    retry_at: float | None = None  # monotonic time of our own retry (refusals pjsua does not retry)
    expires_s: int = 0
    _reported: tuple[int, str] | None = None  # the last failure logged at warning/error level

    @property
    def name(self) -> str:
        return self.account.name

    def starting(self) -> None:
        a = self.account
        via = f" via {a.outbound_proxy}" if a.outbound_proxy else ""
        log.info("registering %s at %s%s over %s (expiry %d s, user %s)", self.name, a.registrar, via,
                 a.transport.upper(), a.expiry_s, a.auth_user or a.user)
        metrics.SIP_REGISTERED.labels(account=self.name).set(0)
        self.state = "registering"

    def attempt(self) -> None:
        """Our own retry is starting (the endpoint calls setRegistration(True))."""
        self.retry_at = None
        log.debug("registration %s: retrying (attempt %d)", self.name, self.failures + 1)

    def due(self, now: float) -> bool:
        return self.retry_at is not None and now >= self.retry_at

    def result(self, code: int, reason: str, active: bool, expires_s: int, now: float,
               unregistering: bool = False) -> None:
        """A REGISTER's outcome: ``active`` is pjsua's regIsActive afterwards."""
        self.code = code
        if active and 200 <= code < 300:
            self.expires_s = expires_s
            if self.state != "registered":
                after = f" after {self.failures} failed attempt(s)" if self.failures else ""
                log.info("registered %s (%d %s, expires in %d s)%s", self.name, code, reason, expires_s, after)
            else:
                log.debug("registration %s refreshed (expires in %d s)", self.name, expires_s)
            self.state, self.failures, self.retry_at, self._reported = "registered", 0, None, None
            metrics.SIP_REGISTERED.labels(account=self.name).set(1)
            return
        metrics.SIP_REGISTERED.labels(account=self.name).set(0)
        if unregistering or (200 <= code < 300 and not active):
            if self.state != "unregistered":
                log.info("unregistered %s (%d %s)", self.name, code, reason)
            self.state, self.retry_at = "unregistered", None
            return
        self.failures += 1
        self.state = "failed"
        metrics.SIP_REGISTER_FAILURES.labels(account=self.name, code=str(code)).inc()
        if code in PJSUA_RETRIES or 600 <= code < 700:
            wait = float(self.account.retry_s if self.failures == 1 else self.account.max_retry_s)
            self.retry_at = None  # pjsua retries these itself
        else:
            wait = backoff(self.account, self.failures)
            self.retry_at = now + wait
        key = (code, reason)
        if key != self._reported:  # once per kind of failure, not once per retry
            self._reported = key
            level = logging.ERROR if code in AUTH_REFUSED or code in (403, 404) else logging.WARNING
            log.log(level, "registration %s failed: %s; retrying in %.0f s (backing off up to %d s)", self.name,
                    explain(code, reason), wait, self.account.max_retry_s)
        else:
            log.debug("registration %s failed again (%d); retrying in %.0f s", self.name, code, wait)
