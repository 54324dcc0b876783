"""Is the caller dictating digits or an address? A cheap guess from words, for the turn detector's longer wait.

Why: the turn model hears a finished-sounding group of digits ("three six nine") as the end of a turn, and a
caller reading an order number, a phone number or a street address pauses between groups as a matter of course.
Two moments give the words away before the turn is over: the bot has just asked for a number or an address
(``asks_for_dictation`` on the bot's last words), or the partial transcript of the caller's speech so far ends in
digits or an address (``sounds_like_dictation``). Either sets ``TurnDetector.set_dictation(True)`` for the turn.
Wrong guesses cost time, not words: a finished number waits ``turns.incomplete_silence_ms`` instead of ~250 ms.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from voicebot.crm.spoken import words_to_digits
from voicebot.speech.preamble import GREETING_WORDS, closed_answer, sounds_like_preamble

NUMBER_WORDS = frozenset({
    "zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
    "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "thousand", "double",
    "triple",
})
ADDRESS_WORDS = frozenset({
    "street", "st", "avenue", "ave", "road", "rd", "lane", "drive", "boulevard", "blvd", "court", "apartment",
    "apt", "suite", "unit", "zip", "postcode",
})
ASKED_FOR = re.compile(r"\b(number|digits?|pin|code|phone|zip|postcode|post code|address|account|reference)\b")
REQUEST = re.compile(r"\b(please|tell me|say|give me|read me|spell)\b")
TAIL_WORDS = 3  # how far from the end a number or address word still means "in the middle of it"


# before "one", a word that makes it a pronoun ("the first one", "that one"), not a digit
ONE_AS_PRONOUN = frozenset({"the", "that", "this", "first", "second", "third", "last", "next", "other", "another",
                            "which", "same", "earlier", "later", "new", "old", "no", "any", "every", "each"})


def _words(text: str) -> list[str]:
    # ordinals ("1st", "3rd") are one word: a date, not a digit followed by "st" (street)
    return re.findall(r"[a-z]+|\d+(?:st|nd|rd|th)?", text.lower())


def sounds_like_dictation(partial: str) -> bool:
    """The caller's words so far end in digits or an address: "my order is three six nine", "12 Elm Street".

    A number counts only as the last word: "ten standing desks" and "the first one, please" are quantities and
    choices, said whole. An address word counts anywhere in the last ``TAIL_WORDS`` ("22 Baker Street apartment")."""
    words = _words(partial)
    if not words:
        return False
    last = words[-1]
    number = last.isdigit() or (last in NUMBER_WORDS and not (
        last == "one" and len(words) > 1 and words[-2] in ONE_AS_PRONOUN))
    return number or any(w in ADDRESS_WORDS for w in words[-TAIL_WORDS:])


def trailing_digits(partial: str) -> str:
    """The digits of the number that ends ``partial`` ("order one zero four, five two." -> "10452"), or ""."""
    found = re.search(r"\d[\d ,.-]*$", words_to_digits(partial).rstrip(" .?!"))
    return re.sub(r"\D", "", found.group()) if found else ""


UNFINISHED_WORDS = frozenset({
    "and", "but", "or", "so", "because", "if", "when", "that", "which", "the", "a", "an", "my", "your", "our",
    "to", "of", "for", "in", "on", "at", "with", "from", "about", "is", "was", "um", "uh", "er", "erm",
})


STRANDED_WORDS = frozenset({"is", "was", "to", "of", "for", "in", "on", "at", "with", "from", "about"})
"""Unfinished words that do end sentences after a question word ("I'm not sure what it was", "that's what I was
looking for") or in a question ("What is it about?")."""
_QUESTION_WORDS = frozenset({"what", "where", "who", "which", "how", "when", "why", "whatever"})


UNFINISHED_ENDS = frozenset({("tell", "me"), ("show", "me"), ("give", "me"), ("send", "me"), ("can", "you"),
                             ("could", "you"), ("would", "you"), ("was", "wondering"), ("m", "calling"),
                             ("am", "calling"), ("m", "looking"), ("am", "looking")})
"""Two last words that open what comes next ("Could you tell me, ...", "I was wondering, ..."): the first half of a
slow caller's sentence, heard as finished by the turn model (0.66-0.97), was cut there. Not "I need", "I want" or
"I'd like": "That's all I need.", "if you'd like" end sentences."""


FAREWELLS = frozenset({"bye", "goodbye"})
"""The surest end of a turn there is: the turn model scored a slow "Thanks. Goodbye." 0.04."""


YES_NO = "yes_no"
"""``partial_kind``'s ``question``: the bot's last words asked yes or no ("Shall I book it?")."""
ANYTHING_ELSE = "anything_else"
"""``partial_kind``'s ``question``: the bot opened the floor again ("Is there anything else?", "What else can I
help you with?"): a no is a whole answer, a yes opens what follows."""


def _greeting_alone(partial: str, words: list[str]) -> bool:
    """"Hello," or "Hi there," and nothing yet, not asked ("Hello?" checks the line): mid-call, asked a detail,
    "Hello, ... this is Robert from the dental clinic" was cut at "Hello" (the turn model: 0.99)."""
    return bool(words) and words[0] in GREETING_WORDS and set(words) <= GREETING_WORDS | {"there"} and \
        not partial.rstrip().endswith("?")


def partial_kind(partial: str, question: str = "", whole: Collection[int] = ()) -> str:
    """What the caller's words so far say about the turn: ``dictation`` (digits or an address at the end, more may
    follow), ``unfinished`` (the last word cannot end a sentence: "and", "the", "my", a hesitation "um"; or the last
    two open what follows: "could you tell me", ``UNFINISHED_ENDS``; or a greeting alone, not asked: "Hello,"),
    ``preamble`` (it sets the scene and asks nothing yet: ``speech.preamble``; unfinished only on the open floor),
    ``final`` (it ends in "goodbye", or it is a whole answer to the bot's yes-or-no ``question``,
    ``preamble.closed_answer``: complete whatever the turn model says) or ``done`` (nothing against the turn model's
    verdict). A copula or preposition at the end is unfinished ("the problem is", "I called about") unless the
    sentence is a question or a question word comes just before it: "...but I am not sure what it was." waited the
    whole 1.6 s limit although the turn model said complete.
    A number at the end with as many digits as one of ``whole`` (the CRM's order numbers) is said whole: "I want to
    cancel order 1 0 4 5 2." waited the 2.5 s of dictation on a SIP call, 2.78 s voice to voice."""
    if sounds_like_dictation(partial):
        return "done" if whole and len(trailing_digits(partial)) in whole else "dictation"
    words = _words(partial)
    if words and words[-1] in FAREWELLS:
        return "final"
    if question in (YES_NO, ANYTHING_ELSE) and closed_answer(partial, only_no=question == ANYTHING_ELSE):
        return "final"
    if tuple(words[-2:]) in UNFINISHED_ENDS or _greeting_alone(partial, words):
        return "unfinished"
    if words and words[-1] in UNFINISHED_WORDS and not (words[-1] in STRANDED_WORDS and (
            partial.rstrip().endswith("?") or _QUESTION_WORDS & set(words[-5:-1]))):
        return "unfinished"
    return "preamble" if sounds_like_preamble(partial) else "done"


def asks_for_dictation(bot_said: str) -> bool:
    """The bot's last words ask for a number or an address: "What is your order number?"."""
    text = bot_said.lower()
    return bool(ASKED_FOR.search(text)) and ("?" in text or bool(REQUEST.search(text)))
