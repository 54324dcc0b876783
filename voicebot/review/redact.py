"""Redaction of card numbers, PINs and phone numbers, for the review app's pages and for text logs.

The call store keeps values raw; what a person sees depends on their role:

- ``admin`` sees everything as recorded;
- ``supervisor`` (and any other role) sees card numbers as ``[card •••• 1111]``, PINs as ``PIN ••••`` and phone
  numbers partly masked: ``+1 555 ••• 2030``.

Detection is by pattern, on digits as Whisper writes them: 13-19 digits (spaces or dashes allowed) are a card
number when the Luhn check passes or when they are too long for a phone number; 9-15 digits are a phone number;
a run of 3-8 digits (or spoken digits) right after "PIN", "passcode", "CVV" or "security code" is a PIN. Order
numbers, amounts and dates are left alone.

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
from typing import Any
from urllib.parse import unquote

ADMIN = "admin"
SUPERVISOR = "supervisor"
ROLES = (SUPERVISOR, ADMIN)
MASK = "•••"

_DIGIT_WORDS = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
# A PIN: the keyword, an optional "is"/"number"/":", then digits (or spoken digits). The digits are group "pin".
_PIN = re.compile(
    rf"\b(?P<key>pin(?:\s+(?:code|number))?|passcode|pass\s+code|cvv|cvc|security\s+code)\b"
    rf"(?P<sep>(?:\s*(?:is|was|number|code|:|=|-))*\s*)"
    rf"(?P<pin>\d(?:[\s-]?\d){{2,7}}|{_DIGIT_WORDS}(?:[\s,-]+{_DIGIT_WORDS}){{2,7}})(?![\d])",
    re.IGNORECASE,
)
# A run of digits with single spaces, dashes, dots or brackets between them, optionally after "+".
_DIGIT_RUN = re.compile(r"(?<![\w+])\+?\(?\d(?:[\s().-]{0,2}\d){8,18}(?![\w])")
_ANY_DIGITS = re.compile(rf"\d(?:[\s,-]{{0,2}}\d){{2,}}|{_DIGIT_WORDS}(?:[\s,-]+{_DIGIT_WORDS}){{2,}}", re.IGNORECASE)
_SECRET_QUESTION = re.compile(r"\b(?:pin|passcode|pass code|card number|card details|security code|cvv|cvc)\b",
                              re.IGNORECASE)
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_SENSITIVE_KEYS = re.compile(r"pin|passcode|cvv|cvc|card|security_code|password", re.IGNORECASE)
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


def _digit_run(match: re.Match[str]) -> str:
    text = match.group(0)
    if _IPV4.fullmatch(text):
        return text  # an address in a log line, not a phone number
    digits = re.sub(r"\D", "", text)
    if 13 <= len(digits) <= 19 and (len(digits) > 15 or (luhn_ok(digits) and not text.startswith("+"))):
        return f"[card {MASK}• {digits[-4:]}]"
    if len(digits) <= 15:
        return mask_phone(text)
    return f"[{MASK}]"  # 16-19 digits that are neither: still nothing to show


def redact_text(text: str | None, role: str | None = SUPERVISOR, *, secret_answer: bool = False) -> str:
    """The text as ``role`` may see it: card numbers, PINs and phone numbers masked unless ``role`` is admin.

    ``secret_answer``: the text answers a question for a PIN or card number (see ``answers_secret_question``),
    so every group of three or more digits in it is masked: "it's 4 8 2 1" has no keyword to find it by.
    """
    if not text:
        return text or ""
    if can_see_raw(role):
        return text
    text = _PIN.sub(lambda m: f"{m.group('key')}{m.group('sep')}{MASK}•", text)
    text = _DIGIT_RUN.sub(_digit_run, text)
    if secret_answer:
        text = _ANY_DIGITS.sub(MASK + "•", text)
    return text


def has_secrets(text: str | None, *, secret_answer: bool = False) -> bool:
    """Whether ``text`` holds a card number or a PIN (phone numbers do not count): such turns are silenced in
    the recordings supervisors hear."""
    if not text:
        return False
    if _PIN.search(text) or (secret_answer and _ANY_DIGITS.search(text)):
        return True
    return any(_digit_run(m).startswith("[card") for m in _DIGIT_RUN.finditer(text))


def answers_secret_question(turns: Sequence[tuple[str, str]]) -> list[bool]:
    """For (role, text) turns in order: True for each caller turn that follows a bot turn asking for a PIN,
    passcode or card number."""
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
