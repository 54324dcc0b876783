"""CallSession: one call, from answer to hang-up, as a small state machine with three tasks.

- The **listener** reads the transport: every audio frame goes through the turn detector (cheap, in audio
  time); a barge-in stops playback at once, right there, before the next frame; utterances, DTMF and
  no-input timeouts go onto the session's queue.
- The **consumer** takes one event at a time: the escalation guard first (operator phrases, DTMF 0,
  frustration, repeated no-match), then the menu flow, then the dialogue agent for free-form turns.
- The **speaker** plays a reply sentence by sentence while the model is still writing; it is a task the
  listener can cancel.

Heavy work (Whisper, the model, Piper, SQLite) runs in worker threads, never on the event loop. Every turn is
committed to the call store when it ends. Whatever goes wrong, the caller hears something and is offered a
person: nobody is left in silence.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

import numpy as np

from voicebot import metrics
from voicebot.audio import AudioFrame
from voicebot.config import Config
from voicebot.crm.repository import Repository
from voicebot.crm.toolkit import ToolRegistry
from voicebot.crm.tools import CRM_TOOLS
from voicebot.crm.verification import CallerContext
from voicebot.dialog.agent import (DialogueAgent, FirstToken, Guarded, Sentence, ToolCalled, TransferRequested)
from voicebot.dialog.flow import FreeForm, Goto, MenuFlow, NoMatch, Transfer
from voicebot.dialog.guard import Escalation, EscalationGuard, confirmed_orders
from voicebot.dialog.streaming import iterate_in_thread
from voicebot.events import (BackchannelHeard, BargedIn, CallbackCreated, CallerHungUp, DtmfReceived, ErrorOccurred,
                             Escalated, FillerPlayed, Heard, NoInputTimedOut, StoredEvent, TextReceived, ToolCallMade,
                             TransferEnded, TransferReason, TransferStarted, guard_fired, to_row)
from voicebot.llm.base import ChatMessage, ChatModel
from voicebot.review.redact import mask_caller_turn
from voicebot.speech.stt import Transcriber
from voicebot.speech.tts import Synthesizer
from voicebot.speech.turns import BargeIn, LikelyEnd, NoInput, TurnDetector, Utterance
from voicebot.speech.vad import VoiceActivity
from voicebot.store import CallStore, Outcome, Turn, TurnTimings
from voicebot.telephony.base import CallTransport

log = logging.getLogger(__name__)

PROMPTS = {
    "not_heard": "Sorry, I didn't catch that. Could you say it again?",
    "transfer": "I'll connect you with a colleague now. Please hold.",
    "transfer_failed": "I'm sorry, no one can take your call right now. I've asked a colleague to call you back "
                       "at this number. Is there anything else I can help with?",
    "error": "I'm sorry, something went wrong on my side. Let me connect you with a colleague.",
    "offer_human": "I'm sorry about this. Let me get you to a person who can help.",
    "goodbye": "Thank you for calling. Goodbye.",
}


BACKCHANNEL_WORDS = frozenset("ok okay k mm hmm mhm mm-hmm uh-huh uh huh yeah yes yep yup right sure alright "
                              "got it i see cool great fine".split())


TAKE_TURN_WORDS = frozenset("stop wait no nope hold sorry what pardon hello hey help".split())
BACKCHANNEL_MAX_S = 1.0


def is_backchannel(text: str, speech_s: float) -> bool:
    """"Mm-hmm", "okay", "right", "got it": the caller is listening, not taking the turn (or only noise).

    Whisper often mishears a short "mm-hmm" as words ("Amen, mom"), so a very short utterance of at most two
    words counts too, unless it holds a word that takes the turn ("stop", "wait", "no").
    """
    words = [w for w in (w.strip(".,!?;:'\"").lower() for w in text.split()) if w]
    if any(w in TAKE_TURN_WORDS for w in words):
        return False
    return (len(words) <= 3 and all(w in BACKCHANNEL_WORDS for w in words)) or (
        speech_s <= BACKCHANNEL_MAX_S and len(words) <= 2)


class State(StrEnum):
    GREETING = "greeting"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    TRANSFERRING = "transferring"
    ENDED = "ended"


_NEXT: dict[State, set[State]] = {
    State.GREETING: {State.SPEAKING, State.ENDED},
    State.LISTENING: {State.THINKING, State.SPEAKING, State.TRANSFERRING, State.ENDED},
    State.THINKING: {State.SPEAKING, State.LISTENING, State.TRANSFERRING, State.ENDED},
    State.SPEAKING: {State.LISTENING, State.THINKING, State.TRANSFERRING, State.ENDED},
    State.TRANSFERRING: {State.SPEAKING, State.LISTENING, State.ENDED},
    State.ENDED: set(),
}


class IllegalTransition(RuntimeError):
    pass


@dataclass
class SessionDeps:
    """Everything a call needs that outlives the call: loaded models, databases, config."""

    config: Config
    transcriber: Transcriber
    synthesizer: Synthesizer
    chat: ChatModel
    vad: VoiceActivity
    crm: Repository
    store: CallStore
    worker: str = "main"
    today: date | None = None
    on_call_end: Any = None  # callable(call_id): e.g. the review app's background analysis


@dataclass
class TurnClock:
    """Stage times of one caller turn. Each stage is kept as its delay after the caller stopped speaking (the
    endpointing wait in audio, plus processing in wall-clock time, so it is right at any simulation speed);
    the store gets positions in the call audio: end of speech + delay. The benchmark and the review app show
    these numbers."""

    end_of_speech: float
    endpoint_delay: float
    started_wall: float = field(default_factory=time.perf_counter)
    marks: dict[str, float] = field(default_factory=dict)

    def mark(self, stage: str) -> None:
        self.marks.setdefault(stage, self.endpoint_delay + time.perf_counter() - self.started_wall)

    def delay(self, stage: str) -> float | None:
        return self.marks.get(stage)

    def timings(self) -> TurnTimings:
        return TurnTimings(end_of_speech=self.end_of_speech, **{
            k: None if k not in self.marks else round(self.end_of_speech + self.marks[k], 3)
            for k in ("transcript_ready", "first_token", "first_sentence", "first_audio_out")})


class CallEnded(Exception):
    """Raised in a worker thread still working for a call whose caller has hung up."""


@dataclass
class HangUpGate:
    """The chat model and the CRM tools as one call's agent sees them: both stop once the caller has hung up.

    A model turn runs in a worker thread, and asyncio cannot cancel a thread: cancelling the turn only stops
    reading it, while the thread would go on generating and then run the tool the model chose (a ticket or a
    callback for a caller who has gone). So the thread checks for itself, before every piece the model hands
    over and before every tool, and raises CallEnded. It stands in for both the ChatModel and the ToolRegistry.
    """

    chat: ChatModel
    tools: ToolRegistry
    hung_up: threading.Event
    _open: int = 0  # streams being read now
    _released: threading.Condition = field(default_factory=threading.Condition)

    @property
    def name(self) -> str:
        return self.chat.name

    def check(self) -> None:
        if self.hung_up.is_set():
            raise CallEnded("the caller hung up")

    def stream(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Iterator[str]:
        with self._released:
            self._open += 1
        try:
            self.check()
            pieces = self.chat.stream(messages, **kwargs)
            try:
                for piece in pieces:
                    self.check()
                    yield piece
            finally:
                close = getattr(pieces, "close", None)
                if close is not None:
                    close()  # stops generation now, not when the generator is garbage-collected
        finally:
            with self._released:
                self._open -= 1
                self._released.notify_all()

    def warm(self, system_prompt: str) -> None:
        self.chat.warm(system_prompt)

    def specs(self) -> list[dict[str, Any]]:
        return self.tools.specs()

    def call(self, name: str, args: dict[str, Any] | str | None, context: Any) -> dict[str, Any]:
        self.check()  # nothing is written for a caller who has gone
        return self.tools.call(name, args, context)

    def wait_released(self, timeout_s: float) -> bool:
        """Block until no stream is open: the call ends only once its model is let go (after-call analysis may
        take the same model as soon as no call is live)."""
        with self._released:
            return self._released.wait_for(lambda: self._open == 0, timeout_s)


class CallSession:
    live = 0  # sessions running in this process: background work (after-call analysis) waits while any is

    def __init__(self, transport: CallTransport, deps: SessionDeps):
        self.t = transport
        self.deps = deps
        self.config = deps.config
        self.rate = transport.sample_rate
        self.state = State.GREETING
        self.call_id = transport.info.call_id
        self.detector = TurnDetector(deps.vad, self.config.vad)
        self.guard = EscalationGuard(self.config.escalation)
        self.flow = MenuFlow(self.config.dialog.menu)
        self.queue: asyncio.Queue = asyncio.Queue()
        self.speaking: asyncio.Task | None = None
        self.barged_in = False
        self.outcome: Outcome | None = None
        self.outcome_reason: str | None = None
        self.transfer_target: str | None = None
        self.transcript: list[tuple[str, str]] = []
        self.events: list[StoredEvent] = []  # as recorded, for the operator's note
        self.caller_turns = 0
        self.hung_up = threading.Event()  # the line is gone: set on the loop, read by worker threads too
        self._turn_task: asyncio.Task | None = None  # the caller event being handled; a hang-up cancels it
        self._prefilling: asyncio.Future | None = None
        self._paused = False
        self._deciding: asyncio.Task | None = None
        self.on_turn = None  # callable(role, text, timings): `voicebot chat` and `simulate` print turns with it
        self.clocks: list[TurnClock] = []  # every caller turn's stage times, for the benchmark
        self._early: tuple[float, asyncio.Future] | None = None  # speech recognition started before end of turn

    # -- state ---------------------------------------------------------------------------------------------
    def _set(self, state: State) -> None:
        if state == self.state:
            return
        if state not in _NEXT[self.state]:
            raise IllegalTransition(f"{self.state} -> {state}")
        self.state = state

    async def _db(self, fn, *args, **kwargs):
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _record(self, event: StoredEvent) -> None:
        """Store one event (``events.to_row`` masks any PIN, date of birth or card number in it)."""
        self.events.append(event)
        await self._db(self.deps.store.add_event, self.call_id, event, at=self.detector.now_s)

    def _private(self, text: str) -> str:
        """Caller words as they may be kept: PINs, dates of birth and card numbers masked (every number in an
        answer to a question for one). The guard and the agent get the raw words; nothing stored does."""
        agent = getattr(self, "agent", None)  # set when the call is answered
        return mask_caller_turn(text, self.transcript, asked=bool(agent and agent.awaiting_pin))

    async def _turn(self, role: str, text: str, **kw) -> None:
        text = self._private(text) if role == "caller" else text
        self.transcript.append((role, text))
        if self.on_turn is not None:
            self.on_turn(role, text, kw.get("timings"))
        await self._db(self.deps.store.add_turn, self.call_id, Turn(role=role, text=text, **kw))

    # -- speaking ------------------------------------------------------------------------------------------
    async def _play_sentences(self, sentences: AsyncIterator[str], clock: TurnClock | None, fixed: bool,
                              said: list[str]) -> None:
        synth = self.deps.synthesizer.cached if fixed else self._synth
        try:
            async for sentence in sentences:
                pcm = await asyncio.to_thread(synth, sentence, self.rate)
                if clock:
                    clock.mark("first_audio_out")
                self.t.play(pcm)
                said.append(sentence)
            self._prefill()  # the CPU is free while the reply plays: get the model ready for the next turn
            await self.t.wait_played()
        finally:
            await sentences.aclose()  # stops the model when a barge-in cancels the reply

    def _synth(self, sentence: str, rate: int) -> bytes:
        return b"".join(chunk.pcm for chunk in self.deps.synthesizer.stream(sentence, rate))

    async def _speak(self, sentences: AsyncIterator[str] | Iterable[str], clock: TurnClock | None = None,
                     fixed: bool = False) -> list[str]:
        """Play a reply in its own task (the listener cancels it on barge-in); record what was played."""
        if not hasattr(sentences, "__aiter__"):
            sentences = _aiter(list(sentences))
        self._set(State.SPEAKING)
        self.barged_in = False
        self.detector.set_bot_speaking(True)
        said: list[str] = []
        started_at = self.detector.now_s
        self.speaking = asyncio.create_task(self._play_sentences(sentences, clock, fixed, said))
        try:
            await self.speaking
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                self.speaking.cancel()
                if self.hung_up.is_set() and said:  # the caller left mid-reply: what they heard stays on record
                    await self._turn("bot", " ".join(said), started_at=started_at, ended_at=self.detector.now_s,
                                     timings=clock.timings() if clock else TurnTimings())
                raise  # the caller hung up, or the call itself is being stopped
        finally:
            self.speaking = None
            self.detector.set_bot_speaking(False)
        if self.state == State.SPEAKING:
            self._set(State.LISTENING)
            if not self.barged_in:
                self.detector.arm_no_input()
        if said:
            await self._turn("bot", " ".join(said), barged_in=self.barged_in, started_at=started_at,
                             ended_at=self.detector.now_s, timings=clock.timings() if clock else TurnTimings())
        return said

    def _prefill(self) -> None:
        """While the caller talks, let the model evaluate the conversation so far (off the event loop)."""
        if self._prefilling is None or self._prefilling.done():
            self._prefilling = asyncio.ensure_future(asyncio.to_thread(self._safe_prefill))

    def _safe_prefill(self) -> None:
        try:
            self.agent.prefill()
        except Exception:  # only an optimisation: the next turn will evaluate it anyway
            log.debug("prefill failed", exc_info=True)

    async def _say(self, key_or_text: str) -> None:
        await self._speak([PROMPTS.get(key_or_text, key_or_text)], fixed=True)

    # -- listening -----------------------------------------------------------------------------------------
    async def _listen(self) -> None:
        try:
            async for event in self.t.events():
                if isinstance(event, AudioFrame):
                    played = getattr(self.t, "last_played", b"")
                    if played:
                        self.detector.note_playback(AudioFrame(played, self.rate))  # the echo gate's reference
                    for turn_event in self.detector.feed(event):
                        if isinstance(turn_event, BargeIn):
                            self.t.pause()  # silent within the barge-in window; the words decide what next
                            self._paused = True
                        elif isinstance(turn_event, LikelyEnd) and not self._paused:
                            self._early = (turn_event.speech_ended_at_s, asyncio.ensure_future(asyncio.to_thread(
                                self.deps.transcriber.transcribe, turn_event.pcm, turn_event.sample_rate)))
                        elif isinstance(turn_event, Utterance) and self._paused:
                            self._deciding = asyncio.create_task(self._decide_barge_in(turn_event))
                        elif isinstance(turn_event, (Utterance, NoInput)):
                            self.queue.put_nowait(turn_event)
                elif isinstance(event, DtmfReceived):
                    self.detector.cancel_no_input()
                    self._barge_in()  # a key press interrupts a prompt, as on any phone menu
                    self.queue.put_nowait(event)
                elif isinstance(event, TextReceived):
                    self.queue.put_nowait(event)
                elif isinstance(event, CallerHungUp):
                    return
        finally:  # the caller hung up or the line ended: either way nobody is listening any more
            self._hang_up()
            self.queue.put_nowait(CallerHungUp(self.detector.now_s))

    def _hang_up(self) -> None:
        """A control event, not a turn: it does not wait in the queue behind the turn in progress but cancels it
        (playback, synthesis, generation), and the model's thread stops at its next piece, before any tool. A
        transfer under way is left to finish: the transport's result decides the call's outcome."""
        self.hung_up.set()
        if self._deciding is not None:
            self._deciding.cancel()
        if self._turn_task is not None and self.state not in (State.TRANSFERRING, State.ENDED):
            self._turn_task.cancel()

    async def _decide_barge_in(self, utt: Utterance) -> None:
        """The bot paused for caller speech: a backchannel lets it carry on, anything else takes the turn."""
        transcript = await asyncio.to_thread(self.deps.transcriber.transcribe, utt.pcm, utt.sample_rate)
        stt = self.config.stt
        text = transcript.accepted(stt.no_speech_threshold, stt.logprob_threshold).text
        self._paused = False
        speech_s = utt.speech_ended_at_s - utt.started_at_s - self.config.vad.preroll_ms / 1000
        evidence = {"text": self._private(text), "speech_s": round(speech_s, 2)}
        if is_backchannel(text, speech_s) and not self.guard.operator_phrase(text):
            self.t.resume()
            await self._record(BackchannelHeard(**evidence))
            return
        await self._record(BargedIn(**evidence))
        self._barge_in()
        self.queue.put_nowait(Heard(utt, transcript, text))

    def _barge_in(self) -> None:
        """Runs on the listener, inside one frame: stop the audio now, then cancel what produces it."""
        if self.speaking is not None and not self.speaking.done():
            self.barged_in = True
            self.t.flush()
            self.speaking.cancel()

    # -- one caller event ----------------------------------------------------------------------------------
    async def _on_utterance(self, utt: Utterance, transcript=None) -> None:
        clock = TurnClock(utt.speech_ended_at_s, max(utt.at_s - utt.speech_ended_at_s, 0.0))
        self.clocks.append(clock)
        self._set(State.THINKING)
        stt = self.config.stt
        early, self._early = self._early, None
        if transcript is None and early is not None and early[0] == utt.speech_ended_at_s:
            transcript = await early[1]  # started while the end of turn was still being confirmed
        if transcript is None:
            transcript = await asyncio.to_thread(self.deps.transcriber.transcribe, utt.pcm, utt.sample_rate)
        clock.mark("transcript_ready")
        heard = transcript.accepted(stt.no_speech_threshold, stt.logprob_threshold)
        text = heard.text.strip()
        sentiment = self.guard.sentiment(text) if text else None
        await self._turn("caller", text or "(unintelligible)", started_at=utt.started_at_s,
                         ended_at=utt.speech_ended_at_s, sentiment=sentiment, barged_in=utt.barged_in,
                         stt_avg_logprob=transcript.avg_logprob if transcript.segments else None,
                         stt_no_speech_prob=transcript.no_speech_prob, timings=clock.timings())
        if not text:
            if utt.during_playback and not utt.barged_in:
                return  # a cough or "mm-hmm" while the bot talked: carry on
            return await self._no_match(clock)
        await self._on_caller_text(text, clock, backchannel=utt.during_playback and not utt.barged_in)

    async def _on_caller_text(self, text: str, clock: TurnClock | None, backchannel: bool = False) -> None:
        """What the caller said, in words: the guard first, then the menu, then the model."""
        self.caller_turns += 1
        escalation = self.guard.check_transcript(text)
        if escalation:
            return await self._escalate(escalation)
        if backchannel:
            return  # "ok", "mm-hmm" while the bot talked: the guard heard it, nothing else to do
        await self._on_flow(self.flow.match(text=text), clock, text)

    async def _on_text(self, event: TextReceived) -> None:
        clock = TurnClock(event.at_s, 0.0)
        self._set(State.THINKING)
        sentiment = self.guard.sentiment(event.text)
        await self._turn("caller", event.text, started_at=event.at_s, ended_at=event.at_s, sentiment=sentiment)
        await self._on_caller_text(event.text, clock)

    async def _on_flow(self, result, clock: TurnClock | None, text: str = "") -> None:
        if isinstance(result, Transfer):
            return await self._transfer(TransferReason.MENU, result.reason)
        if isinstance(result, Goto):
            self.guard.note_progress()
            return await self._speak([result.prompt], clock, fixed=True)
        if isinstance(result, NoMatch):
            return await self._no_match(clock, result.reprompt)
        if isinstance(result, FreeForm):
            self.guard.note_progress()
            return await self._model_turn(result.text or text, list(result.tools), clock)

    async def _no_match(self, clock: TurnClock | None, reprompt: str | None = None) -> None:
        escalation = self.guard.note_no_match()
        if escalation:
            return await self._escalate(escalation)
        await self._speak([reprompt or PROMPTS["not_heard"]], clock, fixed=True)

    async def _on_dtmf(self, event: DtmfReceived) -> None:
        escalation = self.guard.check_dtmf(event.digit)
        await self._turn("caller", f"[DTMF {event.digit}]", started_at=event.at_s)
        if escalation:
            return await self._escalate(escalation)
        self._set(State.THINKING)
        await self._on_flow(self.flow.match(digit=event.digit), None)

    async def _on_no_input(self) -> None:
        escalation = self.guard.note_no_input()
        await self._record(NoInputTimedOut())
        if escalation:
            return await self._escalate(escalation)
        await self._speak([self.flow.reprompt()], fixed=True)

    # -- the model -----------------------------------------------------------------------------------------
    async def _model_turn(self, text: str, tools: list[str], clock: TurnClock | None) -> None:
        self._set(State.THINKING)
        pending: list[Any] = []
        transfer: TransferRequested | None = None
        filler_after = self.config.dialog.filler_after_ms / 1000

        async def sentences() -> AsyncIterator[str]:
            nonlocal transfer
            events = iterate_in_thread(lambda: self.agent.turn(text, tools or None))
            waiting = asyncio.ensure_future(anext(events, None))
            try:
                done, _ = await asyncio.wait({waiting}, timeout=filler_after)
                if not done and filler_after > 0:  # the model is slow: say so rather than leave a silence
                    self.t.play(await asyncio.to_thread(self.deps.synthesizer.cached, self.config.dialog.filler,
                                                        self.rate))
                    pending.append("filler")
                event = await waiting
                while event is not None:
                    if isinstance(event, FirstToken) and clock:
                        clock.mark("first_token")
                    elif isinstance(event, Sentence):
                        if clock:
                            clock.mark("first_sentence")
                        yield event.text
                    elif isinstance(event, (ToolCalled, Guarded)):
                        pending.append(event)
                    elif isinstance(event, TransferRequested):
                        transfer = event
                    event = await anext(events, None)
            finally:
                waiting.cancel()
                await events.aclose()

        try:
            await self._speak(sentences(), clock)
        except asyncio.CancelledError:
            if self.hung_up.is_set():  # what the filler and the tools did before the caller left stays on record
                await self._record_agent_events(pending)
            raise
        except Exception as exc:  # the model or a tool failed: never leave the caller in silence
            log.exception("model turn failed")
            await self._record(ErrorOccurred(stage="dialogue", error=repr(exc)))
            return await self._transfer(TransferReason.ERROR, "the assistant failed", prompt="error")
        await self._record_agent_events(pending)
        if transfer is not None:
            await self._transfer(TransferReason.MODEL, transfer.reason)

    async def _record_agent_events(self, pending: list[Any]) -> None:
        for event in pending:
            if event == "filler":
                await self._record(FillerPlayed())
            elif isinstance(event, ToolCalled):
                await self._record(ToolCallMade(event.name, event.args, event.result, round(event.elapsed_s, 3)))
            else:
                await self._record(guard_fired(event.kind, event.original, event.items))

    # -- escalation and transfer ---------------------------------------------------------------------------
    async def _escalate(self, escalation: Escalation) -> None:
        await self._record(Escalated(escalation.reason, escalation.detail, escalation.sentiment))
        prompt = "offer_human" if escalation.reason == "frustration" else "transfer"
        await self._transfer(escalation.reason, escalation.detail, prompt=prompt, escalation=escalation)

    async def _transfer(self, reason: str, detail: str, prompt: str = "transfer",
                        escalation: Escalation | None = None) -> None:
        caller = self.agent.context.verified_customer or self.agent.context.customer
        summary = self.guard.summary(self.transcript, caller=self._caller_note(), escalation=escalation,
                                     orders=confirmed_orders(map(to_row, self.events)))
        target = self.config.sip.operator_uri  # only ever from the config, never from what a caller says
        await self._say(prompt)
        self._set(State.TRANSFERRING)
        await self._record(TransferStarted(reason, detail, target, summary))
        if self.config.sip.transfer_mode == "warm":  # the bot tells the operator who is calling, then bridges
            spoken = re.sub(r"\s*\(\+?\d[\d\s().-]*\)", "", summary)  # the number is on the operator's phone already
            brief = await asyncio.to_thread(self._synth, f"Call from the automated assistant. {spoken}", self.rate)
            result = await self.t.transfer(target, brief=brief)
        else:
            result = await self.t.transfer(target)
        await self._record(TransferEnded.of(result, self.config.sip.transfer_mode))
        if result.ok:
            self.outcome, self.outcome_reason, self.transfer_target = Outcome.TRANSFERRED, reason, target
            self._set(State.ENDED)
            return
        callback = await self._db(self.deps.crm.request_callback, self.t.info.caller_id,
                                  f"Transfer failed ({result.status} {result.reason}). {summary}",
                                  customer_id=caller.id if caller else None)
        await self._record(CallbackCreated(callback.id))
        self.outcome, self.outcome_reason = Outcome.TRANSFER_FAILED, f"{reason}; callback {callback.id}"
        self.guard.reset()
        self._set(State.LISTENING)
        await self._say("transfer_failed")

    # -- the call ------------------------------------------------------------------------------------------
    async def run(self) -> Outcome:
        CallSession.live += 1
        try:
            return await self._run()
        finally:
            CallSession.live -= 1

    async def _run(self) -> Outcome:
        deps = self.deps
        info = self.t.info
        self.call_id = await self._db(deps.store.start_call, info.caller_id, worker=deps.worker,
                                      call_id=info.call_id)
        context = await self._db(CallerContext.start, deps.crm, info.caller_id,
                                 max_attempts=self.config.crm.verification_attempts)
        if context.customer is not None:
            await self._db(deps.store.update_call, self.call_id, customer_id=str(context.customer.id))
        company_prompt = self.config.dialog.system_prompt.format(company=self.config.dialog.company)
        self.gate = HangUpGate(deps.chat, CRM_TOOLS, self.hung_up)
        self.agent = DialogueAgent(self.gate, context, company_prompt, tools=self.gate,
                                   today=deps.today or date.today())
        listener = asyncio.create_task(self._listen(), name=f"listen-{self.call_id}")
        try:
            name = f", {context.customer.name.split()[0]}" if context.customer else ""
            greeting = self.config.dialog.greeting.format(name=name, company=self.config.dialog.company)
            self.t.busy(True)
            await self._cancellable(self._speak([greeting], fixed=True))
            self.t.busy(False)
            while self.state != State.ENDED and not self.hung_up.is_set():
                event = await self.queue.get()
                self.t.busy(True)
                try:
                    if isinstance(event, CallerHungUp):
                        break
                    await self._cancellable(self._on_event(event))
                except Exception as exc:
                    log.exception("call %s: turn failed", self.call_id)
                    metrics.ERRORS.labels(kind="session").inc()
                    await self._record(ErrorOccurred(error=repr(exc)))
                    if self.state not in (State.TRANSFERRING, State.ENDED) and not self.hung_up.is_set():
                        self.state = State.LISTENING
                        await self._cancellable(self._transfer(TransferReason.ERROR, repr(exc), prompt="error"))
                self.t.busy(False)  # the bot's whole response to this event is queued
                self.detector.expect_digits(self.agent.awaiting_pin)  # a PIN is read slowly: wait longer
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
            await self._finish()
        return self.outcome

    async def _on_event(self, event: Utterance | Heard | TextReceived | DtmfReceived | NoInput) -> None:
        if isinstance(event, Utterance):
            await self._on_utterance(event)
        elif isinstance(event, Heard):
            await self._on_utterance(event.utterance, event.transcript)
        elif isinstance(event, TextReceived):
            await self._on_text(event)
        elif isinstance(event, DtmfReceived):
            await self._on_dtmf(event)
        elif isinstance(event, NoInput):
            await self._on_no_input()

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

    def _caller_note(self) -> str | None:
        context = self.agent.context
        customer = context.verified_customer or context.customer
        if customer is None:
            return None
        verified = "verified" if context.verified_customer is not None else "not verified"
        return f"{customer.name} ({self.t.info.caller_id}), {verified}"

    async def _finish(self) -> None:
        await asyncio.to_thread(self.gate.wait_released, 10.0)  # a generation cut by the hang-up stops first
        if self.outcome is None:
            self.outcome = Outcome.RESOLVED if self.caller_turns else Outcome.ABANDONED
            self.outcome_reason = "caller hung up"
        self.state = State.ENDED
        metrics.CALLS.labels(outcome=str(self.outcome)).inc()
        for clock in self.clocks:
            metrics.observe_turn({"endpointing": clock.endpoint_delay, **clock.marks})
        store = self.deps.store
        caller, bot = self.t.recordings()
        try:
            await self._db(store.save_recording, self.call_id, "caller", caller, self.rate)
            await self._db(store.save_recording, self.call_id, "bot", bot, self.rate)
            await self._db(store.save_recording, self.call_id, "mixed", mix(caller, bot), self.rate)
        except Exception:  # a full disk must not lose the call record
            log.exception("call %s: recordings not saved", self.call_id)
        caller_info = self.agent.context.verified_customer or self.agent.context.customer
        summary = self.guard.summary(self.transcript, caller=self._caller_note(), orders=confirmed_orders(map(to_row, self.events)))
        await self._db(store.finish_call, self.call_id, self.outcome, self.outcome_reason,
                       transfer_target=self.transfer_target, summary=summary)
        await self._db(self.deps.crm.add_interaction, summary, str(self.outcome), phone=self.t.info.caller_id,
                       customer_id=caller_info.id if caller_info else None, call_id=self.call_id)
        if self.deps.on_call_end is not None:
            self.deps.on_call_end(self.call_id)


def mix(a: bytes, b: bytes) -> bytes:
    """Both sides of the call in one track, for playback in the review app."""
    n = max(len(a), len(b)) // 2
    x = np.zeros(n, dtype=np.int32)
    x[:len(a) // 2] += np.frombuffer(a, dtype=np.int16)
    x[:len(b) // 2] += np.frombuffer(b, dtype=np.int16)
    return np.clip(x, -32768, 32767).astype(np.int16).tobytes()


async def _aiter(items: list[str]) -> AsyncIterator[str]:
    for item in items:
        yield item
