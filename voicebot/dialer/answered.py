"""What happens once a call the dialer placed is answered: the machine check, then the conversation for its purpose.

Why the check comes first and owns the first seconds: whatever the bot says before it knows who answered would be
said to a recorder too. ``amd.screen`` listens (the callee's "hello?" or a greeting); a person (or unknown: the
opening harms no one) gets the conversation of the row's purpose, with the events heard so far handed on
(``Screened``); a machine gets ``dialer.amd.action``: a short message (who calls, the number to call back, both
from the config; the purpose only in general words, never the callback's reason or any account data) once the
greeting and its beep are over, or a hang-up (result ``machine``, retried after the spacing like no answer).

Every answered call's row in the call store says ``direction`` outbound, its ``purpose`` and ``dial_result``
(what the dialer recorded for the attempt), for the review app.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from voicebot import compute
from voicebot.config import Config
from voicebot.dialer.amd import Screening, screen, wait_for_message_point
from voicebot.dialer.callback_call import CallbackOutcome, CallbackSession, opening
from voicebot.dialer.checkin import CheckinScript, about, checkin_opening
from voicebot.dialer.policy import DueCallback
from voicebot.dialer.reminders import BookingDesk, ReminderScript, reminder_opening
from voicebot.dialer.scripted import Answer, Say, ScriptedSession
from voicebot.events import TransportEvent
from voicebot.session.deps import SessionDeps
from voicebot.store import Outcome, Turn
from voicebot.telephony.base import CallTransport

log = logging.getLogger(__name__)

ABOUT = {"callback": " about your request", "reminder": " about your appointment",
         "checkin": " about your recent visit or request", "message": ""}


class Screened:
    """The answered call with the events the machine check held (keys, a hang-up) in front of the rest."""

    def __init__(self, inner: CallTransport, held: list[TransportEvent], rest: AsyncIterator[TransportEvent]):
        self._inner = inner
        self._held = list(held)
        self._rest = rest

    @property
    def info(self):
        return self._inner.info

    @info.setter
    def info(self, value) -> None:
        self._inner.info = value

    async def events(self) -> AsyncIterator[TransportEvent]:
        for event in self._held:
            yield event
        async for event in self._rest:
            yield event

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


def machine_message(config: Config, purpose: str) -> str:
    """The message left on a machine: company and number from the config, the purpose in general words."""
    amd = config.dialer.amd
    number = amd.callback_number or "the number you know us by"
    return amd.message.format(company=config.dialog.company, about=ABOUT.get(purpose, ""), number=number)


async def _drain(events: AsyncIterator[TransportEvent]) -> None:
    async for _ in events:
        pass


async def _on_machine(call: CallTransport, callback: DueCallback, deps: SessionDeps,
                      screening: Screening) -> CallbackOutcome:
    """Leave the message or hang up (see the module docstring); the call is stored like any other."""
    amd, store, call_id = deps.config.dialer.amd, deps.store, call.info.call_id
    await asyncio.to_thread(store.start_call, callback.phone, worker=deps.worker, call_id=call_id,
                            test=deps.test_calls)
    note = f"answering machine ({screening.verdict.reason}, after {screening.verdict.after_s:.1f} s)"
    await asyncio.to_thread(store.add_turn, call_id, Turn(role="system", text=note))
    result, said = "machine", None
    if amd.action == "leave_message":
        point = await wait_for_message_point(screening, amd, call.sample_rate)
        if point is not None:
            said = machine_message(deps.config, callback.purpose)
            pcm = await compute.run(deps.synthesizer.cached, said, call.sample_rate)
            call.play(pcm)
            listening = asyncio.ensure_future(_drain(screening.rest))  # a transport's clock may run on its events
            try:
                await call.wait_played()
            finally:
                listening.cancel()
                await asyncio.gather(listening, return_exceptions=True)
            result = "voicemail"
            await asyncio.to_thread(store.add_turn, call_id, Turn(role="bot", text=said))
            log.info("dialer: callback %d: message left on a machine (%s)", callback.id, point)
    await call.hangup()
    caller, bot = call.recordings()
    for which, pcm in (("caller", caller), ("bot", bot)):
        if pcm:
            await asyncio.to_thread(store.save_recording, call_id, which, pcm, call.sample_rate)
    await asyncio.to_thread(store.update_call, call_id, direction="outbound", purpose=callback.purpose,
                            dial_result=result)
    await asyncio.to_thread(store.finish_call, call_id, Outcome.ABANDONED, note)
    return CallbackOutcome(call_id, False, Outcome.ABANDONED.value, result, screening.verdict.reason)


def _session(call: CallTransport, callback: DueCallback, deps: SessionDeps) -> CallbackSession:
    """The conversation for the row's purpose: a callback's dialogue, a reminder, a check-in or a message."""
    config, key = deps.config, deps.config.dialer.opt_out_key
    company, dialer = config.dialog.company, config.dialer
    if callback.purpose == "reminder" and callback.booking_id is not None:
        desk = BookingDesk(deps.crm)
        booking = desk.booking(callback.booking_id)  # what is said comes from the booking as it is now
        if booking is None:  # cancelled while the phone rang: said so, never the callback dialogue over the
            # row's reason, a copy of the old time
            text = (f"Hello, this is the automated assistant of {company}. The appointment we called about is no "
                    "longer booked, so there is nothing you need to do.")
            gone = MessageScript(text)
            gone.result = "booking gone"
            return ScriptedSession(call, deps, f"{text} {MessageScript.QUESTION}", dialer, gone, purpose="reminder")
        script = ReminderScript(desk, booking, dialer.reminders.reschedule_offers)
        return ScriptedSession(call, deps, reminder_opening(dialer.reminders, company, booking, key), dialer,
                               script, purpose="reminder")
    if callback.purpose == "checkin":
        script = CheckinScript(deps.crm, callback, call.info.call_id)
        text = checkin_opening(dialer.checkin, company, about(callback, deps.crm), key)
        return ScriptedSession(call, deps, text, dialer, script, purpose="checkin")
    if callback.purpose == "message":
        text = f"Hello, this is the automated assistant of {company}. {callback.reason}"
        return ScriptedSession(call, deps, f"{text} {MessageScript.QUESTION}", dialer, MessageScript(text),
                               purpose="message")
    return CallbackSession(call, deps, opening(dialer, company, callback.reason), dialer, purpose=callback.purpose)


class MessageScript:
    """A campaign's message: 1 repeats it, 2 (or no) ends the call; the attempt counts as delivered."""

    QUESTION = "Press 1 to hear this again, or 2 to end the call."

    def __init__(self, text: str):
        self.text = text
        self.result, self.detail = "delivered", None

    def question(self) -> str:
        return self.QUESTION

    def step(self, answer: Answer) -> Say | None:
        yes = answer.yes_no()
        if yes is None:
            return None
        return Say(f"{self.text} {self.QUESTION}") if yes else Say("Thank you. Goodbye.", end=True)


async def run_answered(call: CallTransport, callback: DueCallback, deps: SessionDeps) -> CallbackOutcome:
    """The machine check (when ``dialer.amd.enabled``), then the conversation; the call's row is marked."""
    amd = deps.config.dialer.amd
    if amd.enabled:
        screening = await screen(call.events(), amd, call.sample_rate)
        log.info("dialer: callback %d answered by: %s (%s)", callback.id, screening.verdict.kind,
                 screening.verdict.reason)
        if screening.verdict.kind == "machine":
            return await _on_machine(call, callback, deps, screening)
        if screening.verdict.kind == "hung_up":  # picked up and put down at once: retried like no answer
            await call.hangup()
            return CallbackOutcome(call.info.call_id, False, Outcome.ABANDONED.value, "hung_up",
                                   screening.verdict.reason)
        call = Screened(call, screening.held, screening.rest)  # type: ignore[assignment]
    session = _session(call, callback, deps)
    outcome = await session.run()
    script = getattr(session, "script", None)
    result = "opted_out" if session.opted_out else (script.result if script is not None else "answered")
    detail = script.detail if script is not None else None
    try:
        rating = {"rating": script.rating} if getattr(script, "rating", None) is not None else {}
        await asyncio.to_thread(deps.store.update_call, session.call_id, dial_result=result, **rating)
    except Exception as exc:  # the row may be in a spill file: the CRM's attempt still says it
        log.warning("dialer: call %s: dial_result not stored: %s", session.call_id, exc)
    return CallbackOutcome(session.call_id, session.opted_out, str(outcome), result, detail)
