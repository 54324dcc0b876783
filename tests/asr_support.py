"""Assertions on text that Whisper wrote: tolerant of recognition errors, still able to fail.

Whisper on telephone audio gets words wrong now and then, and not the same way on every machine: the bot's
"Your order has shipped" came back as "Your order has shit.", "10452" as "10,452" or "10 452", "PIN" as "pin" or
"pen". A test that asserts an exact substring of a transcript therefore fails at random. Tests check Whisper's
text with these helpers instead, and check exact wording where it is exact: the bot's own text in the call store.

- ``normalize``: lower case, punctuation dropped, digit groups joined ("10,452" -> "10452"), hyphens split.
- ``similarity``: difflib's ratio of two normalised texts (0..1).
- ``heard_phrase``: a phrase is in a transcript, allowing small errors in words of five letters or more (short
  words and numbers must be exact: "in" is not "pin", "10453" is not "10452").
- ``assert_heard``: a transcript is close to the sentence that was spoken (whole-utterance similarity).
- ``assert_heard_any``: at least ``at_least`` of several phrases were heard.

Each still fails on a different sentence, on silence and on a wrong number.
"""

from __future__ import annotations

import difflib
import re

__all__ = ["normalize", "similarity", "heard_phrase", "assert_heard", "assert_heard_any", "SENTENCE_RATIO",
           "PHRASE_RATIO"]

SENTENCE_RATIO = 0.7
"""A transcript at least this similar to the spoken sentence counts as that sentence. Piper through a phone
codec and back through Whisper scores 0.85-1.0; one wrong word in a short sentence about 0.8; an unrelated
sentence of the same length about 0.3."""
PHRASE_RATIO = 0.8
"""A window of the transcript at least this similar to a phrase counts as the phrase ("shipped" / "shipt": 0.86,
"shipped" / "shit": 0.73 is not enough on its own)."""
_FUZZY_MIN_CHARS = 5  # shorter phrases, and anything with a digit, must match whole words exactly


def normalize(text: str) -> str:
    """Lower-case words and numbers separated by single spaces: "Order 10,452 - shipped!" -> "order 10452 shipped"."""
    text = re.sub(r"(?<=\d)[,.\s-](?=\d{3}\b)", "", text.lower())  # 10,452 / 10 452 / 10.452 -> 10452
    text = re.sub(r"(?<=\d)(st|nd|rd|th)\b", "", text)  # November 24th -> november 24
    return " ".join(re.findall(r"[a-z0-9']+", text.replace("-", " "))).replace("'", "")


def similarity(heard: str, expected: str) -> float:
    """difflib ratio of the normalised texts: 1.0 for the same words, about 0.3 for unrelated sentences."""
    return difflib.SequenceMatcher(None, normalize(heard), normalize(expected)).ratio()


def heard_phrase(heard: str, phrase: str, min_ratio: float = PHRASE_RATIO) -> bool:
    """Whether ``phrase`` (one or more words) is in the transcript ``heard``, allowing small recognition errors.

    A phrase of at least five letters without digits may differ a little: some window of the transcript with
    about as many words must be at least ``min_ratio`` similar to it. Short words and numbers must appear as
    whole words, exactly.
    """
    said, want = normalize(heard), normalize(phrase)
    if not want:
        raise ValueError(f"nothing to look for in {phrase!r}")
    if f" {want} " in f" {said} ":
        return True
    if len(want.replace(" ", "")) < _FUZZY_MIN_CHARS or re.search(r"\d", want):
        return False
    words, n = said.split(), len(want.split())
    windows = {" ".join(words[i:i + size]) for size in {max(n - 1, 1), n, n + 1} for i in range(len(words))}
    return any(difflib.SequenceMatcher(None, w, want).ratio() >= min_ratio for w in windows)


def assert_heard(heard: str, expected: str, min_ratio: float = SENTENCE_RATIO) -> None:
    """The transcript is (nearly) the sentence that was spoken."""
    ratio = similarity(heard, expected)
    assert ratio >= min_ratio, f"heard {heard!r}, expected about {expected!r} (similarity {ratio:.2f} < {min_ratio})"


def assert_heard_any(heard: str, *phrases: str, at_least: int = 1, min_ratio: float = PHRASE_RATIO) -> list[str]:
    """At least ``at_least`` of ``phrases`` are in the transcript (see ``heard_phrase``); returns those found."""
    if not phrases or not 1 <= at_least <= len(phrases):
        raise ValueError("give phrases, and at_least between 1 and their number")
    found = [p for p in phrases if heard_phrase(heard, p, min_ratio)]
    assert len(found) >= at_least, (f"heard {heard!r}: expected at least {at_least} of {list(phrases)}, "
                                    f"found {found}")
    return found
