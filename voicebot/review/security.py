"""Login enforcement, CSRF checks, cookies and security headers, in one middleware so no page can forget them.

- Every path but ``/login``, ``/healthz`` and ``/static`` needs a live session; a request without one is
  redirected to the login page (303).
- Every POST carries a CSRF token in its form: the session's token, or, for the login form, the token of a
  short-lived cookie set with the form (double submit). A POST whose Origin header names another site fails.
- Session cookies are HttpOnly and SameSite=Strict (and Secure with ``review.secure_cookies``); a session ends
  ``review.session_minutes`` after its last request (see ``users.ReviewDB``).
- Pages carry a Content-Security-Policy that allows only this origin's scripts, styles and media (no inline
  code), and ``Cache-Control: no-store`` because they show personal data.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, quote

from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from voicebot.review.state import ReviewState
from voicebot.review.users import OPERATOR, ReviewDB, Session

log = logging.getLogger(__name__)

SESSION_COOKIE = "voicebot_review"
LOGIN_COOKIE = "voicebot_review_login"
PUBLIC = ("/login", "/healthz", "/favicon.ico")
API = "/api/"  # read-only, bearer tokens instead of sessions (api.py checks them; no cookie is used there)
MAX_FORM_BYTES = 16 * 1024
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:  # not sent by every client on same-origin POSTs; the CSRF token still has to match
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


class SecurityMiddleware(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        state: ReviewState = request.app.state.review
        path = request.url.path
        if path.startswith(API):
            if request.method not in ("GET", "HEAD"):
                return PlainTextResponse("The API is read-only.", 405, headers={"Allow": "GET, HEAD"})
            response = await call_next(request)
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            return response
        token = request.cookies.get(SESSION_COOKIE)
        session = await run_in_threadpool(state.users.session, token) if token else None
        request.state.session = session
        request.state.user = session.user if session else None
        if request.method == "POST":
            problem = await _csrf_problem(request, session)
            if problem:
                log.warning("rejected POST %s: %s", path, problem)
                return PlainTextResponse(f"Forbidden: {problem}. Reload the page and try again.", 403,
                                         headers={"Cache-Control": "no-store"})
        if session is None and path not in PUBLIC and not path.startswith("/static/"):
            target = path + (f"?{request.url.query}" if request.url.query else "")
            response: Response = RedirectResponse(f"/login?next={quote(target, safe='')}", 303)
            if token:  # expired or unknown: drop the stale cookie
                response.delete_cookie(SESSION_COOKIE, path="/")
        elif session is not None and session.user.role == OPERATOR and not operator_may_open(path):
            response = RedirectResponse("/operator", 303) if request.method == "GET" else \
                PlainTextResponse("Forbidden: operators see the live calls only.", 403)
        else:
            response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if not path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def operator_may_open(path: str) -> bool:
    """An operator sees the live calls (``/operator``), never the call history, dashboard or recordings."""
    return path in (*PUBLIC, "/operator", "/logout") or path.startswith(("/operator/", "/static/"))


async def _csrf_problem(request: Request, session: Session | None) -> str | None:
    if not _same_origin(request):
        return "cross-origin request"
    body = await request.body()  # BaseHTTPMiddleware caches it: the endpoint reads the same body again
    if len(body) > MAX_FORM_BYTES:
        return "form too large"
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return "unexpected form encoding"
    given = (parse_qs(body.decode("utf-8", "replace")).get("csrf_token") or [""])[0]
    login = request.url.path == "/login"
    expected = request.cookies.get(LOGIN_COOKIE) if login else (session.csrf if session else None)
    if not ReviewDB.csrf_matches(expected, given):
        return "missing or wrong CSRF token" if session or login else "not logged in"
    return None


def set_session_cookie(response: Response, state: ReviewState, token: str) -> None:
    """The session cookie: no Max-Age (it dies with the browser); the server ends it after idle time."""
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", path="/",
                        secure=state.config.review.secure_cookies)


def set_login_cookie(response: Response, state: ReviewState, token: str) -> None:
    """The login form's CSRF token as a cookie only /login receives (the form carries the same token)."""
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict", path="/login",
                        secure=state.config.review.secure_cookies)


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this site only (never ``//evil.example`` or a full URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/calls"
    return target
