"""Times other than those offered, asked for while they are offered: later ones ("Anything later?"), another
service's ("Vaccination." to the consultation's times), or none of them ("Neither of those work for me.").

Why a module: each went to the model, and each is answered from the CRM's free times in code; the room that answers
recognised requests (``recognised``) had no space left for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

from voicebot.crm.verification import CallerContext
from voicebot.dialog.agent_events import AgentEvent
from voicebot.dialog.answers import OTHER_TIMES
from voicebot.dialog.services import service_named
from voicebot.knowledge.price_asked import asks_price
from voicebot.text import normalize


class Offering(Protocol):
    """What these answers use of ``DialogueAgent`` (typed here: ``recognised``, which imports this module, has the
    whole of it)."""

    context: CallerContext
    offered_slots: list[dict[str, Any]]

    def _services(self) -> list[str]: ...

    def _price_names(self) -> list[tuple[str, ...]]: ...

    def _reply(self, sentences: list[str]) -> Iterator[AgentEvent]: ...

    def _tool(self, name: str, args: dict[str, Any], seen: set[str] | None = None) -> Iterator[AgentEvent]: ...


_INSTEAD = re.compile(r"\b(?:instead|make it|change it to|switch (?:it )?to|rather have)\b")
"""The same visit with another service ("Actually, can you make it a deep clean instead?" to a standard clean read
back heard "I don't have that information")."""


def another_service(agent: Offering, caller_text: str) -> str | None:
    """Another CRM service named in a few words while times for one are offered ("Vaccination." to the
    consultation's times, after "When is your next free appointment?" named it by the price list's alias), or asked
    for instead (``_INSTEAD``): it went to the model. Its own free times, the day said with it kept (``same_day``).
    Not a price question, not a pick of a time offered."""
    plain = normalize(caller_text)
    if not agent.offered_slots or asks_price(plain) or len(caller_text.split()) > (12 if _INSTEAD.search(plain) else 6):
        return None
    service = service_named(caller_text, agent._services(), agent._price_names())
    return service if service is not None and service != agent.offered_slots[0].get("service") else None


def same_day(agent: Offering, caller_text: str) -> dict[str, str]:
    """The day of the times offered, for another service asked for instead of theirs (no day said: that day's)."""
    if not agent.offered_slots or not _INSTEAD.search(normalize(caller_text)):
        return {}
    day = str(agent.offered_slots[0]["starts_at"])[:10]
    return {"date_from": day, "date_to": day}


LATEST = "I don't have a later free time. Would one of those suit you?"


def later_times(agent: Offering, caller_text: str) -> Iterator[AgentEvent]:
    """"Is there anything later?" while times are offered: it went to the model. The free times after the last one
    offered, that day's first (from the hour of the first of them), else the days after; ``LATEST`` when there are
    none, the offer still open. False: no such question (``answers.OTHER_TIMES`` saying "later"), or nothing
    offered."""
    asked = OTHER_TIMES.search(normalize(caller_text))
    if not agent.offered_slots or asked is None or "later" not in asked.group():
        return False
    service = str(agent.offered_slots[0].get("service") or "")
    last = max(datetime.fromisoformat(str(s["starts_at"])) for s in agent.offered_slots)
    after = [s for s in agent.context.repo.list_free_slots(service=service or None, start=last.date(), limit=50)
             if s.starts_at > last]
    if not after:
        yield from agent._reply([LATEST])
        return True
    day = after[0].starts_at.date()
    args = {"service": service, "date_from": day.isoformat(), "date_to": day.isoformat()}
    if day == last.date():
        args["from_hour"] = after[0].starts_at.hour
    return (yield from agent._tool("list_free_slots", args))


OTHER_DAY = "What day or time would suit you better?"
_NEITHER = re.compile(r"\b(?:neither|none) (?:of )?(?:those|them|these|the two|that|one)\b|"
                      r"\b(?:those|these|they|that|neither|none of them) (?:dont|do not|doesnt|does not|wont|will not|"
                      r"cant|can not|cannot) (?:really )?(?:work|suit|do)\b|\bno good\b|"
                      r"\b(?:i|we) (?:cant|cannot|can not) (?:do|make) (?:either|any of) (?:of )?"
                      r"(?:those|them|these)?\b")
"""None of the times offered will do ("Neither of those work for me.", "Those don't suit me", "I can't do either"):
it went to the model."""


def neither_time(agent: Offering, caller_text: str) -> Iterator[AgentEvent]:
    """"Neither of those work for me." while times are offered: ``OTHER_DAY``, the offer's service kept, so the day or
    time said next is looked up for it. False: no such words, or nothing offered."""
    if not agent.offered_slots or not _NEITHER.search(normalize(caller_text)) or len(caller_text.split()) > 10:
        return False
    yield from agent._reply([OTHER_DAY])
    return True


DROPPED = "All right. Is there anything else I can help with?"
_DROPPED = re.compile(r"^(?:(?:oh|ok|okay|ah|um|hmm|actually|no|well|sorry)\W+)*(?:never ?mind|forget (?:it|that|"
                      r"about it)|dont worry(?: about it)?|leave it|thats (?:ok|okay|fine|alright|all right)|no thanks|"
                      r"no thank you)\b|\b(?:ill|i will|let me|ill have to|i need to) (?:check|look at) (?:my|the) "
                      r"(?:calendar|diary|schedule)\b|\b(?:ill|i will|ill have to) call (?:you )?back\b")
"""The offer dropped ("Never mind.", "No, that's OK.", "Let me check my calendar and call you back."): it went to
the model, and "Actually, forget it, I'll call back later." booked the later time."""


def offer_dropped(agent: Offering, caller_text: str) -> Iterator[AgentEvent]:
    """``DROPPED`` for an offer of times the caller lets go, which is then no longer open (a later "yes" books
    nothing). False: no such words, or nothing offered."""
    if not agent.offered_slots or not _DROPPED.search(normalize(caller_text)) or len(caller_text.split()) > 14:
        return False
    agent.offered_slots = []
    yield from agent._reply([DROPPED])
    return True
