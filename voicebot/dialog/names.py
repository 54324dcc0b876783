"""The name a caller gives when asked for one ("It's Maria Lopez.", "Tom.", "Put it under Carter, please.").

Why: a caller the CRM does not know (a new patient, a first-time customer) was booked as "Caller", and the team
met a stranger at the door. The bot asks once for a name before it reads the booking back; the name is written
exactly as the caller said it (never one the model made up, rule 8). Speech-to-text capitalises names, so a bare
answer counts only when its words are capitalised; after "my name is" or "call me" any words count. Anything that
is no name ("Why do you need that?", "I'm not sure", "Just book it") gives None, and the booking goes on without.
"""

from __future__ import annotations

import re

_INTRO = re.compile(r"^(?:(?:yes|yeah|sure|okay|ok|um|uh|er|well|so|oh|right|of course)[,.!]?\s+)*"
                    r"(?:(?P<explicit>my name is|my name's|the name is|name's|call me|(?:put|book) (?:it|me|that) "
                    r"(?:in )?under|under the name(?: of)?|under)|it's|it is|this is|i'm|i am)?\s*(?P<name>.+)$",
                    re.IGNORECASE)
_TAIL = re.compile(r"[\s,.!?]+(?:please|thanks|thank you|thank you very much)?[\s,.!?]*$", re.IGNORECASE)
_WORD = re.compile(r"^[^\W\d_][^\W\d_'’.-]*(?:['’-][^\W\d_]+)*\.?$")
_NOT_NAMES = frozenset("""yes yeah yep no nope not sure okay ok fine why what who how when where which do don't dont
    does i i'm me my you your we our it it's its is are was the a an and or but just book booking appointment please
    thanks thank sorry later maybe need want know that this there here name names first last anything nothing hello hi
    bye goodbye wait hold on running late mister mrs mr ms miss dr doctor""".split())
MAX_WORDS = 5
_LINKS = frozenset({"from", "at", "of"})  # "It's Mark from Globex.": the name and where they are from, as said


def spoken_name(text: str) -> str | None:
    """The name in a caller's answer to "May I have your name?", as they said it, or None."""
    match = _INTRO.match(text.strip())
    if match is None:
        return None
    rest = _TAIL.sub("", match.group("name")).strip(" ,.")
    words = rest.split()
    if not 1 <= len(words) <= MAX_WORDS or not all(_WORD.match(w) for w in words):
        return None
    if any(w.lower().strip(".") in _NOT_NAMES for w in words):
        return None
    if words[0].lower() in _LINKS or words[-1].lower() in _LINKS:
        return None
    if not match.group("explicit") and not all(w[0].isupper() or w.lower() in _LINKS for w in words):
        return None  # "it's fine", "i'm outside": no capitals, no "my name is"
    return " ".join(w if any(c.isupper() for c in w) or w.lower() in _LINKS else w.capitalize() for w in words)


_INTRODUCES = re.compile(r"(?:^|[,.!?]\s*|\b(?i:and|hi|hello|hey|yes|yeah)\s+)"
                         r"(?i:my name is|my name's|the name is|this is|i'm|i am)\s+"
                         r"(?P<name>[A-Z][^\W\d_]*(?:['’-][^\W\d_]+)*"
                         r"(?:\s+[A-Z][^\W\d_]*(?:['’-][^\W\d_]+)*){0,2})")
_NOT_A_NAME = _NOT_NAMES | frozenset("""monday tuesday wednesday thursday friday saturday sunday today tomorrow tonight
    january february march april may june july august september october november december christmas easter one two three
    four five six seven eight nine ten eleven twelve half quarter past noon midday morning afternoon evening""".split())
_IT_IS = re.compile(r"^\W*(?:(?:yes|yeah|hi|hello|oh|so)\W+)*(?:it's|it is|i'm|i am)\b", re.IGNORECASE)


def introduced_name(caller_turns: list[str]) -> str | None:
    """The name a caller gave unasked ("Hi, this is Lucy Hall, can I book a haircut?", "My name is Tom." said
    while times were read out), the latest, as they said it; None when none was given. Only capitalised words
    after an introduction count, and never a weekday, a month or a word of ``_NOT_NAMES``: "It's Friday I
    wanted", "I'm Not sure" give None. Why: a caller the CRM does not know, who said who they were, was asked
    "May I have your name?" again, and "It's Jack Turner." said over the offered times went to the model, which
    handed the caller to a person."""
    for text in reversed(caller_turns):
        for match in reversed(list(_INTRODUCES.finditer(text))):
            words = match.group("name").split()
            while words and words[-1].lower() in _NOT_A_NAME:
                words.pop()  # "This is Lucy Hall Thursday" keeps Lucy Hall
            if words and not any(w.lower() in _NOT_A_NAME for w in words):
                return " ".join(words)
        # the whole turn a name: "It's Anna.", or two capitalised words ("Lucy Hall."); one bare word may be
        # "Perfect." or "Lovely."
        for sentence in reversed(re.split(r"(?<=[.!?])\s+", text.strip())):
            bare = spoken_name(sentence)
            if bare and (len(bare.split()) >= 2 or _IT_IS.match(sentence)) and \
                    not any(w.lower().strip(".") in _NOT_A_NAME for w in bare.split()):
                return bare
            for clause in reversed(sentence.split(",")[1:]):  # "The 3 PM please, it's Jo Park.": its own clause
                clause = re.sub(r"^\s*and\s+", "", clause, flags=re.IGNORECASE)
                bare = spoken_name(clause) if _IT_IS.match(clause) else None
                if bare and not any(w.lower().strip(".") in _NOT_A_NAME for w in bare.split()):
                    return bare
    return None
