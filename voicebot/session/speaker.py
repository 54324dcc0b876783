"""The speaker: what the caller hears of a reply, sentence by sentence, and when each stage of a turn happened.

Why playback is a task of its own: a caller who talks over the bot must silence it within a frame or two, and the
listener that notices cannot wait for the turn that is producing the reply. So ``play`` runs the reply in a task
that ``interrupt`` cancels from the listener (the audio already queued is flushed first), while the turn awaiting
``play`` simply carries on with whatever was said by then. The reply may be a stream: the model's first sentence
is synthesised and played while it writes the next, and cancelling the reply closes the stream, which stops the
model too. A long first sentence is synthesised in two pieces (``tts.first_clause``), so the caller hears its first
clause while the rest is made.

Synthesis runs in worker threads. Fixed prompts (greeting, menu prompts, transfer notices, the filler) come from
the synthesizer's cache; the model's sentences are synthesised as they come. A synthesis that fails or takes longer
than ``faults.tts_timeout_s`` raises ``faults.StageFailed("tts")``: the session apologises from pre-rendered speech.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

from voicebot.session.faults import StageFailed, in_thread
from voicebot.speech.tts import Synthesizer, first_clause
from voicebot.speech.turns import TurnDetector
from voicebot.store import TurnTimings
from voicebot.telephony.base import CallTransport


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


@dataclass
class Reply:
    """One bot reply while it plays: the sentences queued for the caller so far (what they heard, or were about to
    hear when cut off), whether caller speech or a key cut it, and the clock of the caller turn it answers."""

    started_at: float  # seconds of call audio
    clock: TurnClock | None = None
    said: list[str] = field(default_factory=list)
    barged_in: bool = False

    @property
    def text(self) -> str:
        return " ".join(self.said)

    def timings(self) -> TurnTimings:
        return self.clock.timings() if self.clock else TurnTimings()


class Speaker:
    """Plays replies on one call's transport; ``interrupt`` (barge-in, a key press) stops the one playing.

    ``on_queued`` runs once a whole reply is queued and only playing remains: the CPU is free then, and the session
    uses it to get the model ready for the next turn.
    """

    def __init__(self, transport: CallTransport, synthesizer: Synthesizer, detector: TurnDetector,
                 on_queued: Callable[[], None] = lambda: None, tts_timeout_s: float = 4.0):
        self.t = transport
        self.tts_timeout_s = tts_timeout_s
        self.rate = transport.sample_rate
        self.synthesizer = synthesizer
        self.detector = detector
        self.on_queued = on_queued
        self._task: asyncio.Task | None = None
        self._reply: Reply | None = None

    async def play(self, sentences: AsyncIterator[str] | Iterable[str], reply: Reply, fixed: bool = False) -> None:
        """Play ``sentences`` in a task of their own until they are played out or interrupted; ``reply`` keeps what
        was queued. When the task awaiting this is itself cancelled (the caller hung up, the call is stopped), the
        reply is stopped too and the cancellation goes on; ``reply`` then still says what was played."""
        if not hasattr(sentences, "__aiter__"):
            sentences = _aiter(list(sentences))
        self.detector.set_bot_speaking(True)
        self._reply = reply
        self._task = asyncio.create_task(self._play(sentences, reply, fixed))
        try:
            await self._task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                self._task.cancel()
                raise
            # else: interrupted by the listener; the turn carries on
        finally:
            self._task = self._reply = None
            self.detector.set_bot_speaking(False)

    def interrupt(self) -> None:
        """Runs on the listener, inside one frame: stop the audio now, then cancel what produces it."""
        if self._task is not None and not self._task.done() and self._reply is not None:
            self._reply.barged_in = True
            self.t.flush()
            self._task.cancel()

    async def _play(self, sentences: AsyncIterator[str], reply: Reply, fixed: bool) -> None:
        synth = self.synthesizer.cached if fixed else self._synthesize
        try:
            async for sentence in sentences:
                pieces = [sentence] if fixed or reply.said else first_clause(sentence)
                for piece in pieces:
                    pcm = await in_thread("tts", self.tts_timeout_s, synth, piece, self.rate)
                    if reply.barged_in:  # interrupted while this piece was made: Python 3.11's wait_for can
                        return  # swallow the cancel when the thread finishes at that moment, and it played on
                    if reply.clock:
                        reply.clock.mark("first_audio_out")
                    self.t.play(pcm)
                    if piece is pieces[0]:
                        reply.said.append(sentence)
            self.on_queued()
            await self.t.wait_played()
        finally:
            await sentences.aclose()  # stops the model when a barge-in cancels the reply

    def _synthesize(self, text: str, rate: int) -> bytes:
        return b"".join(chunk.pcm for chunk in self.synthesizer.stream(text, rate))

    async def synthesize(self, text: str) -> bytes:
        """``text`` as speech at the line's rate, not played (e.g. the warm-transfer brief for the operator)."""
        return await in_thread("tts", self.tts_timeout_s, self._synthesize, text, self.rate)

    async def filler_if_slow(self, first: asyncio.Future, after_s: float, text: str) -> bool:
        """Wait up to ``after_s`` for ``first`` (the model's first piece); when it has not come by then, play the
        filler ("One moment, let me check that.") rather than leave a silence. Returns whether it played."""
        done, _ = await asyncio.wait({first}, timeout=after_s)
        if done or after_s <= 0:
            return False
        try:
            self.t.play(await in_thread("tts", self.tts_timeout_s, self.synthesizer.cached, text, self.rate))
        except StageFailed:  # the model may still answer; a broken synthesizer shows at its first sentence
            return False
        return True


async def _aiter(items: list[str]) -> AsyncIterator[str]:
    for item in items:
        yield item
