"""Backchannels: "mm-hmm", "okay", "right", "got it" said while the bot talks.

They tell the bot the caller is listening, not that the caller wants the turn, so a bot that stops for every one
of them sounds broken; one that talks over a real "stop" or "wait" sounds rude. The listener pauses playback for
any caller speech over the bot, then asks ``is_backchannel`` about the words: yes resumes the reply, no gives the
caller the turn. The escalation guard still hears every word first ("operator" is never a backchannel).

Words are spelled by the one tokeniser (``voicebot.text.words``) but counted as Whisper spaced them, so "Mm-hmm."
is one word (its parts "mm" and "hmm" both listening words) and "Mm-hmm, mm-hmm." two.
"""

from __future__ import annotations

from voicebot.text import words

BACKCHANNEL_WORDS = frozenset("ok okay k mm hmm mhm uh huh yeah yes yep yup right sure alright got it i see cool "
                              "great fine".split())
TAKE_TURN_WORDS = frozenset("stop wait no nope hold sorry what pardon hello hey help".split())
BACKCHANNEL_MAX_S = 1.0  # speech this short with at most two words is listening (or noise), whatever Whisper wrote


def spoken_words(text: str) -> list[list[str]]:
    """The words of ``text`` as Whisper spaced them, each as the tokeniser's parts: "Mm-hmm, okay." ->
    [["mm", "hmm"], ["okay"]]; punctuation on its own is no word."""
    return [parts for chunk in text.split() if (parts := words(chunk))]


def is_backchannel(text: str, speech_s: float) -> bool:
    """Whether caller speech over the bot (``text``, lasting ``speech_s`` seconds) only shows they are listening.

    Up to three listening words ("mm-hmm", "okay", "got it"); or, since Whisper often mishears a short "mm-hmm"
    as words ("Amen, mom"), any utterance of at most ``BACKCHANNEL_MAX_S`` and two words. Never when a word takes
    the turn ("stop", "wait", "no", "what").
    """
    said = spoken_words(text)
    if any(part in TAKE_TURN_WORDS for parts in said for part in parts):
        return False
    listening = len(said) <= 3 and all(part in BACKCHANNEL_WORDS for parts in said for part in parts)
    return listening or (speech_s <= BACKCHANNEL_MAX_S and len(said) <= 2)
