"""Config sections of the phone side: the SIP endpoint and its registrations (``sip``), and how ``voicebot serve``
runs (``serve``). Apart from voicebot.config (which re-exports them) to keep each file to one job and short."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from voicebot.strict import StrictModel as Section

class SipAccountConfig(Section):
    """One registration at a PBX or SIP trunk (``sip.accounts``): the bot registers as ``user`` at ``registrar``
    and answers the calls the registrar sends it. The password comes from exactly one of ``password``,
    ``password_file`` (its first line) or ``password_env``; it is never logged and shows as ``**********`` in
    any dump of the config."""

    registrar: str = Field(description="The registrar's SIP URI, e.g. sip:pbx.example.com or sip:10.0.0.5:5060.")
    user: str = Field(min_length=1, description="The extension or account name: sip:user@registrar-host.")
    auth_user: str | None = Field(None, description="The digest user name when it differs from user.")
    realm: str = Field("*", description="The digest realm the credentials are for; * answers any realm.")
    password: SecretStr | None = None
    password_file: str | None = Field(None, description="A file holding the password (first line), relative "
                                      "to the config file's folder.")
    password_env: str | None = Field(None, description="An environment variable holding the password.")
    expiry_s: int = Field(300, ge=10, le=86400, description="Registration lifetime asked for; refreshed before.")
    outbound_proxy: str | None = Field(None, description="Send REGISTERs (and the account's calls) through this "
                                       "SIP URI; calls from its address are trusted like the registrar's.")
    contact_host: str | None = Field(None, description="host[:port] the registrar is asked to send calls to (the "
                                     "Contact; e.g. a forwarded public address): default the bot's own address. "
                                     "It must lead to this endpoint itself (calls answer with it), not to a proxy.")
    transport: Literal["udp", "tcp", "tls"] = "udp"
    retry_s: int = Field(30, ge=1, le=3600, description="First retry after a failed registration; doubles on "
                         "each further failure up to max_retry_s.")
    max_retry_s: int = Field(300, ge=1, le=86400)

    @field_validator("registrar", "outbound_proxy")
    @classmethod
    def _sip_uri(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"sips?:[^@\s;>]+(;[^\s>]*)?", value):
            raise ValueError(f"{value!r} is not a registrar SIP URI (sip:host[:port], no user part)")
        return value

    @field_validator("user", "auth_user")
    @classmethod
    def _no_uri_chars(cls, value: str | None) -> str | None:
        if value is not None and re.search(r"[\s@:;<>\"]", value):
            raise ValueError(f"{value!r}: a user name only, without @, :, ; or spaces")
        return value

    @field_validator("contact_host")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[^\s@:;<>\[\]]+)(:\d{1,5})?", value):
            raise ValueError(f"{value!r}: host[:port] only, e.g. 192.0.2.10:5060")
        return value

    @model_validator(mode="after")
    def _one_password_source(self) -> "SipAccountConfig":
        given = [name for name in ("password", "password_file", "password_env") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("set exactly one of password, password_file, password_env"
                             + (f" (got {', '.join(given)})" if given else ""))
        if self.max_retry_s < self.retry_s:
            raise ValueError(f"max_retry_s ({self.max_retry_s}) is below retry_s ({self.retry_s})")
        return self

    @property
    def name(self) -> str:
        """``user@registrar-host[:port]``: how logs and /metrics name the account (no secret in it)."""
        host = self.registrar.split(":", 1)[1].split(";", 1)[0]
        return f"{self.user}@{host}"


class SipTlsConfig(Section):
    """SIP over TLS (``tls`` in ``sip.transports``): the endpoint's certificate and key, and the CAs it trusts.
    The files are checked when the config is read (``file:line`` errors): readable PEM, the key belongs to the
    certificate, the certificate has not expired (voicebot.telephony.sip_tls)."""

    port: int = Field(5061, ge=1, le=65535, description="The TLS listening port (SIP over TLS: 5061).")
    cert_file: str = Field(description="PEM certificate (chain) the endpoint presents, relative to the config file.")
    key_file: str = Field(description="Its unencrypted PEM private key (readable by the bot's user only).")
    ca_file: str | None = Field(None, description="PEM CAs trusted to verify peers (servers the bot calls; "
                                "clients when verify_client).")
    verify_server: bool = Field(True, description="Calls the endpoint makes over TLS fail unless the server's "
                                "certificate verifies against ca_file.")
    verify_client: bool = Field(False, description="Callers over TLS must present a certificate that verifies "
                                "against ca_file.")

    @field_validator("cert_file", "key_file", "ca_file")
    @classmethod
    def _usable(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Each file checked where it is named (``file:line``): load_config passes the config's folder as the
        validation context; without one (a config built in code) the endpoint checks them at start."""
        base = (info.context or {}).get("base_dir")
        if value is None or base is None:
            return value
        from voicebot.telephony.tls_files import file_problem

        def resolve(name: str) -> Path:
            path = Path(name).expanduser()
            return path if path.is_absolute() else Path(base) / path

        cert = info.data.get("cert_file") if info.field_name == "key_file" else None  # None: the cert was bad
        problem = file_problem(info.field_name, resolve(value), resolve(cert) if cert else None)
        if problem:
            raise ValueError(problem)
        return value


class SipConfig(Section):
    listen_address: str = "127.0.0.1"
    port: int = Field(5060, ge=1, le=65535)
    transports: list[Literal["udp", "tcp", "tls"]] = Field(default_factory=lambda: ["udp", "tcp"], min_length=1)
    tls: SipTlsConfig | None = Field(None, description="Certificates for the tls transport.")
    srtp: Literal["off", "optional", "mandatory"] = Field(
        "off", description="SRTP (SDES keys in the SDP) for the audio: optional offers and accepts it, mandatory "
        "refuses plain RTP (488).")
    srtp_secure_signaling: Literal["none", "tls", "sips"] = Field(
        "tls", description="What the SIP hop must be for SRTP: tls (the keys never travel in clear; pjsua's "
        "default), sips (end to end), none (also over UDP/TCP, where anyone on the path reads the keys).")
    allowed_sources: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8"],
        description="IP addresses or networks allowed to send INVITEs; every other source gets 403.",
    )
    operator_uri: str = "sip:operator@127.0.0.1:5070"
    transfer_targets: list[str] = Field(
        default_factory=list, description="The only SIP URIs besides operator_uri a call may be transferred to: "
        "a transfer anywhere else is refused before any SIP is sent."
    )
    codecs: list[Literal["PCMU", "PCMA", "G722"]] = Field(default_factory=lambda: ["PCMU", "PCMA", "G722"])
    rtp_timeout_s: float = Field(20.0, gt=0, le=600)
    rtp_source_check: bool = Field(
        True, description="Hang up a call whose RTP starts coming from an address that is neither the call's SIP "
                          "peer, its SDP address nor in allowed_sources (a media hijack: pjmedia follows the new "
                          "source, so the bot's speech would go there). Off for setups where media comes from "
                          "elsewhere, e.g. phones behind NAT with direct media.")
    max_calls: int = Field(4, ge=1, le=4, description="The pjsua2 wheel allows at most 4 calls per process.")
    transfer_mode: Literal["blind", "warm"] = "blind"
    auth_users_file: str | None = Field(
        None, description="Digest authentication of direct callers: a file of user:password lines (relative to "
        "the config file). Set: an INVITE from allowed_sources must authenticate (401, then 403 for wrong "
        "credentials); calls from a registrar in accounts are exempt. Never logged.")
    auth_realm: str = Field("voicebot", min_length=1, pattern=r'^[^"\\\s]+$',
                            description="The realm callers' digest credentials are for.")
    accounts: list[SipAccountConfig] = Field(
        default_factory=list, description="Registrations at a PBX or trunk; calls the registrar (or the account's "
        "outbound proxy) sends are answered even from outside allowed_sources.")

    @field_validator("allowed_sources")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP address or network") from exc
        return value

    @field_validator("operator_uri", "transfer_targets")
    @classmethod
    def _sip_uris(cls, value: str | list[str]) -> str | list[str]:
        for uri in [value] if isinstance(value, str) else value:
            if not uri.startswith(("sip:", "sips:")):
                raise ValueError(f"{uri!r} is not a SIP URI (sip:user@host[:port])")
        return value

    @model_validator(mode="after")
    def _tls_and_srtp(self) -> "SipConfig":
        if "tls" in self.transports and self.tls is None:
            raise ValueError("sip.transports has tls: add a sip.tls section with cert_file and key_file")
        if self.tls is not None and "tls" in self.transports and "tcp" in self.transports \
                and self.tls.port == self.port:
            raise ValueError(f"sip.tls.port {self.tls.port} is sip.port, where the tcp transport listens")
        if self.srtp != "off" and self.srtp_secure_signaling != "none" and "tls" not in self.transports:
            raise ValueError(f"sip.srtp {self.srtp} with srtp_secure_signaling {self.srtp_secure_signaling} needs "
                             "tls in sip.transports (or srtp_secure_signaling: none, keys readable on the path)")
        return self

    def transfer_allowed(self, target: str) -> bool:
        """Whether a call may be transferred to ``target``: the operator URI or one of ``transfer_targets``."""
        return target == self.operator_uri or target in self.transfer_targets


class ServeConfig(Section):
    """How `voicebot serve` runs: one process on ``sip.port``, or Kamailio there in front of N worker processes."""

    workers: int = Field(1, ge=1, le=16, description="1: one process answers on sip.port; more: Kamailio on "
                         "sip.port dispatches to that many worker processes (4 calls each).")
    worker_base_port: int = Field(5080, ge=1024, le=65535, description="Worker i's SIP port is this + i.")
    rtp_base_port: int = Field(20000, ge=1024, le=65535, description="Worker i's RTP ports start at this + "
                               "i * rtp_ports_per_worker.")
    rtp_ports_per_worker: int = Field(1000, ge=100, le=10000, description="Size of each worker's RTP port block.")
    drain_timeout_s: float = Field(30.0, ge=0, le=3600, description="On SIGTERM live calls get this long to end.")
    recycle_growth_mb: int = Field(512, ge=0, le=65536, description="With workers >= 2: a worker whose anonymous "
                                   "memory (RssAnon) grew this much since it was ready is recycled: it takes no "
                                   "new calls, ends when its live calls have, and a fresh one starts. 0: never. "
                                   "A single process is never recycled (no one would take the calls meanwhile).")
    recycle_after_calls: int = Field(0, ge=0, description="With workers >= 2: recycle a worker after this many "
                                     "calls (as recycle_growth_mb). 0: never.")
    metrics_port: int = Field(9464, ge=0, le=65535, description="Prometheus /metrics; 0 turns it off.")
    metrics_address: str = "127.0.0.1"
    run_dir: str = Field("data/run", description="Generated Kamailio config, dispatcher list, pid file, control "
                         "socket and the workers' metrics files.")

    @field_validator("metrics_address")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IP address") from exc
        return value


def serve_port_problems(sip: SipConfig, serve: ServeConfig, workers: int | None = None) -> list[tuple[str, str]]:
    """Port clashes of a multi-worker setup as (serve field, message); empty when fine. ``workers`` overrides
    ``serve.workers`` (the ``--workers`` option). With one worker only the metrics port is checked."""
    n = serve.workers if workers is None else workers
    problems = []
    if serve.metrics_port and serve.metrics_port == sip.port:
        problems.append(("metrics_port", f"{serve.metrics_port} is sip.port too"))
    if n <= 1:
        return problems
    sip_ports = range(serve.worker_base_port, serve.worker_base_port + n)
    rtp_ports = range(serve.rtp_base_port, serve.rtp_base_port + n * serve.rtp_ports_per_worker)
    sip_span, rtp_span = f"{sip_ports[0]}-{sip_ports[-1]}", f"{rtp_ports[0]}-{rtp_ports[-1]}"
    if sip_ports[-1] > 65535:
        problems.append(("worker_base_port", f"{serve.worker_base_port} + {n} workers goes past port 65535"))
    if rtp_ports[-1] > 65535:
        problems.append(("rtp_base_port", f"{serve.rtp_base_port} + {n} workers x {serve.rtp_ports_per_worker} "
                                          "RTP ports goes past port 65535"))
    if sip.port in sip_ports:
        problems.append(("worker_base_port", f"worker ports {sip_span} include sip.port {sip.port}, where "
                                             "Kamailio listens"))
    if sip.port in rtp_ports or sip.port + 1 in rtp_ports:
        problems.append(("rtp_base_port", f"RTP ports {rtp_span} include sip.port {sip.port}"))
    if set(sip_ports) & set(rtp_ports):
        problems.append(("rtp_base_port", f"RTP ports {rtp_span} overlap the worker SIP ports {sip_span}"))
    if serve.metrics_port and serve.metrics_port in sip_ports:
        problems.append(("metrics_port", f"{serve.metrics_port} is a worker's SIP port ({sip_span})"))
    return problems
