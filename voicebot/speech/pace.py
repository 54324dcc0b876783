"""Is this caller slow or hesitant? Evidence gathered over the call, for longer turn limits and slower bot speech.

Why per call and not per pause: the turn model hears a phrase such as "I bought a chair in March," as finished
whatever the pace, and no cheap acoustic measure of one short utterance tells an elderly caller's pace from a
brisk one (syllable-rate estimates of Piper at length_scale 1.0 and 1.5 overlap). What does tell them apart is
what the caller does over a few turns, so ``CallerPace`` counts it and says once when the caller turns out slow;
the session then gives the turn detector longer limits (``TurnDetector.set_slow``) and speaks slower
(``turns.slow_length_scale``) for the rest of the call, and records the change as an event.

Evidence, each one point; ``SLOW_AT`` points make a slow caller:

* **went on after we ended the turn**: the caller spoke again within ``RESUMED_WITHIN_S`` of the end of a turn
  the detector ended early (model verdict), before the bot had said anything: we cut them (two points: it is the
  failure this is here to stop);
* **a long pause inside a turn**: the caller was quiet for ``LONG_PAUSE_S`` or more and then went on;
* **"what?" / "sorry?" / "pardon?" / "say that again"**: the caller did not follow the bot;
* **a slow speaking rate**: over at least ``RATE_MIN_SPEECH_S`` of the caller's speech in the call (pauses left
  out), fewer than ``SLOW_SYLLABLES_PER_S`` syllables per second (from the transcripts; turns with digits, and turns
  under ``RATE_MIN_TURN_S`` or half ``RATE_MIN_SYLLABLES``, left out: everyone reads a number slowly, and draws
  out a lone "Yes."). Syllables, not words: "I would like to check the status" and "the delivery date" are 7
  words and 3, and take about as long to say.

Before any of that, one turn can already be heard as slow (``slow_turn``): at a pause, the partial transcript has
fewer than ``SLOW_SYLLABLES_PER_S`` syllables per second of the turn's speech (pauses left out) over at least
``TURN_RATE_MIN_SPEECH_S``. That pause then waits as long as a slow caller's (``TurnDetector.resolve_partial``,
``slowly``; mid-call only: the open floor's own patience cut none of them). It is the weaker evidence the
paragraph above warns of, so it holds one pause and changes nothing else. Measured on Piper's voice at the first
pause of 20 sentences, normal speech (length_scale 1.0) gave 3.8-6.1 syllables/s and slow speech (1.4-1.6)
2.8-4.7: the threshold sits under the whole normal range and catches the slowest third (``voicebot bench turns``:
13 of 20 slow sentences cut mid-call before, 9 after). A wrong guess costs a normal caller ~1.5 s once, never
words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SLOW_AT = 2
RESUMED_WITHIN_S = 2.5
# A caller who goes on over no more than this much of the reply to a cut turn was going on with the sentence (the
# bot started inside their pause); one who lets the bot say more is answering or interrupting it.
CONTINUES_WITHIN_PLAYED_S = 1.0
LONG_PAUSE_S = 1.0
RATE_MIN_SPEECH_S = 3.0
RATE_MIN_TURN_S = 1.0  # shorter turns ("Yes.", held at 2 syllables/s) say nothing of the pace
SLOW_SYLLABLES_PER_S = 3.7
TURN_RATE_MIN_SPEECH_S = 1.5
RATE_MIN_SYLLABLES = 6
AGAIN = re.compile(r"^\W*(what|sorry|pardon|excuse me|come again|say (that|it) again|again|i didn'?t (catch|get|"
                   r"hear) (that|it|you)|can you repeat( that)?|could you repeat( that)?)\W*(please)?\W*$")


@dataclass(frozen=True)
class PaceChange:
    """The caller turned out slow: why (the evidence so far), for the call's events."""

    reasons: tuple[str, ...]
    words_per_s: float | None
    syllables_per_s: float | None = None


@dataclass
class CallerPace:
    """Evidence of a slow or hesitant caller over one call; ``slow`` once it reaches ``SLOW_AT`` points."""

    points: int = 0
    reasons: list[str] = field(default_factory=list)
    words: int = 0
    syllables: int = 0
    speech_s: float = 0.0
    slow: bool = False

    def _add(self, reason: str, points: int = 1) -> PaceChange | None:
        if self.slow:
            return None
        self.points += points
        self.reasons.append(reason)
        if self.points < SLOW_AT:
            return None
        self.slow = True
        rate = round(self.syllables / self.speech_s, 2) if self.speech_s else None
        return PaceChange(tuple(self.reasons), self.words_per_s, rate)

    @property
    def words_per_s(self) -> float | None:
        return round(self.words / self.speech_s, 2) if self.speech_s else None

    def resumed(self, gap_s: float) -> PaceChange | None:
        """The caller spoke again ``gap_s`` after the end of a turn we ended early, the bot still silent."""
        return self._add(f"went on {gap_s:.1f} s after the turn was ended", 2) if gap_s <= RESUMED_WITHIN_S else None

    def pause(self, seconds: float) -> PaceChange | None:
        """A pause of ``seconds`` inside a turn, after which the caller went on."""
        return self._add(f"paused {seconds:.1f} s mid-turn") if seconds >= LONG_PAUSE_S else None

    def heard(self, text: str, speech_s: float) -> PaceChange | None:
        """A caller turn's words and the seconds of speech they took."""
        if AGAIN.match(text.lower().strip()):
            return self._add("asked to hear it again")
        said = syllables(text)
        if re.search(r"\d", text) or speech_s < RATE_MIN_TURN_S or said < RATE_MIN_SYLLABLES // 2:
            return None
        self.words += len(text.split())
        self.syllables += said
        self.speech_s += max(speech_s, 0.0)
        if self.speech_s >= RATE_MIN_SPEECH_S and self.syllables / self.speech_s < SLOW_SYLLABLES_PER_S \
                and "slow speech" not in self.reasons:
            return self._add("slow speech")
        return None


def syllables(text: str) -> int:
    """Syllables in ``text``, estimated: a word's vowel groups, less a silent final "e"; a digit counts one.
    An estimate is enough for a rate with a margin (the ``syllables`` package does the same, under the GPL)."""
    count = 0
    for word in re.findall(r"[a-z']+|\d", text.lower()):
        groups = len(re.findall(r"[aeiouy]+", word))
        if word.endswith("e") and groups > 1 and not word.endswith(("le", "ee")):
            groups -= 1
        count += max(groups, 1)
    return count


def slow_turn(text: str, speech_s: float) -> bool:
    """The turn so far (its partial transcript, ``speech_s`` of speech) is said slowly (see the module docstring).
    Not judged with digits in it: everyone reads a number out slower ("My PIN is 1, 2, 3, 4." at a normal pace:
    3.3 syllables/s), and dictation has its own wait (``speech.dictation``). Nor under ``RATE_MIN_SYLLABLES``: a
    short phrase in street noise ("Hello world.", 3) counts the noise around it as speech, and is heard as slow."""
    if speech_s < TURN_RATE_MIN_SPEECH_S or re.search(r"\d", text):
        return False
    said = syllables(text)
    return said >= RATE_MIN_SYLLABLES and said / speech_s < SLOW_SYLLABLES_PER_S
