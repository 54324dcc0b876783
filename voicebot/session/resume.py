"""A caller the turn model cut, going on before the bot said a word: one turn, not two.

The turn model hears "I bought a chair in March," as finished whatever the caller's pace, so a slow caller's first
pause after a complete clause can end the turn (``speech.pace`` makes the rest of the call wait longer, but the
first cut has happened). When the caller goes on within ``pace.RESUMED_WITHIN_S`` and the bot has played nothing
since, the reply to the first half is dropped (nothing was heard; a CRM write always waits for a spoken yes) and
the two halves are heard as one utterance: the first half's audio, the pause as silence, the second half. Whisper
then reads the whole sentence, and the dialogue answers what the caller meant, not half of it.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Protocol

from voicebot.session.speaker import Speaker
from voicebot.session.state import State
from voicebot.speech.turns import Utterance


class ReplyUnderWay(Protocol):
    """What of the call session this needs (a Protocol, so this leaf does not import the core that imports it)."""

    _turn_task: asyncio.Future | None
    state: State
    speaker: Speaker


def merged(first: Utterance, second: Utterance) -> Utterance:
    """``first`` and ``second`` as one utterance (``pcm`` still covers ``started_at_s`` .. ``ended_at_s``)."""
    gap_s = max(second.started_at_s - first.ended_at_s, 0.0)
    silence = b"\0\0" * round(gap_s * first.sample_rate)
    pause_s = max(second.started_at_s - first.speech_ended_at_s, 0.0)
    # the detector saw the second half start "over the bot" (its reply was under way, silent): it was not
    return replace(second, pcm=first.pcm + silence + second.pcm, started_at_s=first.started_at_s,
                   during_playback=first.during_playback, barged_in=False,
                   longest_pause_s=max(first.longest_pause_s, second.longest_pause_s, pause_s),
                   speech_s=first.speech_s + second.speech_s)


def drop_silent_reply(session: ReplyUnderWay) -> bool:
    """The core's part: drop the reply to the cut turn (True), unless there is none under way any more. The
    listener calls this only while not a frame of that reply has played."""
    task = session._turn_task
    if task is None or task.done() or session.state not in (State.THINKING, State.SPEAKING):
        return False
    session.speaker.interrupt()  # speaking: its sentences are still being written or synthesised
    if session.state == State.THINKING:
        task.cancel()
    return True
