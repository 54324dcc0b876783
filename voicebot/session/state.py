"""The states of a call and the transitions between them.

Why a table: the session's tasks (the listener, the turn being handled, the speaker) all change what the bot is
doing, and a bug that lets two of them disagree (talking while transferring, listening after the call ended)
must fail loudly, where the session turns it into an error event and a transfer to a person, not go unnoticed.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    GREETING = "greeting"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    TRANSFERRING = "transferring"
    ENDED = "ended"


NEXT: dict[State, frozenset[State]] = {
    State.GREETING: frozenset({State.SPEAKING, State.ENDED}),
    State.LISTENING: frozenset({State.THINKING, State.SPEAKING, State.TRANSFERRING, State.ENDED}),
    State.THINKING: frozenset({State.SPEAKING, State.LISTENING, State.TRANSFERRING, State.ENDED}),
    State.SPEAKING: frozenset({State.LISTENING, State.THINKING, State.TRANSFERRING, State.ENDED}),
    State.TRANSFERRING: frozenset({State.SPEAKING, State.LISTENING, State.ENDED}),
    State.ENDED: frozenset(),
}


class IllegalTransition(RuntimeError):
    pass


def checked(current: State, new: State) -> State:
    """``new``, when a call in ``current`` may go there (staying is always allowed); else IllegalTransition."""
    if new != current and new not in NEXT[current]:
        raise IllegalTransition(f"{current} -> {new}")
    return new
