"""Digits keyed in while the bot waits for a PIN or an account number: one answer, not a string of menu choices.

Why: a key press went to the menu one digit at a time, so a caller who keyed their PIN in answer to "please tell me
your PIN" was moved around the menu ("1" orders, "2" repairs), each key was stored in clear as its own turn, and a
PIN with a 0 in it reached the operator. While an identity question is open (``DialogueAgent.awaiting_pin``) or
the bot has just asked for a number (``wants_digits``), keys are collected here instead: "#" ends the entry, "*" starts it again, and ``INTER_DIGIT_S`` without a key ends it too
(the timer puts a "#" on the session's queue, so it is handled in order with everything else). The finished digits
are one caller turn (a PIN masked in the store like a spoken one). A lone "0" is still the operator: "press 0 for a person"
holds everywhere. Not thread-safe: the session's event loop owns it.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from voicebot.events import CallInput, DtmfReceived
from voicebot.speech.dictation import asks_for_dictation

END_KEY = "#"
CLEAR_KEY = "*"
INTER_DIGIT_S = 3.0
"""Silence on the keypad after which the entry is complete (what phone menus use; a "#" ends it at once)."""
OPERATOR_KEY = "0"


def wants_digits(awaiting_pin: bool, bot_said: str) -> bool:
    """Whether keys now answer a question rather than choose from the menu: a PIN or an account is asked for, or
    the bot's last words ask for a number ("What is your order number?", ``speech.dictation``)."""
    return awaiting_pin or (asks_for_dictation(bot_said) and bool(re.search(r"\bnumber\b", bot_said, re.I)))


@dataclass
class KeypadEntry:
    queue: asyncio.Queue[CallInput]
    digits: str = ""
    _timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        """Keys have been pressed and the entry is not finished."""
        return bool(self.digits)

    def route(self, key: str, at_s: float, awaiting_pin: bool, bot_said: str) -> tuple[str, str]:
        """Where a key goes: ("menu", key) when no entry is wanted (a lone 0 ends here too: the operator),
        ("wait", "") while an entry goes on, ("answer", digits) when it is complete."""
        if not (self.active or key.isdigit() and wants_digits(awaiting_pin, bot_said)):
            return "menu", key
        entry = self.key(key, at_s)
        if not entry:
            return "wait", ""
        return ("menu", OPERATOR_KEY) if entry == OPERATOR_KEY else ("answer", entry)

    def key(self, key: str, at_s: float) -> str | None:
        """One key: the finished entry ("" when "#" ends nothing), or None while it goes on."""
        self.close()
        if key == END_KEY:
            done, self.digits = self.digits, ""
            return done
        if key == CLEAR_KEY:
            self.digits = ""
            return None
        if key.isdigit():
            self.digits += key
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(INTER_DIGIT_S, self.queue.put_nowait,
                                          DtmfReceived(END_KEY, at_s + INTER_DIGIT_S))
        return None

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
