"""Digest authentication of direct callers (``sip.auth_users_file``): the logic without pjsua2.

pjsua2 has no server-side digest for INVITEs, so ``sip_endpoint`` asks ``DigestAuth`` here: an INVITE without
credentials (or with a stale nonce) gets 401 with ``challenge()``; one with credentials is ``check``ed (RFC 2617
MD5, with or without ``qop=auth``) against the users file; wrong credentials get 403. Nonces are stateless: a
timestamp signed with a per-process secret, valid for ``NONCE_TTL_S``. Passwords stay in memory: no log line or
message carries one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
import time
from pathlib import Path

NONCE_TTL_S = 300


class AuthFileError(RuntimeError):
    """The users file is missing or has a malformed line (file:line, never the password)."""


def load_users(path: Path) -> dict[str, str]:
    """``user:password`` lines; blank lines and ``#`` comments are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AuthFileError(f"sip.auth_users_file: cannot read {path}: {exc.strerror}") from None
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user.strip() or not password or re.search(r'[\s"@:]', user.strip()):
            raise AuthFileError(f"{path}:{number}: expected user:password (a user name without spaces, quotes, "
                                "@ or :, and a non-empty password)")
        if user.strip() in users:
            raise AuthFileError(f"{path}:{number}: user {user.strip()!r} is listed twice")
        users[user.strip()] = password
    if not users:
        raise AuthFileError(f"{path}: no users (one user:password per line)")
    return users


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324 - RFC 2617 digest


def parse_authorization(message: str) -> dict[str, str] | None:
    """The parameters of the first ``Authorization: Digest ...`` header of a SIP message, or None."""
    head = message.split("\r\n\r\n", 1)[0]
    for line in head.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == "authorization" and value.strip().lower().startswith("digest"):
            params = {}
            for key, quoted, bare in re.findall(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))', value.strip()[6:]):
                params[key.lower()] = quoted if quoted or not bare else bare
            return params
    return None


@dataclasses.dataclass
class Verdict:
    ok: bool
    status: int  # 0 when ok, else 401 (challenge) or 403 (wrong credentials)
    user: str = ""
    why: str = ""


class DigestAuth:
    def __init__(self, users: dict[str, str], realm: str, secret: bytes | None = None, ttl_s: float = NONCE_TTL_S):
        self.users = users
        self.realm = realm
        self.secret = secret or secrets.token_bytes(32)
        self.ttl_s = ttl_s

    def _sign(self, stamp: str) -> str:
        return hmac.new(self.secret, stamp.encode(), hashlib.sha256).hexdigest()[:24]

    def nonce(self, now: float | None = None) -> str:
        stamp = f"{int(now if now is not None else time.time()):x}"
        return f"{stamp}.{self._sign(stamp)}"

    def challenge(self, now: float | None = None, stale: bool = False) -> str:
        """The WWW-Authenticate header value of a 401."""
        extra = ", stale=true" if stale else ""
        return f'Digest realm="{self.realm}", nonce="{self.nonce(now)}", algorithm=MD5, qop="auth"{extra}'

    def _nonce_fresh(self, nonce: str, now: float) -> bool | None:
        """True: ours and fresh; False: ours but expired; None: not ours."""
        stamp, _, sig = nonce.partition(".")
        if not sig or not hmac.compare_digest(sig, self._sign(stamp)):
            return None
        try:
            issued = int(stamp, 16)
        except ValueError:
            return None
        return 0 <= now - issued <= self.ttl_s

    def check(self, message: str, method: str = "INVITE", now: float | None = None) -> Verdict:
        now = time.time() if now is None else now
        params = parse_authorization(message)
        if params is None:
            return Verdict(False, 401, why="no credentials")
        user = params.get("username", "")
        fresh = self._nonce_fresh(params.get("nonce", ""), now)
        if fresh is None:
            return Verdict(False, 401, user, "a nonce this endpoint did not issue")
        if fresh is False:
            return Verdict(False, 401, user, "stale nonce")
        password = self.users.get(user)
        if password is None or params.get("realm") != self.realm:
            return Verdict(False, 403, user, "unknown user or realm")
        if params.get("algorithm", "MD5").upper() != "MD5":
            return Verdict(False, 403, user, f"algorithm {params.get('algorithm')} not supported")
        ha1 = _md5(f"{user}:{self.realm}:{password}")
        ha2 = _md5(f"{method}:{params.get('uri', '')}")
        qop = params.get("qop")
        if qop:
            if qop.lower() != "auth":
                return Verdict(False, 403, user, f"qop {qop} not supported")
            expected = _md5(f"{ha1}:{params['nonce']}:{params.get('nc', '')}:{params.get('cnonce', '')}:{qop}:{ha2}")
        else:
            expected = _md5(f"{ha1}:{params['nonce']}:{ha2}")
        if not hmac.compare_digest(expected, params.get("response", "").lower()):
            return Verdict(False, 403, user, "wrong password")
        return Verdict(True, 0, user)
