"""What a scripted caller does, as a timeline of steps: the one vocabulary of the simulated phone line
(``telephony.sim.SimulatedLine``, audio time, no network) and of the SIP scripted caller (``tools.caller``,
``voicebot call``, a real phone over SIP).

``[WaitForBot(), Say(pcm, 16000, "Where is my order?"), WaitForBot(), Press("0"), WaitForBot(), HangUp()]``
means the same on both: hear the greeting out, ask, hear the answer, press 0, hear the transfer, hang up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

DTMF_KEYS = re.compile(r"[0-9*#A-D]+")


@dataclass(frozen=True)
class Say:
    """The caller speaks ``pcm`` (mono s16le at ``sample_rate``): ``label`` is what it says, ``file`` the WAV it
    was read from, if any (reports show "play FILE" then, else "say LABEL")."""

    pcm: bytes
    sample_rate: int
    label: str = ""
    file: str | None = None

    @property
    def kind(self) -> Literal["say", "wav"]:
        return "wav" if self.file else "say"

    @property
    def value(self) -> str:
        return self.file or self.label

    def describe(self) -> str:
        return f"play {self.file}" if self.file else f"say {self.label!r}"


@dataclass(frozen=True)
class Press:
    """The caller presses ``digits`` (0-9, *, #, A-D), one RFC 2833 key after the other."""

    digits: str

    def __post_init__(self) -> None:
        if not DTMF_KEYS.fullmatch(self.digits):
            raise ValueError(f"{self.digits!r}: DTMF digits are 0-9, *, # and A-D")

    @property
    def kind(self) -> Literal["dtmf"]:
        return "dtmf"

    @property
    def value(self) -> str:
        return self.digits

    def describe(self) -> str:
        return f"press {self.digits}"


@dataclass(frozen=True)
class Silence:
    """The caller says nothing for ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class WaitForBot:
    """Wait until the bot has spoken a whole reply and then been quiet for ``gap_s``; give up after ``timeout_s``.

    The simulator counts ``timeout_s`` in wall-clock seconds over the whole wait and fails the script (a test
    never hangs); the SIP caller gives the bot that long to speak once it has started (it must start within the
    caller's ``answer_within_s``) and then goes on with the script."""

    gap_s: float = 0.5
    timeout_s: float = 120.0


@dataclass(frozen=True)
class WaitIntoBot:
    """Wait until the bot's current reply has been playing for ``seconds`` (to talk over it: barge-in)."""

    seconds: float
    timeout_s: float = 120.0


@dataclass(frozen=True)
class HangUp:
    """The caller hangs up."""


Action = Say | Press
"""A step the caller does (the others wait or end the call)."""
Step = Say | Press | Silence | WaitForBot | WaitIntoBot | HangUp
