"""The account question answered without a number: "What is the phone number on your account, or one of your order
numbers?" met by "I don't know my order number." heard the same question again, and "It's under Alice Johnson." went
to the model. Here the other number is asked for, a name is no key (names are not unique, and anyone can say one),
and a caller with neither number is offered a person, whose yes is the transfer. Pure: the identity step keeps the
call's state (which numbers the caller said they lack) and acts on the answer."""

from __future__ import annotations

import re
from typing import Literal

from voicebot.dialog.names import spoken_name
from voicebot.dialog.writes import answer_to_readback
from voicebot.text import normalize

NO_ORDER_NUMBER = "No problem. What is the phone number on your account?"
NO_PHONE_NUMBER = "No problem. What is one of your order numbers?"
NEITHER_NUMBER = ("I can only find your account by its phone number or an order number. Would you like me to "
                  "connect you with a colleague?")
NOT_BY_NAME = ("I can't look an account up by name. What is the phone number on your account, or one of your order "
               "numbers?")
NOT_NOW = "All right. What else can I help you with?"
HAND_OVER = "caller has no number to find the account by"
_DONT_KNOW = re.compile(r"\b(?:dont|do not|cant|cannot|never) (?:know|remember|recall|have|find|got)\b|\bforg[eo]t|"
                        r"\bno idea\b|\bnot sure\b|\blost\b")
_UNDER_A_NAME = re.compile(r"\b(?:under|in) (?:the name(?: of)?|my name|(?:mr|mrs|ms|miss|dr) )|\bmy name is\b|"
                           r"\bthe name is\b|\bits (?:for|under) [a-z]+ [a-z]+$")

Reply = tuple[Literal["say", "hand_over", "not_now"], str]


def without_number(text: str, unknown: set[str], has_orders: bool) -> Reply | None:
    """What to do with ``text`` (no digits in it) said to the account question, or None when it is none of these
    answers. ``unknown`` ("order", "phone": the numbers the caller said they lack) is updated; ``has_orders`` is
    whether the CRM holds orders at all (where it holds none, the phone number is the only key)."""
    if len(unknown) == 2 and (yes := answer_to_readback(text)) is not None:  # to NEITHER_NUMBER's offer
        return ("hand_over", HAND_OVER) if yes else ("not_now", NOT_NOW)
    said = normalize(text)
    if said and _DONT_KNOW.search(said):
        phone = re.search(r"\b(?:phone|mobile|cell)\b", said)  # "I don't know my quarter number." (Whisper, on
        unknown |= {"phone" if phone or "order" in unknown else "order"}  # SIP): the phone number is asked first
        if re.search(r"\b(?:account|either|neither)\b", said) or not has_orders:
            unknown |= {"order", "phone"}
        return "say", (NEITHER_NUMBER if len(unknown) == 2 else NO_ORDER_NUMBER if "order" in unknown
                       else NO_PHONE_NUMBER)
    if said and (_UNDER_A_NAME.search(said) or (spoken_name(text) and len(said.split()) <= 4)):
        return "say", NOT_BY_NAME
    return None
