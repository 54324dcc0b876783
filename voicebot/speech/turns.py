"""Turn-taking: end of turn, barge-in and no-input, timed in audio time.

``TurnDetector`` is a synchronous state machine. The session feeds it every inbound ``AudioFrame`` of the call
(silence included, in order) and acts on the events it returns. It never reads the wall clock: the time of an
event is the number of samples fed so far divided by the sample rate, so a 10-minute call can be replayed in a
fraction of a second and a test can say "speech at 0.5-2.5 s" and check the event times to the frame.

Decisions come from a ``VoiceActivity`` (webrtcvad in production, a scripted fake in tests) on frames of
``VadConfig.frame_ms``; inbound frames of another length are re-cut, so the transport's framing does not matter.

Rules, per VAD frame:

* **Utterance.** A speech frame opens a candidate utterance that starts ``preroll_ms`` earlier (the audio kept
  in a ring buffer), so the first syllable is not cut. It ends after ``end_of_turn_silence_ms`` of continuous
  non-speech (``digits_silence_ms`` while ``expect_digits(True)``). A candidate with less than
  ``min_speech_ms`` of speech frames is noise and is dropped silently. The audio of an ``Utterance`` runs from
  the preroll to the last speech frame plus up to ``preroll_ms`` of trailing silence (soft word ends often read
  as non-speech); ``speech_ended_at_s`` is the end of the last speech frame: the "end of speech" of the turn's
  timings. An utterance longer than ``max_utterance_s`` is cut there (Whisper reads 30 s at most).
* **Turn model** (when built with ``turns``: a ``TurnsConfig`` whose ``model`` is set). After
  ``turns.check_silence_ms`` (~200 ms) of silence the detector emits one ``TurnCheck`` carrying the utterance's
  audio; the session scores it with the ``EndOfTurnModel`` and answers ``resolve_turn_check(id, complete)``.
  Complete: the turn ends at once, at the audio time of the answer (``ended_by="model"``). Incomplete: mid-call,
  one more look at ``turns.recheck_silence_ms``, surer (``recheck_threshold``): the verdict swings with the silence;
  incomplete again, or no answer at all (a slow or failing model never holds a call): the turn ends after
  ``turns.incomplete_silence_ms`` (1.6 s by default), so a slow caller's 1.2 s pause is not a turn. An answer
  after the caller spoke again is stale; the next pause gets its own check. Without ``turns``: the fixed
  ``end_of_turn_silence_ms``.
* **Dictation.** While digits or an address are dictated (``expect_digits(True)`` for the whole prompt, e.g. a
  PIN; or ``set_dictation(True)``, a hint for one utterance, the open one or else the next, which the session
  gives when the partial transcript ends in a number or an address, or when the bot has just asked for one),
  pauses between groups are part of the turn: the limit is ``turns.dictation_silence_ms`` (without ``turns``:
  ``digits_silence_ms``), and a "complete" verdict only shortens it to ``turns.incomplete_silence_ms`` (a group
  of digits sounds finished when it is not). Asked for digits, a partial with none ("Yes.") is an answer.
* **Partial transcript gate** (``await_partial``, set by a session that starts speech recognition at
  ``LikelyEnd``). A "complete" verdict ends the turn only once the partial transcript of this pause is in
  (``resolve_partial``): it may say the caller is dictating (the dictation limit) or stopped on an unfinished word
  ("and", "the", "my": the verdict counts as incomplete, and the pause may last as long as a slow caller's,
  ``turns.slow_scale`` times ``incomplete_silence_ms``: words left hanging are sure to go on). The wait costs the
  reply nothing: the same transcript is the turn's, and the reply cannot start before it.
* **Open floor** (``set_open_floor(True)``: the caller's first turn, or the bot asked "anything else?"). The caller
  has not yet said what they want, and an elderly pace is not known yet: a "complete" verdict needs
  ``turns.open_threshold`` (not ``threshold``), a partial transcript that only sets the scene ("I bought a
  chair in March", ``speech.preamble``) counts as unfinished, and an unfinished turn waits as long as a slow
  caller's (``turns.slow_scale`` times): an elderly caller's first pause was cut at 1.6 s. But a ``threshold``
  verdict on a brisk "done" partial waits the mid-call limit: on SIP, "Where is my order?" scored 0.70.
* **No detail asked** (``set_answer_expected(False)``: asked yes or no, or nothing): a scene-setting partial is
  unfinished too ("Shall I book it?" "My husband placed the order on Friday, ..."), with its longer wait.
* **Slow caller** (``set_slow(True)``, from ``speech.pace`` for the rest of the call, or for one pause a partial
  said ``slowly``): a "complete" verdict waits ``turns.slow_complete_silence_ms``, other limits ``turns.slow_scale``x.
* **SpeechStarted** is emitted once a candidate reaches ``min_speech_ms`` of speech, carrying the onset time;
  it disarms the no-input timer.
* **Speech over the bot** (``speech.overlap``, while ``set_bot_speaking(True)``): ``Duck``, ``BargeIn``,
  ``Backchannel`` or ``Interruption`` (see there). The utterance itself is emitted as any other, with
  ``during_playback=True``; ``barged_in=True`` only when it was an ``Interruption``: a backchannel comes out as
  ``during_playback=True, barged_in=False`` and the session only runs the escalation guard on it. With a
  ``second_opinion`` VAD (``speech.silero``), it must have heard speech within ``SECOND_OPINION_HOLD_MS`` too.
* **Noise is not a turn.** With a second opinion, every speech frame of a turn needs it too (at ``VOICE_THRESHOLD``
  within ``VOICE_HOLD_MS``), and so does the judge of speech over the bot while it is paused or ducked: webrtcvad
  calls recorded traffic and crowds speech, so a turn said in them never found its silence and a "mm-hmm" never
  ended. The utterance starts where webrtcvad's run of speech began (at most ``VOICE_LAG_MS`` before Silero
  agreed: no first syllable lost), and no turn ends while such a young run waits for Silero (``speech.voice_gate``).
* **Echo gate.** The line carries the bot's own voice back, attenuated. ``note_playback`` gets each outbound frame
  as it is sent; an inbound frame quieter than the loudest playback of the last ``echo_tail_ms`` minus
  ``echo_margin_db`` is non-speech, whatever the VAD says: the caller's speech is about as loud as the playback,
  echo 20+ dB down is not. Note playback in step with the inbound audio (as it plays, not a sentence at once).
* **No input.** ``arm_no_input()`` (after a prompt) starts a ``no_input_timeout_s`` timer of audio; ``NoInput``
  when it runs out with no speech, never while an utterance is open (``set_bot_speaking(True)``,
  ``cancel_no_input()`` and ``SpeechStarted`` disarm it).

The model is a request event, not a call: its 70-180 ms inside ``feed`` would stall the loop carrying every call's
media, so the session scores in a worker thread. Not thread-safe: call it from the session's loop.
"""

from __future__ import annotations

from collections import deque

from voicebot.audio import AudioFrame, rms_dbfs
from voicebot.config import TurnsConfig, VadConfig
from voicebot.speech.overlap import OverlapJudge
from voicebot.speech.turn_events import (  # noqa: F401 - re-exported: the detector's vocabulary
    TurnEvent, SpeechStarted, Duck, BargeIn, Backchannel, Interruption, NoInput, Utterance, TurnCheck, LikelyEnd)
from voicebot.speech.vad import VoiceActivity
from voicebot.speech.voice_gate import VOICE_LAG_MS, VoiceGate

_SILENT = float("-inf")


class TurnDetector:
    """Endpointing, barge-in and no-input from VAD decisions; see the module docstring for the rules."""

    def __init__(self, vad: VoiceActivity, config: VadConfig | None = None, *, echo_tail_ms: int = 500,
                 max_utterance_s: float = 30.0, turns: TurnsConfig | None = None):
        self.vad = vad.for_call() if hasattr(vad, "for_call") else vad  # a call's own webrtcvad state
        self.config = config or VadConfig()
        self.turns = turns if turns is not None and turns.model else None  # None: fixed silence
        self._check_seq = 0  # ids of TurnCheck requests
        self.echo_tail_ms = echo_tail_ms
        self.max_utterance_s = max_utterance_s
        self.frame_ms = self.config.frame_ms
        self.sample_rate: int | None = None
        self._frame_bytes = 0
        self._pending = bytearray()  # inbound audio not yet a whole VAD frame
        self._t_ms = 0  # audio fed so far, in whole VAD frames
        self._preroll_frames = -(-self.config.preroll_ms // self.frame_ms)  # ceil
        # the preroll, and in front of it what webrtcvad heard before the second opinion agreed (VOICE_LAG_MS)
        self._preroll: deque[bytes] = deque(maxlen=self._preroll_frames + VOICE_LAG_MS // self.frame_ms)
        self._play_levels: deque[float] = deque(maxlen=max(1, echo_tail_ms // self.frame_ms))
        self._play_peak = _SILENT  # loudest playback noted since the last inbound frame
        self._bot_speaking = False
        self._overlap = OverlapJudge(self.config, self.frame_ms)  # pause, resume or stop for speech over the bot
        # Silero (speech.silero), this call's own stream of it, and webrtcvad's run of speech (speech.voice_gate)
        self._gate = VoiceGate(getattr(vad, "second_opinion", None), self.frame_ms)
        self._digits = False
        self._dictation = False  # set_dictation hint: this utterance (or the next one)
        self._slow = False  # set_slow: a slow or hesitant caller, for the rest of the call
        self._open_floor = False  # set_open_floor: the caller is about to say what they want
        self._answer_expected = True  # set_answer_expected: asked for a detail, a preamble is the answer
        self.await_partial = False  # a complete verdict waits for resolve_partial (see the module docstring)
        self._no_input_at_ms: int | None = None
        self._reset_utterance()

    def set_bot_speaking(self, speaking: bool) -> None:
        """The bot started (True) or stopped (False) playing audio to the caller."""
        if speaking and not self._bot_speaking:
            self._overlap.restart()
            self._no_input_at_ms = None
        self._bot_speaking = speaking

    def note_playback(self, frame: AudioFrame) -> None:
        """An outbound frame as it is sent; its level drives the echo gate."""
        self._play_peak = max(self._play_peak, rms_dbfs(frame.pcm))

    def expect_digits(self, expect: bool) -> None:
        """While True the caller is dictating digits: wait ``digits_silence_ms`` before ending the turn."""
        self._digits = expect

    def set_dictation(self, dictating: bool) -> None:
        """Hint from the partial transcript: the caller is dictating digits or an address in this utterance (or
        the next, if none is open). Cleared when the utterance ends."""
        self._dictation = dictating

    def set_slow(self, slow: bool) -> None:
        """A slow or hesitant caller: longer end-of-turn limits from now on (see the module docstring)."""
        self._slow = slow

    def set_open_floor(self, open_floor: bool) -> None:
        """The caller's next words say why they call (first turn, "anything else?"): see the module docstring."""
        self._open_floor = open_floor

    def set_answer_expected(self, expected: bool) -> None:
        """False: the bot asked yes or no, or nothing (``preamble.asks_for_detail``): see the module docstring."""
        self._answer_expected = expected

    @property
    def slow(self) -> bool:
        return self._slow

    @property
    def dictating(self) -> bool:
        return self._digits or self._dictation

    def resolve_partial(self, speech_ended_at_s: float, kind: str, slowly: bool = False) -> list[TurnEvent]:
        """The partial transcript of the pause after ``speech_ended_at_s``: ``dictation`` (digits or an address),
        ``unfinished`` (stopped on "and", "the"...), ``preamble`` (unfinished on the open floor), ``final``
        ("goodbye": complete whatever the verdict), or anything else (``done``: the verdict stands); ``slowly``: the
        turn so far was said slowly (``pace.slow_turn``), so this pause waits as a slow caller's. Returns the events
        it causes; a partial of an earlier pause changes nothing."""
        events: list[TurnEvent] = []
        if self._start_ms is None or round(speech_ended_at_s * 1000) != self._last_speech_ms:
            return events
        self._partial, self._said_slowly = kind, slowly
        if kind == "dictation":
            self._dictation = True
        if (self._verdict or kind == "final") and self._may_end():
            self._finish(events, "dictation" if self.dictating else "model")
        return events

    def resolve_turn_check(self, check_id: int, complete: bool, probability: float | None = None) -> list[TurnEvent]:
        """The turn model's answer to ``TurnCheck`` ``check_id``; returns the events it causes (the Utterance when
        the turn ends now). Stale answers (the caller spoke again, the utterance ended) change nothing."""
        events: list[TurnEvent] = []
        if self._start_ms is None or check_id != self._check_id:
            return events
        self._check_id = None
        if self.turns is not None and probability is not None and (self._open_floor or self._looked_again):
            complete = probability >= (self.turns.open_threshold if self._open_floor else self.turns.recheck_threshold)
        self._verdict = complete
        self._probability = probability
        if complete and self._may_end():
            self._finish(events, "dictation" if self.dictating else "model")
        return events

    def _may_end(self) -> bool:
        """The pause is long enough for the mode and the verdict, and no young run of webrtcvad's speech is still
        waiting for the second opinion (the caller may be going on: ``speech.voice_gate``)."""
        return self._t_ms - self._last_speech_ms >= self._silence_needed() and not self._gate.unconfirmed

    def _silence_needed(self) -> int:
        """Silence (ms) that ends the open utterance now, from the mode and the turn model's verdict."""
        turns = self.turns
        if turns is None:
            fixed = self.config.digits_silence_ms if self.dictating else self.config.end_of_turn_silence_ms
            return round(fixed * 1.5) if self._slow else fixed
        # or a turn said slowly, mid-call (the open floor's own patience already covers a first turn's pauses)
        slow = self._slow or (self._said_slowly and self._partial is not None and not self._open_floor)
        scale = turns.slow_scale if slow else 1.0
        unfinished = self._partial == "unfinished" or (self._partial == "preamble" and (
            self._open_floor or not self._answer_expected))
        complete = (self._verdict or self._partial == "final") and not unfinished and (
            not self.await_partial or self._partial is not None)
        # digits asked for wait for more; a partial with none ("Yes.", "No, that's all.") ends as any answer
        if self.dictating and self._partial not in ("done", "final", "preamble"):
            return round(scale * (turns.incomplete_silence_ms if complete else turns.dictation_silence_ms))
        if complete:
            return turns.slow_complete_silence_ms if slow else turns.check_silence_ms
        if self._open_floor and self._partial == "done" and not self._said_slowly and (self._probability or 0) >= \
                turns.threshold:  # likely finished, in sound and in words: a mid-call caller's wait
            return turns.incomplete_silence_ms
        # the words say more is coming ("... and the", asked yes or no "The parcel was left at the door,"): as long
        # as a slow caller's pause ("...from the dental clinic," 1.15 s, then "we ordered..." was cut at 1.6 s)
        return round((turns.slow_scale if self._open_floor or unfinished else scale) * turns.incomplete_silence_ms)

    def arm_no_input(self) -> None:
        """Start (or restart) the no-input timer from now."""
        self._no_input_at_ms = self._t_ms + round(self.config.no_input_timeout_s * 1000)

    def cancel_no_input(self) -> None:
        """Stop the no-input timer (e.g. the caller pressed a key)."""
        self._no_input_at_ms = None

    @property
    def now_s(self) -> float:
        """Seconds of audio fed so far (whole VAD frames)."""
        return self._t_ms / 1000

    @property
    def in_speech(self) -> bool:
        """A candidate utterance is open."""
        return self._start_ms is not None

    @property
    def bot_speaking(self) -> bool:
        return self._bot_speaking

    def feed(self, frame: AudioFrame) -> list[TurnEvent]:
        """Take one inbound frame (any length); return the events it caused, oldest first."""
        if self.sample_rate is None:
            self.sample_rate = frame.sample_rate
            self._frame_bytes = frame.sample_rate * self.frame_ms // 1000 * 2
        elif frame.sample_rate != self.sample_rate:
            raise ValueError(f"frame at {frame.sample_rate} Hz; this call runs at {self.sample_rate} Hz")
        events: list[TurnEvent] = []
        size = self._frame_bytes
        if not self._pending and len(frame.pcm) == size:  # the usual case: no copy
            self._step(frame.pcm, events)
            return events
        self._pending += frame.pcm
        while len(self._pending) >= size:
            chunk = bytes(self._pending[:size])
            del self._pending[:size]
            self._step(chunk, events)
        return events

    def flush(self) -> list[TurnEvent]:
        """At hang-up: end an open utterance now (dropped if it is too short to be speech)."""
        events: list[TurnEvent] = []
        if self._start_ms is not None:
            self._finish(events, "hang_up")
        return events

    def _step(self, chunk: bytes, events: list[TurnEvent]) -> None:
        start_ms = self._t_ms
        self._t_ms += self.frame_ms
        echo_floor = self._echo_floor()
        level = rms_dbfs(chunk)
        not_echo = echo_floor == _SILENT or level >= echo_floor
        self._gate.hear(chunk if not_echo else bytes(len(chunk)), self.sample_rate)  # no echo for it
        raw = self.vad.is_speech(chunk, self.sample_rate)  # speech over the bot: webrtcvad, and `confirmed`
        speech = raw and not_echo and self._gate.voiced  # the turn's speech
        lead = self._gate.step(raw and not_echo, start_ms, self._t_ms)  # frames since webrtcvad's onset

        if self._start_ms is None:
            if speech:
                self._open(start_ms, chunk, lead)
        else:
            self._chunks.append(chunk)
            if speech:  # the pause ended where webrtcvad heard the caller go on (``lead`` frames ago)
                self._longest_pause_ms = max(self._longest_pause_ms,
                                             start_ms - lead * self.frame_ms - self._last_speech_ms)
                self._speech_ms += self.frame_ms
                self._last_speech_ms = self._t_ms
                self._last_speech_index = len(self._chunks)
                self._check_id = self._verdict = self._probability = None  # a new pause gets a new check (or two)
                self._looked_again, self._partial = False, None  # and its own partial transcript
            else:
                silence = self._t_ms - self._last_speech_ms
                if self._may_end():
                    self._finish(events, "dictation" if self.dictating else "silence")
                    silence = -1
                elif self.turns is not None and self._confirmed and self._check_id is None and (
                        (self._verdict is None and silence >= self.turns.check_silence_ms) or (
                            self._verdict is False and not self._looked_again and not self._open_floor
                            and self.turns.recheck_silence_ms and silence >= self.turns.recheck_silence_ms)):
                    self._looked_again = self._verdict is False  # "unfinished": one more look, with more silence
                    self._check_seq += 1
                    self._check_id = self._check_seq
                    events.append(TurnCheck(self.now_s, id=self._check_id, pcm=b"".join(self._kept()),
                                            sample_rate=self.sample_rate,
                                            speech_ended_at_s=self._last_speech_ms / 1000))
                if (silence > 0 and self._confirmed and self.config.early_stt_ms and silence == max(
                        self.config.early_stt_ms, self.config.preroll_ms) // self.frame_ms * self.frame_ms):
                    events.append(LikelyEnd(self.now_s, pcm=b"".join(self._kept()), sample_rate=self.sample_rate,
                                            speech_ended_at_s=self._last_speech_ms / 1000,
                                            speech_s=self._speech_ms / 1000))
        if self._start_ms is not None and not self._confirmed and self._speech_ms >= self.config.min_speech_ms:
            self._confirm(events)
        self._preroll.append(chunk)

        # while the bot is paused or ducked the judge hears past the echo gate: in traffic, webrtcvad alone would
        # never let a "mm-hmm" end, and the reply stayed paused to its end
        self._barge_in(raw and not_echo, level, events, raw and self._gate.voiced)
        if self._start_ms is not None and self._t_ms - self._start_ms >= self.max_utterance_s * 1000:
            self._finish(events, "max_length")
            self._preroll.clear()  # the next utterance must not repeat audio already sent
        if self._no_input_at_ms is not None and self._t_ms >= self._no_input_at_ms and self._start_ms is None:
            self._no_input_at_ms = None
            events.append(NoInput(self.now_s))

    def _echo_floor(self) -> float:
        """Inbound frames quieter than this are the bot's echo (-inf: no playback within the echo tail)."""
        self._play_levels.append(self._play_peak)
        self._play_peak = _SILENT
        return max(self._play_levels) - self.config.echo_margin_db

    def _barge_in(self, speech: bool, level: float, events: list[TurnEvent], raw: bool) -> None:
        confirmed = self._gate.confirmed
        decision = self._overlap.step(speech, level, self._bot_speaking, raw, confirmed)
        if decision == "duck":
            events.append(Duck(self.now_s, self.config.duck_db))
        elif decision in ("pause", "resume"):
            events.append((BargeIn if decision == "pause" else Backchannel)(self.now_s))
        elif decision == "stop":
            if self._start_ms is not None:
                self._utt_barged = True
            events.append(Interruption(self.now_s))

    def _reset_utterance(self) -> None:
        self._start_ms: int | None = None  # first speech frame
        self._chunks: list[bytes] = []  # preroll + every frame since the onset
        self._preroll_ms = 0
        self._speech_ms = 0
        self._last_speech_ms = 0
        self._last_speech_index = 0
        self._longest_pause_ms = 0
        self._confirmed = False
        self._utt_playback = False
        self._utt_barged = False
        self._check_id: int | None = None  # the TurnCheck awaiting its answer
        self._verdict: bool | None = None  # the turn model's answer for the current pause
        self._looked_again = False  # its second TurnCheck was asked (turns.recheck_silence_ms)
        self._probability: float | None = None
        self._partial: str | None = None  # the partial transcript's kind for the current pause (resolve_partial)
        self._said_slowly = False  # ... and whether it was said slowly

    def _open(self, start_ms: int, chunk: bytes, lead: int = 0) -> None:
        """A candidate utterance from this frame; its onset ``lead`` frames earlier, where webrtcvad first heard
        the speech that the second opinion (slower: 32 ms chunks and a recurrent state) has only now agreed is."""
        lead = min(lead, len(self._preroll))
        self._start_ms = start_ms - lead * self.frame_ms
        before = list(self._preroll)[-(self._preroll_frames + lead):] if self._preroll_frames + lead else []
        self._chunks = [*before, chunk]
        self._preroll_ms = (len(before) - lead) * self.frame_ms
        self._speech_ms = self.frame_ms * (1 + lead)
        self._last_speech_ms = self._t_ms
        self._last_speech_index = len(self._chunks)
        self._utt_playback = self._bot_speaking

    def _confirm(self, events: list[TurnEvent]) -> None:
        self._confirmed, self._no_input_at_ms = True, None
        events.append(SpeechStarted(self._start_ms / 1000))

    def _kept(self) -> list[bytes]:
        """The utterance's audio: preroll, speech, and at most ``preroll_ms`` of the silence after it."""
        tail = min(self._preroll_frames, len(self._chunks) - self._last_speech_index)
        return self._chunks[:self._last_speech_index + tail]

    def _finish(self, events: list[TurnEvent], ended_by: str) -> None:
        if self._confirmed:
            self._dictation = False
            kept = self._kept()
            started = self._start_ms - self._preroll_ms
            events.append(Utterance(
                at_s=self.now_s, pcm=b"".join(kept), sample_rate=self.sample_rate, started_at_s=started / 1000,
                ended_at_s=(started + len(kept) * self.frame_ms) / 1000,
                speech_ended_at_s=self._last_speech_ms / 1000, during_playback=self._utt_playback,
                barged_in=self._utt_barged, ended_by=ended_by, turn_probability=self._probability,
                longest_pause_s=self._longest_pause_ms / 1000, speech_s=self._speech_ms / 1000))
        self._reset_utterance()
