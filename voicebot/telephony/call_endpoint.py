"""The caller's own endpoint for ``voicebot call``: the account it registers with and the ports it uses.

``voicebot call`` dials from a pjsua2 endpoint of its own. By default that endpoint registers nowhere and takes
any free RTP ports. An admin testing a PBX, or a test calling the bot through a registrar, needs more: the
caller registers (``--register account.yaml``, one ``sip.accounts`` entry, or ``--registrar``/``--user`` and a
password from ``--password-env``/``--password-file``, never the command line, where ``ps`` shows it) and a call
to the registrar's host goes out on that account, whose credentials answer the registrar's 401/407; and a
firewall may allow only some RTP ports (``--rtp-port``/``--rtp-ports``). ``CallerEndpoint`` carries these to
``place_call``, which hands ``worker_options()`` to ``SipWorker`` and waits with ``wait_registered`` before
dialling, so the INVITE never races the first REGISTER.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from voicebot.config_telephony import SipAccountConfig
from voicebot.configfile import ConfigError, ConfigProblem, read_yaml_mapping, validation_problems

if TYPE_CHECKING:
    from voicebot.telephony.sip_endpoint import SipWorker


class CallerEndpointError(Exception):
    """The caller's account or ports are unusable: nothing was dialled."""


@dataclass(frozen=True)
class CallerEndpoint:
    """What ``voicebot call``'s endpoint registers and binds: ``rtp_port`` 0 means any free ports."""

    accounts: tuple[SipAccountConfig, ...] = ()
    rtp_port: int = 0
    rtp_ports: int = 100
    transports: tuple[str, ...] = ("udp",)

    def worker_options(self) -> dict[str, Any]:
        """Keyword arguments for ``SipWorker`` (beside config and on_call): a free SIP port, these RTP ports,
        these accounts."""
        options: dict[str, Any] = {"port": 0, "transports": list(self.transports), "accounts": list(self.accounts)}
        if self.rtp_port:
            options.update(rtp_port=self.rtp_port, rtp_port_range=self.rtp_ports)
        return options


def load_account_file(path: Path) -> SipAccountConfig:
    """One account (the fields of a ``sip.accounts`` entry) from a small YAML file, errors as ``file:line``;
    a relative ``password_file`` is taken from the YAML file's folder."""
    data, lines = read_yaml_mapping(path)
    try:
        account = SipAccountConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, str(path), lines)) from None
    if account.password_file is not None and not Path(account.password_file).expanduser().is_absolute():
        absolute = (path.resolve().parent / account.password_file).as_posix()
        account = account.model_copy(update={"password_file": absolute})
    return account


def account_from_options(registrar: str, user: str, auth_user: str | None = None, password_env: str | None = None,
                         password_file: Path | None = None, expiry_s: int = 300) -> SipAccountConfig:
    """An account from ``voicebot call``'s options (validated like a config entry; errors without a file)."""
    data: dict[str, Any] = {"registrar": registrar, "user": user, "auth_user": auth_user, "expiry_s": expiry_s,
                            "password_env": password_env,
                            "password_file": str(password_file.resolve()) if password_file else None}
    try:
        return SipAccountConfig.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError([ConfigProblem("command line", None, p.field, p.message)
                           for p in validation_problems(exc, "command line", {})]) from None


def check_rtp_ports(rtp_port: int, rtp_ports: int) -> None:
    """``--rtp-port`` (the first port, even: RTCP takes the next) and ``--rtp-ports`` (how many) must fit."""
    if rtp_port == 0:
        return
    if not 1024 <= rtp_port <= 65534 or rtp_port % 2:
        raise CallerEndpointError(f"--rtp-port {rtp_port}: an even port from 1024 to 65534 (RTCP takes the next)")
    if rtp_ports < 2 or rtp_port + rtp_ports - 1 > 65535:
        raise CallerEndpointError(f"--rtp-ports {rtp_ports}: at least 2, and {rtp_port} + {rtp_ports} must stay "
                                  "within port 65535")


async def wait_registered(worker: SipWorker, timeout_s: float, poll_s: float = 0.05) -> None:
    """Wait until every account of ``worker`` is registered; CallerEndpointError with the registrar's answer
    when one fails (the caller does not dial into a certain 401/404) or none comes within ``timeout_s``."""
    from voicebot.telephony.sip_register import explain

    deadline = time.monotonic() + timeout_s
    while True:
        regs = list(worker.registrations)
        failed = [r for r in regs if r.state == "failed"]
        if failed:
            r = failed[0]
            raise CallerEndpointError(f"registering {r.name} at {r.account.registrar} failed: "
                                      f"{explain(r.code, 'refused')}")
        if all(r.state == "registered" for r in regs):
            return
        if time.monotonic() > deadline:
            waiting = ", ".join(r.name for r in regs if r.state != "registered")
            raise CallerEndpointError(f"no answer to the REGISTER of {waiting} within {timeout_s:g} s")
        await asyncio.sleep(poll_s)


def target_transports(target: str, accounts: tuple[SipAccountConfig, ...] = ()) -> tuple[str, ...]:
    """The transports the caller's endpoint needs: UDP always, TCP or TLS when the target or an account asks."""
    wanted = ["udp"]
    lowered = target.lower()
    if ";transport=tcp" in lowered or any(a.transport == "tcp" for a in accounts):
        wanted.append("tcp")
    if lowered.startswith("sips:") or ";transport=tls" in lowered:
        wanted.append("tls")
    return tuple(wanted)


def caller_endpoint(target: str, register: Path | None = None, registrar: str | None = None,
                    user: str | None = None, auth_user: str | None = None, password_env: str | None = None,
                    password_file: Path | None = None, rtp_port: int = 0, rtp_ports: int = 100) -> CallerEndpoint:
    """``voicebot call``'s options as a CallerEndpoint (raises CallerEndpointError or ConfigError)."""
    accounts: list[SipAccountConfig] = []
    if register is not None:
        if registrar or user:
            raise CallerEndpointError("give either --register FILE or --registrar with --user, not both")
        accounts.append(load_account_file(register))
    elif registrar or user:
        if not (registrar and user):
            raise CallerEndpointError("--registrar and --user go together")
        if not (password_env or password_file):
            raise CallerEndpointError("--registrar needs --password-env or --password-file (never the password "
                                      "itself on the command line: ps shows it)")
        accounts.append(account_from_options(registrar, user, auth_user, password_env, password_file))
    elif auth_user or password_env or password_file:
        raise CallerEndpointError("--auth-user, --password-env and --password-file go with --registrar")
    check_rtp_ports(rtp_port, rtp_ports)
    return CallerEndpoint(tuple(accounts), rtp_port, rtp_ports, target_transports(target, tuple(accounts)))
