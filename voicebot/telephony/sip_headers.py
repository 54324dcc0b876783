"""SIP helpers with no pjsua2: the caller's number from an INVITE's headers, and the checks the endpoint makes
before it answers (is the source allowed?) or binds (is the port free?).

Pure functions apart from the port probe, tested without a network.
"""

from __future__ import annotations

import ipaddress
import re
import socket

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _header(message: str, *names: str) -> str | None:
    for line in message.split("\r\n\r\n", 1)[0].splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() in names:
            return value.strip()
    return None


def body_length_wrong(message: str) -> bool:
    """A datagram whose body is not as long as its Content-Length says. Shorter: truncated (RFC 3261 18.3:
    discard or 400). Longer: pjsip ignores Content-Length on UDP and parses the whole datagram, so the SDP it
    answers is not the one the header declared. A stream transport frames by Content-Length: never wrong there."""
    declared = _header(message, "content-length", "l")
    if declared is None or not declared.isdigit():
        return False
    _, sep, body = message.partition("\r\n\r\n")
    return bool(sep) and len(body.encode("utf-8", "surrogateescape")) != int(declared)


def invite_refusal(message: str) -> tuple[int, str] | None:
    """What an INVITE pjsua would otherwise answer 200 must get instead, checked before the call is answered:
    (400, why) for a body that does not match its Content-Length, (483, why) for Max-Forwards 0 (RFC 3261 16.3
    asks it of proxies; a bot reached with no hops left is at the end of a loop, not a caller); None: fine."""
    if body_length_wrong(message):
        return 400, "its body does not match its Content-Length"
    hops = _header(message, "max-forwards")
    if hops is not None and hops.isdigit() and int(hops) == 0:
        return 483, "Max-Forwards 0"
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
    """The user part of the first sip:/sips:/tel: URI in ``value``: a number as ``+digits`` (spaces, dots,
    dashes and brackets dropped), any other user as it is, "" when there is no such URI."""
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


def source_allowed(ip: str, networks: list[Network]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in net for net in networks)


def port_free_or_raise(address: str, port: int, transports: list[str]) -> None:
    """pjsip binds its UDP socket with SO_REUSEADDR, so a second bot on the same port would start without an
    error and share (steal) the first one's INVITEs. A plain bind without SO_REUSEADDR fails while any socket
    holds the port: try one per transport first."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    for name in transports:
        kind = socket.SOCK_DGRAM if name == "udp" else socket.SOCK_STREAM
        with socket.socket(family, kind) as probe:
            if kind == socket.SOCK_STREAM:  # TIME_WAIT leftovers are fine; a listener still conflicts
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, port))
            except OSError as exc:
                raise RuntimeError(f"{name.upper()} port {address}:{port} is in use ({exc.strerror}): another "
                                   "voicebot or SIP server is listening there; stop it or change sip.port") from None
