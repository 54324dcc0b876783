"""The last check before a model's sentence is spoken: grounded, and no recital of the instructions.

Why here and not in the model's prompt: a 1.5B model invents order numbers and dates and can be talked into reading
its instructions out. Code checks every sentence as it streams out: each number, date and amount must come from a
tool result, the caller's context or the caller's own words (``crm.grounding``), and the sentence must not share
a long run of words with the instructions, alone or joined to the clause before it (a recital split over the first
clause and the rest), and it must not say that something was or will be done (``promises_action``): the model acts
only through actions, and every write runs in code after the caller's yes and is spoken from a template. "Which
service do you need?" "Yes." had the model say "I'll send a technician tomorrow to install fiber in your area."
with nothing booked. A sentence that fails is replaced by a safe one, and the guard event says why.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from voicebot.crm.grounding import find_ungrounded
from voicebot.dialog.agent_events import AgentEvent, Guarded, Sentence
from voicebot.dialog.prompting import NO_SECRETS_REPLY, NOT_DONE_REPLY, SAFE_REPLY, leaks

_PROMISE = re.compile(
    r"\b(i'?ll|i will|i'?m going to|i am going to|we'?ll|we will|we'?re going to|i'?ve|i have|we'?ve|we have|"
    r"(a |one of our )?(colleague|technician|engineer|team|someone|somebody)( from our \w+ team)? will)( now| just|"
    r" also| already| gone ahead and)? (send|sent|book|booked|schedule|scheduled|arrange|arranged|open|opened|create|"
    r"created|log|logged|file|filed|raise|raised|pass|passed|forward|forwarded|cancel|cancell?ed|canceled|move|moved|"
    r"reschedule|rescheduled|call you|called you|ring you|contact you|get back to you|request|requested|put you down|"
    r"sign(ed)? you up|order|ordered|refund|refunded|process|processed|note|noted|escalate|escalated|email|emailed|"
    r"text you|texted|reserve|reserved|update|updated|change|changed|register|registered|add|added)\b",
    re.IGNORECASE)
GUARD_REPLIES = (SAFE_REPLY, NO_SECRETS_REPLY, NOT_DONE_REPLY)
"""What a guarded sentence is replaced by: the model's turn stops after one."""


def promises_action(sentence: str) -> bool:
    """Whether a model's sentence says something was or will be done ("I'll send a technician", "I've booked
    you in", "a colleague will call you back"): only code does, and says so from its own templates."""
    return bool(_PROMISE.search(sentence.replace("’", "'")))


def check(sentence: str, instructions: str, facts: Sequence[Any], caller_words: Sequence[str],
          region: str) -> Guarded | None:
    """Why ``sentence`` must not be spoken, or None."""
    if leaks(sentence, instructions):
        return Guarded("instructions_leak", sentence)
    ungrounded = find_ungrounded(sentence, list(facts), list(caller_words), region=region)
    if ungrounded:
        return Guarded("ungrounded", sentence, tuple(u.text for u in ungrounded))
    if promises_action(sentence):
        return Guarded("unbacked_action", sentence)
    return None


def spoken_or_safe(sentence: str, spoken: list[str], instructions: str, facts: Sequence[Any],
                   caller_words: Sequence[str], region: str) -> Iterator[AgentEvent]:
    """Yield the sentence, or the guard event and a safe sentence instead; appends what was said to ``spoken``."""
    guard = check(sentence, instructions, facts, caller_words, region)
    if guard is None and spoken and leaks(f"{spoken[-1]} {sentence}", instructions):
        guard = Guarded("instructions_leak", sentence)
    if guard:
        yield guard
        sentence = {"ungrounded": SAFE_REPLY, "unbacked_action": NOT_DONE_REPLY}.get(guard.kind, NO_SECRETS_REPLY)
    spoken.append(sentence)
    yield Sentence(sentence)
