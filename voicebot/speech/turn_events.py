"""What the turn detector tells the session (``voicebot.speech.turns``): typed events in audio time. Apart from
the detector so that the session, the events store and the tests can name them without its rules."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TurnEvent:
    at_s: float  # seconds of call audio the event refers to (see each event)


@dataclass(frozen=True)
class SpeechStarted(TurnEvent):
    """The caller is speaking (confirmed: ``min_speech_ms`` of speech); ``at_s`` is the onset."""


@dataclass(frozen=True)
class Duck(TurnEvent):
    """Caller speech sustained for ``barge_in_ms`` while the bot speaks: lower the bot's voice by ``duck_db`` now,
    playing on (``at_s``: now). ``Backchannel`` restores it, ``BargeIn`` or ``Interruption`` follow otherwise."""

    db: float = 0.0


@dataclass(frozen=True)
class BargeIn(TurnEvent):
    """Caller speech over the bot sustained for ``pause_ms`` (``barge_in_ms`` when ducking is off): pause playback
    now, keeping the rest (``at_s``: now)."""


@dataclass(frozen=True)
class Backchannel(TurnEvent):
    """The caller's speech over the bot stopped short (``speech.overlap``): resume the paused or ducked reply now, at
    full voice."""


@dataclass(frozen=True)
class Interruption(TurnEvent):
    """The caller's speech over the bot went on (``speech.overlap``): stop the reply and take the turn."""


@dataclass(frozen=True)
class NoInput(TurnEvent):
    """``no_input_timeout_s`` of audio passed after ``arm_no_input()`` without the caller speaking (``at_s``: now)."""


@dataclass(frozen=True, kw_only=True)
class Utterance(TurnEvent):
    """One turn of caller speech; ``pcm`` (mono s16le) covers ``started_at_s`` .. ``ended_at_s`` exactly.

    ``at_s`` is when the end of turn was decided; ``at_s - speech_ended_at_s`` is the endpointing delay.
    """

    pcm: bytes
    sample_rate: int
    started_at_s: float  # includes the preroll
    ended_at_s: float  # includes a short trailing silence
    speech_ended_at_s: float  # end of the last speech frame: the turn's "end of speech"
    during_playback: bool = False  # the bot was speaking when the caller started
    barged_in: bool = False  # this utterance stopped the bot
    ended_by: str = "silence"  # silence | model | dictation | max_length | hang_up
    turn_probability: float | None = None  # the turn model's last verdict on this pause, when it gave one
    longest_pause_s: float = 0.0  # the longest silence inside the utterance that the caller went on after
    speech_s: float = 0.0  # seconds of speech in it, pauses left out (the caller's pace: ``speech.pace``)

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


@dataclass(frozen=True, kw_only=True)
class TurnCheck(TurnEvent):
    """The caller paused for ``turns.check_silence_ms``: score ``pcm`` (the utterance so far) with the turn model,
    off the event loop, and answer ``resolve_turn_check(id, complete)``. ``at_s``: when it was asked."""

    id: int
    pcm: bytes
    sample_rate: int
    speech_ended_at_s: float


@dataclass(frozen=True)
class LikelyEnd(TurnEvent):
    """The caller has been quiet for ``early_stt_ms``: the turn will probably end. ``pcm`` is exactly the audio
    the Utterance will carry if no speech follows, so speech recognition can start now and be reused.
    ``speech_s``: the seconds of speech in it, pauses left out (the caller's pace in this turn: ``speech.pace``)."""

    pcm: bytes
    sample_rate: int
    speech_ended_at_s: float
    speech_s: float = 0.0
