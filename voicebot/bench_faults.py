"""``voicebot bench faults``: the time from a fault to the caller hearing the apology (issue 12's figure).

Why this level: the fault path (``session.faults``, ``watchdog``, ``transfer_hold``) is checked by the tests only
against a 3 s bound with fake speech; the figure wants what a caller hears. So each call here is the real
``CallSession`` with Whisper, webrtcvad, the turn model and Piper (the apology and the hold line pre-rendered by
Piper, as the worker does at start), the real CRM and call store, on the simulated line. One part is broken per
call, behind its real Protocol (``bench_fault_parts``): a transcriber, a synthesizer or an embedded model that
raises or hangs; the real Ollama client against a server that answers 500, one that takes the request and never
answers, and a port nothing listens on; the CRM locked at answer; every write of the call store failing with
ENOSPC (at answer, mid-call, and under ``store_errors: continue``); and an STT error when the operator does not
answer (a callback). The model that works is a canned one: its speed is no part of these figures.

The fault moment is the wall-clock time the failing call is made (the first: the early transcription of the
caller's turn, the model's request for the turn, the first synthesis after the greeting, the CRM lookup or store
write at answer). "Heard" is the wall-clock time the line sends the first frame above -40 dBFS after it. The line
runs fast until the caller's question is said (nothing is measured there), at line pace (20 ms a frame) from then
on, so a hang lasts as long as on a phone, and fast again once the apology is heard (the transfer, the callback).
For a hang the first audio is the hold line (or the filler) and the apology comes at the stage's limit
(``faults.*_timeout_s``, or ``--hang-limit``): both are rows. A store that fails gets the apology and a person
(``faults.store_errors: transfer``, the default), at answer and mid-call; under ``continue`` it never reaches the
caller (``session.records``): that row is the audio after the failed write, and whether the call went on.

Left out: the SIP path (RTP packets and the far end's jitter buffer add 20-60 ms) and real hardware failing (a dead
GPU; a disk filling up while written: the ENOSPC is raised by ``CallStore.apply``, spill files still work).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from voicebot.audio import phone_line
from voicebot.bench import Row
from voicebot.bench_fault_parts import (QUESTION, REPLY, BrokenChat, BrokenSynthesizer, BrokenTranscriber,
                                        HANG_MAX_S, CannedChat, Fault, FullStore, LockedCrm, OllamaDouble, TimedLine, enospc)
from voicebot.config import Config
from voicebot.events import CallbackCreated, ErrorOccurred, TransferResult
from voicebot.llm.base import LlmError
from voicebot.telephony.script import HangUp, Say, WaitForBot


@dataclass(frozen=True)
class Kind:
    """One fault: the part that breaks and how; ``at_answer``: it breaks as the call is answered (else once the
    caller's question is said); ``apology``: the call answers it with the apology (a store failure does not
    under ``faults.store_errors: continue``, which ``store_errors`` sets for the kind)."""

    name: str
    part: Literal["stt", "tts", "llm", "ollama", "crm", "store"]
    mode: Literal["raise", "hang", "real"] = "raise"
    ollama: Literal["500", "hang", "down"] | None = None
    at_answer: bool = False
    operator_answers: bool = True
    apology: bool = True
    store_errors: Literal["transfer", "continue"] = "transfer"

    @property
    def hangs(self) -> bool:
        return self.mode == "hang" or self.ollama == "hang"


KINDS: tuple[Kind, ...] = (
    Kind("STT raises", "stt"),
    Kind("STT hangs", "stt", "hang"),
    Kind("TTS raises", "tts"),
    Kind("TTS hangs", "tts", "hang"),
    Kind("embedded model raises", "llm"),
    Kind("embedded model hangs", "llm", "hang"),
    Kind("Ollama answers 500", "ollama", "real", "500"),
    Kind("Ollama never answers", "ollama", "real", "hang"),
    Kind("Ollama down (refused)", "ollama", "real", "down"),
    Kind("CRM locked at answer", "crm", at_answer=True),
    Kind("call store full (ENOSPC) at answer", "store", at_answer=True),
    Kind("call store full (ENOSPC) mid-call", "store"),
    Kind("call store full, store_errors: continue", "store", at_answer=True, apology=False, store_errors="continue"),
    Kind("STT raises, no operator answers", "stt", operator_answers=False),
)

ERRORS: dict[str, Callable[[], BaseException]] = {
    "stt": lambda: RuntimeError("CUDA error: out of memory (simulated)"),
    "tts": lambda: RuntimeError("onnxruntime: bad allocation (simulated)"),
    "llm": lambda: LlmError("llama_decode returned -3 (simulated)"),
    "crm": lambda: sqlite3.OperationalError("database is locked"),
    "store": enospc,
}


@dataclass
class Result:
    """One call of one kind: delays in seconds from the fault (None: never heard), and how the call ended."""

    heard_s: float | None
    apology_s: float | None
    heard: str  # what the caller heard first after the fault
    apology: bool
    transferred: bool
    callback: bool
    went_on: bool  # the bot answered the question (the store's kind)
    turns_kept: bool  # every turn the session committed is in the call store
    stage: str | None  # the stage of the call's first error event


@dataclass
class Parts:
    """What every call shares: the real models, the pre-rendered prompts, the CRM, the store, a folder."""

    config: Config
    transcriber: Any
    synthesizer: Any
    vad: Any
    turn_model: Any
    fallback: Any
    crm: Any
    store: Any
    folder: Path
    question: bytes


def bench_faults(config: Config, runs: int = 3, log: Callable[[str], None] = print,
                 hang_limit_s: float | None = None) -> list[Row]:
    """Each fault kind ``runs`` times; rows of fault-to-first-audio (and, for hangs, fault-to-apology) delays."""
    from voicebot.components import make_synthesizer, make_transcriber, make_turn_model, make_voice_activity
    from voicebot.crm.repository import Repository
    from voicebot.crm.seed import seed_demo
    from voicebot.models import ModelStore
    from voicebot.session.faults import FallbackSpeech
    from voicebot.store import CallStore

    if hang_limit_s is not None:
        config = config.model_copy(update={"faults": config.faults.model_copy(update={
            "stt_timeout_s": hang_limit_s, "tts_timeout_s": hang_limit_s, "llm_timeout_s": hang_limit_s})})
    models = ModelStore.from_config(config)
    rate = config.audio.sample_rate
    log("loading Whisper, Piper, webrtcvad and the turn model ...")
    transcriber, synthesizer = make_transcriber(config, models), make_synthesizer(config, models)
    question = b"".join(c.pcm for c in synthesizer.stream(QUESTION, rate))
    heard = transcriber.transcribe(phone_line(question, rate, "PCMU", rate), rate)  # warms Whisper too
    log(f"  the caller's question {QUESTION!r}, as Whisper hears it: {heard.text!r}")
    fallback = FallbackSpeech.render(synthesizer, config.dialog.prompts, rate)
    results: dict[str, list[Result]] = {kind.name: [] for kind in KINDS}
    voicebot_log = logging.getLogger("voicebot")
    level = voicebot_log.level
    voicebot_log.setLevel(logging.CRITICAL)  # the injected faults' own error lines would bury the progress
    try:
        with tempfile.TemporaryDirectory(prefix="voicebot-bench-faults-") as tmp:
            folder = Path(tmp)
            crm = Repository.open(folder / "crm.db", region=config.crm.default_region)
            seed_demo(crm, today=date.today())
            store = CallStore(folder / "calls.db", folder / "recordings")
            parts = Parts(config, transcriber, synthesizer, make_voice_activity(config, models),
                          make_turn_model(config, models), fallback, crm, store, folder, question)
            try:
                for run in range(runs):
                    for number, kind in enumerate(KINDS):
                        started = time.perf_counter()
                        result = run_call(parts, kind, f"{run}-{number}")
                        results[kind.name].append(result)
                        log(f"  run {run + 1}/{runs}, {kind.name}: {_progress(result)} "
                            f"({time.perf_counter() - started:.0f} s)")
            finally:
                store.close()
                crm.close()
    finally:
        voicebot_log.setLevel(level)
    return rows(results, config)


def run_call(parts: Parts, kind: Kind, tag: str) -> Result:
    """One call with ``kind``'s part broken; see the module docstring for what is timed."""
    from voicebot.llm.ollama_backend import OllamaChatModel
    from voicebot.session import CallSession, SessionDeps
    from voicebot.session.state import State
    from voicebot.store import CallStore, Outcome

    config, rate = parts.config, parts.config.audio.sample_rate
    if kind.store_errors != config.faults.store_errors:
        config = config.model_copy(update={"faults": config.faults.model_copy(
            update={"store_errors": kind.store_errors})})
    fault = Fault(kind.mode, ERRORS.get(kind.part, ERRORS["llm"]))
    transcriber, synthesizer, crm, store = parts.transcriber, parts.synthesizer, parts.crm, parts.store
    chat: Any = CannedChat()
    double = OllamaDouble(kind.ollama) if kind.ollama else None
    if kind.part == "stt":
        transcriber = BrokenTranscriber(transcriber, fault)
    elif kind.part == "tts":
        synthesizer = BrokenSynthesizer(synthesizer, fault)
    elif kind.part == "llm":
        chat = BrokenChat(chat, fault)
    elif double is not None:
        chat = BrokenChat(OllamaChatModel(double.url, config.llm.ollama.model,
                                          timeout_s=config.llm.ollama.timeout_s), fault)
    elif kind.part == "crm":
        crm = LockedCrm(crm, fault)
    elif kind.part == "store":
        store = FullStore(parts.folder / f"full-{tag}.db", parts.folder / "recordings")
        store.fault = fault
    deps = SessionDeps(config, transcriber, synthesizer, chat, parts.vad, crm, store, turn_model=parts.turn_model,
                       fallback=parts.fallback, test_calls=True)
    script = [WaitForBot(), Say(parts.question, rate, QUESTION),
              WaitForBot(gap_s=60.0 if kind.apology else 0.8), HangUp()]  # listens on until the transfer
    refused = None if kind.operator_answers else TransferResult(config.sip.operator_uri, ok=False, status=480,
                                                                reason="Temporarily Unavailable")
    line = TimedLine(script, caller_id="+15550102030", sample_rate=rate, transfer_result=refused,
                     speed=1.0 if kind.at_answer else float("inf"))
    session = CallSession(line, deps)
    fault.released = session.hung_up  # a hung part is let go once the line is gone, as a stuck model gives up
    if double is not None:  # a request hung on the double is reset then: the client's thread ends with the call
        threading.Thread(target=lambda: session.hung_up.wait(HANG_MAX_S) and double.close(), daemon=True).start()

    def arm() -> None:
        fault.armed = True

    line.on_paced = arm
    if kind.apology:  # measured until the apology is heard: it plays once the session is transferring
        line.hurry_when = lambda: session.state in (State.TRANSFERRING, State.ENDED)
    else:
        line.hurry_when = lambda: bool(fault.at)
    if kind.at_answer:
        arm()

    async def call() -> None:
        try:
            await asyncio.wait_for(session.run(), timeout=300)
        finally:  # hung parts let go here at the latest: the loop's executor waits for their threads
            session.hung_up.set()

    try:
        asyncio.run(call())
    finally:
        if double is not None:
            double.close()
    fault.armed = False
    ops = [op["turn"] for op in session.records.log if op["op"] == "add_turn"]
    if kind.part == "store":  # reopened as at the next start: the spilled records are imported
        store.close()
        store = CallStore(store.path, parts.folder / "recordings")
    stored = [(t.role, t.text) for t in store.turns(session.call_id)]
    if kind.part == "store":
        store.close()
    prompts = config.dialog.prompts
    fault_at = fault.at[0] if fault.at else None
    first = line.first_heard(fault_at) if fault_at is not None else None
    heard_s = line.sent_at[first] - fault_at if first is not None and fault_at is not None else None
    apology_s = (line.sent_at[line.hurried_at] - fault_at if kind.apology and line.hurried_at is not None
                 and fault_at is not None else None)
    errors = [e.stage for e in session.events if isinstance(e, ErrorOccurred)]
    return Result(heard_s, apology_s, _what(config, session.records.log,
                                            first * line.frame_ms / 1000 if first is not None else None),
                  any(t["role"] == "bot" and t["text"] == prompts.error for t in ops),
                  session.outcome == Outcome.TRANSFERRED, any(isinstance(e, CallbackCreated) for e in session.events),
                  any(t["role"] == "bot" and t["text"] == REPLY for t in ops),
                  stored == [(t["role"], t["text"]) for t in ops] and bool(ops), errors[0] if errors else None)


def _what(config: Config, ops: list[dict[str, Any]], at_s: float | None) -> str:
    """What the caller heard first: the name of the bot turn playing at ``at_s`` (call audio seconds), or the
    filler (an event, not a turn)."""
    if at_s is None:
        return "nothing"
    prompts = config.dialog.prompts
    names = {prompts.error: "apology", prompts.hold: "hold line", REPLY: "reply", prompts.error_goodbye: "goodbye"}
    turns = [op["turn"] for op in ops if op["op"] == "add_turn" and op["turn"]["role"] == "bot"]
    for number, turn in enumerate(turns):
        start, end = turn.get("started_at"), turn.get("ended_at")
        if start is not None and start - 0.1 <= at_s <= (end if end is not None else start) + 0.1:
            return names.get(turn["text"], "greeting" if number == 0 else "other")
    return "filler" if any(op["op"] == "add_event" and op["kind"] == "filler" for op in ops) else "other"


def _progress(r: Result) -> str:
    def s(v: float | None) -> str:
        return "never" if v is None else f"{v:.2f} s"

    how = "transfer" if r.transferred else "callback" if r.callback else "call went on" if r.went_on else "no way out"
    return (f"{r.heard} after {s(r.heard_s)}" + (f", apology after {s(r.apology_s)}" if r.apology_s != r.heard_s
                                                 and r.apology else "")
            + f"; {how}; error stage {r.stage or '-'}; turns kept: {'yes' if r.turns_kept else 'NO'}")


def rows(results: dict[str, list[Result]], config: Config) -> list[Row]:
    """A row per kind (fault to first audio, with what was heard and how the calls ended), and for hangs a second
    row (fault to the apology at the stage's limit)."""
    nan = (float("nan"),)
    out: list[Row] = []
    for kind in KINDS:
        rs = results[kind.name]
        n = len(rs)
        heard = Counter(r.heard for r in rs).most_common(1)[0][0] if rs else "nothing"
        kept = sum(r.turns_kept for r in rs)
        if kind.apology:
            way = (f"transfer {sum(r.transferred for r in rs)}/{n}" if kind.operator_answers
                   else f"callback {sum(r.callback for r in rs)}/{n}")
            ending = f"apology {sum(r.apology for r in rs)}/{n}, {way}"
        else:
            ending = f"no apology by design, call went on {sum(r.went_on for r in rs)}/{n}"
        values = tuple(r.heard_s for r in rs if r.heard_s is not None) or nan
        out.append(Row("fault", f"{kind.name}: to first audio ({heard}); {ending}, turns kept {kept}/{n}", "s",
                       values))
        if kind.hangs:
            limit = config.faults.stt_timeout_s if kind.part == "stt" else (
                config.faults.tts_timeout_s if kind.part == "tts" else config.faults.llm_timeout_s)
            out.append(Row("fault", f"{kind.name}: to the apology (stage limit {limit:g} s)", "s",
                           tuple(r.apology_s for r in rs if r.apology_s is not None) or nan))
    return out
