"""Whisper's hallucinations: text it writes for noise, music or silence, which must never become a caller turn.

Why: Whisper was trained on subtitled video, so on babble, hold music or line noise it writes the subtitles it
saw most ("Thank you for watching.", "Please subscribe.") or loops one short sentence ("I am a man. I am a man.
I am a man."). Answered by the model, that is a bot talking to noise; taken as a request, it is an invented
ticket. A transcript is rejected (the caller gets the "didn't catch that" prompt, counted as a no-match) when:

* it is one of the known subtitle phrases, alone (a real caller rarely says only "thanks for watching");
* one short sentence or word run makes up the whole text, repeated three or more times, or a run of five or more
  single letters, most of them one letter ("A.D.D.D.D.D.D.D.D.D.D.", Whisper's line for "Eight eight eight eight.");
* Whisper itself doubts it: its no-speech probability is high *and* its mean log-probability is low, the pair
  Whisper's own decoder uses to drop silent windows (thresholds from faster-whisper's defaults).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from voicebot.crm.spoken import NUMBER_WORDS
from voicebot.text import normalize

SUBTITLE_PHRASES = frozenset(normalize(p) for p in (
    "thank you for watching", "thanks for watching", "thank you so much for watching", "thank you for listening",
    "please subscribe", "subscribe to my channel", "like and subscribe", "don't forget to subscribe",
    "subtitles by the amara org community", "subtitles by", "transcribed by", "translated by", "captions by",
    "www mooji org", "music", "applause", "laughter", "silence", "foreign", "you", "bye bye bye",
    "see you in the next video", "see you next time", "i'll see you next time",
))
_BRACKETED = re.compile(r"^\s*[\[(♪*].*[\])♪*]\s*$")
NO_SPEECH_PROB = 0.6
LOW_LOGPROB = -1.0
MIN_REPEATS = 3
LETTER_RUN = 5


@dataclass(frozen=True)
class Verdict:
    """Why a transcript was rejected ("subtitle", "repetition", "low_confidence"), with the text for the record."""

    reason: str
    text: str


def _repeats(words: list[str]) -> int:
    """How many times the shortest unit that tiles ``words`` is repeated (1 when nothing repeats)."""
    n = len(words)
    for size in range(1, n // MIN_REPEATS + 1):
        if n % size == 0 and words == words[:size] * (n // size):
            return n // size
    return 1


def check(text: str, no_speech_prob: float = 0.0, avg_logprob: float = 0.0) -> Verdict | None:
    """A Verdict when ``text`` is not something the caller said, else None."""
    said = normalize(text)
    if _BRACKETED.match(text):
        return Verdict("subtitle", text)
    if not said:
        return None
    if said in SUBTITLE_PHRASES:
        return Verdict("subtitle", text)
    sentences = [normalize(s) for s in re.split(r"[.!?…]+", text) if normalize(s)]
    if len(sentences) >= MIN_REPEATS and len(set(sentences)) == 1 and not sentences[0].replace(" ", "").isdigit():
        return Verdict("repetition", text)
    letters = said.split()  # "A.D.D.D.D.D.D.D.D.D.D." for "Eight eight eight eight." on a SIP line; not "K A R E N"
    if len(letters) >= LETTER_RUN and all(len(w) == 1 and w.isalpha() for w in letters) and max(
            map(letters.count, set(letters))) >= 0.6 * len(letters):
        return Verdict("repetition", text)
    numbers = all(w.isdigit() or w in NUMBER_WORDS for w in said.split())  # "one one one one one one": digits
    if not numbers and _repeats(said.split()) >= MIN_REPEATS and len(said.split()) >= 2 * MIN_REPEATS:
        return Verdict("repetition", text)
    if no_speech_prob >= NO_SPEECH_PROB and avg_logprob <= LOW_LOGPROB:
        return Verdict("low_confidence", text)
    return None
