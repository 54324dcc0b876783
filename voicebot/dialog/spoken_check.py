"""The last check before a model's sentence is spoken: grounded, and no recital of the instructions.

Why here and not in the model's prompt: a 1.5B model invents order numbers and dates and can be talked into reading
its instructions out. Code checks every sentence as it streams out: each number, date and amount must come from a
tool result, the caller's context or the caller's own words (``crm.grounding``), and the sentence must not share
a long run of words with the instructions, alone or joined to the clause before it (a recital split over the first
clause and the rest). A sentence that fails is replaced by a safe one, and the guard event says why.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from voicebot.crm.grounding import find_ungrounded
from voicebot.dialog.agent_events import AgentEvent, Guarded, Sentence
from voicebot.dialog.prompting import NO_SECRETS_REPLY, SAFE_REPLY, leaks


def check(sentence: str, instructions: str, facts: Sequence[Any], caller_words: Sequence[str],
          region: str) -> Guarded | None:
    """Why ``sentence`` must not be spoken, or None."""
    if leaks(sentence, instructions):
        return Guarded("instructions_leak", sentence)
    ungrounded = find_ungrounded(sentence, list(facts), list(caller_words), region=region)
    if ungrounded:
        return Guarded("ungrounded", sentence, tuple(u.text for u in ungrounded))
    return None


def spoken_or_safe(sentence: str, spoken: list[str], instructions: str, facts: Sequence[Any],
                   caller_words: Sequence[str], region: str) -> Iterator[AgentEvent]:
    """Yield the sentence, or the guard event and a safe sentence instead; appends what was said to ``spoken``."""
    guard = check(sentence, instructions, facts, caller_words, region)
    if guard is None and spoken and leaks(f"{spoken[-1]} {sentence}", instructions):
        guard = Guarded("instructions_leak", sentence)
    if guard:
        yield guard
        sentence = SAFE_REPLY if guard.kind == "ungrounded" else NO_SECRETS_REPLY
    spoken.append(sentence)
    yield Sentence(sentence)
