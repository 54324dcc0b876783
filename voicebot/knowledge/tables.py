"""The structured knowledge files' shapes: ``hours.yaml`` (opening hours per weekday, holidays, the time zone)
and ``prices.yaml`` (items or tariffs with prices, units, conditions, volume discounts), as strict models.
``files.py`` reads and checks the files with them; ``hours.py`` and ``prices.py`` compute answers from them."""

from __future__ import annotations

import datetime as dt
import re
from datetime import time
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from voicebot.strict import StrictModel

_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def parse_spans(value: str | None) -> tuple[tuple[time, time], ...]:
    """"08:00-12:00, 13:00-17:30" -> ((08:00, 12:00), (13:00, 17:30)); "closed" -> (). "24:00" ends a day."""
    if value is None or value.strip().casefold() == "closed":
        return ()
    spans = []
    for part in value.split(","):
        m = _SPAN.match(part)
        if not m:
            raise ValueError(f"{part.strip()!r} is not a time span: write \"09:00-17:00\", several separated by "
                             "commas, or \"closed\"")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(f"{part.strip()!r}: not a time of day")
        start, end = time(h1, m1), time.max if h2 == 24 else time(h2, m2)
        if end <= start:
            raise ValueError(f"{part.strip()!r} ends before it starts (a span past midnight is not supported)")
        if spans and start < spans[-1][1]:
            raise ValueError(f"{part.strip()!r} overlaps or comes before the span before it")
        spans.append((start, end))
    return tuple(spans)


def _span_text(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError("write times in quotes, e.g. \"09:00-17:00\" (YAML reads 9:00 as a number)")  # noqa: TRY004
    if value is not None and not isinstance(value, str):
        raise ValueError("a time span such as \"09:00-17:00\", or \"closed\"")
    parse_spans(value)
    return value


DaySpans = Annotated[str | None, BeforeValidator(_span_text)]
"""A day's hours: "09:00-17:00", several spans separated by commas, or "closed" (each day checked at its line)."""


class Holiday(StrictModel):
    date: dt.date
    name: str = Field(min_length=1)
    hours: str = Field("closed", description="\"closed\", or the day's own spans (\"09:00-13:00\").")

    @field_validator("hours", mode="before")
    @classmethod
    def _spans(cls, value: object) -> object:
        return _span_text(value)


class HoursFile(StrictModel):
    """``hours.yaml``: the week, the days that differ, and the zone every time is in."""

    timezone: str
    weekly: dict[Literal[WEEKDAYS], DaySpans]  # type: ignore[valid-type]
    holidays: list[Holiday] = Field(default_factory=list)
    note: str = Field("", description="Said after a general hours answer (e.g. \"Times are Central Time.\").")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a known time zone (e.g. America/Chicago, Europe/Berlin)") from exc
        return value

    @field_validator("weekly")
    @classmethod
    def _complete(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        missing = [d for d in WEEKDAYS if d not in value]
        if missing:
            raise ValueError(f"weekly lacks {', '.join(missing)}: give every day its hours or \"closed\"")
        return value

    @field_validator("holidays")
    @classmethod
    def _once(cls, value: list[Holiday]) -> list[Holiday]:
        dates = [h.date for h in value]
        twice = sorted({d.isoformat() for d in dates if dates.count(d) > 1})
        if twice:
            raise ValueError(f"holidays list {', '.join(twice)} more than once")
        return value


# -- prices.yaml -----------------------------------------------------------------------------------------------

class Discount(StrictModel):
    min_quantity: int = Field(ge=2)
    percent: Decimal = Field(gt=0, lt=100)


class PriceItem(StrictModel):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list, description="Other words callers use for it.")
    price: Decimal = Field(ge=0, decimal_places=2)
    unit: str = Field(min_length=1, description="What one price buys: \"desk\", \"hour\", \"box of 5 reams\".")
    plural: str = Field("", description="The unit's plural when it is not unit + s.")
    minimum: int = Field(1, ge=1, description="The smallest quantity sold.")
    conditions: str = Field("", description="Said with every estimate (delivery, what is included).")
    discounts: list[Discount] = Field(default_factory=list, description="Volume tiers: the highest that applies.")

    @field_validator("price", mode="before")
    @classmethod
    def _exact(cls, value: object) -> object:
        return Decimal(str(value)) if isinstance(value, float) else value  # 24.99 stays 24.99, not binary

    @field_validator("discounts")
    @classmethod
    def _rising(cls, value: list[Discount]) -> list[Discount]:
        quantities = [d.min_quantity for d in value]
        if quantities != sorted(set(quantities)):
            raise ValueError("list volume discounts by rising min_quantity, each quantity once")
        return value

    @property
    def units(self) -> str:
        return self.plural or (self.unit if self.unit.endswith("s") else self.unit + "s")


class PricesFile(StrictModel):
    """``prices.yaml``: what things cost. Every price the bot says is one of these, or computed from one."""

    currency: Literal["USD", "GBP", "EUR"] = "USD"
    note: str = Field("", description="Said after every estimate (e.g. that a quote from sales is final).")
    items: list[PriceItem] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> PricesFile:
        ids = [item.id for item in self.items]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"item ids {', '.join(twice)} are used more than once")
        return self
