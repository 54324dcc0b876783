"""The review app's own database: users (argon2 password hashes), login sessions and the access log.

It lives in its own SQLite file (``review.database``, default ``data/review.db``) so the call store stays
something the app only reads. Session tokens are stored as SHA-256 hashes: a copy of this file does not let
anyone log in. A session ends ``session_minutes`` after its last request (sliding expiry) or at logout.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from voicebot.db import open_sqlite
from voicebot.review.redact import ROLES as REDACTION_ROLES
from voicebot.review.throttle import Failures, ThrottlePolicy, password_problem, wait_s

access_log = logging.getLogger("voicebot.review.access")

OPERATOR = "operator"  # the live operator screen only (review/operator.py), redacted as for a supervisor
ROLES = (*REDACTION_ROLES, OPERATOR)

_USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS users (
        id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE, role TEXT NOT NULL, password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS sessions (
        token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users (id), csrf TEXT NOT NULL,
        created_at TEXT NOT NULL, expires_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS access_log (
        id INTEGER PRIMARY KEY, at TEXT NOT NULL, username TEXT, role TEXT, action TEXT NOT NULL,
        call_id TEXT, detail TEXT, client TEXT)""",
    "CREATE INDEX IF NOT EXISTS access_log_at ON access_log (at)",
)


class LoginThrottled(Exception):
    """Too many wrong passwords from this client or for this name: try again after ``retry_after_s``."""

    def __init__(self, retry_after_s: float):
        super().__init__(f"too many attempts: try again in {retry_after_s:.0f} s")
        self.retry_after_s = retry_after_s


class UserError(Exception):
    """A user operation that cannot be done (unknown role, short password, name taken, ...)."""


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    expires_at: datetime


@dataclass(frozen=True)
class AccessEntry:
    at: datetime
    username: str | None
    role: str | None
    action: str
    call_id: str | None
    detail: str | None
    client: str | None


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class ReviewDB:
    """Users, sessions and the access log on one SQLite file; safe to share between threads."""

    def __init__(self, path: str | Path, *, session_minutes: int = 30,
                 now: Callable[[], datetime] = _utc_now, hasher: PasswordHasher | None = None,
                 throttle: ThrottlePolicy = ThrottlePolicy()):
        self.path = str(path)
        self.throttle = throttle
        self.session_ttl = timedelta(minutes=session_minutes)
        self._now = now
        self._hasher = hasher or PasswordHasher()
        self._lock = threading.Lock()
        self._db = open_sqlite(self.path)
        self._db.row_factory = sqlite3.Row
        for statement in _SCHEMA:
            self._exec(statement)
        # verifying against this when the name is unknown keeps both answers equally slow
        self._dummy_hash = self._hasher.hash(secrets.token_hex(8))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _exec(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        """Run one statement and fetch its rows under the lock: request threads share the connection."""
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _one(self, sql: str, params: tuple = ()) -> sqlite3.Row | None:
        rows = self._exec(sql, params)
        return rows[0] if rows else None

    def _insert(self, sql: str, params: tuple) -> int:
        with self._lock:
            return self._db.execute(sql, params).lastrowid

    # -- users ------------------------------------------------------------------------------------------------

    def add_user(self, username: str, password: str, role: str, *, replace: bool = False) -> User:
        """Create a user (or, with ``replace``, set an existing user's password and role)."""
        username = username.strip()
        if not _USERNAME.fullmatch(username):
            raise UserError(f"user name {username!r}: 1-64 letters, digits, '.', '-', '_' or '@'")
        if role not in ROLES:
            raise UserError(f"role {role!r}: one of {', '.join(ROLES)}")
        problem = password_problem(password, username)
        if problem:
            raise UserError(problem)
        hashed = self._hasher.hash(password)
        existing = self._one("SELECT id FROM users WHERE username = ?", (username,))
        if existing and not replace:
            raise UserError(f"user {username!r} exists; pass --replace to set a new password and role")
        if existing:
            self._exec("UPDATE users SET password_hash = ?, role = ?, disabled = 0 WHERE id = ?",
                       (hashed, role, existing["id"]))
            self._exec("DELETE FROM sessions WHERE user_id = ?", (existing["id"],))  # old logins end
            return User(existing["id"], username, role)
        user_id = self._insert("INSERT INTO users (username, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                               (username, role, hashed, self._now().isoformat()))
        return User(user_id, username, role)

    def users(self) -> list[User]:
        rows = self._exec("SELECT id, username, role FROM users WHERE disabled = 0 ORDER BY username")
        return [User(r["id"], r["username"], r["role"]) for r in rows]

    def authenticate(self, username: str, password: str, client: str | None = None) -> User | None:
        """The user when the password matches, else None; every attempt is written to the access log.
        Raises LoginThrottled, before the password is even checked, while this client or name must wait."""
        username = username.strip()
        waiting = wait_s(self, username, client, self._now(), self.throttle)
        if waiting > 0:
            self.log(None, "login_throttled", detail=username, client=client)
            raise LoginThrottled(waiting)
        row = self._one("SELECT * FROM users WHERE username = ? AND disabled = 0", (username,))
        try:
            self._hasher.verify(row["password_hash"] if row else self._dummy_hash, password)
            ok = row is not None
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok:
            self.log(None, "login_failed", detail=username, client=client)
            return None
        if self._hasher.check_needs_rehash(row["password_hash"]):
            self._exec("UPDATE users SET password_hash = ? WHERE id = ?", (self._hasher.hash(password), row["id"]))
        user = User(row["id"], row["username"], row["role"])
        self.log(user, "login", client=client)
        return user

    def failures(self, *, since: datetime, until: datetime, username: str | None = None,
                 client: str | None = None) -> Failures:
        """Wrong passwords between ``since`` and ``until``, for a name and/or from a client (the throttle's
        FailureLog)."""
        sql = "SELECT COUNT(*), MAX(at) FROM access_log WHERE action = 'login_failed' AND at >= ? AND at <= ?"
        params: list[str] = [since.isoformat(), until.isoformat()]
        if username is not None:
            sql, params = sql + " AND detail = ?", [*params, username]
        if client is not None:
            sql, params = sql + " AND client = ?", [*params, client]
        count, last = self._exec(sql, tuple(params))[0]
        return Failures(count, datetime.fromisoformat(last) if last else None)

    def logged_in_before(self, username: str, client: str, since: datetime, until: datetime) -> bool:
        return self._one("SELECT 1 FROM access_log WHERE action = 'login' AND username = ? AND client = ? "
                         "AND at >= ? AND at <= ? LIMIT 1",
                         (username, client, since.isoformat(), until.isoformat())) is not None

    # -- sessions ---------------------------------------------------------------------------------------------

    def start_session(self, user: User) -> tuple[str, Session]:
        """A new session: returns the cookie token (only its hash is stored) and the session."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self._now()
        expires = now + self.session_ttl
        self._exec("INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                   (_hash_token(token), user.id, csrf, now.isoformat(), expires.isoformat()))
        return token, Session(user, csrf, expires)

    def session(self, token: str | None) -> Session | None:
        """The live session for a cookie token, its expiry pushed back; None when unknown or expired."""
        if not token:
            return None
        now = self._now()
        row = self._one("SELECT s.csrf, s.expires_at, u.id, u.username, u.role FROM sessions s "
                        "JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND u.disabled = 0",
                        (_hash_token(token),))
        if row is None:
            return None
        if datetime.fromisoformat(row["expires_at"]) <= now:
            self._exec("DELETE FROM sessions WHERE token_hash = ?", (_hash_token(token),))
            return None
        expires = now + self.session_ttl
        self._exec("UPDATE sessions SET expires_at = ? WHERE token_hash = ?", (expires.isoformat(), _hash_token(token)))
        return Session(User(row["id"], row["username"], row["role"]), row["csrf"], expires)

    def end_session(self, token: str | None) -> None:
        if token:
            self._exec("DELETE FROM sessions WHERE token_hash = ?", (_hash_token(token),))
        self._exec("DELETE FROM sessions WHERE expires_at <= ?", (self._now().isoformat(),))

    @staticmethod
    def csrf_matches(expected: str | None, given: str | None) -> bool:
        return bool(expected and given) and hmac.compare_digest(expected.encode(), given.encode())

    # -- access log -------------------------------------------------------------------------------------------

    def log(self, user: User | None, action: str, *, call_id: str | None = None, detail: str | None = None,
            client: str | None = None) -> None:
        """Who did what, when: a row in ``access_log`` and a line on the ``voicebot.review.access`` logger."""
        self._exec("INSERT INTO access_log (at, username, role, action, call_id, detail, client) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (self._now().isoformat(), user.username if user else None, user.role if user else None,
                    action, call_id, detail, client))
        access_log.info("%s %s%s%s from %s", user.username if user else "-", action,
                        f" call {call_id}" if call_id else "", f" ({detail})" if detail else "", client or "?")

    def access_entries(self, limit: int = 200, offset: int = 0) -> list[AccessEntry]:
        rows = self._exec("SELECT * FROM access_log ORDER BY id DESC LIMIT ? OFFSET ?", (limit, offset))
        return [AccessEntry(datetime.fromisoformat(r["at"]), r["username"], r["role"], r["action"], r["call_id"],
                            r["detail"], r["client"]) for r in rows]
