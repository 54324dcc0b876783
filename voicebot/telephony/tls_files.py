"""One TLS file of ``sip.tls`` checked on its own: readable, PEM, an unencrypted key that belongs to the
certificate, a certificate not expired, a CA list OpenSSL takes. Apart from sip_tls so that the config's
validation (voicebot.config_telephony) can use it without an import circle; the standard library's ssl only.
"""

from __future__ import annotations

import datetime as dt
import re
import ssl
from pathlib import Path


def _expiry(cert: Path) -> dt.datetime | None:
    """The certificate's notAfter (UTC), read by the standard library's own decoder."""
    try:
        decoded = ssl._ssl._test_decode_cert(str(cert))  # type: ignore[attr-defined]
    except (AttributeError, ssl.SSLError, OSError, ValueError):
        return None
    return dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(decoded["notAfter"]), dt.timezone.utc)


def file_problem(field: str, path: Path, cert: Path | None = None, now: dt.datetime | None = None) -> str | None:
    """What is wrong with one of the TLS files (``cert_file``, ``key_file``, ``ca_file``), or None. A key is
    also checked against ``cert`` (a certificate already found good)."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}"
    if field == "key_file":
        if not re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----", text):
            return f"{path} holds no PEM private key"
        if "ENCRYPTED" in text:
            return f"{path} is encrypted: the endpoint needs an unencrypted key file (readable by the bot's user only)"
        if cert is not None:
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(cert), str(path))
            except ssl.SSLError as exc:
                if "KEY_VALUES_MISMATCH" in str(exc):
                    return f"{path} is not the key of the certificate {cert}"
                return f"{path} with {cert}: OpenSSL refused the pair ({exc.reason or exc})"
        return None
    if "-----BEGIN CERTIFICATE-----" not in text:
        return f"{path} holds no PEM certificate"
    if field == "ca_file":
        try:
            ssl.create_default_context(cafile=str(path))
        except ssl.SSLError as exc:
            return f"{path}: OpenSSL refused it ({exc.reason or exc})"
        return None
    expires = _expiry(path)
    if expires is None:
        return f"{path}: the certificate cannot be decoded"
    if expires <= (now or dt.datetime.now(dt.timezone.utc)):
        return f"{path} expired on {expires:%Y-%m-%d %H:%M} UTC"
    return None
