"""SessionDeps: what every call of a worker shares, built once when the worker starts.

Apart from the session's code so that the code that builds it (the worker, ``voicebot chat``, the benchmarks, the
tests with their fakes) names the parts a call needs without depending on how a call uses them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from voicebot.config import Config
from voicebot.crm.repository import Repository
from voicebot.dialog.intents import IntentClassifier
from voicebot.dialog.knowledge_step import KnowledgeSource
from voicebot.llm.base import ChatModel
from voicebot.speech.stt import Transcriber
from voicebot.speech.tts import Synthesizer
from voicebot.speech.turn_model import EndOfTurnModel
from voicebot.speech.vad import VoiceActivity
from voicebot.store import CallStore

if TYPE_CHECKING:
    from voicebot.session.faults import FallbackSpeech


@dataclass
class SessionDeps:
    """Everything a call needs that outlives the call: loaded models, databases, config."""

    config: Config
    transcriber: Transcriber
    synthesizer: Synthesizer
    chat: ChatModel
    vad: VoiceActivity
    crm: Repository
    store: CallStore
    worker: str = "main"
    today: date | None = None  # the CRM's "today" (tests pin it); None: the CRM clock's (the company's zone)
    on_call_end: Callable[[str], Any] | None = None  # called with the call id: e.g. the after-call analysis
    turn_model: EndOfTurnModel | None = None  # decides the end of each turn; None: a fixed silence
    intents: IntentClassifier | None = None  # recognises requests in code; None: the model decides each turn
    knowledge: KnowledgeSource | None = None  # the company's knowledge base; None: questions go to the model
    fallback: FallbackSpeech | None = None  # the apology and goodbye, rendered at start (faults.FallbackSpeech.render)
    test_calls: bool = False  # chat, simulate, bench: their calls are marked as tests in the store (hidden in review)
