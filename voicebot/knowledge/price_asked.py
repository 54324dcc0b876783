"""Whether a caller's question asks a price, and whether an answer speaks of money.

Why a module of its own: the knowledge base (which documents may answer), the knowledge step (an entry that says
nothing of money answers no price question), the booking rules ("Is printer repair free?" is no booking) and the
service answers ("How much is installation?") must read a price question the same way, and "free" is both a price
and a free time.
"""

from __future__ import annotations

import re

PRICE_WORDS = re.compile(r"\b(how much|cost\w*|price\w*|pricing|charge\w*|expensive|cheap\w*|quote|rate|fee|"
                          r"сколько|стои\w*|стоимост\w*|цен\w*)\b", re.IGNORECASE)
_PRICE_ASKED = re.compile(r"\b(how much|cost|costs|price|prices|pricing|charge|charges|fee|fees|for free|"
                          r"(have|need|got) to pay|pay (for|anything|extra|more))\b", re.IGNORECASE)
_FREE = re.compile(r"\bfree\b", re.IGNORECASE)
_A_TIME = re.compile(r"\b(slots?|times?|when|days?|today|tonight|tomorrow|mornings?|afternoons?|evenings?|weeks?|"
                     r"weekends?|(mon|tues|wednes|thurs|fri|satur|sun)days?|appointments?|available|availability|"
                     r"dates?|hours?|\d+)\b", re.IGNORECASE)
_SAYS_A_PRICE = re.compile(r"[£$€]|\b(free|charge\w*|cost\w*|price\w*|fees?|pay\w*|paid|included|discount\w*|"
                           r"rates?|pounds?|dollars?|euros?|cents?|pence|gbp|usd|eur)\b", re.IGNORECASE)


def asks_price(text: str) -> bool:
    """A price asked ("How much is installation?", "Do I have to pay for the engineer?", "Is installation free?");
    not "a quote for ten desks", which is a lead for the sales team, nor a free time ("Is Friday free?", "Do you
    have a free slot?"): "free" is a price only with no word of a time."""
    return bool(_PRICE_ASKED.search(text) or (_FREE.search(text) and not _A_TIME.search(text)))


def says_a_price(text: str) -> bool:
    """Whether an answer speaks of money at all (an amount, "free", "included", a charge): a price question's
    entry that does not ("Is the router free?" had the router's restart steps) answers something else."""
    return bool(_SAYS_A_PRICE.search(text))


def price_question(question: str) -> bool:
    """The question is about a price, in the price list's words or in others ("Is printer repair free?")."""
    return bool(PRICE_WORDS.search(question)) or asks_price(question)
