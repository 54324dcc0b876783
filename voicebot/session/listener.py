"""The listener: everything that comes in from the line, handled as it arrives, one frame at a time.

Why it is apart from the turn being handled: it must never wait. Every audio frame goes through the turn detector
(cheap, in audio time) with the bot's own playback as the echo reference. Caller speech over the bot pauses
playback within the barge-in window, right here, before the next frame; then ``speech.overlap`` decides from its
length and level, without waiting for words: short ("mm-hmm") resumes the reply where it paused, longer stops it and
the caller's turn is answered. Only when the reply ended some other way while paused do the words decide
(``dialog.backchannel``). A key press stops a prompt at once, as on any phone menu. Finished utterances, DTMF, typed text and no-input timeouts go onto the session's queue, where the core
handles them one at a time; the end of the line (hang-up) is a control event that does not queue behind them.

Speech recognition has one path, ``hear``: one call of the transcriber, one acceptance check (Whisper's no-speech
and log-probability thresholds). It may start early, once the caller has been quiet for ``vad.early_stt_ms``,
before the end of the turn is certain; the result is used when the turn does end there.

The end of a turn, when a turn model is configured (``turns.model``): the detector asks with a ``TurnCheck`` ~200 ms
into a pause, and the listener scores it in a worker thread (``asyncio``'s default executor) so the model's
45-180 ms never holds the loop that carries the media; the verdict comes back on the loop through
``resolve_turn_check``. A failed scoring is logged and left unanswered: the detector's longer limit ends the turn.
The early transcript doubles as the partial transcript: when it ends in digits or an address, the detector is told
the caller is dictating (``set_dictation``), so the pauses between groups do not end the turn.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from collections.abc import Awaitable, Callable

from voicebot import compute
from voicebot.audio import AudioFrame
from voicebot.config import Config
from voicebot.dialog.backchannel import is_backchannel
from voicebot.dialog.guard import EscalationGuard
from voicebot.events import (BackchannelHeard, BargedIn, CallerHungUp, CallInput, DtmfReceived, Heard, OtherEvent,
                             StoredEvent, TextReceived)
from voicebot.session.faults import Faulted, StageFailed, limited
from voicebot.session.speaker import Speaker
from voicebot.speech.dictation import ANYTHING_ELSE, YES_NO, asks_for_dictation, partial_kind
from voicebot.speech.preamble import asks_for_detail, invites_request
from voicebot.session.resume import merged
from voicebot.speech.pace import CONTINUES_WITHIN_PLAYED_S, RESUMED_WITHIN_S, CallerPace, PaceChange, slow_turn
from voicebot.speech.stt import Transcriber, Transcript
from voicebot.speech.turn_model import EndOfTurnModel, TurnScore
from voicebot.speech.turns import (Backchannel, BargeIn, Duck, Interruption, LikelyEnd, NoInput, SpeechStarted, TurnCheck,
                                   TurnDetector, TurnEvent, Utterance)
from voicebot.telephony.base import CallTransport

log = logging.getLogger(__name__)


class Listener:
    """Reads one call's transport until the line ends; puts caller events on ``queue`` for the core.

    ``record`` stores an event, ``private`` masks caller words as they may be stored, ``on_hang_up`` is the
    core's control path for the end of the line (called once, on the listener, before ``CallerHungUp`` is queued).
    """

    def __init__(self, transport: CallTransport, detector: TurnDetector, transcriber: Transcriber, speaker: Speaker,
                 guard: EscalationGuard, config: Config, queue: asyncio.Queue[CallInput], *,
                 record: Callable[[StoredEvent], Awaitable[None]], private: Callable[[str], str],
                 on_hang_up: Callable[[], None], turn_model: EndOfTurnModel | None = None,
                 on_resume: Callable[[], bool] | None = None):
        self.t = transport
        self.rate = transport.sample_rate
        self.detector = detector
        self.transcriber = transcriber
        self.speaker = speaker
        self.guard = guard
        self.config = config
        self.queue = queue
        self.record = record
        self.private = private
        self.on_hang_up = on_hang_up
        self.turn_model = turn_model
        self.turn_scores: list[TurnScore] = []  # every verdict of this call, for the benchmark
        self.whole_numbers: frozenset[int] = frozenset()  # the CRM's order numbers' lengths (``partial_kind``)
        self._pin = False  # a PIN is asked for: its length is the caller's, never a whole number's
        self._paused = False  # playback paused for caller speech, until its words decide
        self._ducked = False  # the bot's voice lowered under caller speech, until speech.overlap decides
        self._deciding: asyncio.Task | None = None
        self._early: tuple[float, asyncio.Future[Transcript]] | None = None  # (end of speech, recognition)
        self._over_the_bot: str | None = None  # speech.overlap's decision on the open utterance, if any
        self.pace = CallerPace()  # a slow or hesitant caller gets longer limits and slower speech (speech.pace)
        self._ended_early_at: float | None = None  # the last turn the turn model ended, in call audio time
        self._asked = False  # the bot's last response asked something (``expect``)
        self._question = ""  # what it asked, for ``partial_kind``: ``YES_NO``, ``ANYTHING_ELSE`` or "" (``expect``)
        self.on_resume = on_resume  # the core drops its reply to a cut turn the caller goes on with (True: dropped)
        self._cut: Utterance | None = None  # the turn the model ended, while the bot has said little since
        self._cut_played_s = 0.0  # ... and how much of the reply to it has played
        self._resumed: Utterance | None = None  # ... that the caller went on with: the next utterance joins it
        self._continued: Utterance | None = None  # ... went on with over the reply's first words: joined if it
        # interrupts the bot (a backchannel is not going on with the sentence)
        detector.await_partial = config.vad.early_stt_ms > 0  # a "complete" verdict waits for the partial

    def expect(self, bot_said: str, awaiting_pin: bool, *, first: bool) -> None:
        """After the bot's response: what the caller's next words are likely to be, for the turn detector's limits.
        A PIN is read slowly; "what is your order number?" means pauses between digits; the caller's first turn
        and "anything else I can help with?" open the floor (``TurnDetector.set_open_floor``); a yes-or-no question
        expects no detail (``set_answer_expected``)."""
        self._asked = "?" in bot_said  # (after "I see.", words within 2.5 s may still be the cut turn going on)
        self._pin = awaiting_pin
        self.detector.expect_digits(awaiting_pin)
        if asks_for_dictation(bot_said):
            self.detector.set_dictation(True)
        floor, detail = first or invites_request(bot_said), asks_for_detail(bot_said)
        self.detector.set_open_floor(floor)
        self.detector.set_answer_expected(detail)  # else a scene-setting start is no turn
        # asked yes or no, a whole "Yes, it is." ends the turn whatever the turn model says (preamble.closed_answer)
        self._question = "" if first or not self._asked else ANYTHING_ELSE if floor else "" if detail else YES_NO

    async def run(self) -> None:
        try:
            async for event in self.t.events():
                if isinstance(event, AudioFrame):
                    self._on_frame(event)
                elif isinstance(event, DtmfReceived):
                    self.detector.cancel_no_input()
                    self.speaker.interrupt()  # a key press interrupts a prompt, as on any phone menu
                    self.queue.put_nowait(event)
                elif isinstance(event, TextReceived):
                    self.queue.put_nowait(event)
                elif isinstance(event, CallerHungUp):
                    return
        finally:  # the caller hung up or the line ended: either way nobody is listening any more
            self.on_hang_up()
            self.queue.put_nowait(CallerHungUp(self.detector.now_s))

    def _on_frame(self, frame: AudioFrame) -> None:
        played = getattr(self.t, "last_played", b"")
        if played:
            self.detector.note_playback(AudioFrame(played, self.rate))  # the echo gate's reference
            if not self._ducked:  # ducked under the caller, it is not heard: the caller is going on, not answering
                self._cut_played_s += len(played) / 2 / self.rate
            if self._cut_played_s > CONTINUES_WITHIN_PLAYED_S:
                self._cut = None  # the bot answered: what the caller says next is a new turn or a barge-in
            if self._ended_early_at is not None and self.detector.now_s - self._ended_early_at > 2.5:
                self._ended_early_at = None  # the bot has answered for a while: a new turn, not a cut one going on
        elif self._asked and self._cut_played_s > 0 and not self.detector.bot_speaking:  # a short question
            self._cut = self._ended_early_at = None  # played to its end: "Shall I book it?" "Yes." is an answer
        self._handle(self.detector.feed(frame))

    def _handle(self, events: list[TurnEvent]) -> None:
        for event in events:
            if isinstance(event, (Duck, BargeIn, Backchannel, Interruption)):
                log.debug("%s at %.2f s of call audio", type(event).__name__, event.at_s)
            if isinstance(event, TurnCheck):
                self._check_turn(event)
            elif isinstance(event, Duck):  # the voice drops at once and plays on; speech.overlap decides next
                self.t.duck(event.db)
                self._ducked = True
            elif isinstance(event, BargeIn):
                self.t.pause()  # silent, the rest held; speech.overlap decides what next
                self._paused, self._ducked = True, False
            elif isinstance(event, Backchannel) and (self._paused or self._ducked):  # "mm-hmm": carry on
                self.t.resume()
                self._paused = self._ducked = False
                self._over_the_bot = "backchannel"
            elif isinstance(event, Interruption):  # a real interruption: stop the reply now, answer the caller
                self._paused = False
                self._over_the_bot = "interruption"
                self.speaker.interrupt()
                self._full_voice()
            elif isinstance(event, LikelyEnd) and self._paused:  # no partial while a barge-in is being decided
                self._handle(self.detector.resolve_partial(event.speech_ended_at_s, "done"))
            elif isinstance(event, LikelyEnd):
                early = asyncio.ensure_future(self._transcribe(event.pcm, event.sample_rate))
                self._hold_clock()
                early.add_done_callback(lambda done, at=event.speech_ended_at_s, speech_s=event.speech_s:
                                        self._on_partial(at, done, speech_s))
                self._early = (event.speech_ended_at_s, early)
            elif isinstance(event, SpeechStarted):
                if self._ended_early_at is not None:  # the caller went on after a turn we ended: we cut them
                    self._adapt(self.pace.resumed(event.at_s - self._ended_early_at))
                    self._ended_early_at = None
                cut, self._cut = self._cut, None
                if cut is not None and event.at_s - cut.at_s <= RESUMED_WITHIN_S:
                    if self._cut_played_s == 0 and self.on_resume is not None and self.on_resume():
                        self._resumed = cut  # see voicebot/session/resume.py
                    elif self._cut_played_s > 0:
                        self._continued = cut
            elif isinstance(event, Utterance):
                continued, self._continued = self._continued, None
                if self._resumed is not None:
                    event = self._join(event)
                elif continued is not None and event.during_playback and self._over_the_bot == "interruption":
                    event = self._join_over_the_bot(continued, event)
                self._ended_early_at = event.at_s if event.ended_by == "model" else None
                self._cut = event if event.ended_by == "model" and not event.during_playback else None
                self._cut_played_s = 0.0
                self._adapt(self.pace.pause(event.longest_pause_s))
                decided, self._over_the_bot = self._over_the_bot, None
                self._full_voice()  # the reply ended while ducked: the next one starts at full voice
                if self._paused:  # paused, and the bot stopped before speech.overlap decided: the words decide
                    self._deciding = asyncio.create_task(self._decide_barge_in(event))
                elif decided and event.during_playback:  # decided already; the words, heard now, go on record
                    self._deciding = asyncio.create_task(self._after_overlap(event, decided))
                else:
                    self.queue.put_nowait(event)
            elif isinstance(event, NoInput):
                self.queue.put_nowait(event)

    def _full_voice(self) -> None:
        """Undo a duck that nothing else undid (the reply was stopped or ended under it), leaving a pause alone."""
        if self._ducked:
            self._ducked = False
            self.t.duck(0.0)

    def _join(self, second: Utterance) -> Utterance:
        """The cut turn and the caller's going on, as one utterance; recognition hears the whole of it."""
        first, self._resumed = self._resumed, None
        self._early = None  # the early recognition covered the second half only
        self._over_the_bot = None  # the dropped reply never played: nothing was spoken over
        if self._paused:
            self._paused = False
            self.t.resume()
        asyncio.ensure_future(self.record(OtherEvent("turn_resumed", {
            "cut_at_s": round(first.at_s, 2), "went_on_at_s": round(second.started_at_s, 2)})))
        return merged(first, second)

    def _join_over_the_bot(self, first: Utterance, second: Utterance) -> Utterance:
        """The cut turn and the caller's going on over the first words of the reply to it (the caller paused
        longer than the bot took to start): the reply is stopped as any interruption, and what is answered is the
        whole sentence, not its second half."""
        self._early = None
        asyncio.ensure_future(self.record(OtherEvent("turn_resumed", {
            "cut_at_s": round(first.at_s, 2), "went_on_at_s": round(second.started_at_s, 2), "over_the_bot": True})))
        return replace(merged(first, second), during_playback=True, barged_in=second.barged_in)

    def _check_turn(self, check: TurnCheck) -> None:
        """Score the pause off the loop; the verdict goes back to the detector on the loop."""
        if self.turn_model is None:
            return  # a detector built with turns but no model: its longer limit ends the turn
        scoring = compute.submit(self.turn_model.score, check.pcm, check.sample_rate)
        self._hold_clock()
        scoring.add_done_callback(lambda done: self._on_turn_score(check, done))

    def _hold_clock(self) -> None:
        """A simulated line faster than line pace waits for the decision (``SimulatedLine.hold_clock``)."""
        if (hold := getattr(self.t, "hold_clock", None)) is not None:
            hold()

    def _release_clock(self) -> None:
        if (release := getattr(self.t, "release_clock", None)) is not None:
            release()

    def _on_turn_score(self, check: TurnCheck, done: asyncio.Future[TurnScore]) -> None:
        self._release_clock()
        if done.cancelled():
            return
        if (exc := done.exception()) is not None:
            log.warning("turn model failed (%r); the turn ends after turns.incomplete_silence_ms", exc)
            return
        score = done.result()
        self.turn_scores.append(score)
        log.debug("turn check at %.2f s: %.2f complete, %.0f ms", check.at_s, score.probability, score.seconds * 1e3)
        self._handle(self.detector.resolve_turn_check(check.id, score.complete, score.probability))

    def _on_partial(self, speech_ended_at_s: float, done: asyncio.Future[Transcript], speech_s: float) -> None:
        """The early transcript, read as the partial transcript (``dictation.partial_kind``): digits or an address
        at its end mean the caller is dictating, and the turn waits through the pauses between groups; an
        unfinished last word ("and", "my") overrules a "complete" verdict; a turn said slowly (``pace.slow_turn``)
        waits as a slow caller's. A failed one leaves the verdict alone."""
        self._release_clock()
        if done.cancelled() or not self.detector.in_speech:
            return
        text = "" if done.exception() is not None else done.result().text
        kind = partial_kind(text, self._question, () if self._pin else self.whole_numbers)
        log.debug("partial at %.2f s (speech ended %.2f s): %d words, %s", self.detector.now_s, speech_ended_at_s,
                  len(text.split()), kind)  # the words themselves may hold a PIN: never logged
        self._handle(self.detector.resolve_partial(speech_ended_at_s, kind, slow_turn(text, speech_s)))

    def _adapt(self, change: PaceChange | None) -> None:
        """The caller turned out slow or hesitant: longer turn limits and slower speech for the rest of the call."""
        if change is None:
            return
        self.detector.set_slow(True)
        scale = self.config.turns.slow_length_scale
        slower = getattr(self.speaker.synthesizer, "with_length_scale", None)
        if slower is not None and scale != 1.0:
            self.speaker.synthesizer = slower(scale)
        asyncio.ensure_future(self.record(OtherEvent("caller_pace", {
            "pace": "slow", "reasons": list(change.reasons), "words_per_s": change.words_per_s,
            "syllables_per_s": change.syllables_per_s,
            "length_scale": scale})))

    def stop(self) -> None:
        """The line is gone: drop a barge-in decision still waiting for its words."""
        if self._deciding is not None:
            self._deciding.cancel()

    async def hear(self, utt: Utterance) -> Heard:
        """What the caller said in ``utt``: the transcript, and the text that passes the acceptance thresholds ("" if
        none does). Uses the recognition started early when it covered exactly this utterance."""
        early = self._early
        limit = self.config.faults.stt_timeout_s  # an error or a hang: StageFailed("stt"), the session apologises
        if early is not None and early[0] == utt.speech_ended_at_s:
            self._early = None
            transcript = await limited("stt", limit, early[1])  # started while the end of turn was being confirmed
        else:
            transcript = await limited("stt", limit, self._transcribe(utt.pcm, utt.sample_rate))
        stt = self.config.stt
        heard = Heard(utt, transcript, transcript.accepted(stt.no_speech_threshold, stt.logprob_threshold).text)
        if heard.text:
            self._adapt(self.pace.heard(heard.text, utt.speech_s or utt.speech_ended_at_s - utt.started_at_s
                                        - self.config.vad.preroll_ms / 1000))
        return heard

    async def _transcribe(self, pcm: bytes, sample_rate: int) -> Transcript:
        return await compute.run(self.transcriber.transcribe, pcm, sample_rate)

    async def _after_overlap(self, utt: Utterance, decided: str) -> None:
        """Speech over the bot that ``speech.overlap`` already handled, transcribed after the fact: the event goes on
        record with its words. A "backchannel" whose words take the turn ("operator", "stop") stops the reply now
        and is answered; an interruption's words are the caller's turn."""
        try:
            heard = await self.hear(utt)
        except StageFailed as exc:
            self.speaker.interrupt()
            self.queue.put_nowait(Faulted(exc))
            return
        speech_s = utt.speech_ended_at_s - utt.started_at_s - self.config.vad.preroll_ms / 1000
        evidence = (self.private(heard.text), round(speech_s, 2))
        if decided == "backchannel" and (not heard.text or is_backchannel(heard.text, speech_s)) \
                and not self.guard.operator_phrase(heard.text):
            await self.record(BackchannelHeard(*evidence))
            return
        await self.record(BargedIn(*evidence))
        if not utt.barged_in:
            self.speaker.interrupt()
            heard = Heard(replace(utt, barged_in=True), heard.transcript, heard.text)
        self.queue.put_nowait(heard)

    async def _decide_barge_in(self, utt: Utterance) -> None:
        """The bot paused for caller speech: a backchannel lets it carry on, anything else takes the turn."""
        try:
            heard = await self.hear(utt)
        except StageFailed as exc:  # the core handles it as any fault: the reply stops, the apology plays
            self._paused = False
            self.speaker.interrupt()
            self.queue.put_nowait(Faulted(exc))
            return
        self._paused = False
        speech_s = utt.speech_ended_at_s - utt.started_at_s - self.config.vad.preroll_ms / 1000
        evidence = (self.private(heard.text), round(speech_s, 2))  # as a caller turn is stored: secrets masked
        if is_backchannel(heard.text, speech_s) and not self.guard.operator_phrase(heard.text):
            self.t.resume()
            await self.record(BackchannelHeard(*evidence))
            return
        await self.record(BargedIn(*evidence))
        self.speaker.interrupt()
        self.queue.put_nowait(heard)
