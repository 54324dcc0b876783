"""HangUpGate: the model and the CRM tools of one call, both stopped the moment the caller hangs up.

Hang-up is a control event: the session cancels the turn in progress at once (see ``core.CallSession._hang_up``).
That stops playback and synthesis, which are asyncio tasks, but not the model: it runs in a worker thread, which
asyncio cannot cancel. The gate is how that thread learns the call is over.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from voicebot.crm.toolkit import ToolRegistry
from voicebot.llm.base import ChatMessage, ChatModel


class CallEnded(Exception):
    """Raised in a worker thread still working for a call whose caller has hung up."""


@dataclass
class HangUpGate:
    """The chat model and the CRM tools as one call's agent sees them: both stop once the caller has hung up.

    A model turn runs in a worker thread, and asyncio cannot cancel a thread: cancelling the turn only stops
    reading it, while the thread would go on generating and then run the tool the model chose (a ticket or a
    callback for a caller who has gone). So the thread checks for itself, before every piece the model hands
    over and before every tool, and raises CallEnded. It stands in for both the ChatModel and the ToolRegistry.
    """

    chat: ChatModel
    tools: ToolRegistry
    hung_up: threading.Event
    _open: int = 0  # streams being read now
    _released: threading.Condition = field(default_factory=threading.Condition)

    @property
    def name(self) -> str:
        return self.chat.name

    def check(self) -> None:
        if self.hung_up.is_set():
            raise CallEnded("the caller hung up")

    def stream(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Iterator[str]:
        with self._released:
            self._open += 1
        try:
            self.check()
            pieces = self.chat.stream(messages, **kwargs)
            try:
                for piece in pieces:
                    self.check()
                    yield piece
            finally:
                close = getattr(pieces, "close", None)
                if close is not None:
                    close()  # stops generation now, not when the generator is garbage-collected
        finally:
            with self._released:
                self._open -= 1
                self._released.notify_all()

    def warm(self, system_prompt: str) -> None:
        self.chat.warm(system_prompt)

    def specs(self) -> list[dict[str, Any]]:
        return self.tools.specs()

    def call(self, name: str, args: dict[str, Any] | str | None, context: Any) -> dict[str, Any]:
        self.check()  # nothing is written for a caller who has gone
        return self.tools.call(name, args, context)

    def wait_released(self, timeout_s: float) -> bool:
        """Block until no stream is open: the call ends only once its model is let go (after-call analysis may
        take the same model as soon as no call is live)."""
        with self._released:
            return self._released.wait_for(lambda: self._open == 0, timeout_s)

