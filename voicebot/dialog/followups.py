"""The questions the bot asks to complete a request, and what the caller's answer to one leads to.

Why: a request can arrive without what it needs. "I have a small problem" would make a ticket that tells the team
nothing, and "I need a repair visit" without a service listed the first free times of whichever service came
first ("furniture fitting on Tuesday at 9 AM or Tuesday at 9 AM", two fitters at the same hour). A good agent asks
one short question and then acts on the answer, without sending it round the model: the answer is the caller's
own words (the ticket's subject) or a name the CRM gave (the service). The agent keeps which question is open
(``DialogueAgent.detail_for``) for one turn; an answer that is no answer (a "no", another request) is left to the
rest of the turn as if nothing had been asked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Protocol

from voicebot.dialog.answers import tool_args
from voicebot.dialog.placing import IF_WE_DO, SENDS_A_COPY, number_said
from voicebot.dialog.services import also_asked_for, service_by_position, service_named
from voicebot.dialog.slots import parse_when
from voicebot.knowledge.base import PRICE_WORDS
from voicebot.review.redact import mask_secrets
from voicebot.text import normalize
from voicebot.dialog.writes import (DETAIL_QUESTION, PendingWrite, answer_to_readback, asked_for, corrects,
                                    grounded_args, readback, says_what_is_wrong, with_detail)


def question_for(tool: str, args: dict[str, Any], services: Sequence[str], asked_before: bool) -> str | None:
    """The question to ask before ``tool`` runs with ``args``, or None when it can run: a ticket that names no
    problem (asked once a call, so a caller who cannot say more still gets their ticket), or free times with no
    service named while the CRM offers several."""
    if tool == "create_ticket" and not says_what_is_wrong(str(args.get("subject", ""))) and not asked_before:
        return DETAIL_QUESTION
    if tool == "list_free_slots" and not args.get("service") and len(services) > 1:
        names = list(services)
        return f"Which service do you need: {', '.join(names[:-1])} or {names[-1]}?"
    return None


OFFER = "offer:"
"""``DialogueAgent.detail_for`` of a knowledge answer that offers an action: ``OFFER`` + the tool."""
_OFFERS = (
    ("create_ticket", re.compile(r"\b(open|raise|create|log|file)s? (a |an )?(support |new )?(ticket|case|complaint|"
                                 r"fault report)\b", re.IGNORECASE)),
    ("list_free_slots", re.compile(r"\b(send|book|arrange|schedule)s? (you )?(a |an )?(technician|engineer|visit|"
                                   r"appointment|repair visit|fitter)\b", re.IGNORECASE)),
    ("request_callback", re.compile(r"\b(call|ring|phone) you back\b|\barrange a call ?back\b", re.IGNORECASE)),
)


def offered(answer: str) -> str | None:
    """``OFFER`` + the tool a knowledge answer offers ("... we can open a ticket and send a technician if needed"),
    the first it names, or None. Why: a caller's "Yes, please." to such an answer went to the model, which handed
    them to a person; it is a yes to that offer, read back from the caller's own words like any write."""
    found = [(match.start(), tool) for tool, pattern in _OFFERS if (match := pattern.search(answer))]
    return OFFER + min(found)[1] if found else None



A_COPY = "a copy:"
"""``DialogueAgent.detail_for`` after a copy of an invoice or receipt was asked for without the order's number and
the knowledge base said how ("just ask us with the order number"): "It's order 10452." next read the order's
status; now it is a ticket for the copy, read back from the caller's words with that number."""
OFFER_TICKET = "If you'd like, I can open a ticket so our team can take care of it. Shall I do that?"
OFFER_VISIT = "Would you like me to book a visit?"
_STOCKED = re.compile(r"\b(?:have|has|got|sell|sells|stock|stocks|carry|carries)\b")
"""Whether the company has a thing ("Do you have the ergonomic chair in stock?" was offered a visit, since chairs
are what furniture fitting serves): a question about goods, not about a service it does."""
_ACTION_ASKED = re.compile(r"\b(?:want|wanna|would like|i'd like|need|can you|could you|please|trying to|calling to|"
                           r"like to)\b.*\b(?:cancel|change|amend|modify|return|refund|exchange|replace)\b|"
                           r"^\W*(?:please )?(?:cancel|change|amend|return|refund|exchange|replace)\b", re.IGNORECASE)


def with_offer(answer: str, request: str, services: Sequence[str] = ()) -> tuple[list[str], str | None]:
    """A knowledge answer as spoken, and what a yes to it asks for (``offered``). Why: "I want to cancel my order."
    had the cancellation policy ("You can change or cancel an order free of charge until it is packed ...") and
    nothing more, so a caller who asked for something to be done was left to ask again. An answer that offers
    nothing and asks nothing, to words that ask for a change, a cancellation, a return or a refund, ends with the
    offer of a ticket (``OFFER_TICKET``), read back from the caller's own words like any write; one to whether the
    company does one of its bookable ``services`` ("Do you fix printers?") with the offer of a visit
    (``OFFER_VISIT``), whose yes offers that service's free times."""
    made = offered(answer)
    if made is None and SENDS_A_COPY.search(normalize(request)) and not number_said(request):
        return [answer], A_COPY  # "Can you resend my invoice?": the order's number said next makes it a ticket
    if made is None and not answer.rstrip().endswith("?") and _ACTION_ASKED.search(request):
        return [answer, OFFER_TICKET], offered(OFFER_TICKET)
    if made is None and not answer.rstrip().endswith("?") and IF_WE_DO.search(normalize(request)) and \
            not _STOCKED.search(normalize(request)) and service_named(request, list(services)):
        return [answer, OFFER_VISIT], offered(OFFER_VISIT)
    return [answer], made


ANOTHER = "another service:"
"""``DialogueAgent.detail_for`` after a booking when the caller asked for another service in the same request:
``ANOTHER`` + the service + "@" + the booked start (ISO); a yes offers that service's times after it."""


class Booker(Protocol):
    """What of the dialogue agent ``also_booking`` needs (a Protocol: the agent imports this module)."""

    facts: list[Any]
    caller_words: list[str]
    detail_for: str | None
    detail_since: int

    def _services(self) -> list[str]: ...
    def _price_names(self) -> list[tuple[str, ...]]: ...


def also_booking(agent: Booker, tool: str, spoken: list[str]) -> list[str]:
    """A booking's confirmation (``spoken``), asking after the other service when the request named two ("A
    haircut and a beard trim on Saturday": the haircut is booked, then "You also asked for beard trim. Shall I
    find a time for that too?"), and leaving that question open (``ANOTHER``). Anything else: ``spoken``."""
    slots = [f["result"]["slot"] for f in agent.facts if isinstance(f, dict) and f.get("ok")
             and isinstance(f.get("result"), dict) and isinstance(f["result"].get("slot"), dict)]
    if tool != "book_appointment" or not slots:
        return spoken
    asked = [said for said in agent.caller_words[-6:] if not PRICE_WORDS.search(said)]  # "How much is a ... and a"
    other = also_asked_for(asked, [str(s.get("service")) for s in slots], agent._services(), agent._price_names())
    if other is None:
        return spoken
    agent.detail_for = f"{ANOTHER}{other}@{slots[-1]['starts_at']}"
    agent.detail_since = len(agent.caller_words)  # the answer starts anew: "Ten please." asked no time of it
    return [*spoken[:-1], f"You also asked for {other}. Shall I find a time for that too?"]


def _another(asked: str, said: str) -> tuple[str, dict[str, Any]] | list[str] | None:
    """The answer to ``also_booking``'s question. A yes: that service's free times on the same day, after the one
    booked. A plain no ("No, just the haircut."): nothing more to book, said in code (the model was asked before).
    A no with a question of its own, or anything else: None, the rest of the turn answers it."""
    answer = answer_to_readback(said)
    if answer is False and "?" not in said and len(said.split()) <= 8:
        return ["All right. Is there anything else I can help with?"]
    if answer is not True:
        return None
    service, _, booked = asked[len(ANOTHER):].rpartition("@")
    start = datetime.fromisoformat(booked)
    args: dict[str, Any] = {"service": service, "date_from": start.date().isoformat(),
                            "date_to": start.date().isoformat()}
    return "list_free_slots", {**args, "from_hour": start.hour + 1} if start.hour < 23 else args


def follow_up(asked: str, caller_words: Sequence[str], intent: str | None, services: Sequence[str],
              today: date, order: str | None = None, aliases: Sequence[Sequence[str]] = ()
              ) -> PendingWrite | tuple[str, dict[str, Any]] | list[str] | None:
    """What the caller's last words (``caller_words[-1]``) answer to the question asked for ``asked``: a write to
    read back, a tool to run (which may ask again), sentences to say, or None when they answered something else.
    ``caller_words`` start at the request the question completes; ``intent`` is the intent classifier's reading of
    the last; ``order`` the one order the CRM's answer just before the question was about: a ticket offered then
    is about it ("Why is it delayed?" had a ticket without the order's number); ``aliases`` the price list's words
    for each service (``KnowledgeBase.price_names``): a vet's "A checkup." names its consultation."""
    said = caller_words[-1] if caller_words else ""
    if asked.startswith(ANOTHER):
        return _another(asked, said)
    if asked.startswith(OFFER):
        tool, problem = asked[len(OFFER):], list(caller_words[:-1])
        if answer_to_readback(said) is not True or not problem:
            return None
        if tool == "list_free_slots":
            return tool, tool_args(tool, "", caller_name=None, services=list(services), offered_slots=[],
                                   caller_text=" ".join(problem), today=today, aliases=aliases)
        args = grounded_args(tool, problem, today, caller_name=None)
        if args and tool == "create_ticket" and order:
            args["order_number"] = order
        return PendingWrite(tool, args, readback(tool, args)) if args else None
    if asked == A_COPY:
        number = number_said(said)
        args = grounded_args("create_ticket", caller_words, today, caller_name=None) if number else None
        if args is None:
            return None
        args["order_number"] = number
        return PendingWrite("create_ticket", args, readback("create_ticket", args))
    if asked == "create_ticket":
        if says_what_is_wrong(said) and answer_to_readback(said, asked) is None and (
                intent in (None, "ticket") or corrects(said, asked)):
            args = with_detail(caller_words)
            return PendingWrite(asked, args, readback(asked, args))
    elif asked == "list_free_slots" and answer_to_readback(said) is not False and not PRICE_WORDS.search(said):
        # a price question is no answer: "How much would a checkup and whitening cost together?" was taken for
        # "checkup" and offered times
        service = service_named(said, list(services), aliases) or service_by_position(said, list(services))
        request = " ".join(caller_words[-3:])  # the day asked for earlier still counts: "a visit next Tuesday" ...
        if service is not None:  # ... "laptop setup"
            args = tool_args(asked, service, caller_name=None, services=list(services), offered_slots=[],
                             caller_text=request, today=today, aliases=aliases)
            return (asked, args) if args is not None else None
        if (len(caller_words) == 2 and parse_when(said, today) is not None and intent in (None, "booking", "callback")
                and not asked_for("request_callback", [said])):
            # "The morning please." (nearest "call me back tomorrow"): a day or a time but no service; asked once
            # more, the day and time kept
            return asked, tool_args(asked, "", caller_name=None, services=list(services), offered_slots=[],
                                    caller_text=request, today=today)
    return None


_QUESTION = re.compile(r"^(?:(?:and|but|so|oh|um|uh|well) )*(?:what|whats|when|whens|where|wheres|who|whos|why|how|"
                       r"which|do|does|did|are|is|can|could|will|would|should|have|has)\b")


def more_for_the_lead(pending: PendingWrite, said: str) -> PendingWrite | None:
    """The lead read back, grown by what the caller said instead of yes or no, when that says more of what they want
    ("I want to upgrade my plan." read back, then "To the 900."; "About twenty of them."): it went to the model,
    which asked what they would like to buy, and the next "Yes." read the lead back without the 900. Not a question
    ("How long does it take?"), a request for another write, or a long turn (a new request): None."""
    if pending.tool != "create_lead" or not pending.read or "interest" not in pending.args:
        return None
    plain = normalize(said)
    if not plain or len(plain.split()) > 8 or said.rstrip().endswith("?") or _QUESTION.match(plain) or \
            answer_to_readback(said, pending.tool) is not None or any(asked_for(tool, [said]) for tool in (
                "request_callback", "create_ticket", "reschedule_appointment", "cancel_appointment")):
        return None
    detail = " ".join(mask_secrets(said).split()).strip()
    args = {**pending.args, "interest": f"{str(pending.args['interest']).rstrip('.!?, ')}. {detail}"}
    return PendingWrite(pending.tool, args, readback(pending.tool, args))
