"""What Piper is given to read: written amounts of money as a person says them.

Why: espeak-ng, Piper's phonemizer, reads the currency sign first and the cents as digits: "$5,148" was "dollar
five thousand one hundred forty-eight", "$7.95" "dollar seven point nine five" and "$4,890.60" "dollar four thousand
eight hundred ninety point six zero". Whisper at the caller's end wrote "$1.5148" and "$1.75" for them, and a
caller hears a price read like a code. Only the voice gets "5,148 dollars", "7 dollars and 95 cents"; the text
stays as written everywhere else (the transcript, the checks that every amount said is the CRM's or the price
list's).
"""

from __future__ import annotations

import re

_AMOUNT = re.compile(r"([$£€])\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?(?![.,]?\d)")
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


def for_voice(sentence: str) -> str:
    """``sentence`` with each amount after its currency sign said as words follow it: "$7.95" -> "7 dollars and 95
    cents", "£1" -> "1 pound", "$0.50" -> "50 cents". Amounts it cannot read whole ("$1.5 million") are left."""
    return _AMOUNT.sub(_said, sentence)
