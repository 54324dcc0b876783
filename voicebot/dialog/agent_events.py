"""What one agent turn hands over, in order, as it happens: sentences to speak, tool calls, guard events, a
transfer request, the model's first token, a recognised intent or a knowledge answer (the session records them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from voicebot.dialog.intents import Intent
from voicebot.dialog.knowledge_step import KnowledgeUsed

@dataclass(frozen=True)
class Sentence:
    text: str


@dataclass(frozen=True)
class ToolCalled:
    name: str
    args: dict[str, Any]
    result: dict[str, Any]
    elapsed_s: float


@dataclass(frozen=True)
class TransferRequested:
    reason: str


@dataclass(frozen=True)
class Guarded:
    """A sentence the model wrote that was not spoken: ungrounded facts or a leak of the instructions."""

    kind: str
    original: str
    items: tuple[str, ...] = ()


@dataclass(frozen=True)
class FirstToken:
    after_s: float


@dataclass(frozen=True)
class IntentFound:
    """The caller's request was recognised in code (voicebot/dialog/intents.py); no model was asked."""

    intent: Intent


AgentEvent = Sentence | ToolCalled | TransferRequested | Guarded | FirstToken | IntentFound | KnowledgeUsed
