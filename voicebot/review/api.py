"""The read-only HTTP API: ``GET /api/v1/calls`` (the call list's filters, paged; ``format=csv`` with
``table=calls|turns``) and ``GET /api/v1/calls/{id}`` (one call with its turns), for a bearer token.

Why tokens and not the login session: a script or a BI tool cannot do the login form and its CSRF token, and a
token can be given a role of its own (a supervisor token sees exactly what a supervisor sees on the pages) and
revoked without touching anyone's password. Tokens are created by ``voicebot review add-token NAME --role ROLE``,
printed once and stored as SHA-256 hashes (a 256-bit random token needs no slow hash): a copy of the review
database does not let anyone in. A missing, unknown or revoked token gets 401 and no data. Every request is
written to the access log under ``token:NAME``. Redaction is ``export``'s, i.e. the pages' own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from voicebot.db import open_sqlite
from voicebot.review import redact
from voicebot.review.annotations import annotations_of
from voicebot.review.export import CALL_COLUMNS, TURN_COLUMNS, Exporter, call_record, export_text
from voicebot.review.queries import ListFilter
from voicebot.review.users import User

PREFIX = "vbr_"  # marks a review API token in a config file or a leaked log line
MAX_PAGE = 500
_BUILD_LOCK = threading.Lock()
_SCHEMA = """CREATE TABLE IF NOT EXISTS api_tokens (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL,
    last_used_at TEXT, revoked INTEGER NOT NULL DEFAULT 0)"""


class TokenError(ValueError):
    """A token that cannot be created (unknown role, bad or taken name)."""


@dataclass(frozen=True)
class ApiToken:
    name: str
    role: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked: bool = False


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ApiTokens:
    """The ``api_tokens`` table of the review database."""

    def __init__(self, path: str | Path):
        self._lock = threading.Lock()
        self._db = open_sqlite(path)
        self._db.row_factory = sqlite3.Row
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, name: str, role: str, *, replace: bool = False) -> str:
        """A new token for ``name`` (returned once, never stored in clear); ``replace`` gives an existing name a
        new token (the old one stops working)."""
        if role not in redact.ROLES:
            raise TokenError(f"role {role!r}: one of {', '.join(redact.ROLES)}")
        if not name or len(name) > 64 or not all(ch.isalnum() or ch in "._-@" for ch in name):
            raise TokenError("a token name is 1-64 letters, digits, '.', '_', '-' or '@'")
        token = PREFIX + secrets.token_urlsafe(32)
        with self._lock:
            exists = self._db.execute("SELECT 1 FROM api_tokens WHERE name = ?", (name,)).fetchone()
            if exists and not replace:
                raise TokenError(f"a token named {name!r} exists; pass --replace to issue a new one")
            self._db.execute("INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES (?, ?, ?, ?) "
                             "ON CONFLICT (name) DO UPDATE SET role = excluded.role, token_hash = "
                             "excluded.token_hash, created_at = excluded.created_at, revoked = 0, last_used_at = NULL",
                             (name, role, _hash(token), _now()))
        return token

    def revoke(self, name: str) -> bool:
        with self._lock:
            return self._db.execute("UPDATE api_tokens SET revoked = 1 WHERE name = ?", (name,)).rowcount > 0

    def tokens(self) -> list[ApiToken]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM api_tokens ORDER BY name").fetchall()
        return [ApiToken(r["name"], r["role"], datetime.fromisoformat(r["created_at"]),
                         datetime.fromisoformat(r["last_used_at"]) if r["last_used_at"] else None, bool(r["revoked"]))
                for r in rows]

    def check(self, token: str | None) -> ApiToken | None:
        """The live token ``token`` is, or None (the lookup is by hash, then compared in constant time)."""
        if not token or not token.startswith(PREFIX) or len(token) > 200:
            return None
        digest = _hash(token)
        with self._lock:
            row = self._db.execute("SELECT * FROM api_tokens WHERE token_hash = ? AND revoked = 0",
                                   (digest,)).fetchone()
            if row is None or not hmac.compare_digest(row["token_hash"], digest):
                return None
            self._db.execute("UPDATE api_tokens SET last_used_at = ? WHERE name = ?", (_now(), row["name"]))
        return ApiToken(row["name"], row["role"], datetime.fromisoformat(row["created_at"]))


def tokens_of(state) -> ApiTokens:
    with _BUILD_LOCK:  # request threads: one connection per app, not one per first request
        if "api_tokens" not in state.extras:
            state.extras["api_tokens"] = ApiTokens(state.config.path(state.config.review.database))
        return state.extras["api_tokens"]


def logged_filters(filters: ListFilter) -> str:
    """The filters for the access log: searched text and caller digits only as "set" (a search may hold a card
    number or a phone number, and secrets never go into logs)."""
    hidden = {name: None for name in ("q", "caller") if getattr(filters, name)}
    return filters.link(**hidden) + "".join(f" {name}=(set)" for name in hidden)


def _unauthorized(why: str) -> Response:
    return JSONResponse({"error": why}, 401, headers={"WWW-Authenticate": 'Bearer realm="voicebot-review"'})


def _caller(request: Request) -> User | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    found = tokens_of(request.app.state.review).check(token.strip())
    return User(0, f"token:{found.name}", found.role) if found else None


def _exporter(request: Request, role: str) -> Exporter:
    state = request.app.state.review
    return Exporter(state.store, state.tz, role, annotations_of(state), state.crm_path)


def _log(request: Request, user: User, action: str, call_id: str | None = None, detail: str | None = None) -> None:
    client = request.client.host if request.client else None
    request.app.state.review.users.log(user, action, call_id=call_id, detail=detail, client=client)


def calls(request: Request) -> Response:
    """``GET /api/v1/calls``: JSON ``{calls, total, page, pages}`` (``page``, ``per_page`` up to 500), or the
    whole match as CSV with ``format=csv`` (``table=turns`` for the turns)."""
    user = _caller(request)
    if user is None:
        return _unauthorized("a valid bearer token is needed (voicebot review add-token)")
    filters, problems = ListFilter.parse(request.query_params)
    if problems:
        return JSONResponse({"error": "; ".join(problems)}, 400)
    fmt = request.query_params.get("format", "json")
    table = request.query_params.get("table", "calls")
    if fmt not in ("json", "csv") or table not in ("calls", "turns"):
        return JSONResponse({"error": "format is json or csv; table is calls or turns"}, 400)
    exporter = _exporter(request, user.role)
    _log(request, user, "api_calls", detail=f"{fmt} {table} {logged_filters(filters)}"[:300])
    if fmt == "csv":
        return Response(export_text(exporter, filters, "csv", table), media_type="text/csv; charset=utf-8")
    try:
        per_page = min(MAX_PAGE, max(1, int(request.query_params.get("per_page", "100"))))
    except ValueError:
        return JSONResponse({"error": "per_page is a number"}, 400)
    rows, total, page = exporter.page(filters, per_page)
    return JSONResponse({"calls": [call_record(r) for r in rows], "total": total, "page": page,
                         "pages": max(1, -(-total // per_page)), "columns": list(CALL_COLUMNS)})


def call(request: Request) -> Response:
    """``GET /api/v1/calls/{id}``: the call and its turns (``TURN_COLUMNS``)."""
    user = _caller(request)
    if user is None:
        return _unauthorized("a valid bearer token is needed (voicebot review add-token)")
    call_id = request.path_params["call_id"]
    row = _exporter(request, user.role).row(call_id)
    if row is None:
        return JSONResponse({"error": f"no call {call_id!r}"}, 404)
    _log(request, user, "api_call", call_id=call_id)
    return JSONResponse({**_exporter(request, user.role).call(row), "turn_columns": list(TURN_COLUMNS)})


async def calls_endpoint(request: Request) -> Response:
    return await run_in_threadpool(calls, request)


async def call_endpoint(request: Request) -> Response:
    return await run_in_threadpool(call, request)
