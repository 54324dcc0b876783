"""Caller speech over the bot: duck, pause, carry on, or stop, decided frame by frame in audio time.

Why here and not after the words: waiting for a transcript made a "mm-hmm" cost 2.9 s of silence, and a real
interruption must silence the bot as fast as a person stops (~200 ms). Words come too late for either, so the
first decisions use what each frame has: how long the caller's speech over the bot has lasted and how loud it is.

* **Duck** once a run of speech lasts ``vad.barge_in_ms`` (one dropped frame inside a run is tolerated, webrtcvad
  drops frames inside words): the bot's voice drops by ``vad.duck_db`` at once but the reply plays on, so a
  "mm-hmm" leaves no gap in it, while a real interruption is not talked over at full voice.
* **Pause** once the speech over the bot adds up to ``vad.pause_ms``: the bot is silent, nothing of the reply is
  lost (the transport holds it). With ``duck_db`` 0 the pause comes at ``barge_in_ms`` instead (no ducking).
  Speech clearly quieter than the caller's own turns (``vad.backchannel_quieter_db`` below their loud level) is
  how people say "mm-hmm" while listening, and what voices behind the caller sound like (a café, a television):
  it neither ducks, pauses nor stops the bot, however long it goes on.
* **Resume** when that speech stops (``vad.backchannel_gap_ms`` of silence) having lasted at most
  ``vad.backchannel_max_ms``: a backchannel ("okay", "yes", "right"); the reply carries on where it paused, at
  full voice. Its words are transcribed later by the session, only for the escalation guard ("operator" is never
  a backchannel).
* **Stop** once the caller's speech over the bot adds up to more than ``vad.backchannel_max_ms`` (pauses shorter
  than ``RESET_MS`` do not restart the count, so "Wait, ... what about my refund?" adds up): a real interruption.
  The session drops the rest of the reply and answers what the caller says.

Why duck first: a backchannel ("okay", "mm-hmm") lasts 0.2-0.5 s, so it cannot be told from the start of an
interruption within the ~200 ms a person takes to stop talking. Pausing at once (the old rule) made every loud
"mm-hmm" a 0.47 s hole in the reply (`voicebot bench turns`); playing on at full voice talks over an
interruption. Ducking first is what a person does: the voice drops at once, and only speech that goes on silences
it.

The turn model is not asked here: at 45-180 ms a call it would spend the whole budget, and a backchannel sounds
as "finished" to it as a short question does. Not thread-safe, like the ``TurnDetector`` that owns it.
"""

from __future__ import annotations

import statistics
from collections import deque
from typing import Literal

from voicebot.config import VadConfig

RESET_MS = 400  # silence over the bot after which the next speech is a new overlap
LEVELS_KEPT = 500  # the caller's speech frames the median level is taken over (10 s of speech at 20 ms)

Decision = Literal["duck", "pause", "resume", "stop"]


class OverlapJudge:
    """Feed every frame with ``step``; it answers at most one decision per frame (None: nothing to do)."""

    def __init__(self, config: VadConfig, frame_ms: int):
        self.config = config
        self.frame_ms = frame_ms
        self._levels: deque[float] = deque(maxlen=LEVELS_KEPT)  # the caller's speech outside the bot's
        self.restart()

    def restart(self) -> None:
        """A new playback: nothing decided yet."""
        self._run_ms = 0  # current run of speech frames
        self._run_gap = 0  # non-speech frames inside that run
        self._run_db: list[float] = []
        self._run_uncounted_ms = 0  # speech of the current run not yet added to the overlap (quiet so far)
        self._overlap_ms = 0  # speech over the bot since the last RESET_MS of silence
        self._silence_ms = 0
        self.ducked = False  # the bot's voice is lowered, not yet resumed, paused or stopped
        self.paused = False  # a pause is in force, not yet resumed or stopped
        self.stopped = False  # this playback was stopped by the caller

    @property
    def caller_level(self) -> float | None:
        """The caller's loud speech level (dBFS, 90th percentile of their speech frames: the vowels) when the bot
        was quiet; None until 1 s of it was heard."""
        if len(self._levels) < 1000 // self.frame_ms:
            return None
        return statistics.quantiles(self._levels, n=10)[-1]

    def step(self, speech: bool, level_db: float, bot_speaking: bool, raw: bool | None = None,
             confirmed: bool = True) -> Decision | None:
        """One frame: ``speech`` after the echo gate, ``raw`` the VAD's own decision (default: the same). While
        the bot is paused nothing new is played, so ``raw`` is used: the echo gate, still weighing what was
        played before the pause, would cut the caller's quieter syllables into gaps that look like the end of a
        backchannel, and the reply would stutter back on mid-interruption (so too while ducked: the gate still
        weighs the full-voice playback of the last ``echo_tail_ms``). ``confirmed``: the second opinion
        (``speech.silero``) heard speech lately; without it speech over the bot neither pauses nor stops it."""
        if (self.paused or self.ducked) and raw is not None:
            speech = raw
        if speech:
            self._run_ms += self.frame_ms
            self._run_gap = 0
            self._run_db.append(level_db)
            self._silence_ms = 0
            if not bot_speaking:
                self._levels.append(level_db)
        else:
            self._silence_ms += self.frame_ms
            if self._run_ms:
                self._run_gap += 1
                if self._run_gap > 1:  # one dropped frame is tolerated, two end the run
                    self._run_ms = self._run_gap = self._run_uncounted_ms = 0
                    self._run_db = []
        if not bot_speaking or self.stopped:
            return None
        if speech and confirmed:  # a quiet run counts only once it turns loud (voices behind the caller never do)
            self._run_uncounted_ms += self.frame_ms
            if not self._quiet():
                self._overlap_ms += self._run_uncounted_ms
                self._run_uncounted_ms = 0
        elif self._silence_ms >= RESET_MS:
            self._overlap_ms = 0
        c = self.config
        if self._overlap_ms > c.backchannel_max_ms:
            self.stopped, self.paused, self.ducked = True, False, False
            return "stop"
        if (self.paused or self.ducked) and self._silence_ms >= c.backchannel_gap_ms:
            self.paused = self.ducked = False
            return "resume"
        if self.ducked and self._overlap_ms >= c.pause_ms:
            self.paused, self.ducked = True, False
            return "pause"
        if not (self.paused or self.ducked) and confirmed and self._run_ms >= c.barge_in_ms and not self._quiet():
            if c.duck_db > 0:
                self.ducked = True
                return "duck"
            self.paused = True
            return "pause"
        return None

    def _quiet(self) -> bool:
        """The run's loudest frame is well below the caller's own loud speech: listening noises, not a bid for
        the turn (the loudest, as the run is only ``barge_in_ms`` old: its first vowel)."""
        level = self.caller_level
        return level is not None and max(self._run_db) < level - self.config.backchannel_quieter_db
