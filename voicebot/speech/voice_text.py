"""What Piper is given to read: amounts of money, order numbers and phone numbers as a person says them.

Why: espeak-ng, Piper's phonemizer, reads the currency sign first and the cents as digits: "$5,148" was "dollar
five thousand one hundred forty-eight", "$7.95" "dollar seven point nine five" and "$4,890.60" "dollar four thousand
eight hundred ninety point six zero". Whisper at the caller's end wrote "$1.5148" and "$1.75" for them, and a
caller hears a price read like a code. Codes it read like amounts: "Order 10452" was "order ten thousand four
hundred fifty-two" (a caller writing it down, or saying it back, wants "one zero four five two") and "555-010-2030"
"five hundred fifty-five dash zero ten dash two thousand thirty". Only the voice gets "5,148 dollars", "7 dollars
and 95 cents", "order 1 0 4 5 2", "5 5 5, 0 1 0, 2 0 3 0"; the text stays as written everywhere else (the
transcript, the checks that every amount and number said is the CRM's or the price list's).
"""

from __future__ import annotations

import re

_AMOUNT = re.compile(r"([$£€])\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?(?![.,]?\d)")
_CODE = re.compile(r"\b((?:order|ticket|reference|booking|case|confirmation|account|invoice|tracking)s?"
                   r"(?: (?:number|no\.?|#))?(?: is)?:? #?)(\d{4,})\b", re.IGNORECASE)
_PHONE = re.compile(r"(?<![\w.,-])(\+\d{1,3}[ .-]?)?(\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}|\d{3}[ .-]\d{4})(?![\w.,-]?\d)")
_NAMES = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
          "€": ("euro", "euros", "cent", "cents")}


def _said(match: re.Match[str]) -> str:
    one, many, sub_one, sub_many = _NAMES[match.group(1)]
    whole, cents = match.group(2), int(match.group(3) or 0)
    units = int(whole.replace(",", ""))
    parts = [f"{whole} {one if units == 1 else many}"] if units or not cents else []
    if cents:
        parts.append(f"{cents} {sub_one if cents == 1 else sub_many}")
    return " and ".join(parts)


def _digits(text: str) -> str:
    return " ".join(ch for ch in text if ch.isdigit())


def _phone(match: re.Match[str]) -> str:
    country = f"plus {_digits(match.group(1))}, " if match.group(1) else ""
    return country + ", ".join(_digits(group) for group in re.split(r"[ .-]", match.group(2)))


def for_voice(sentence: str) -> str:
    """``sentence`` as Piper should read it: each amount after its currency sign said with its unit after it
    ("$7.95" -> "7 dollars and 95 cents", "£1" -> "1 pound", "$0.50" -> "50 cents"; "$1.5 million" is left), an
    order, ticket or other reference number of four or more digits digit by digit, and a phone number in its
    groups, digit by digit."""
    sentence = _AMOUNT.sub(_said, sentence)
    sentence = _CODE.sub(lambda m: m.group(1) + _digits(m.group(2)), sentence)
    return _PHONE.sub(_phone, sentence)
