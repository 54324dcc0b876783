"""What the review app's handlers share: ``request.app.state.review``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.templating import Jinja2Templates

from voicebot.config import Config
from voicebot.review.users import ReviewDB
from voicebot.store import CallStore


@dataclass
class ReviewState:
    config: Config
    store: CallStore  # opened read-only
    users: ReviewDB
    templates: Jinja2Templates
    tz: ZoneInfo
    crm_path: Path
    cache_dir: Path  # beeped copies of recordings (see recordings.py); a temporary folder
    extras: dict[str, Any] = field(default_factory=dict)  # lazily built helpers (the Unanswered page's)


def review_state(request: Any) -> ReviewState:
    """The app's shared state, from a request."""
    return request.app.state.review


def render(request: Any, template: str, context: dict[str, Any], status: int = 200) -> Any:
    """A page from its template, with the user and the CSRF token every page needs (here, below the views and
    the pages built apart from them, so neither imports the other)."""
    session = getattr(request.state, "session", None)
    context = {"user": session.user if session else None, "csrf": session.csrf if session else "", **context}
    return review_state(request).templates.TemplateResponse(request, template, context, status_code=status)
