"""The one tokeniser for what callers say and what the bot says: lower-case words, punctuation dropped.

The menu (``dialog.flow``), the escalation guard (``dialog.guard``), the leak check on the model's sentences
(``dialog.agent``) and the backchannel rules all compare words, so they must cut text into words the same way:
"Don't!" and "dont" are one word, "mm-hmm" is "mm hmm", "Operator?" is "operator".
"""

from __future__ import annotations

import re

_NOT_WORD = re.compile(r"[\W_]+")


def normalize(text: str) -> str:
    """Lower-case words separated by single spaces; punctuation dropped and apostrophes removed ("don't" -> "dont")."""
    return " ".join(_NOT_WORD.sub(" ", text.casefold().replace("'", "").replace("\u2019", "")).split())


def words(text: str) -> list[str]:
    """The words of ``text``, as ``normalize`` spells them."""
    return normalize(text).split()


def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """Find ``phrase`` as whole words in ``normalize``d text; its last word with or without a plural ``s``.

    Whole words, so "human" does not match "humane" and "agent" does not match "agency".
    """
    *head, last = words(phrase)
    if len(last) >= 4 and last.endswith("s") and not last.endswith("ss"):
        last = last[:-1]  # "orders" also hears "order"
    body = " ".join(re.escape(word) for word in [*head, last])
    return re.compile(rf"(?<!\S){body}s?(?!\S)")


def sounds_like(said: str, phrase: str) -> bool:
    """Whether ``said`` and ``phrase`` (a few words each) sound the same, word by word, by their Metaphone keys:
    "cells" and "sails" are "sales" (SLS), "orders" is not "borders". For a menu's one-word options, which Whisper
    mishears out of context on a phone line; never for free text."""
    import jellyfish

    a, b = words(said), words(phrase)
    return bool(a) and len(a) == len(b) and all(
        x == y or (len(x) > 2 and jellyfish.metaphone(x) == jellyfish.metaphone(y)) for x, y in zip(a, b))


_KEY_NAMES = {"zero": "0", "oh": "0", "one": "1", "two": "2", "too": "2", "three": "3", "four": "4", "for": "4",
              "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "star": "*", "pound": "#",
              "hash": "#"}
_KEY_LEAD = frozenset("press option number key button choice dial".split())
_KEY_FILLER = frozenset("please um uh er erm ok okay so well".split())


def spoken_key(text: str) -> str | None:
    """The phone key a whole turn names: "Two.", "2", "press two", "option 2, please" -> "2"; "star" -> "*"; None
    for anything else ("two chairs", "one zero four"). Callers who hear "press 1, 2 or 3" often say the number."""
    said = [w for w in words(text) if w not in _KEY_FILLER]
    while len(said) > 1 and said[0] in _KEY_LEAD:
        said = said[1:]
    if len(said) != 1:
        return None
    word = said[0]
    return word if len(word) == 1 and word.isdigit() else _KEY_NAMES.get(word)
