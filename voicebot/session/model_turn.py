"""One free-form turn by the language model, as the speaker needs it: sentences to say, in order, as they come.

The dialogue agent runs in a worker thread and hands over what it does as it does it: its first token, each
sentence it wrote, each CRM tool it called, a sentence a guard held back, a request to transfer. The caller must
hear the first sentence while the model is still writing the next, so ``sentences`` yields sentences to the
speaker at once; everything else is kept for the core to record when the reply has played (``recorded``) or to act
on (``transfer``). When the model is slow the caller hears the filler instead of silence; when it gives nothing
for ``timeout_s`` (``faults.llm_timeout_s``: hung, or its server gone quiet) or fails, the turn raises
``faults.StageFailed("llm")`` and the session apologises and transfers. ``hold_back`` may keep the first sentence
back and end the turn: the core asks it to when a reply that did not understand the caller
(``quick_replies.not_understood``) would be the guard's last no-match, which reaches a person instead.

Closing the stream (a barge-in, a hang-up) closes the agent's: the model stops at its next piece.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from voicebot.config import DialogConfig
from voicebot.dialog.agent import (DialogueAgent, FirstToken, Guarded, IntentFound, Sentence, ToolCalled,
                                   TransferRequested)
from voicebot.dialog.streaming import iterate_in_thread
from voicebot.dialog.knowledge_step import KnowledgeUsed
from voicebot.events import (FillerPlayed, IntentRecognized, KnowledgeAnswered, StoredEvent, ToolCallMade,
                             guard_fired)
from voicebot.session.faults import StageFailed, stage_of
from voicebot.session.quick_replies import not_understood
from voicebot.session.speaker import Speaker, TurnClock
from voicebot.speech.tts import split_sentences


class ModelTurn:
    """The agent's turn on ``text`` with ``tools`` allowed (None: the node's default), timed by ``clock``."""

    def __init__(self, agent: DialogueAgent, speaker: Speaker, dialog: DialogConfig, text: str,
                 tools: list[str] | None, clock: TurnClock | None, timeout_s: float = 8.0,
                 before: str = "", hold_back: Callable[[], bool] | None = None):
        self.agent = agent
        self.timeout_s = timeout_s
        self.speaker = speaker
        self.dialog = dialog
        self.text = text
        self.tools = tools
        self.clock = clock
        self.recorded: list[StoredEvent] = []  # filler, tool calls, guard events: in the order they happened
        self.transfer: TransferRequested | None = None
        self.before = next(iter(split_sentences(before)), "")  # the first sentence of what the bot said last
        self.hold_back = hold_back  # asked when the reply is lost: True keeps it unsaid and ends the turn there
        self.first: str | None = None  # the reply's first sentence
        self.lost = False  # it did not understand the caller, or says the last reply again (``not_understood``)
        self.held_back = False  # ``hold_back`` kept it unsaid: nothing was said
        self.said_nothing = False  # the agent's turn ended with no sentence (not cut short): never silence

    async def sentences(self) -> AsyncIterator[str]:
        """The agent's sentences as they come. The filler follows "nothing audible yet", not "no event yet": the
        model's first token, a tool call or a recognised intent come long before anything speakable, and timing
        the filler from them left callers in 4-8 s of silence."""
        loop = asyncio.get_running_loop()
        after_s = self.dialog.filler_after_ms / 1000
        deadline = loop.time() + after_s
        pending = after_s > 0  # the filler may still be needed
        last = loop.time()  # when the model last gave something (the time limit runs from here)
        events = iterate_in_thread(lambda: self.agent.turn(self.text, self.tools))
        waiting = asyncio.ensure_future(anext(events, None))
        try:
            while True:
                if pending:
                    if await self.speaker.filler_if_slow(waiting, max(deadline - loop.time(), 0.001),
                                                         self.dialog.filler):
                        self.recorded.append(FillerPlayed())
                        pending = False
                event = await self._next(waiting, last)
                last = loop.time()
                if event is None:
                    self.said_nothing = self.first is None and self.transfer is None
                    return
                sentence = self._note(event)
                if sentence is not None:
                    if self.first is None:
                        self.first, self.lost = sentence, not_understood(sentence, self.before)
                        if self.lost and self.hold_back is not None and self.hold_back():
                            self.held_back = True  # "I'm not sure what you're asking" once too often
                            return
                    pending = False
                    yield sentence
                waiting = asyncio.ensure_future(anext(events, None))
        finally:
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)  # let go of the stream before closing it
            await events.aclose()

    async def _next(self, waiting: asyncio.Future, since: float) -> object:
        """The agent's next event, within the time limit counted from ``since``."""
        left = max(since + self.timeout_s - asyncio.get_running_loop().time(), 0.001)
        done, _ = await asyncio.wait({waiting}, timeout=left)
        if not done:
            raise StageFailed("llm", f"no answer from the model within {self.timeout_s:g} s", timed_out=True)
        try:
            return waiting.result()
        except (StageFailed, asyncio.CancelledError):
            raise
        except Exception as exc:  # the model (or a tool it ran) raised
            raise StageFailed(stage_of(exc, "dialogue"), exc) from exc

    def _note(self, event: object) -> str | None:
        """Keep what ``event`` says for later; return a sentence to speak now."""
        if isinstance(event, FirstToken) and self.clock:
            self.clock.mark("first_token")
        elif isinstance(event, Sentence):
            if self.clock:
                self.clock.mark("first_sentence")
            return event.text
        elif isinstance(event, ToolCalled):
            self.recorded.append(ToolCallMade(event.name, event.args, event.result, round(event.elapsed_s, 3)))
        elif isinstance(event, Guarded):
            self.recorded.append(guard_fired(event.kind, event.original, event.items))
        elif isinstance(event, TransferRequested):
            self.transfer = event
        elif isinstance(event, KnowledgeUsed):
            self.recorded.append(KnowledgeAnswered(event.kind, event.entry_ids, event.score, event.question))
        elif isinstance(event, IntentFound):
            found = event.intent
            self.recorded.append(IntentRecognized(found.name, found.score, found.margin, found.example))
        return None
