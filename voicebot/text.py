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
