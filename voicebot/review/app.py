"""The review web app: a Starlette application with server-rendered Jinja2 pages and no front-end build.

``create_app(config)`` opens the call store read-only, the review database (users, sessions, access log) and
wires the routes behind ``security.SecurityMiddleware``. ``voicebot review`` serves it with uvicorn.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from voicebot.config import Config
from voicebot.review import api, operator_feed, unanswered, views
from voicebot.review.format import FILTERS
from voicebot.review.redact import install_log_redaction
from voicebot.review.security import SecurityMiddleware
from voicebot.review.state import ReviewState
from voicebot.review.users import ReviewDB
from voicebot.store import CallStore, StoreError

HERE = Path(__file__).parent


class StoreMissing(Exception):
    """No call store database yet: the message says how to create one."""


def open_store(config: Config) -> CallStore:
    """The call store, read-only; migrated first (read-write, once) when its schema is older than this code."""
    path = config.path(config.store.database)
    recordings = config.path(config.store.recordings_dir)
    if not path.is_file():
        raise StoreMissing(f"no call store at {path}: it is created when the bot takes its first call "
                           "(`voicebot serve`); for a demo, run `voicebot review seed-demo`")
    try:
        return CallStore(path, recordings, readonly=True)
    except StoreError as exc:
        if "open it once read-write" not in str(exc):
            raise
    CallStore(path, recordings).close()  # applies the migrations this code adds (e.g. the analysis table)
    return CallStore(path, recordings, readonly=True)


def create_app(config: Config, *, now: Callable[[], datetime] | None = None, store: CallStore | None = None,
               redact_logs: bool = True) -> Starlette:
    """The app on the config's call store and review database.

    ``now``: a clock (tests of session expiry). ``redact_logs``: install ``RedactingFilter`` on the root and
    uvicorn loggers at start-up (tests turn it off so the filter does not outlive them in pytest's handlers).
    """
    review = config.review
    store = store or open_store(config)
    users = ReviewDB(config.path(review.database), session_minutes=review.session_minutes,
                     now=now or (lambda: datetime.now(timezone.utc)))
    cache = tempfile.TemporaryDirectory(prefix="voicebot-review-")
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters.update(FILTERS)
    tz = ZoneInfo(review.timezone)
    templates.env.globals["tz"] = tz
    state = ReviewState(config, store, users, templates, tz, config.path(config.crm.database), Path(cache.name))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if redact_logs:
            install_log_redaction()  # after uvicorn has configured its loggers
        try:
            yield
        finally:
            users.close()
            store.close()
            for helper in (*state.extras.get("unanswered", ()), state.extras.get("annotations"),
                           state.extras.get("api_tokens"), state.extras.get("operator")):
                getattr(helper, "close", lambda: None)()
            cache.cleanup()

    routes = [
        Route("/", lambda request: RedirectResponse("/calls", 303)),
        Route("/healthz", lambda request: PlainTextResponse("ok")),
        Route("/favicon.ico", lambda request: RedirectResponse("/static/favicon.svg", 301)),
        Route("/login", views.login_page, methods=["GET"]),
        Route("/login", views.login_submit, methods=["POST"]),
        Route("/logout", views.logout, methods=["POST"]),
        Route("/calls", views.call_list),
        Route("/calls/{call_id}", views.call_page),
        Route("/calls/{call_id}/recording/{which}", views.recording),
        Route("/calls/{call_id}/played", views.recording_played, methods=["POST"]),
        Route("/calls/{call_id}/annotations", views.annotate, methods=["POST"]),
        Route("/api/v1/calls", api.calls_endpoint),
        Route("/api/v1/calls/{call_id}", api.call_endpoint),
        Route("/dashboard", views.dashboard),
        Route("/admin/access", views.access_log_page),
        Route("/operator", operator_feed.operator_page),
        Route("/operator/events", operator_feed.operator_events),
        Route("/unanswered", unanswered.unanswered_page, methods=["GET"]),
        Route("/unanswered/answer", unanswered.unanswered_answer, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityMiddleware)], lifespan=lifespan,
                    exception_handlers={404: views.not_found, 403: views.forbidden})
    app.state.review = state
    return app
