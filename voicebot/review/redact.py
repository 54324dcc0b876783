"""Redaction of card numbers, PINs, dates of birth and phone numbers: before anything is stored, and by role for
the review app's pages and for text logs.

**Storage.** Secrets are never stored in clear: ``mask_secrets`` (text) and ``mask_secret_data`` (event data, tool
arguments) mask PINs, card numbers and dates of birth before a caller turn, an event, a call summary or a CRM note
is written. Phone numbers, order numbers and other dates are kept: the operator and the CRM need them. A caller
turn that answers a question for a secret (``asks_for_secret`` on the bot's last turn) has every number and date
in it masked, since "it's 4 8 2 1" has no keyword to find it by.

**Display.** What a person sees of the stored text depends on their role:

- ``admin`` sees everything as stored;
- ``supervisor`` (and any other role) sees card numbers as ``[card •••• 1111]``, PINs as ``PIN ••••``, dates of
  birth as ``date of birth ••••`` and phone numbers partly masked: ``+1 555 ••• 2030`` (older rows, written
  before masking at storage, are masked here too).

Detection is by pattern, on digits as Whisper writes them: 13-19 digits (spaces or dashes allowed) are a card
number when the Luhn check passes or when they are too long for a phone number; 9-15 digits are a phone number;
a run of 3-8 digits (or spoken digits) right after "PIN", "passcode", "CVV" or "security code" is a PIN; a date
(digits, month names, spoken numbers and ordinals) right after "date of birth", "birthday", "DOB" or "born" is a
date of birth. Order numbers, amounts and other dates are left alone.

**Logs.** ``RedactingFilter`` applies the same rules to log records. A filter attached to a *logger* only sees
records created on that very logger, not those propagated from child loggers, so ``install_log_redaction()``
attaches it to the root logger *and to each of its handlers* (and to uvicorn's). Code that adds its own handler
should add ``RedactingFilter()`` to it too (``handler.addFilter(RedactingFilter())``), or call
``install_log_redaction()`` again after configuring logging.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any
from urllib.parse import unquote

ADMIN = "admin"
SUPERVISOR = "supervisor"
ROLES = (SUPERVISOR, ADMIN)
MASK = "•••"

_DIGIT_WORDS = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
_NUMBER_WORDS = (
    r"(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    r"seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|first|"
    r"second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|fourteenth|"
    r"fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|thirtieth)"
)
_MONTH_WORDS = (r"(?:january|february|march|april|may|june|july|august|september|october|november|december|"
                r"jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)\.?")
# One piece of a date or a spoken number: "14", "14th", "1985", "March", "fourteenth", "nineteen".
_DATE_TOKEN = rf"(?:\d{{1,4}}(?:st|nd|rd|th)?|{_MONTH_WORDS}|{_NUMBER_WORDS})"
_DATE_GLUE = r"(?:[\s,./-]+(?:(?:the|of|and)[\s,]+)?)"
# A date of birth: the keyword, an optional "is"/":", then a run of date pieces. The date is group "date".
_DOB = re.compile(
    rf"\b(?P<key>date\s+of\s+birth|birth\s*date|birthday|d\.?o\.?b\b\.?|born(?:\s+(?:on|in))?)"
    rf"(?P<sep>(?:\s*(?:is|was|it's|its|:|,|=|-))*\s*(?:the\s+)?)"
    rf"(?P<date>{_DATE_TOKEN}(?:{_DATE_GLUE}{_DATE_TOKEN}){{0,8}})(?!\w)",
    re.IGNORECASE,
)
# A whole date said without a keyword ("2 November 1979", "November 2nd, 1979", "02/11/1979"): group "year".
_FULL_DATE = re.compile(
    rf"(?<![\w/.-])(?:\d{{1,2}}(?:st|nd|rd|th)?(?:\s+of)?\s+{_MONTH_WORDS},?\s+|{_MONTH_WORDS}\s+(?:the\s+)?"
    rf"\d{{1,2}}(?:st|nd|rd|th)?,?\s+|\d{{1,2}}[/.-]\d{{1,2}}[/.-])(?P<year>(?:19|20)\d\d)(?![\w/-])",
    re.IGNORECASE,
)
BIRTH_YEARS_AGO = 10
"""A whole date at least this many years back is a date of birth, keyword or not: "I want a refund for my desk. 2
November 1979." went into a ticket's text in clear. No delivery, booking or order of a call is that old."""
# In an answer to a question for a secret: any run of digits, number words and month names.
_SECRET_TOKEN = rf"(?:\d+|{_DATE_TOKEN}|oh|nought|double|triple)"
_SECRET_RUN = re.compile(rf"(?<!\w){_SECRET_TOKEN}(?:{_DATE_GLUE}{_SECRET_TOKEN})*(?!\w)", re.IGNORECASE)
# A PIN: the keyword, an optional "is"/"number"/":", then digits (or spoken digits), as Whisper writes them: "4815",
# "4 8 1 5", "4-8-1-5", "4, 8, 1, 5". The digits are group "pin".
_PIN = re.compile(
    rf"\b(?P<key>pin(?:\s+(?:code|number))?|passcode|pass\s+code|cvv|cvc|security\s+code)\b"
    rf"(?P<sep>(?:\s*(?:is|was|number|code|:|=|-))*\s*)"
    rf"(?P<pin>\d(?:(?:[\s-]|,\s?)?\d){{2,7}}|{_DIGIT_WORDS}(?:[\s,-]+{_DIGIT_WORDS}){{2,7}})(?![\d])",
    re.IGNORECASE,
)
# A run of digits with single spaces, dashes, dots or brackets between them, optionally after "+".
_DIGIT_RUN = re.compile(r"(?<![\w+])\+?\(?\d(?:[\s().-]{0,2}\d){8,18}(?![\w])")
_LONG_RUN = re.compile(r"(?<![\w+])\d(?:[\s.,-]{0,2}\d){12,40}(?![\w])")  # 13 digits or more, Whisper's commas too
_SECRET_QUESTION = re.compile(r"\b(?:pin|passcode|pass code|card number|card details|security code|cvv|cvc|"
                              r"date of birth|birth ?date|birthday|born)\b", re.IGNORECASE)
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_SENSITIVE_KEYS = re.compile(r"pin|passcode|cvv|cvc|card|security_code|password|birth", re.IGNORECASE)
# Keys whose values are secrets whole, as words of a snake_case key ("pin", "card_number"; not "shipping").
_SECRET_KEYS = re.compile(r"(?:^|_)(?:pin|passcode|cvv|cvc|card|security_code|password|date_of_birth|dob|birth)"
                          r"(?:_|$)", re.IGNORECASE)
_PHONE_KEYS = re.compile(r"phone|caller_id|mobile|msisdn", re.IGNORECASE)


def can_see_raw(role: str | None) -> bool:
    return role == ADMIN


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def mask_phone(raw: str | None, role: str | None = SUPERVISOR) -> str:
    """``+15550102030`` -> ``+1 555 ••• 2030`` (admin: unchanged). Country codes are read with phonenumbers."""
    if raw is None:
        return ""
    if can_see_raw(role):
        return raw
    digits = re.sub(r"\D", "", raw)
    if len(digits) < 7:
        return MASK  # too short to show any of it safely
    prefix = ""
    national = digits
    if raw.strip().startswith("+"):
        prefix, national = _split_country(digits)
    head = national[:3] if len(national) >= 10 else ""
    return " ".join(part for part in (prefix, head, MASK, national[-4:]) if part)


def _split_country(digits: str) -> tuple[str, str]:
    import phonenumbers

    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return "+" + digits[:1], digits[1:]
    return f"+{number.country_code}", str(number.national_number)


def _is_card(text: str, digits: str) -> bool:
    return 13 <= len(digits) <= 19 and (len(digits) > 15 or (luhn_ok(digits) and not text.startswith("+")))


_CARD_WORDS = re.compile(r"\b(?:card|cart number|car number|visa|mastercard|amex|american express|credit|debit)\b",
                         re.IGNORECASE)  # "cart number", "car number": Whisper's mishearings of "card number"


def _any_long_run(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return f"[card {MASK}• {digits[-4:]}]"


def _digit_run(match: re.Match[str]) -> str:
    text = match.group(0)
    if _IPV4.fullmatch(text):
        return text  # an address in a log line, not a phone number
    digits = re.sub(r"\D", "", text)
    if _is_card(text, digits):
        return f"[card {MASK}• {digits[-4:]}]"
    if len(digits) <= 15:
        return mask_phone(text)
    return f"[{MASK}]"  # 16-19 digits that are neither: still nothing to show


def redact_text(text: str | None, role: str | None = SUPERVISOR, *, secret_answer: bool = False) -> str:
    """The text as ``role`` may see it: card numbers, PINs and phone numbers masked unless ``role`` is admin.

    ``secret_answer``: the text answers a question for a PIN, card number or date of birth (see
    ``answers_secret_question``), so every number and date in it is masked: "it's 4 8 2 1" has no keyword to find
    it by.
    """
    if not text:
        return text or ""
    if can_see_raw(role):
        return text
    text = _mask_keyed(text)
    text = _DIGIT_RUN.sub(_digit_run, text)
    if secret_answer:
        text = _SECRET_RUN.sub(MASK + "•", text)
    return text


def _mask_keyed(text: str) -> str:
    """PINs and dates of birth found by their keyword masked: "my PIN is ••••", "date of birth ••••"; and a whole
    date ``BIRTH_YEARS_AGO`` years back or more without one (``_FULL_DATE``)."""
    text = _PIN.sub(lambda m: f"{m.group('key')}{m.group('sep')}{MASK}•", text)
    text = _DOB.sub(lambda m: f"{m.group('key')}{m.group('sep')}{MASK}•", text)
    before = date.today().year - BIRTH_YEARS_AGO
    return _FULL_DATE.sub(lambda m: MASK + "•" if int(m.group("year")) <= before else m.group(0), text)


def _card_only(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = re.sub(r"\D", "", text)
    return f"[card {MASK}• {digits[-4:]}]" if _is_card(text, digits) else text


def mask_secrets(text: str | None, *, secret_answer: bool = False) -> str:
    """``text`` as it may be stored: PINs, card numbers and dates of birth masked; phone numbers, order numbers,
    amounts and other dates kept (the operator and the CRM need them; the review app masks phone numbers by role).

    ``secret_answer``: the text answers a question for a PIN, date of birth or card number (see
    ``asks_for_secret``), so every number, spoken number and month name in it is masked.
    """
    if not text:
        return text or ""
    text = _mask_keyed(text)
    if _CARD_WORDS.search(text):
        # a card was talked about: any long run is one, even misheard (Whisper made 20 digits of a 16-digit card),
        # and before the runs without commas: "4, 111 1111 1111 1111" kept its "4," in front of the masked card
        text = _LONG_RUN.sub(_any_long_run, text)
    text = _DIGIT_RUN.sub(_card_only, text)
    if secret_answer:
        text = _SECRET_RUN.sub(MASK + "•", text)
    return text


def asks_for_secret(text: str | None) -> bool:
    """Whether a bot turn asks for a PIN, passcode, card number or date of birth: the caller's answer to it is a
    secret (``mask_secrets(answer, secret_answer=True)``)."""
    return bool(text and _SECRET_QUESTION.search(text))


def mask_caller_turn(text: str, previous_turns: Sequence[tuple[str, str]] = (), *, asked: bool = False) -> str:
    """A new caller turn as it may be stored, after ``previous_turns`` ((role, text), oldest first): secrets
    masked, and every number and date when the bot's last turn asked for a secret or ``asked`` says so (the
    dialogue is waiting for a PIN)."""
    last_bot = next((t for role, t in reversed(previous_turns) if role == "bot"), None)
    return mask_secrets(text, secret_answer=asked or asks_for_secret(last_bot))


def mask_secret_data(value: Any, key: str = "") -> Any:
    """A JSON-like value (event data, tool arguments and results) as it may be stored: values under keys such as
    ``pin``, ``card_number`` or ``date_of_birth`` masked whole, every string passed through ``mask_secrets``.
    Phone numbers are kept (``redact_data`` masks them for display)."""
    if isinstance(value, Mapping):
        return {k: mask_secret_data(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secret_data(v, key) for v in value]
    if value is None or isinstance(value, bool):
        return value
    if key and _SECRET_KEYS.search(key):
        return MASK + "•"
    if isinstance(value, str):
        return mask_secrets(value)
    return value


def has_secrets(text: str | None, *, secret_answer: bool = False) -> bool:
    """Whether ``text`` holds a card number, a PIN or a date of birth, or had one masked when it was stored
    (phone numbers do not count): such turns are silenced in the recordings supervisors hear."""
    if not text:
        return False
    if MASK + "•" in text:
        return True  # masked when it was stored: the recording still holds it
    if _PIN.search(text) or _DOB.search(text) or (secret_answer and _SECRET_RUN.search(text)):
        return True
    return any(_digit_run(m).startswith("[card") for m in _DIGIT_RUN.finditer(text))


def answers_secret_question(turns: Sequence[tuple[str, str]]) -> list[bool]:
    """For (role, text) turns in order: True for each caller turn that follows a bot turn asking for a PIN,
    passcode, card number or date of birth."""
    out = []
    asked = False
    for role, text in turns:
        out.append(role == "caller" and asked)
        if role == "bot":
            asked = bool(_SECRET_QUESTION.search(text))
        elif role == "caller":
            asked = False
    return out


def redact_data(value: Any, role: str | None = SUPERVISOR, key: str = "") -> Any:
    """Redact a JSON-like value (tool arguments and results, event data): values under keys such as ``pin`` or
    ``card_number`` are masked whole, under ``phone`` keys partly, and every string is passed through
    ``redact_text``."""
    if can_see_raw(role):
        return value
    if isinstance(value, Mapping):
        return {k: redact_data(v, role, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_data(v, role, key) for v in value]
    if value is None or isinstance(value, bool):
        return value
    if key and _SENSITIVE_KEYS.search(key):
        return MASK + "•"
    if key and _PHONE_KEYS.search(key) and isinstance(value, (str, int)):
        return mask_phone(str(value), role)
    if isinstance(value, str):
        return redact_text(value, role)
    return value


class RedactingFilter(logging.Filter):
    """Masks card numbers, PINs and phone numbers in log records (message and string arguments).

    The arguments are redacted one by one instead of being merged into the message, so formatters that read
    ``record.args`` (uvicorn's access log does) keep working. Exception text is rendered and redacted too.
    """

    def __init__(self, role: str = SUPERVISOR, name: str = ""):
        super().__init__(name)
        self.role = role

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_voicebot_redacted", False):
            return True  # the root logger and its handler both see the same record
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg, self.role)
        if isinstance(record.args, tuple):
            record.args = tuple(self._arg(a) for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {k: self._arg(v) for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text, self.role)
        record._voicebot_redacted = True
        return True

    def _arg(self, value: Any) -> Any:
        if isinstance(value, (int, float, bool)) or value is None:
            return value
        text = value if isinstance(value, str) else str(value)
        if "%" in text:  # a URL in an access log line: "%2B15550102030" is a phone number too
            text = unquote(text)
        return redact_text(text, self.role)


def install_log_redaction(logger_names: Iterable[str] = ("", "uvicorn", "uvicorn.error", "uvicorn.access"),
                          role: str = SUPERVISOR) -> RedactingFilter:
    """Attach one ``RedactingFilter`` to the named loggers and every handler they have (idempotent).

    Call it after logging is configured (uvicorn configures its loggers when its ``Config`` is built).
    """
    redactor = RedactingFilter(role)
    for name in logger_names:
        logger = logging.getLogger(name)
        for target in (logger, *logger.handlers):
            if not any(isinstance(f, RedactingFilter) for f in target.filters):
                target.addFilter(redactor)
    return redactor
