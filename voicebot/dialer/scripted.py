"""A short outbound call driven by a fixed script (reminders, check-ins): questions answered by key or by voice.

Why not the dialogue model: a reminder or a rating has three or four possible answers, and each write it leads to
(a booking confirmed, cancelled or moved) must follow a read-back the callee said yes to. A small state machine
does that exactly and testably; the model would only add ways to get it wrong. What stays from the inbound
session: the opt-out (``CallbackSession``), the escalation guard (0 or "a person, please" transfers), the
no-match count, turns and events recorded as for any call, caller words masked.

A ``Script`` answers each ``Answer`` (the callee's key or words) with what to say next (``Say``), which may end
the call (``end=True``: said, then hung up).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Protocol

from voicebot.crm.spoken import words_to_digits
from voicebot.events import DtmfReceived, NoInputTimedOut
from voicebot.session.speaker import TurnClock
from voicebot.session.state import State
from voicebot.dialer.callback_call import CallbackSession, said_opt_out

YES = ("yes", "yeah", "yep", "correct", "right", "sure", "confirm", "okay", "ok", "that's right", "please do")
NO = ("no", "nope", "wrong", "not right", "don't", "keep it")


@dataclass(frozen=True)
class Answer:
    """One answer of the callee: a key (``digit``) or words (``text``, raw: the session stores them masked)."""

    digit: str | None = None
    text: str = ""

    def words(self) -> str:
        return " ".join(re.sub(r"[^a-z0-9' ]+", " ", self.text.lower().replace("\u2019", "'")).split())

    def number(self) -> int | None:
        """The key, or the single number said ("three", "3", "the third"), else None."""
        if self.digit is not None:
            return int(self.digit) if self.digit.isdigit() else None
        ordinals = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
        named = {n for w, n in ordinals.items() if re.search(rf"\b{w}\b", self.words())}
        if named:  # "the second one": the ordinal counts, not the "one"
            return named.pop() if len(named) == 1 else None
        found = set(re.findall(r"\d+", words_to_digits(self.words())))
        return int(found.pop()) if len(found) == 1 else None

    def said(self, *phrases: str) -> bool:
        text = f" {self.words()} "
        return any(f" {phrase} " in text for phrase in phrases)

    def yes_no(self) -> bool | None:
        """1 or yes: True; 2 or no: False; else None."""
        number = self.number()
        if number in (1, 2):
            return number == 1
        if self.said(*NO):
            return False
        if self.said(*YES):
            return True
        return None


@dataclass(frozen=True)
class Say:
    text: str
    end: bool = False  # hang up once it has been said


class Script(Protocol):
    """One scripted conversation: ``step`` answers the callee, ``question`` is what to ask again when an answer
    was not understood; ``result`` and ``detail`` are what the dialer records for the attempt."""

    result: str
    detail: str | None

    def step(self, answer: Answer) -> Say | None:
        """The reply to ``answer`` (may write to the CRM: it runs in a thread); None: not understood."""
        ...

    def question(self) -> str: ...


class ScriptedSession(CallbackSession):
    """A CallbackSession whose answers go to ``script.step`` instead of the menu and the model."""

    def __init__(self, transport, deps, opening: str, dialer, script: Script, purpose: str):
        super().__init__(transport, deps, opening, dialer, purpose=purpose)
        self.script = script

    async def _on_caller_text(self, text: str, clock: TurnClock | None, backchannel: bool = False,
                              heard_also: tuple[str, ...] = ()) -> None:  # no CRM lookups: heard_also unused
        if said_opt_out(text, self.dialer.opt_out_phrases):
            return await self._opt_out()
        self.caller_turns += 1
        escalation = self.guard.check_transcript(text)
        if escalation:
            return await self._escalate(escalation)
        if backchannel:
            return
        await self._answer_with(Answer(text=text), clock)

    async def _on_dtmf(self, event: DtmfReceived) -> None:
        if event.digit == self.dialer.opt_out_key:
            await self._turn("caller", f"[DTMF {event.digit}]", started_at=event.at_s)
            return await self._opt_out()
        escalation = self.guard.check_dtmf(event.digit)
        await self._turn("caller", f"[DTMF {event.digit}]", started_at=event.at_s)
        if escalation:
            return await self._escalate(escalation)
        self._set(State.THINKING)
        await self._answer_with(Answer(digit=event.digit), None)

    async def _on_no_input(self) -> None:
        """Silence: the script's question again (not the inbound menu's reprompt); the guard still counts it."""
        escalation = self.guard.note_no_input()
        await self._record(NoInputTimedOut())
        if escalation:
            return await self._escalate(escalation)
        await self._speak([self.script.question()], fixed=True)

    async def _answer_with(self, answer: Answer, clock: TurnClock | None) -> None:
        self._set(State.THINKING)
        reply = await asyncio.to_thread(self.script.step, answer)  # a step may write to the CRM: off the event loop
        if reply is None:
            return await self._no_match(clock, self.script.question())
        self.guard.note_progress()
        await self._speak([reply.text], clock, fixed=True)
        if reply.end and self.state != State.ENDED:
            await self.t.wait_played()
            self._set(State.ENDED)
            await self.t.hangup()
