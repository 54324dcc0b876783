"""SIP over TLS and SRTP (SDES) for the pjsua2 endpoint: checking the certificate files, the transport and media
settings, and the refusal of offers a mandatory-SRTP endpoint cannot take. No pjsua2 import here: sip_endpoint
hands in its config objects and this module sets plain fields on them.

What is encrypted where: TLS protects the signalling (and so the SDES keys in the SDP) on the hop it runs on;
SRTP encrypts the audio end to end between the two media endpoints. SRTP keys sent over plain UDP/TCP SIP can
be read by anyone on the path, which is why ``sip.srtp_secure_signaling`` defaults to ``tls`` (pjsua's own
default): SRTP is then only offered and accepted on calls whose SIP hop is TLS.

The pjsua2 wheel links its own OpenSSL 1.0.2k (out of support): TLS 1.2 at most, none of the fixes since 2019.
For an exposed deployment terminate TLS at Kamailio (``kamailio-tls-modules``, the system OpenSSL) and keep the
bot's own TLS for a trusted network; SRTP (libsrtp in the wheel) is not affected by that OpenSSL.

Certificate problems are found before pjsua2 starts: a missing or unreadable file, a certificate or key that is
not PEM, a key that does not belong to the certificate, an expired certificate, a CA file without certificates.
In a config file they are reported as ``file:line: sip.tls.cert_file: ...`` (``tls_files.file_problem`` runs in
the config's validation when it knows the config's folder; ``check_tls_files`` again at the endpoint's start).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from voicebot.telephony.tls_files import file_problem

if TYPE_CHECKING:
    from voicebot.config_telephony import SipConfig, SipTlsConfig

# pjmedia_srtp_use (pjmedia/transport_srtp.h): the wheel's PJMEDIA_SRTP_DISABLED/OPTIONAL/MANDATORY
SRTP_USE = {"off": 0, "optional": 1, "mandatory": 2}
# srtpSecureSignaling: 0 none, 1 a TLS hop (sip:...;transport=tls), 2 end to end (sips:)
SECURE_SIGNALING = {"none": 0, "tls": 1, "sips": 2}


class TlsSetupError(RuntimeError):
    """The TLS files cannot be used (each problem names its field and file, never a key's content)."""


def tls_file_problems(tls: SipTlsConfig, resolve: Callable[[str], Path],
                      now: dt.datetime | None = None) -> list[tuple[str, str]]:
    """(field, message) for every problem with the certificate, key and CA files; empty when they work."""
    problems: list[tuple[str, str]] = []
    cert = resolve(tls.cert_file)
    cert_problem = file_problem("cert_file", cert, now=now)
    if cert_problem:
        problems.append(("cert_file", cert_problem))
    key_problem = file_problem("key_file", resolve(tls.key_file), None if cert_problem else cert)
    if key_problem:
        problems.append(("key_file", key_problem))
    if tls.ca_file:
        ca_problem = file_problem("ca_file", resolve(tls.ca_file))
        if ca_problem:
            problems.append(("ca_file", ca_problem))
    return problems


def check_tls_files(sip: SipConfig, resolve: Callable[[str], Path], transports: list[str]) -> None:
    """Raise TlsSetupError naming every problem (``sip.tls.<field>: message``) when ``transports`` has TLS."""
    if "tls" not in transports:
        return
    if sip.tls is None:
        raise TlsSetupError("SIP over TLS needs a sip.tls section in the config (cert_file, key_file, and "
                            "ca_file to verify the other side)")
    problems = tls_file_problems(sip.tls, resolve)
    if problems:
        raise TlsSetupError("; ".join(f"sip.tls.{field}: {message}" for field, message in problems))


def configure_tls_transport(tcfg: Any, sip: SipConfig, resolve: Callable[[str], Path], any_port: bool) -> None:
    """Fill a pjsua2 ``TransportConfig`` for TLS: port, certificate, key, CA and peer verification."""
    tls = sip.tls
    assert tls is not None  # check_tls_files ran first
    tcfg.port = 0 if any_port else tls.port
    tc = tcfg.tlsConfig
    tc.certFile = str(resolve(tls.cert_file))
    tc.privKeyFile = str(resolve(tls.key_file))
    if tls.ca_file:
        tc.CaListFile = str(resolve(tls.ca_file))
    tc.verifyServer = tls.verify_server
    tc.verifyClient = tls.verify_client
    tc.requireClientCert = tls.verify_client


def configure_srtp(media_config: Any, sip: SipConfig) -> None:
    """Set a pjsua2 ``AccountMediaConfig``'s SRTP use and the signalling it needs (SDES keying)."""
    media_config.srtpUse = SRTP_USE[sip.srtp]
    media_config.srtpSecureSignaling = SECURE_SIGNALING[sip.srtp_secure_signaling]


def _sdp(message: str) -> str:
    return message.split("\r\n\r\n", 1)[1] if "\r\n\r\n" in message else ""


def hop_transport(message: str) -> str:
    """The transport the request came over, from its top Via (``udp``, ``tcp``, ``tls``, ...)."""
    match = re.search(r"^(?:Via|v)\s*:\s*SIP/2\.0/([A-Za-z]+)", message, re.MULTILINE | re.IGNORECASE)
    return match.group(1).lower() if match else "udp"


def srtp_refusal(sip: SipConfig, message: str) -> str | None:
    """Why an INVITE's offer cannot be taken under ``sip.srtp`` (488 then), or None. Only mandatory SRTP refuses:
    an offer without SRTP audio (RTP/SAVP with an ``a=crypto`` line), or one over a hop that is not TLS when
    ``srtp_secure_signaling`` asks for it (the keys would travel in clear). An INVITE without SDP is let
    through (pjsua makes the offer itself, with SRTP)."""
    if sip.srtp != "mandatory":
        return None
    sdp = _sdp(message)
    if "m=" not in sdp:
        return None
    audio = re.search(r"^m=audio \d+(?:/\d+)? (\S+)", sdp, re.MULTILINE)
    profile = audio.group(1) if audio else ""
    if "SAVP" not in profile or "a=crypto:" not in sdp:
        return f"plain RTP offered ({profile or 'no audio'}, no SDES key) and sip.srtp is mandatory"
    hop = hop_transport(message)
    if sip.srtp_secure_signaling != "none" and hop != "tls":
        return (f"SRTP keys came over {hop.upper()}, not TLS, and sip.srtp_secure_signaling is "
                f"{sip.srtp_secure_signaling}")
    return None


def describe(sip: SipConfig) -> str | None:
    """One line for serve's start banner: where TLS listens and the SRTP policy; None when both are off."""
    parts = []
    if sip.tls is not None and "tls" in sip.transports:
        parts.append(f"SIP over TLS on port {sip.tls.port} (certificate {sip.tls.cert_file}"
                     + (", client certificates required" if sip.tls.verify_client else "") + ")")
    if sip.srtp != "off":
        parts.append(f"SRTP {sip.srtp} (SDES; keys only over {sip.srtp_secure_signaling})"
                     if sip.srtp_secure_signaling != "none" else f"SRTP {sip.srtp} (SDES; keys over any transport)")
    return "; ".join(parts) or None
