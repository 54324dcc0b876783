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

from collections.abc import Sequence
from datetime import date
from typing import Any

from voicebot.dialog.answers import service_named, tool_args
from voicebot.dialog.slots import parse_when
from voicebot.dialog.writes import (DETAIL_QUESTION, PendingWrite, answer_to_readback, asked_for, readback,
                                    says_what_is_wrong, with_detail)


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


def follow_up(asked: str, caller_words: Sequence[str], intent: str | None, services: Sequence[str],
              today: date) -> PendingWrite | tuple[str, dict[str, Any]] | None:
    """What the caller's last words (``caller_words[-1]``) answer to the question asked for ``asked``: a write to
    read back, a tool to run (which may ask again), or None when they answered something else. ``caller_words``
    start at the request the question completes; ``intent`` is the intent classifier's reading of the last."""
    said = caller_words[-1] if caller_words else ""
    if asked == "create_ticket":
        if says_what_is_wrong(said) and answer_to_readback(said) is None and intent in (None, "ticket"):
            args = with_detail(caller_words)
            return PendingWrite(asked, args, readback(asked, args))
    elif asked == "list_free_slots" and answer_to_readback(said) is not False:
        service = service_named(said, list(services))
        request = " ".join(caller_words[-3:])  # the day asked for earlier still counts: "a visit next Tuesday" ...
        if service is not None:  # ... "laptop setup"
            args = tool_args(asked, service, caller_name=None, services=list(services), offered_slots=[],
                             caller_text=request, today=today)
            return (asked, args) if args is not None else None
        if (len(caller_words) == 2 and parse_when(said, today) is not None and intent in (None, "booking", "callback")
                and not asked_for("request_callback", [said])):
            # "The morning please." (nearest "call me back tomorrow"): a day or a time but no service; asked once
            # more, the day and time kept
            return asked, {"service": None, **(tool_args(asked, "", caller_name=None, services=list(services),
                                                          offered_slots=[], caller_text=request, today=today) or {})}
    return None
