"""``StrictModel``: the base of every Pydantic model read from a file an admin or a maintainer writes.

config.yaml (``voicebot.config``, the menu in ``voicebot.dialog.flow``), ``models/manifest.yaml``
(``voicebot.models``) and the arguments the language model gives a CRM tool (``voicebot.crm.toolkit``) are all
strict: an unknown key is an error rather than a silently ignored typo, and a value set later is checked too.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown keys are errors; values are validated on assignment as well as on construction."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def known_time_zone(value: str) -> str:
    """A field validator's body: ``value`` must name an IANA time zone (``UTC``, ``Europe/Berlin``)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{value!r} is not a known time zone (e.g. UTC, Europe/Berlin)") from exc
    return value
