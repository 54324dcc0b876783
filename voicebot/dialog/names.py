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
MAX_WORDS = 4


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
    if not match.group("explicit") and not all(w[0].isupper() for w in words):
        return None  # "it's fine", "i'm outside": no capitals, no "my name is"
    return " ".join(w if any(c.isupper() for c in w) else w.capitalize() for w in words)
