"""Phone numbers in E.164 ("+15550102030"), however a caller ID, a CSV or a caller writes them."""

from __future__ import annotations

import re

import phonenumbers

_URI = re.compile(r"^<?(?:sips?|tel):([^@;>]+)", re.IGNORECASE)


def normalize_phone(raw: str | None, region: str = "US") -> str | None:
    """E.164 for ``raw``, or None when it is no phone number ("anonymous", "12", "").

    National numbers are read with ``region`` (the config's ``crm.default_region``). A leading "00" is the
    international prefix in most of the world, so "0044 20 7946 0958" means +44 even where the region's own
    prefix differs (011 in the US). SIP and tel URIs ("sip:+15550102030@pbx") are reduced to their user part.
    The check is "possible", not "valid": demo and test numbers such as +1 555 010 2030 are never assigned.
    """
    if not raw:
        return None
    text = raw.strip()
    match = _URI.match(text)
    if match:
        text = match.group(1)
    candidates = [text]
    if re.sub(r"[^\d+]", "", text).startswith("00"):
        candidates.append("+" + re.sub(r"\D", "", text)[2:])
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region.upper())
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def speakable_phone(e164: str) -> str:
    """A number grouped for reading aloud or printing: "+1 555-010-2030"."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def national(e164: str) -> str:
    """A number as said to a caller in its own country: "555-123-4567" for +15551234567 (the groups
    ``speech.voice_text`` reads digit by digit); international ("+44 20 7946 0958") where the national form has
    brackets or no dashes to group it by."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    said = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    said = re.sub(r"^\((\d+)\) ", r"\1-", said)
    return said if re.fullmatch(r"[\d-]+", said) else speakable_phone(e164)


def region_of(e164: str | None) -> str | None:
    """The country a number belongs to ("GB" for +44 20 7946 0958), None when unknown: the caller's way of writing
    a date ("2/11/1979" is 2 November in Britain, February 11 in the US)."""
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(e164 or "", None))
    except phonenumbers.NumberParseException:
        return None
    return region if region and region != "ZZ" else None
