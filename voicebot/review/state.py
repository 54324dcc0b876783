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
