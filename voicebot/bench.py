"""Benchmarks of the speech and language models (never run by the test suite; `voicebot bench models`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from voicebot.audio import phone_line, silence
from voicebot.components import load_components, system_prompt
from voicebot.config import Config
from voicebot.llm.base import ChatMessage
from voicebot.models import ModelStore

SHORT_UTTERANCE = "Where is my order, please?"
LONG_UTTERANCE = ("Hi, I ordered a pair of hiking boots two weeks ago and the tracking page "
                  "still says it is waiting for the carrier.")
CALLER_TURNS = [
    "Where is my order?",
    "I want to book a repair appointment for next week.",
    "Can you tell me when the boots will arrive?",
    "My package arrived damaged and I would like a replacement.",
    "Please call me back tomorrow morning.",
]
REPLY = "Your order shipped yesterday with UPS. It should arrive on Thursday. Is there anything else?"


@dataclass(frozen=True)
class Row:
    stage: str
    metric: str
    unit: str
    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return float(np.median(self.values))

    @property
    def p95(self) -> float:
        return float(np.percentile(self.values, 95))


def speech_for(parts, text: str, rate: int) -> bytes:
    return b"".join(c.pcm for c in parts.synthesizer.stream(text, rate))


def bench_models(config: Config, runs: int = 5, log: Callable[[str], None] = print) -> list[Row]:
    store = ModelStore.from_config(config)
    rate = config.audio.sample_rate
    log("loading and warming models ...")
    parts = load_components(config, store, on_stage=lambda s: log(f"  {s.name}: load {s.load_s:.2f} s, "
                                                                    f"warm {s.warm_s:.2f} s"))
    rows = [Row(s.name, f"load ({s.detail})", "s", (s.load_s,)) for s in parts.stages]

    # speech to text on telephone audio of two lengths
    for label, text in (("short", SHORT_UTTERANCE), ("long", LONG_UTTERANCE)):
        speech = speech_for(parts, text, rate)
        clip = phone_line(silence(200, rate) + speech + silence(200, rate), rate)
        seconds = len(clip) / 2 / 8000
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            parts.transcriber.transcribe(clip, 8000)
            times.append(time.perf_counter() - started)
        rows.append(Row("speech to text", f"{label} utterance {seconds:.1f} s", "s", tuple(times)))

    # end of turn: one decision of the turn model on telephone audio (what each pause of a caller costs)
    if parts.turn_model is not None:
        clip = phone_line(speech_for(parts, LONG_UTTERANCE, rate) + silence(200, rate), rate)
        times = [parts.turn_model.score(clip, 8000).seconds * 1000 for _ in range(max(runs, 20))]
        rows.append(Row("end of turn", f"decision ({config.turns.model}, 8 kHz, 1 thread)", "ms", tuple(times)))

    # language model with the system prompt already evaluated
    prompt = system_prompt(config)
    ttft, rates = [], []
    for i in range(max(runs, len(CALLER_TURNS))):
        turn = CALLER_TURNS[i % len(CALLER_TURNS)]
        messages = [ChatMessage("system", prompt), ChatMessage("user", turn)]
        started = time.perf_counter()
        first = None
        pieces = 0
        for _piece in parts.chat.stream(messages, max_tokens=64):
            pieces += 1
            if first is None:
                first = time.perf_counter()
        ended = time.perf_counter()
        if first is not None:
            ttft.append(first - started)
            if pieces > 1 and ended > first:
                rates.append((pieces - 1) / (ended - first))
    rows.append(Row("language model", "time to first token (prefix warm)", "s", tuple(ttft)))
    rows.append(Row("language model", "generation", "tok/s", tuple(rates)))
    count = getattr(parts.chat, "count_tokens", None)
    if count is not None:  # prompt processing: the whole system prompt evaluated cold, no cached prefix
        prompt_rates = []
        for i in range(runs):
            text = f"Session {i} of the benchmark. {prompt}"  # a new first token: nothing of the cache is reused
            messages = [ChatMessage("system", text), ChatMessage("user", CALLER_TURNS[0])]
            started = time.perf_counter()
            for _piece in parts.chat.stream(messages, max_tokens=1):
                break
            prompt_rates.append(count(text) / (time.perf_counter() - started))
        rows.append(Row("language model", "prompt processing (cold system prompt)", "tok/s", tuple(prompt_rates)))

    # text to speech: first audio and real-time factor
    firsts, rtfs = [], []
    for _ in range(runs):
        started = time.perf_counter()
        first = None
        audio_s = 0.0
        for chunk in parts.synthesizer.stream(REPLY, rate):
            if first is None:
                first = time.perf_counter() - started
            audio_s += chunk.duration_s
        firsts.append(first or 0.0)
        rtfs.append((time.perf_counter() - started) / audio_s)
    rows.append(Row("text to speech", "time to first audio", "s", tuple(firsts)))
    rows.append(Row("text to speech", "real-time factor", "x", tuple(rtfs)))
    return rows


# -- whole calls ---------------------------------------------------------------------------------------------

CALL_SCRIPTS: list[list[str]] = [
    ["Where is my order?", "My PIN is one two three four.", "Repairs."],
    ["I would like a quote for ten standing desks.", "My printer is broken, can someone come and fix it?",
     "The first one please.", "Do you sell coffee machines?"],
    ["Sales.", "I need forty ergonomic chairs for a new office.", "Please call me back tomorrow morning."],
    ["What is your return policy?", "Are you open on Saturday?", "How long does delivery usually take?"],
    # turns no menu, template or knowledge entry can place: the model writes the reply
    ["Hello, how is your day going so far?",
     "My colleague said you could help us with something about our account, but I am not sure what it was.",
     "Okay, never mind, I will ask her again. Thanks anyway."],
    ["Do you think it will rain tomorrow?", "Can you tell me a joke?", "What do you think about working from home?"],
]
STAGES = ("endpointing", "transcript_ready", "first_token", "first_sentence", "first_audio_out")


def bench_calls(config: Config, runs: int = 1, log: Callable[[str], None] = print) -> list[Row]:
    """Scripted calls at line pace through the simulated line with the real models, CRM and call store.
    Returns per-stage delays after the caller stopped speaking, for fixed turns and for model turns."""
    import asyncio
    import tempfile
    from datetime import date
    from pathlib import Path

    from voicebot.crm.repository import Repository
    from voicebot.crm.seed import seed_demo
    from voicebot.session import CallSession, SessionDeps
    from voicebot.store import CallStore
    from voicebot.telephony.sim import HangUp, Say, SimulatedLine, WaitForBot

    store_models = ModelStore.from_config(config)
    log("loading and warming models ...")
    parts = load_components(config, store_models)
    rate = config.audio.sample_rate
    samples: dict[tuple[str, str], list[float]] = {}
    decisions: list[float] = []  # the turn model's cost per decision, in the calls
    with tempfile.TemporaryDirectory(prefix="voicebot-bench-") as tmp:
        folder = Path(tmp)
        repo = Repository.open(folder / "crm.db", region=config.crm.default_region)
        seed_demo(repo, today=date.today())
        store = CallStore(folder / "calls.db", folder / "recordings")
        deps = SessionDeps(config, parts.transcriber, parts.synthesizer, parts.chat, parts.vad, repo, store,
                           turn_model=parts.turn_model, intents=parts.intents, knowledge=parts.knowledge,
                           test_calls=True)
        for run in range(runs):
            for number, lines in enumerate(CALL_SCRIPTS, 1):
                script: list = [WaitForBot()]
                for text in lines:
                    pcm = b"".join(c.pcm for c in parts.synthesizer.stream(text, rate))
                    script += [Say(pcm, rate, text), WaitForBot(gap_s=0.8)]
                line = SimulatedLine(script + [HangUp()], caller_id="+15550102030", sample_rate=rate, speed=1.0)
                session = CallSession(line, deps)
                asyncio.run(session.run())
                log(f"  run {run + 1}, call {number}: {len(session.clocks)} caller turns, {line.now_s:.0f} s")
                decisions += [score.seconds * 1000 for score in session.listener.turn_scores]
                knowledge = _knowledge_turns(store, session.call_id)
                heard = {round(t.timings.end_of_speech, 3): t.text for t in store.turns(session.call_id)
                         if t.role == "caller" and t.timings.end_of_speech is not None}
                for clock in session.clocks:
                    kind = ("model turns" if "first_token" in clock.marks else "knowledge turns"
                            if round(clock.end_of_speech, 3) in knowledge else "fixed / CRM turns")
                    audio = clock.marks.get("first_audio_out")
                    log(f"    {kind:<17} endpointing {clock.endpoint_delay:5.2f} s, first audio "
                        f"{'-' if audio is None else f'{audio:.2f} s'}: "
                        f"{heard.get(round(clock.end_of_speech, 3), '?')[:60]!r}")
                    samples.setdefault((kind, "endpointing"), []).append(clock.endpoint_delay)
                    for stage in STAGES[1:]:
                        if stage in clock.marks:
                            samples.setdefault((kind, stage), []).append(clock.marks[stage])
        store.close()
        repo.close()
    rows = [Row(kind, f"{stage.replace('_', ' ')} (after end of speech)", "s", tuple(values))
            for (kind, stage), values in sorted(samples.items(), key=lambda kv: (kv[0][0], STAGES.index(kv[0][1])))]
    if decisions:
        rows.append(Row("end of turn", f"turn model decision in calls ({config.turns.model})", "ms", tuple(decisions)))
    return rows


def _knowledge_turns(store, call_id: str) -> set[float]:
    """End of speech (call audio, s) of the caller turns the knowledge base answered (an entry, the hours or a
    price): the issue's "knowledge turn" of the end-of-speech-to-first-audio figure, apart from CRM turns."""
    from voicebot.events import EventKind
    from voicebot.outcomes import ANSWERED_KNOWLEDGE

    callers = [t for t in store.turns(call_id) if t.role == "caller" and t.started_at is not None]
    out = set()
    for event in store.events(call_id):
        if event.kind != EventKind.KNOWLEDGE or event.data.get("answer") not in ANSWERED_KNOWLEDGE:
            continue
        before = [t for t in callers if event.at is None or t.started_at <= event.at]
        if before and before[-1].timings.end_of_speech is not None:
            out.add(round(before[-1].timings.end_of_speech, 3))
    return out
