"""Which of the company's services the caller's words name: by its name, by the price list's words for it, or by
its place in a list the bot read out.

Why code: the service picks the times offered and the booking written, so it must come from the caller's words and
the admin's own lists (the CRM's services, ``prices.yaml``), never from the model's guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from voicebot.knowledge.actions import ACTIONS, actions, object_words, other_action, said_words

_NOT_A_NAME = frozenset({"and", "the", "for", "with", "new", "our", "your", "visit", "visits", "appointment",
                         "appointments", "service", "services", "servicing", "session", "booking", "consultation",
                         "home", "call"})
"""Words of a service's name that name no service on their own: "I'd like to book a visit" named "emergency visit"
(a dental clinic's services: checkup, emergency visit, teeth whitening), any visit at all."""
_ORDINALS = (("first|1st", "one"), ("second|2nd", "two"), ("third|3rd", "three"), ("fourth|4th", "four"))


def _stem(word: str) -> str:
    """A service's word as a pattern for the start of a caller's word, its ending left off where the rest is a word
    of its own: "vaccination" is said "vaccinated" or "vaccine", "installation" "installed", "cleaning" "cleaned"
    ("What's the earliest I can get my cat vaccinated?" named no service). Generic words stay out
    (``_NOT_A_NAME``: "servicing" is no stem of "services"); "inspection" is said "inspected" ("I need my car
    inspected this week." asked which service, a state inspection among them)."""
    stem = re.sub(r"(?:ation|ion|ing|ment)$", "", word)
    return re.escape(stem if len(stem) >= 6 else word)  # not "treat" (treats) nor "train" (a train)


def _name_words(service: str) -> set[str]:
    """The words of a service's name that name it: not the generic ones (``_NOT_A_NAME``), unless the name is
    nothing else: a vet's "consultation" could not be named at all ("A checkup." after "Which service do you need:
    consultation or vaccination?" went to the model, though the price list's Consultation has the alias)."""
    said = {w for w in re.findall(r"\w+", service.lower()) if len(w) >= 3}
    return (said - _NOT_A_NAME) or said


def service_named(text: str, services: list[str], aliases: Sequence[Sequence[str]] = ()) -> str | None:
    """The CRM service the words name, or None: its whole name, else a whole name or alias of its price item
    (``aliases``: ``KnowledgeBase.price_names``), else a word of its name, else a thing it serves ("my laptop").
    Why that order: a salon's "Can I book a trim?" named "beard trim" by one of its words, while the price list
    says a trim is a haircut. A word counts at the start of one of the caller's words ("brakes" names "brake
    inspection"), never inside one ("the latest" is no "MOT test"); a word two services share ("repair") names
    neither."""
    lowered = text.lower()
    named = {s: _name_words(s) for s in services}
    whole = [(min(found), n, service) for n, service in enumerate(services) if named[service]
             and len(found := [m.start() for w in named[service] if (m := re.search(rf"\b{_stem(w)}", lowered))])
             == len(named[service])]
    if whole:  # "a beard trim and a haircut": the beard trim, said first
        return min(whole)[2]
    if aliases and (by_price := service_by_price_name([text], services, aliases)) is not None:
        return by_price
    shared = {w for s in services for w in named[s] if sum(w in other for other in named.values()) > 1}
    said = [(found.start(), n, service) for n, service in enumerate(services) for word in named[service] - shared
            if (found := re.search(rf"\b{_stem(word)}", lowered)) and not other_job(text, service)]
    if said:  # the one said first: "a haircut and a beard trim" is the haircut (the caller's order, not the CRM's)
        return min(said)[2]
    if len(asked := actions(text)) == 1 and len(doers := [s for s in services if actions(s) == asked and all(
            ACTIONS[next(iter(asked))].search(w) for w in re.findall(r"\w+", s))]) == 1:
        return doers[0]  # a service that is its action alone: "Do you install routers?" is the installation
    keywords = {"print": "printer", "laptop": "laptop", "computer": "laptop", "desk": "furniture",
                "chair": "furniture", "cabinet": "furniture", "furniture": "furniture"}
    for key, word in keywords.items():
        if key in lowered:
            return next((s for s in services if word in s.lower() and not other_job(text, s)), None)
    return None


def service_for(caller_text: str, model_text: str, services: list[str],
                aliases: Sequence[Sequence[str]] = ()) -> str | None:
    """The service the caller's words name, else the one the model's line names unless the caller asks for another
    job: the model took "Can you repair my laptop?" for printer repair, and offered its times."""
    picked = service_named(model_text, services, aliases)
    return service_named(caller_text, services, aliases) or (
        picked if picked is not None and not other_job(caller_text, picked) else None)


def other_job(text: str, service: str) -> bool:
    """The words ask for another action than the service's ("repair my laptop" to "laptop setup"), or for its
    action on another thing ("repair my laptop" to "printer repair"): a word of its name said is no pick of it then.
    Before, "Can you repair my laptop?" was offered printer repair times."""
    if other_action(text, service):
        return True
    wanted = object_words(text)
    return bool(wanted) and bool(actions(service)) and not wanted & said_words(service)


def service_by_price_name(texts: Sequence[str], services: list[str],
                          price_names: Sequence[Sequence[str]]) -> str | None:
    """The service whose price item the words name by one of its aliases: "new tires" is "Tyre fitting" (aliases
    tyres, tires) and so the service "tyre fitting"; "a cleaning" is "Checkup and cleaning", so "checkup"; plurals
    too ("their boosters"). The admin's price list is where the company's own words for a service are."""
    for names in price_names:
        service = service_named(names[0], services)
        if service is not None and any(re.search(rf"\b{re.escape(alias.lower())}(?:s|es)?\b", text.lower())
                                       for text in texts for alias in names if len(alias) >= 3 or (
                                           len(alias) == 2 and alias.isupper())):  # "PT", "AC": the admin's acronyms
            return service
    return None


def service_by_position(text: str, services: list[str]) -> str | None:
    """The service a short answer picks by its place in the list the bot read out ("the first one", "the last
    one", "number two"), or None. Why: "Which service do you need: checkup, emergency visit or teeth whitening?"
    "The first one." went to the model, which lost the day the caller had asked for."""
    lowered = text.lower()
    if len(services) < 2 or len(lowered.split()) > 5 or re.search(r"\bfirst (available|free|possible|time)", lowered):
        return None
    if re.search(r"\b(last|latter)\b", lowered):
        return services[-1]
    for index, (ordinal, number) in enumerate(_ORDINALS[:len(services)]):
        if re.search(rf"\b({ordinal})\b|\b(number|option) {number}\b", lowered):
            return services[index]
    return None


_PARTS = re.compile(r"\b(?:and|plus|with|then|also)\b|[,&+/]", re.IGNORECASE)
# (not ``knowledge.prices``'s split, which also splits at "or": "a haircut or a beard trim" asks for one of them)


def services_named(text: str, services: list[str], aliases: Sequence[Sequence[str]] = ()) -> list[str]:
    """Every service the words name, in the order said: each part between "and", "plus", "with" or commas names
    at most one (``service_named``). "Can I book a haircut and a beard trim for Saturday?" -> both."""
    found: list[str] = []
    for part in _PARTS.split(text):
        if (service := service_named(part, services, aliases)) is not None and service not in found:
            found.append(service)
    return found


def also_asked_for(request: Sequence[str], booked: Sequence[str], services: list[str],
                   aliases: Sequence[Sequence[str]] = ()) -> str | None:
    """A service the caller asked to book in the same breath as one just booked, not booked yet this call, or
    None. Why: "A haircut and a beard trim on Saturday" was booked as the haircut, and the beard trim was never
    mentioned again; a receptionist books the first and then asks about the second. ``request``: the caller's
    last turns, the newest last; the newest that names two services or more counts."""
    for said in reversed(request):
        if len(named := services_named(said, services, aliases)) > 1:
            return next((s for s in named if s not in booked), None)
    return None
