"""Shared fixtures. Model-backed fixtures load the real weights from models/ once per session.

A missing model is a failure with the fix in its message, never a skip: the setup command pulls them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from voicebot.config import Config, load_config
from voicebot.models import ModelError, ModelStore

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def words(text: str) -> list[str]:
    """Lower-case words without punctuation, for comparing transcripts."""
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


@pytest.fixture(scope="session")
def config() -> Config:
    return load_config(ROOT / "config.yaml")


@pytest.fixture(scope="session")
def model_store(config: Config) -> ModelStore:
    return ModelStore.from_config(config)


def _load(build):
    try:
        return build()
    except ModelError as exc:
        pytest.fail(f"{exc} (scripts/setup.sh pulls every configured model)")


@pytest.fixture(scope="session")
def synthesizer(config, model_store):
    from voicebot.components import make_synthesizer

    return _load(lambda: make_synthesizer(config, model_store))


@pytest.fixture(scope="session")
def transcriber(config, model_store):
    from voicebot.components import make_transcriber

    return _load(lambda: make_transcriber(config, model_store))


@pytest.fixture(scope="session")
def chat_model(config, model_store):
    from voicebot.components import make_chat_model

    return _load(lambda: make_chat_model(config, model_store))


@pytest.fixture(scope="session")
def intent_classifier(config, model_store):
    """The configured intent step over the real multilingual-e5-small."""
    from voicebot.components import make_intents

    return _load(lambda: make_intents(config, _remembering_embedder(config, model_store, config.knowledge.threads)))


@pytest.fixture(scope="session")
def embedder(config, model_store):
    """multilingual-e5-small on its own (the knowledge tests build bases of their own over it)."""
    return _load(lambda: _remembering_embedder(config, model_store, 2))


def _remembering_embedder(config, model_store, threads: int):  # noqa: ANN202 - an E5Embedder
    """The real multilingual-e5-small, answering a batch of texts it embedded before from memory.

    The company tests build the same knowledge base for every test, and its passages took about a second each time
    (a fifth of the dialogue tests' time). Whole batches are kept, not their texts one by one: a text embedded in a
    batch can differ from the same text alone in the last bits, and a test must get the vectors the bot would."""
    from voicebot.knowledge.embed import E5Embedder

    class RememberingE5(E5Embedder):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._batches: dict[tuple[bool, tuple[str, ...]], object] = {}

        def _encode(self, texts, is_query):  # noqa: ANN001, ANN202 - the parent's signature
            key = (is_query, tuple(texts))
            if len(key[1]) < 2:
                return super()._encode(texts, is_query)
            if key not in self._batches:
                self._batches[key] = super()._encode(texts, is_query)
            return self._batches[key].copy()

    name = config.knowledge.model
    return RememberingE5(model_store.locate(name), threads=threads, name=name)


@pytest.fixture(scope="session")
def knowledge_base(config, intent_classifier):
    """The demo company's knowledge base (knowledge/), sharing the intent step's embedding model."""
    from voicebot.knowledge.base import KnowledgeBase

    return _load(lambda: KnowledgeBase.from_config(config, intent_classifier.embedder))


# -- simulated calls ------------------------------------------------------------------------------------------

TODAY = __import__("datetime").date(2026, 11, 22)


def morning_of(day):  # noqa: ANN001, ANN201 - a date -> a clock
    """A CRM clock that says 8 AM on ``day``: the day the demo CRM was seeded "as of" in a test. With the wall
    clock, the seeded free times went by as the calendar moved on, and tests that passed in the morning of
    2026-12-01 failed that evening ("December 1st in the afternoon": "I have nothing free then")."""
    from datetime import datetime, time

    return lambda: datetime.combine(day, time(8))
ALICE = "+15550102030"  # seeded demo caller: PIN 1234, order 10452 shipped with UPS, ETA 2026-11-24


class CountingChat:
    """The real chat model, counting the dialogue turns that reach it (prefill is not a turn)."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.turns = 0

    def stream(self, messages, **kwargs):
        if kwargs.get("json_schema") is not None:
            self.turns += 1
        return self.inner.stream(messages, **kwargs)

    def warm(self, system_prompt):
        return self.inner.warm(system_prompt)


@pytest.fixture
def call_env(tmp_path, config, caller_voice, transcriber, chat_model, intent_classifier, knowledge_base):
    """Everything a simulated call needs: real models, a seeded CRM and an empty call store per test. The bot
    speaks with the repeatable Piper settings too, so what Whisper hears back is the same on every run."""
    from voicebot.components import make_voice_activity
    from voicebot.crm.repository import Repository
    from voicebot.crm.seed import seed_demo
    from voicebot.session import SessionDeps
    from voicebot.store import CallStore

    repo = Repository.open(tmp_path / "crm.db", region=config.crm.default_region, clock=morning_of(TODAY))
    seed_demo(repo, today=TODAY)
    store = CallStore(tmp_path / "calls.db", tmp_path / "recordings")
    chat = CountingChat(chat_model)
    deps = SessionDeps(config, transcriber, caller_voice, chat, make_voice_activity(config), repo, store,
                       today=TODAY, intents=intent_classifier, knowledge=knowledge_base)
    yield deps
    store.close()
    repo.close()


@pytest.fixture(scope="session")
def caller_voice(model_store, config):
    """Piper without its random variation: the same caller audio on every run, so tests repeat exactly."""
    from voicebot.speech.tts import PiperSynthesizer

    return PiperSynthesizer(model_store.locate(config.tts.voice), voice=config.tts.voice, noise_scale=0.0,
                            noise_w_scale=0.0)


def caller_says(synthesizer, text: str, rate: int = 16000):
    from voicebot.telephony.sim import Say

    return Say(b"".join(chunk.pcm for chunk in synthesizer.stream(text, rate)), rate, text)


def run_call(deps, script, caller_id: str = ALICE, speed: float = float("inf"), **line_kwargs):
    """Run one simulated call to the end; returns (line, outcome)."""
    import asyncio

    from voicebot.session import CallSession
    from voicebot.telephony.sim import SimulatedLine

    line = SimulatedLine(script, caller_id=caller_id, speed=speed, sample_rate=deps.config.audio.sample_rate,
                         **line_kwargs)
    outcome = asyncio.run(CallSession(line, deps).run())
    assert not line.failures, line.failures
    return line, outcome


def bot_said(line, transcriber) -> list[str]:
    """What the bot said, as heard: its recorded audio transcribed back by Whisper."""
    return [transcriber.transcribe(u.pcm, line.sample_rate).text for u in line.bot_utterances()]


def pytest_collection_modifyitems(config, items):
    """pytest-playwright's sync API keeps an asyncio loop running on the main thread until the session ends,
    after which asyncio.run() (simulated calls, the SIP worker, the CLI) refuses to start: browser tests last."""
    # every Chromium test module is named *_browser.py; a stable sort keeps the rest in order
    items.sort(key=lambda item: item.nodeid.split("::")[0].endswith("_browser.py"))
