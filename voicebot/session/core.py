"""The core of a call: a small state machine that takes the caller's events one at a time.

Every event passes the escalation guard first (operator phrases, DTMF 0, frustration, repeated no-match), then the
menu flow, then the dialogue agent for free-form turns (``model_turn``). The states (``State``: GREETING, LISTENING,
...) say what the bot is doing; an illegal transition raises: a bug shows as an error and a transfer to a person.

Why the turn is a task: a hang-up is a control event, not one more turn. It cancels the turn in progress (playback,
synthesis, generation), and the ``HangUpGate`` stops the model's thread before any tool writes for a caller who has
gone. A transfer under way is left to finish: its result decides the call's outcome.

Every turn and event goes to the call store as it happens, caller words masked (``_private``), so a crash loses
nothing said; the writes are queued (``records``). Whatever goes wrong, the caller hears an apology and a person.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any, Literal

from voicebot.crm.tools import CRM_TOOLS
from voicebot.crm.verification import CallerContext
from voicebot.dialog.agent import DialogueAgent
from voicebot.dialog.flow import FlowResult, FreeForm, Goto, MenuFlow, NoMatch, Transfer
from voicebot.dialog.guard import Escalation, EscalationGuard
from voicebot.dialog.identity import PIN_NOT_CAUGHT
from voicebot.dialog.knowledge_step import KnowledgeStep
from voicebot.events import (CallerHungUp, CallInput, DtmfReceived, Escalated, Heard,
                             NoInputTimedOut, StoredEvent, TextReceived, TranscriptRejected, TransferReason)
from voicebot.review.redact import mask_caller_turn, mask_secrets
from voicebot.session.deps import SessionDeps
from voicebot.session.gate import HangUpGate
from voicebot.session.handover import hand_over, operator_note
from voicebot.session.listener import Listener
from voicebot.session.ending import finish
from voicebot.session.faults import Faulted, in_thread, play_prerendered, recover, store_failed
from voicebot.session.watchdog import SilenceWatchdog, guarded, turn_ended
from voicebot.session.model_turn import ModelTurn
from voicebot.session.records import CallRecords
from voicebot.session.prefill import prefill_soon
from voicebot.session.resume import drop_silent_reply
from voicebot.speech.tts import split_sentences
from voicebot.session.speaker import Reply, Speaker, TurnClock
from voicebot.session.state import State, checked
from voicebot.session.keypad import KeypadEntry
from voicebot.session.quick_replies import (asks_again_before_hand_over, keys_may_be_said, no_input_reprompt,
                                            quick_reply)
from voicebot.speech import hallucination
from voicebot.speech.turns import NoInput, TurnDetector, Utterance
from voicebot.store import Outcome, Turn, TurnTimings
from voicebot.store_journal import event_op, start_op, turn_op, update_op
from voicebot.telephony.base import CallTransport

log = logging.getLogger(__name__)
FIRST_ROW_WAIT_S = 0.5  # the greeting waits at most this long for the call's first row (a slow disk never more)

Prompt = Literal["not_heard", "transfer", "transfer_failed", "error", "offer_human", "bot_question", "goodbye"]


class CallSession:
    """One call: ``CallSession(transport, deps).run()`` answers it and returns its outcome when it has ended."""

    def __init__(self, transport: CallTransport, deps: SessionDeps, opening: str | None = None):
        self.t = transport
        self.opening = opening  # said instead of the greeting: a call the bot placed says who it is and why
        self.deps = deps
        self.config = deps.config
        self.rate = transport.sample_rate
        self.state = State.GREETING
        self.call_id = transport.info.call_id
        self.detector = TurnDetector(deps.vad, self.config.vad, turns=self.config.turns if deps.turn_model else None)
        self.guard = EscalationGuard(self.config.escalation)
        self.flow = MenuFlow(self.config.dialog.menu)
        self.queue: asyncio.Queue[CallInput] = asyncio.Queue()
        self.keypad = KeypadEntry(self.queue)  # digits keyed in for a PIN: one answer
        self.speaker = Speaker(transport, deps.synthesizer, self.detector, on_queued=self._prefill,
                               tts_timeout_s=self.config.faults.tts_timeout_s)
        self.listener = Listener(transport, self.detector, deps.transcriber, self.speaker, self.guard, self.config,
                                 self.queue, record=self._record, private=self._private, on_hang_up=self._hang_up,
                                 turn_model=deps.turn_model, on_resume=lambda: drop_silent_reply(self))
        self.outcome: Outcome | None = None
        self.outcome_reason: str | None = None
        self.transfer_target: str | None = None
        self.transcript: list[tuple[str, str]] = []
        self.events: list[StoredEvent] = []  # as recorded, for the operator's note
        self.caller_turns = 0
        self.hung_up = threading.Event()  # the line is gone: set on the loop, read by worker threads too
        self.agent: DialogueAgent | None = None  # once the call is answered
        self.gate: HangUpGate | None = None
        self.records = CallRecords(deps.store, self.call_id, on_failure=lambda exc: store_failed(self, exc))
        self.fault_apology_at: float | None = None  # call audio time of the apology after a fault
        self.early_fault: Exception | None = None  # a store failure before the first turn (faults.store_failed)
        self.on_turn: Callable[[str, str, TurnTimings | None], Any] | None = None  # `voicebot chat` prints turns
        self.clocks: list[TurnClock] = []  # every caller turn's stage times, for the benchmark
        self._turn_task: asyncio.Future | None = None  # the caller event being handled; a hang-up cancels it
        self._prefilling: asyncio.Future | None = None
        self.watchdog = SilenceWatchdog(transport, self.detector, self.config.faults.hold_after_s,  # no long silence
                                        lambda _silence_s: play_prerendered(self, "hold"),
                                        lambda: self.state in (State.TRANSFERRING, State.ENDED))

    # -- state and records ---------------------------------------------------------------------------------
    def _set(self, state: State) -> None:
        self.state = checked(self.state, state)

    async def _record(self, *events: StoredEvent) -> None:
        """Store events, in order (``events.to_row`` masks any PIN, date of birth or card number in them)."""
        for event in events:
            self.events.append(event)
            self.records.add(event_op(self.call_id, event, self.detector.now_s))

    @property
    def _last_bot(self) -> str:
        return next((said for role, said in reversed(self.transcript) if role == "bot"), "")

    def _private(self, text: str) -> str:
        """Caller words as they may be stored: PINs, birth dates and card numbers masked (the agent gets them raw)."""
        asked = bool(self.agent and (self.agent.awaiting_pin or self.agent.identity.bare_pin(
            text, self._last_bot, self.listener.whole_numbers)))  # no database read on the loop
        return mask_caller_turn(text, self.transcript, asked=asked)

    async def _turn(self, role: str, text: str, **kw: Any) -> None:
        text = self._private(text) if role == "caller" else text
        self.transcript.append((role, text))
        if self.on_turn is not None:
            self.on_turn(role, text, kw.get("timings"))
        self.records.add(turn_op(self.call_id, Turn(role=role, text=text, **kw)))

    # -- speaking ------------------------------------------------------------------------------------------
    async def _speak(self, sentences: AsyncIterator[str] | Iterable[str], clock: TurnClock | None = None,
                     fixed: bool = False) -> list[str]:
        """Play a reply (the listener may cut it: barge-in); record what was played as the bot's turn."""
        self._set(State.SPEAKING)
        reply = Reply(self.detector.now_s, clock)
        try:
            await self.speaker.play(sentences, reply, fixed)
        except asyncio.CancelledError:
            if self.hung_up.is_set() and reply.said:  # the caller left mid-reply: what they heard stays on record
                await self._turn("bot", reply.text, started_at=reply.started_at, ended_at=self.detector.now_s,
                                 timings=reply.timings())
            raise  # the caller hung up, or the call itself is being stopped
        if self.state == State.SPEAKING:
            self._set(State.LISTENING)
            if not reply.barged_in:
                self.detector.arm_no_input()
        if reply.said:
            await self._turn("bot", reply.text, barged_in=reply.barged_in, started_at=reply.started_at,
                             ended_at=self.detector.now_s, timings=reply.timings())
        return reply.said

    async def _say(self, prompt: Prompt, clock: TurnClock | None = None) -> None:
        await self._speak([getattr(self.config.dialog.prompts, prompt)], clock, fixed=True)

    def _prefill(self) -> None:
        """While the reply plays and the caller talks, let the model evaluate the conversation so far."""
        if self.agent is not None and (self._prefilling is None or self._prefilling.done()):
            self._prefilling = prefill_soon(self.agent, self.hung_up)  # its own thread: see prefill.py

    def _hang_up(self) -> None:
        """The control path of a hang-up (see the module's docstring), run by the listener as the line ends."""
        self.hung_up.set()
        self.listener.stop()
        if self._turn_task is not None and self.state not in (State.TRANSFERRING, State.ENDED):
            self._turn_task.cancel()

    # -- one caller event ----------------------------------------------------------------------------------
    async def _on_event(self, event: CallInput) -> None:
        if isinstance(event, (Utterance, Heard)):
            await self._on_heard(event)
        elif isinstance(event, TextReceived):
            await self._on_text(event)
        elif isinstance(event, DtmfReceived):
            await self._on_dtmf(event)
        elif isinstance(event, NoInput):
            await self._on_no_input()
        elif isinstance(event, Faulted):  # a stage the listener ran failed
            raise event.failure

    async def _on_heard(self, event: Utterance | Heard) -> None:
        utt = event.utterance if isinstance(event, Heard) else event
        clock = TurnClock(utt.speech_ended_at_s, max(utt.at_s - utt.speech_ended_at_s, 0.0))
        self.clocks.append(clock)
        self._set(State.THINKING)
        heard = event if isinstance(event, Heard) else await self.listener.hear(event)
        clock.mark("transcript_ready")
        text, transcript = heard.text, heard.transcript
        rejected = hallucination.check(text, transcript.no_speech_prob,
                                       transcript.avg_logprob if transcript.segments else 0.0) if text else None
        if rejected is not None:  # Whisper's subtitles for noise: a no-match, never a turn for the model
            await self._record(TranscriptRejected(rejected.reason, mask_secrets(text)))
            text = ""
        await self._turn("caller", text or "(unintelligible)", started_at=utt.started_at_s,
                         ended_at=utt.speech_ended_at_s, sentiment=self.guard.sentiment(text) if text else None,
                         barged_in=utt.barged_in, stt_no_speech_prob=transcript.no_speech_prob,
                         stt_avg_logprob=transcript.avg_logprob if transcript.segments else None,
                         timings=clock.timings())
        over_the_bot = utt.during_playback and not utt.barged_in  # "ok", "mm-hmm", a cough while the bot talked
        if not text:
            return None if over_the_bot else await self._no_match(clock)
        await self._on_caller_text(text, clock, backchannel=over_the_bot, heard_also=transcript.alternatives)

    async def _on_caller_text(self, text: str, clock: TurnClock | None, backchannel: bool = False,
                              heard_also: tuple[str, ...] = ()) -> None:
        """What the caller said, in words: the guard, the menu, then the model (``CallerContext.heard_also``)."""
        self.caller_turns += 1
        if self.agent is not None:
            self.agent.context.heard_also = heard_also
        escalation = self.guard.check_transcript(text)
        if escalation:
            return await self._escalate(escalation)
        if backchannel:
            return  # said while the bot talked: the guard heard it, nothing else to do
        dialog, writing = self.config.dialog, bool(self.agent and self.agent.pending_write)
        quick = quick_reply(text, self._last_bot, self.guard, dialog.prompts, self.deps.crm,
                            self.deps.knowledge is not None, writing, dialog.company)
        if quick is not None:  # "Sorry, what?", "are you a robot?", "that's all" (session/quick_replies.py)
            if quick.progress:
                self.guard.note_progress()
            return await self._speak(quick.sentences, clock, fixed=quick.fixed)
        keys = keys_may_be_said(self._last_bot, self.flow, greeted=self.caller_turns == 1 and self.opening is None)
        await self._on_flow(self.flow.match(text=text, spoken_keys=keys), clock, text)

    async def _on_text(self, event: TextReceived) -> None:
        clock = TurnClock(event.at_s, 0.0)
        self._set(State.THINKING)
        sentiment = self.guard.sentiment(event.text)
        await self._turn("caller", event.text, started_at=event.at_s, ended_at=event.at_s, sentiment=sentiment)
        await self._on_caller_text(event.text, clock)

    async def _on_flow(self, result: FlowResult, clock: TurnClock | None, text: str = "") -> None:
        if isinstance(result, Transfer):
            return await self._transfer(TransferReason.MENU, result.reason)
        if isinstance(result, Goto):
            self.guard.note_progress()
            if self.agent is not None:
                self.agent.bot_said(result.prompt)  # "Orders. What is your order number?": "10452" answers it
            return await self._speak([result.prompt], clock, fixed=True)
        if isinstance(result, NoMatch):
            return await self._no_match(clock, result.reprompt)
        if isinstance(result, FreeForm):  # progress, or a no-match when the model did not understand either
            return await self._model_turn(result.text or text, list(result.tools), clock)

    async def _no_match(self, clock: TurnClock | None, reprompt: str | None = None) -> None:
        if escalation := self.guard.note_no_match():
            return await self._escalate(escalation)
        prompt = PIN_NOT_CAUGHT if self.agent and self.agent.awaiting_pin else self.config.dialog.prompts.not_heard
        await self._speak([reprompt or prompt], clock, fixed=True)  # asked for a PIN: how to give it (identity)

    async def _on_dtmf(self, event: DtmfReceived) -> None:
        goes, key = ("menu", event.digit) if self.agent is None else \
            self.keypad.route(event.digit, event.at_s, self.agent.awaiting_pin, self._last_bot)  # session/keypad.py
        if goes == "wait":
            return
        if goes == "answer":
            await self._turn("caller", key, started_at=event.at_s, ended_at=event.at_s)  # masked: a PIN
            return await self._on_caller_text(key, TurnClock(event.at_s, 0.0))
        escalation = self.guard.check_dtmf(key)
        await self._turn("caller", f"[DTMF {key}]", started_at=event.at_s)
        if escalation:
            return await self._escalate(escalation)
        self._set(State.THINKING)
        await self._on_flow(self.flow.match(digit=key), None)

    async def _on_no_input(self) -> None:
        escalation = self.guard.note_no_input()
        await self._record(NoInputTimedOut())
        if escalation:
            return await self._escalate(escalation)
        again = no_input_reprompt(self.transcript, self.flow.reprompt(), self.config.dialog.prompts)
        await self._speak(again.sentences, fixed=again.fixed)

    async def _model_turn(self, text: str, tools: list[str], clock: TurnClock | None) -> None:
        self._set(State.THINKING)
        assert self.agent is not None
        before = self._last_bot
        turn = ModelTurn(self.agent, self.speaker, self.config.dialog, text, tools or None, clock,
                         timeout_s=self.config.faults.llm_timeout_s, before=before,
                         hold_back=lambda: self.guard.no_match_left <= 1)
        try:
            await self._speak(turn.sentences(), clock)
        except BaseException as exc:  # a fault (``run`` takes over) or a hang-up: what the filler and the tools did
            if not isinstance(exc, asyncio.CancelledError) or self.hung_up.is_set():  # stays on record
                await self._record(*turn.recorded)
            raise
        await self._record(*turn.recorded)
        if turn.transfer is not None:
            if self._last_bot == before and asks_again_before_hand_over(text, before, self.config.dialog.prompts):
                return await self._no_match(clock)  # "Tune" (a misheard "Two.") is no reason to hand over
            return await self._transfer(TransferReason.MODEL, turn.transfer.reason, clock=clock)  # "Please hold"
        if turn.held_back or turn.said_nothing:  # the guard's last "I'm not sure what you're asking.", or no
            await self._no_match(clock)  # sentence at all: never silence (the no-match's ladder ends with a person)
        else:  # a reply that did not understand is a no-match (never the last one: ``hold_back`` kept that unsaid)
            self.guard.note_no_match() if turn.lost else self.guard.note_progress()

    # -- escalation and transfer ---------------------------------------------------------------------------
    async def _escalate(self, escalation: Escalation) -> None:
        await self._record(Escalated(escalation.reason, escalation.detail, escalation.sentiment))
        prompt: Prompt = "offer_human" if escalation.reason == TransferReason.FRUSTRATION else "transfer"
        await self._transfer(escalation.reason, escalation.detail, prompt=prompt, escalation=escalation)

    def _summary(self, escalation: Escalation | None = None, number: bool = True) -> str:
        return operator_note(self.guard, self.transcript, self.events, self._context, self.t.info.caller_id,
                             escalation, number)

    @property
    def _context(self) -> CallerContext:
        assert self.agent is not None, "the call has not been answered"
        return self.agent.context

    async def _transfer(self, reason: str, detail: str, prompt: Prompt = "transfer",
                        escalation: Escalation | None = None, clock: TurnClock | None = None) -> None:
        await hand_over(self, reason, detail, prompt, escalation, clock)

    # -- the call ------------------------------------------------------------------------------------------
    async def _answer(self) -> CallerContext:
        """The call's row in the store, who the CRM says is calling, and the agent for this call."""
        deps, info, crm_s = self.deps, self.t.info, self.config.faults.crm_timeout_s
        start = start_op(self.call_id, info.caller_id, deps.worker, test=deps.test_calls)
        lookup = asyncio.ensure_future(in_thread("crm", crm_s, CallerContext.start, deps.crm, info.caller_id,
                                                 max_attempts=self.config.crm.verification_attempts,
                                                 lockout_hours=self.config.crm.verification_lockout_hours))
        await asyncio.wait([lookup], timeout=FIRST_ROW_WAIT_S)  # the first row names the customer: a live card
        found = lookup.done() and not lookup.exception() and lookup.result().customer  # never shows them unknown
        self.records.add(start | {"customer_id": str(found.id) if found else None})  # a slow CRM: written now
        context = await lookup
        self.listener.whole_numbers = await in_thread("crm", crm_s, deps.crm.order_number_lengths)  # said whole
        await self.records.settled(FIRST_ROW_WAIT_S)  # the call's row written, or the store known to have failed
        if context.customer is not None and not found:
            self.records.add(update_op(self.call_id, customer_id=str(context.customer.id)))
        company_prompt = self.config.dialog.system_prompt.format(company=self.config.dialog.company)
        self.gate = HangUpGate(deps.chat, CRM_TOOLS, self.hung_up)
        self.agent = DialogueAgent(self.gate, context, company_prompt, tools=self.gate,
                                   today=deps.today or deps.crm.now().date(), intents=deps.intents,
                                   knowledge=KnowledgeStep(deps.knowledge) if deps.knowledge is not None else None)
        return context

    async def run(self) -> Outcome:
        failure: Exception | None = None
        try:
            context = await self._answer()
        except Exception as exc:  # the CRM failed as the call was answered: apology, then a person
            failure = exc
        failure = failure or self.early_fault
        listener = asyncio.create_task(self.listener.run(), name=f"listen-{self.call_id}")
        try:
            if failure is not None:
                await self._cancellable(recover(self, failure))
            else:
                await self._converse(context)
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
            await self._finish()
        assert self.outcome is not None
        return self.outcome

    async def _converse(self, context: CallerContext) -> None:
        name = f", {context.customer.name.split()[0]}" if context.customer else ""
        greeting = self.opening or self.config.dialog.greeting.format(name=name, company=self.config.dialog.company)
        self.detector.set_open_floor(self.opening is None)  # the caller's first words say why they call
        self.t.busy(True)
        try:
            # a placed call's opening (whose booking, what time) is made for this call, sentence by sentence: through
            # the disk cache it left a file per reminder there, for ever, personal data outside the call store
            opening = split_sentences(self.opening) if self.opening else None
            await self._cancellable(self._speak(opening or [greeting], fixed=opening is None))
        except Exception as exc:  # the greeting could not be synthesised
            await self._cancellable(recover(self, exc))
        self.t.busy(False)
        while self.state != State.ENDED and not self.hung_up.is_set():
            event = await self.queue.get()
            self.t.busy(True)
            try:
                if isinstance(event, CallerHungUp):
                    break
                await self._cancellable(guarded(self.watchdog, turn_ended(event), self._on_event(event)))
            except Exception as exc:  # a stage failed or hung (faults.StageFailed), or a bug: never silence
                await self._cancellable(recover(self, exc))
            self.t.busy(False)  # the bot's whole response to this event is queued
            self.listener.expect(self._last_bot, self.agent is not None and self.agent.awaiting_pin,
                                 first=self.caller_turns == 0 and self.opening is None)

    async def _cancellable(self, turn: Coroutine[Any, Any, Any]) -> None:
        """Run one turn as a task that a hang-up cancels (see ``_hang_up``); a cancelled turn simply ends."""
        self._turn_task = asyncio.ensure_future(turn)
        try:
            await self._turn_task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the call itself is being stopped (the turn is cancelled with it)
        finally:
            self._turn_task = None

    async def _finish(self) -> None:
        await finish(self)
