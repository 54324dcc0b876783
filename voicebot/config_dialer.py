"""The ``dialer`` config section (proactive calls, voicebot.dialer). Apart from voicebot.config (which re-exports
it) to keep each file to one job and short."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from voicebot.strict import StrictModel as Section, known_time_zone

# -- the dialer (issue 18): proactive calls, one block ---------------------------------------------------------
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)")


def _default_hours() -> dict[str, str]:
    return {day: "09:00-18:00" if day not in ("sat", "sun") else "closed" for day in WEEKDAYS}


class AmdConfig(Section):
    """Answering-machine detection on the callee's first seconds (``voicebot.dialer.amd``)."""

    enabled: bool = Field(True, description="Listen to the first seconds after the answer for a machine.")
    action: str = Field("leave_message", pattern="^(leave_message|hang_up)$", description="On a machine: "
                        "leave_message (after the beep or the end of the greeting; no account data), or hang_up "
                        "(the attempt counts, the call is retried after the spacing).")
    message: str = Field("Hello, this is the automated assistant of {company}. We tried to reach you{about}. "
                         "Please call us back at {number}. Thank you, goodbye.", description="Left on a machine: "
                         "{company}, {about} (the purpose in general words, never account data), {number}.")
    callback_number: str = Field("", description="The number said in the message (the company's); empty: the "
                                 "message says 'the number you know us by' instead.")
    max_greeting_s: float = Field(4.0, ge=1.0, le=10.0, description="Speech without a pause longer than this "
                                  "after the answer is a machine's greeting.")
    human_silence_s: float = Field(0.8, ge=0.3, le=3.0, description="A pause this long after a short first "
                                   "utterance ('hello?') means a person waits for an answer.")
    initial_silence_s: float = Field(3.0, ge=0.5, le=10.0, description="Nothing said for this long: unknown.")
    beep_wait_s: float = Field(10.0, ge=0.0, le=30.0, description="After a machine's greeting, how long to wait "
                               "for the beep (or the greeting's end) before the message is left.")


class RemindersConfig(Section):
    """Appointment reminders the day before (``voicebot.dialer.reminders``)."""

    enabled: bool = Field(False, description="Queue a reminder call for every booking of the next day.")
    opening: str = Field("Hello, this is the automated assistant of {company} with a reminder of your "
                         "appointment for {service} on {when}. Press 1 or say yes to confirm it, 2 to cancel it, "
                         "3 to choose another time. To stop these calls, say so or press {key}.")
    reschedule_offers: int = Field(3, ge=1, le=5, description="Free slots offered when the callee reschedules.")


class CheckinConfig(Section):
    """The next-morning check-in after a visit or a resolved ticket (``voicebot.dialer.checkin``)."""

    enabled: bool = Field(False, description="Queue a check-in call the morning after a visit or a resolved "
                          "ticket.")
    opening: str = Field("Hello, this is the automated assistant of {company}, calling about {about}. How "
                         "satisfied were you, from 1 to 5? Press or say a number. To stop these calls, say so or "
                         "press {key}.")
    from_hour: int = Field(9, ge=0, le=23, description="Not dialled before this hour (the calling hours' zone).")


class DialerConfig(Section):
    """Proactive calls from ``voicebot serve`` (``voicebot.dialer``): the CRM's due callbacks, dialled within the
    company's calling hours, with attempt limits and spacing, a do-not-call list and a cap that always leaves
    lines for inbound callers. Off unless ``enabled``."""

    enabled: bool = Field(False, description="Work the CRM's due callbacks from `voicebot serve` (worker 0 only).")
    timezone: str | None = Field(None, description="IANA zone the calling hours are in (the callees' local time). "
                                 "Unset: the company's (the knowledge folder's hours.yaml), else UTC.")
    hours: dict[str, str] = Field(default_factory=_default_hours, description="Calling hours per weekday (mon-sun):"
                                  " 'HH:MM-HH:MM', several spans separated by commas, or 'closed'; a day left out "
                                  "is closed.")
    max_attempts: int = Field(3, ge=1, le=20, description="Calls per callback before it is given up (failed).")
    spacing_min: float = Field(60.0, gt=0, le=7 * 24 * 60, description="Minutes between two attempts on one "
                               "callback, and between any two calls to one number.")
    max_concurrent: int = Field(1, ge=1, le=3, description="Outbound calls at once; a worker has 4 lines in all.")
    free_lines: int = Field(1, ge=1, le=3, description="Lines that must stay free for inbound callers after a "
                            "call is placed: no call goes out when fewer would be left.")
    dnc_file: str = Field("data/do-not-call.txt", description="Do-not-call list: one number per line (E.164), "
                          "# comments; opt-outs are appended. Relative to config.yaml.")
    dial_uri: str = Field("sip:{number}@127.0.0.1:5070", description="Where a number is dialled: {number} is "
                          "replaced by the E.164 number (e.g. sip:{number}@pbx.example.com for the trunk).")
    caller_id: str | None = Field(None, description="The From user of outbound calls (e.g. the company's number).")
    ring_timeout_s: float = Field(30.0, ge=1, le=180, description="Unanswered after this long: no_answer.")
    poll_s: float = Field(30.0, gt=0, le=3600, description="How often due callbacks are looked for.")
    opt_out_key: str = Field("9", pattern=r"^[0-9*#]$", description="The key a callee presses to opt out.")
    opt_out_phrases: list[str] = Field(default_factory=lambda: [
        "don't call me again", "do not call me again", "don't call me", "do not call me", "stop calling",
        "remove me from your list", "take me off your list", "remove my number", "never call me"],
        min_length=1, description="Said by a callee, any of these opts the number out (case and punctuation "
        "ignored).")
    opening: str = Field("Hello, this is the automated assistant of {company} calling back about: {reason}. "
                         "To stop these calls, say so or press {key}.",
                         description="The first words of a callback call; {reason} is the callback's reason as "
                         "the caller gave it, never account data.")
    opt_out_goodbye: str = "Understood. We will not call this number again. Goodbye."
    amd: AmdConfig = Field(default_factory=AmdConfig)
    reminders: RemindersConfig = Field(default_factory=RemindersConfig)
    checkin: CheckinConfig = Field(default_factory=CheckinConfig)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else known_time_zone(value)

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: dict[str, str]) -> dict[str, str]:
        for day, spans in value.items():
            if day not in WEEKDAYS:
                raise ValueError(f"{day!r} is not a weekday ({', '.join(WEEKDAYS)})")
            if spans.strip() != "closed":
                for span in spans.split(","):
                    m = _SPAN.fullmatch(span.strip())
                    if m is None or (m[3], m[4]) <= (m[1], m[2]) or (m[3] == "24" and m[4] != "00"):
                        raise ValueError(f"{day}: {span.strip()!r} is not a span 'HH:MM-HH:MM' (end after start)")
        return value

    @field_validator("dial_uri")
    @classmethod
    def _dial_uri(cls, value: str) -> str:
        if "{number}" not in value or not value.startswith(("sip:", "sips:")):
            raise ValueError(f"{value!r} must be a SIP URI with {{number}} in it")
        return value

    @field_validator("opening")
    @classmethod
    def _opening(cls, value: str) -> str:
        if "{reason}" not in value:
            raise ValueError("the opening must say why the bot calls: put {reason} in it")
        return value
