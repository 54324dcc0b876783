"""Jinja2 filters: how times, durations, shares and scores read on the pages."""

from __future__ import annotations

from datetime import datetime

from jinja2 import pass_environment
from jinja2.environment import Environment

from voicebot.outcomes import LABELS as OUTCOME_LABELS
from voicebot.review.queries import REASON_LABELS

DASH = "—"


@pass_environment
def when(env: Environment, moment: datetime | None, fmt: str = "%d %b %Y, %H:%M") -> str:
    """A stored UTC time in the app's time zone."""
    return moment.astimezone(env.globals["tz"]).strftime(fmt) if moment else DASH


def clock(seconds: float | None) -> str:
    """Seconds of call audio as m:ss (a position in the recording)."""
    if seconds is None:
        return DASH
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return DASH
    seconds = round(seconds)
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def pct(share: float | None) -> str:
    return DASH if share is None else f"{share * 100:.0f}%"


def secs(value: float | None, digits: int = 2) -> str:
    return DASH if value is None else f"{value:.{digits}f} s"


def signed(value: float | None) -> str:
    return DASH if value is None else f"{value:+.2f}"


def score(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}"


def label(value: str | None) -> str:
    """An outcome (``voicebot.outcomes.LABELS``: "abandoned" reads "abandoned unresolved") or another key."""
    return DASH if not value else OUTCOME_LABELS.get(value, value.replace("_", " "))


def reason(value: str | None) -> str:
    """An outcome reason for people: "operator_request; callback 12" -> "Asked for a person; callback 12"."""
    if not value:
        return DASH
    head, sep, tail = value.partition(";")
    return REASON_LABELS.get(head.strip(), head.replace("_", " ")) + sep + tail


def sentiment_class(value: float | None) -> str:
    if value is None:
        return "neu"
    return "neg" if value <= -0.05 else "pos" if value >= 0.05 else "neu"


FILTERS = {"when": when, "clock": clock, "duration": duration, "pct": pct, "secs": secs, "signed": signed,
           "score": score, "label": label, "reason": reason, "sentiment_class": sentiment_class}
