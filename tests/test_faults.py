"""Faults never mean silence (issue 12): a part that fails or hangs mid-call ends in an apology and a person.

Each test breaks one part of a call on the simulated line (fakes.py for the models; the real Ollama client against
an Ollama server that hangs or dies; the real call store on a real full tmpfs) and checks, in call audio time,
that the caller hears the pre-rendered apology within 3 s of the fault, that the transfer (or, when it fails, a
callback and a goodbye) happens, and that the call record is complete. Hangs run the line at line pace
(``speed=1``): the fast line stands its clock still while the bot is busy, which would hide a silence.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import morning_of
from prometheus_client import REGISTRY
from fakes import (
    CallerVoice,
    FakeSynthesizer,
    FakeTranscriber,
    ScriptedChat,
    ScriptedVad,
    wait_until,
)
from ollama_server import FakeOllama
from test_session import ALICE, COFFEE, TODAY, Call, Env, reply, with_dialog

from voicebot.config import Config
from voicebot.crm.repository import Repository
from voicebot.crm.seed import seed_demo
from voicebot.llm.base import LlmError
from voicebot.llm.ollama_backend import OllamaChatModel
from voicebot.session import CallSession, SessionDeps
from voicebot.session.faults import FallbackSpeech
from voicebot.session.state import State
from voicebot.store import CallStore, Outcome
from voicebot.telephony.base import TransferResult
from voicebot.telephony.sim import SimulatedLine, WaitForBot

COFFEE_Q = "do you sell coffee"
SAY_S = 1.2  # the caller's question: 4 words at 0.3 s
GAP_S = 0.5  # WaitForBot's pause before the caller speaks


@pytest.fixture(scope="module")
def crm_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("crm") / "crm.db"
    repo = Repository.open(path, clock=morning_of(TODAY))
    seed_demo(repo, today=TODAY)
    repo.close()
    return path


@pytest.fixture
def env(tmp_path, config, crm_template):
    """As in test_session: the demo CRM, a fresh call store, the fake voice, synthesizer and transcriber."""
    shutil.copy(crm_template, tmp_path / "crm.db")
    crm = Repository.open(tmp_path / "crm.db", region=config.crm.default_region, clock=morning_of(TODAY))
    store = CallStore(tmp_path / "calls.db", tmp_path / "recordings")
    voice = CallerVoice(sample_rate=config.audio.sample_rate)
    yield Env(config, crm, store, voice, FakeSynthesizer(), FakeTranscriber(voice))
    store.close()
    crm.close()


def limits(config: Config, **values: float) -> Config:
    return config.model_copy(update={"faults": config.faults.model_copy(update=values)})


def short(env: Env, **limits_s: float) -> Config:
    """A short greeting and quick fake speech, so calls at line pace take a few seconds of wall time."""
    env.synth.ms_per_char = 8.0
    return limits(with_dialog(env.config, greeting="Hello{name}, this is the automated assistant."), **limits_s)


class Live:
    """The session of the call under test, once it exists: a hung part waits for the call to end (as a stuck
    model or decoder would, until it gives up), so the test never waits for a thread that cannot be stopped."""

    session: CallSession | None = None

    def hang(self, *_: object) -> None:
        wait_until(lambda: self.session is not None and self.session.hung_up.is_set(), timeout_s=30.0)


def call(env: Env, chat=None, config: Config | None = None, *, speed: float = float("inf"), transcriber=None,
         crm=None, store: CallStore | None = None, fallback: FallbackSpeech | None = None, live: Live | None = None,
         transfer_result: TransferResult | None = None) -> Call:
    """The caller asks one question after the greeting, then listens; the bot's answer decides the rest. The
    apology is rendered first, as the worker does at start (``fallback``: one rendered before the test broke
    the synthesizer)."""
    config = config or env.config
    rate = config.audio.sample_rate
    fallback = fallback or FallbackSpeech.render(env.synth, config.dialog.prompts, rate)
    env.synth.said.clear()  # what follows is the call's own synthesis
    script = [WaitForBot(), env.voice.say(COFFEE_Q, SAY_S), WaitForBot()]
    line = SimulatedLine(script, caller_id=ALICE, speed=speed, sample_rate=rate, transfer_result=transfer_result)
    deps = SessionDeps(config, transcriber or env.transcriber, env.synth, chat or ScriptedChat(), ScriptedVad(),
                       crm or env.crm, store or env.store, today=TODAY, fallback=fallback)
    session = CallSession(line, deps)
    if live is not None:
        live.session = session
    outcome = asyncio.run(asyncio.wait_for(session.run(), timeout=60))
    assert not line.failures, line.failures
    return Call(line, session, outcome, store or env.store)


def turn_end(call_: Call, config: Config) -> float:
    """Call audio time at which the caller's turn ended (end of speech + the end-of-turn silence): every fault
    below happens, or begins to hang, at or after it."""
    greeting = call_.line.bot_utterances()[0]
    return greeting.end_s + GAP_S + SAY_S + config.vad.end_of_turn_silence_ms / 1000


def assert_apology_then_person(call_: Call, env: Env, stage: str, fault_at: float, transferred: bool = True) -> float:
    """The error is on record once with its stage, the apology was heard within 3 s of ``fault_at`` (call audio),
    the caller went to a person; returns the delay from the fault to the apology."""
    prompts = call_.session.config.dialog.prompts
    errors = [e for e in call_.events if e.kind == "error"]
    assert [e.data["stage"] for e in errors][:1] == [stage], call_.kinds()
    apology = call_.turn("bot", prompts.error)
    heard = [u for u in call_.line.bot_utterances(min_gap_s=0) if u.end_s > apology.started_at]
    assert heard, "the apology was never played"
    delay = max(heard[0].start_s, apology.started_at) - fault_at  # (it may follow a cut reply without a gap)
    assert 0 <= delay <= 3.0, (delay, fault_at)
    assert apology.ended_at - apology.started_at == pytest.approx(env.synth.seconds(prompts.error), abs=0.05)
    assert call_.line.transfers == [call_.session.config.sip.operator_uri]
    assert call_.event("transfer_requested").data["reason"] == "error"
    if transferred:
        assert call_.outcome == Outcome.TRANSFERRED and call_.record.outcome == Outcome.TRANSFERRED
        assert call_.record.outcome_reason == f"error: {stage} failed"
    assert call_.record.ended_at is not None and call_.record.summary
    return delay


# -- speech to text -----------------------------------------------------------------------------------------


class BrokenTranscriber:
    def __init__(self, inner: FakeTranscriber, live: Live | None = None):
        self.inner, self.live, self.asked = inner, live, 0

    def transcribe(self, pcm: bytes, sample_rate: int, *, prompt: str | None = None):
        self.asked += 1
        if self.live is not None:  # hangs
            self.live.hang()
            return self.inner.transcribe(pcm, sample_rate)
        raise RuntimeError("CUDA error: out of memory (simulated)")


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_speech_recognition_error_gets_the_apology_and_a_transfer(env, caplog):
    transcriber = BrokenTranscriber(env.transcriber)
    errors, apologies = counted("voicebot_errors_total", kind="stt"), counted("voicebot_fault_to_apology_seconds_count")
    result = call(env, transcriber=transcriber)

    assert transcriber.asked >= 1
    assert_apology_then_person(result, env, "stt", turn_end(result, env.config))
    assert counted("voicebot_errors_total", kind="stt") == errors + 1  # in /metrics
    assert counted("voicebot_fault_to_apology_seconds_count") == apologies + 1
    logged = [r.getMessage() for r in caplog.records if "stt failed" in r.getMessage()]
    assert logged == [f"call {result.session.call_id}: stt failed (RuntimeError: CUDA error: out of memory "
                      "(simulated)); apology and transfer"]  # once, with its stage
    assert result.said("bot") == [env.greeting("Alice"), env.prompts.error]
    assert result.said("caller") == []  # nothing was heard: no invented turn


def test_speech_recognition_that_hangs_becomes_a_fault_within_its_time_limit(env):
    config = short(env, stt_timeout_s=1.5)
    live = Live()
    result = call(env, config=config, speed=1.0, transcriber=BrokenTranscriber(env.transcriber, live), live=live)
    end = turn_end(result, config)
    delay = assert_apology_then_person(result, env, "stt", end)
    assert delay >= 1.5 - config.vad.early_stt_ms / 1000 - 0.1  # it waited for the limit (early STT began first)
    assert "no result within 1.5 s" in result.event("error").data["error"]


class DeafToInterruptions:
    """Recognises the question; fails on what the caller says over the bot."""

    def __init__(self, inner: FakeTranscriber):
        self.inner = inner

    def transcribe(self, pcm: bytes, sample_rate: int, *, prompt: str | None = None):
        transcript = self.inner.transcribe(pcm, sample_rate)
        if "sales" in transcript.text:
            raise RuntimeError("decoder failure (simulated)")
        return transcript


def test_speech_recognition_failing_on_a_barge_in_stops_the_reply_and_apologises(env):
    """The words of a barge-in are recognised on the listener, not in a turn: their failure still reaches the
    core (a ``Faulted`` event) instead of leaving the bot paused and silent."""
    from test_session import STOCK

    from voicebot.telephony.sim import WaitIntoBot

    rate = env.config.audio.sample_rate
    fallback = FallbackSpeech.render(env.synth, env.config.dialog.prompts, rate)
    env.synth.said.clear()
    script = [WaitForBot(), env.voice.say(COFFEE_Q, SAY_S), WaitIntoBot(0.6), env.voice.say("sales", 1.2),
              WaitForBot()]
    line = SimulatedLine(script, caller_id=ALICE, speed=float("inf"), sample_rate=rate)
    deps = SessionDeps(env.config, DeafToInterruptions(env.transcriber), env.synth, ScriptedChat([reply(STOCK)]),
                       ScriptedVad(), env.crm, env.store, today=TODAY, fallback=fallback)
    session = CallSession(line, deps)
    outcome = asyncio.run(asyncio.wait_for(session.run(), timeout=60))
    assert not line.failures, line.failures
    result = Call(line, session, outcome, env.store)

    reply_start = line.bot_utterances()[1].start_s
    said_over = reply_start + 0.6 + 1.2  # the end of the caller's words over the bot
    assert_apology_then_person(result, env, "stt", said_over)
    cut = [t for t in result.turns if t.role == "bot"][1]
    assert cut.barged_in and STOCK.startswith(cut.text)  # the reply stopped; what was queued is on record


# -- text to speech -----------------------------------------------------------------------------------------


def test_synthesis_error_still_plays_the_prerendered_apology(env):
    greeting = env.greeting("Alice")

    def broken(text: str) -> None:  # the greeting comes from the cache; everything after fails
        if text != greeting:
            raise RuntimeError("onnxruntime: bad allocation (simulated)")

    env.synth.before = None
    config = env.config
    fallback = FallbackSpeech.render(env.synth, config.dialog.prompts, config.audio.sample_rate)
    env.synth.before = broken
    result = call(env, ScriptedChat([reply(COFFEE)]), fallback=fallback)

    assert_apology_then_person(result, env, "tts", turn_end(result, config))
    assert env.prompts.error not in env.synth.texts  # not synthesised at the fault: it was rendered at start
    assert result.said("bot") == [greeting, env.prompts.error]  # the model's sentence never played


def test_synthesis_that_hangs_becomes_a_fault_within_its_time_limit(env):
    config = short(env, tts_timeout_s=1.0)
    greeting = config.dialog.greeting.format(name=", Alice", company=config.dialog.company)
    fallback = FallbackSpeech.render(env.synth, config.dialog.prompts, config.audio.sample_rate)
    live = Live()
    env.synth.before = lambda text: text != greeting and live.hang()
    result = call(env, ScriptedChat([reply(COFFEE)]), config, speed=1.0, fallback=fallback, live=live)
    delay = assert_apology_then_person(result, env, "tts", turn_end(result, config))
    assert delay >= 1.0


# -- the language model ----------------------------------------------------------------------------------------


def test_model_error_gets_the_apology_and_a_transfer(env):
    def fail(i: int) -> None:
        raise LlmError("llama_decode returned -3 (simulated)")

    result = call(env, ScriptedChat([reply(COFFEE)], on_piece=fail))
    assert_apology_then_person(result, env, "llm", turn_end(result, env.config))
    assert "llama_decode" in result.event("error").data["error"]


def test_a_hung_model_gets_the_filler_then_the_apology_within_the_limit(env):
    config = limits(with_dialog(short(env), filler_after_ms=600), llm_timeout_s=2.0)
    live = Live()
    chat = ScriptedChat([reply(COFFEE)], on_piece=live.hang)
    result = call(env, chat, config, speed=1.0, live=live)

    delay = assert_apology_then_person(result, env, "llm", turn_end(result, config))
    assert 2.0 <= delay <= 3.0
    assert result.said("bot")[-1] == env.prompts.error and "filler" in result.kinds()  # no silence meanwhile
    assert chat.closed == len(chat.calls)  # the hung stream was let go once the caller had left


OLLAMA_MODEL = "qwen2.5-coder:1.5b-instruct-q4_K_M"


def test_the_real_ollama_client_against_a_server_that_hangs(env):
    """The Ollama backend itself (official client, HTTP, NDJSON) against a server that stops sending mid-reply:
    the client's own 30 s read timeout would leave the caller in silence; the stage limit does not."""
    live = Live()
    server_model = ScriptedChat([reply(COFFEE)], on_piece=lambda i: i == 2 and live.hang())
    config = limits(short(env), llm_timeout_s=2.0)
    with FakeOllama(server_model, OLLAMA_MODEL) as server:
        chat = OllamaChatModel(server.url, OLLAMA_MODEL, timeout_s=30.0)
        result = call(env, chat, config, speed=1.0, live=live)
    delay = assert_apology_then_person(result, env, "llm", turn_end(result, config))
    assert delay <= 3.0
    assert server.requests and server.requests[-1]["path"] == "/api/chat"


def test_the_real_ollama_client_when_the_server_dies_mid_reply(env):
    def die(i: int) -> None:
        if i == 2:
            raise ConnectionAbortedError("the model server process died (simulated)")

    with FakeOllama(ScriptedChat([reply(COFFEE)], on_piece=die), OLLAMA_MODEL) as server:
        chat = OllamaChatModel(server.url, OLLAMA_MODEL, timeout_s=30.0)
        result = call(env, chat)
    assert_apology_then_person(result, env, "llm", turn_end(result, env.config))
    assert "Ollama server" in result.event("error").data["error"]


def test_the_real_ollama_client_when_the_server_answers_500(env):
    """Ollama's own answer when its runner process was killed: HTTP 500 with an error."""
    with FakeOllama(ScriptedChat([reply(COFFEE)]), OLLAMA_MODEL) as server:
        server.fail_status = 500
        result = call(env, OllamaChatModel(server.url, OLLAMA_MODEL, timeout_s=30.0))
    assert_apology_then_person(result, env, "llm", turn_end(result, env.config))
    assert "Ollama answered 500: llama runner process has terminated" in result.event("error").data["error"]


def test_the_real_ollama_client_when_the_server_is_gone(env):
    with FakeOllama(ScriptedChat(), OLLAMA_MODEL) as server:
        url = server.url
    chat = OllamaChatModel(url, OLLAMA_MODEL, timeout_s=30.0)  # nothing listens there any more
    result = call(env, chat)
    assert_apology_then_person(result, env, "llm", turn_end(result, env.config))


# -- the CRM --------------------------------------------------------------------------------------------------


class FailingCrm:
    """The real repository, with some methods failing as a locked database does."""

    def __init__(self, inner, *failing: str):
        self.inner, self.failing = inner, set(failing)

    def __getattr__(self, name: str):
        if name in self.failing:
            def fail(*args, **kwargs):
                raise sqlite3.OperationalError("database is locked")
            return fail
        return getattr(self.inner, name)


def test_a_locked_crm_at_answer_gets_the_apology_and_a_transfer(env):
    result = call(env, crm=FailingCrm(env.crm, "find_customer_by_phone"))

    assert_apology_then_person(result, env, "crm", 0.0)
    assert result.said("bot") == [env.prompts.error]  # no greeting: the apology at once
    assert result.record.summary.startswith(f"Call from {ALICE}.")


def test_after_a_fault_a_failed_transfer_gets_a_callback_and_a_goodbye(env):
    operator = env.config.sip.operator_uri
    callbacks = env.crm.counts()["callbacks"]
    result = call(env, transcriber=BrokenTranscriber(env.transcriber),
                  transfer_result=TransferResult(operator, ok=False, status=480, reason="Temporarily Unavailable"))

    assert_apology_then_person(result, env, "stt", turn_end(result, env.config), transferred=False)
    assert env.crm.counts()["callbacks"] == callbacks + 1
    callback_id = result.event("callback_created").data["id"]
    assert "transfer failed (480 Temporarily Unavailable)" in env.crm.db["callbacks"].get(callback_id)["reason"]
    assert result.said("bot") == [env.greeting("Alice"), env.prompts.error, env.prompts.error_goodbye]
    assert result.line.hung_up_by == "bot"  # a clear end, not a broken bot carrying on
    assert result.outcome == Outcome.TRANSFER_FAILED
    assert result.record.outcome_reason.endswith(f"callback {callback_id}")


def test_when_the_crm_cannot_take_the_callback_the_record_says_so(env):
    operator = env.config.sip.operator_uri
    result = call(env, transcriber=BrokenTranscriber(env.transcriber),
                  crm=FailingCrm(env.crm, "request_callback", "add_interaction"),
                  transfer_result=TransferResult(operator, ok=False, status=486, reason="Busy Here"))

    assert_apology_then_person(result, env, "stt", turn_end(result, env.config), transferred=False)
    assert [e.data["stage"] for e in result.events if e.kind == "error"] == ["stt", "crm"]
    assert result.said("bot")[-1] == env.prompts.error_goodbye
    assert "callback NOT created" in result.record.outcome_reason


# -- the call store ---------------------------------------------------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path):
    """A real 4 MiB tmpfs (the test runs as root here; elsewhere it fails, it never skips)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Fill the filesystem of ``folder`` to the last byte."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def reopened_call(result: Call, tmpfs: Path, second: Path, filler: Path) -> Call:
    """The call as the store holds it at the next start, once the disk has room: the spilled records imported."""
    result.store.close()
    filler.unlink()
    store = CallStore(tmpfs / "calls.db", tmpfs / "recordings", spill_dir=second)
    assert store.imported == result.session.records.spilled > 0 and store.spill.files() == []
    return Call(result.line, result.session, result.outcome, store)


def test_a_full_disk_at_answer_gets_the_apology_and_a_person_and_no_record_is_lost(env, tmpfs, tmp_path):
    """``faults.store_errors: transfer`` (the default): a bot that cannot keep its records hands the caller to a
    person. The store's first write fails as the call is answered: the apology is the first thing heard (no
    greeting), then the transfer; every record, the apology's turn and the error included, is imported later."""
    assert env.config.faults.store_errors == "transfer"
    second = tmp_path / "spill"
    store = CallStore(tmpfs / "calls.db", tmpfs / "recordings", spill_dir=second)
    filler = fill(tmpfs)
    before = counted("voicebot_errors_total", kind="store")
    result = call(env, ScriptedChat([reply(COFFEE)]), store=store)
    assert counted("voicebot_errors_total", kind="store") == before + 1  # one fault, counted once
    stored = reopened_call(result, tmpfs, second, filler)
    try:
        assert stored.said("bot")[0] == env.config.dialog.prompts.error  # before any greeting
        assert_apology_then_person(stored, env, "store", fault_at=0.0)
    finally:
        stored.store.close()


def test_a_disk_that_fills_mid_call_gets_the_apology_within_3_s_and_a_person(env, tmpfs, tmp_path):
    """The disk fills after the greeting was stored: the caller's turn is the first write that fails; the apology
    follows within 3 s of the caller's turn (line pace), then the transfer; nothing said is lost. (A reply already
    under way may be heard first: the failure comes from the store's thread, the scripted reply at once.)"""
    second = tmp_path / "spill"
    store = CallStore(tmpfs / "calls.db", tmpfs / "recordings", spill_dir=second)
    config = short(env)
    live = Live()
    filled: list[Path] = []

    def fill_after_greeting() -> None:
        wait_until(lambda: live.session is not None and live.session.state == State.LISTENING
                   and not live.session.records.pending, timeout_s=30.0)
        filled.append(fill(tmpfs))

    filler_thread = threading.Thread(target=fill_after_greeting, daemon=True)
    filler_thread.start()
    result = call(env, ScriptedChat([reply(COFFEE)]), config, speed=1.0, store=store, live=live)
    filler_thread.join(5)
    stored = reopened_call(result, tmpfs, second, filled[0])
    try:
        assert stored.said("bot")[0] == config.dialog.greeting.format(name=", Alice", company="")
        # the reply may come first: the failed write and the (instant, scripted) reply race; the apology follows
        assert stored.said("bot")[-1] == config.dialog.prompts.error
        assert stored.said("caller") == [COFFEE_Q]  # said while the disk was full: spilled, then imported
        assert_apology_then_person(stored, env, "store", turn_end(stored, config))
    finally:
        stored.store.close()


def test_under_continue_a_full_disk_never_reaches_the_caller_and_no_record_is_lost(env, tmpfs, tmp_path):
    """``faults.store_errors: continue``: the call goes on as usual; what the store could not take is spilled
    to the second place and imported when the store is opened again, with the times it happened."""
    second = tmp_path / "spill"
    store = CallStore(tmpfs / "calls.db", tmpfs / "recordings", spill_dir=second)
    filler = fill(tmpfs)
    result = call(env, ScriptedChat([reply(COFFEE)]), limits(env.config, store_errors="continue"), store=store)

    assert result.outcome == Outcome.ABANDONED and result.line.transfers == []  # a model reply is no evidence
    assert result.session.records.spilled > 0
    assert [p.parent for p in store.spill.files()] == [second]  # beside the database was full too
    store.close()
    filler.unlink()
    reopened = CallStore(tmpfs / "calls.db", tmpfs / "recordings", spill_dir=second)
    try:
        assert reopened.imported == result.session.records.spilled and reopened.spill.files() == []
        record = reopened.get_call(result.session.call_id)
        assert record.outcome == Outcome.ABANDONED and record.summary and record.ended_at >= record.started_at
        texts = [(t.role, t.text) for t in reopened.turns(record.id)]
        assert texts == [("bot", env.greeting("Alice")), ("caller", COFFEE_Q), ("bot", COFFEE)]
    finally:
        reopened.close()


def test_a_locked_call_store_spills_beside_the_database_and_imports_at_the_next_start(env, tmp_path):
    path = tmp_path / "calls.db"
    store = CallStore(path, tmp_path / "recordings")
    locker = sqlite3.connect(path, timeout=0.1)
    locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock all call long
    shutil.rmtree(tmp_path / "recordings", ignore_errors=True)
    try:
        result = call(env, ScriptedChat([reply(COFFEE)]), limits(env.config, store_errors="continue"), store=store)
    finally:
        locker.rollback()
        locker.close()
    assert result.outcome == Outcome.ABANDONED and result.session.records.spilled > 0
    assert [p.parent for p in store.spill.files()] == [tmp_path]
    store.close()
    reopened = CallStore(path, tmp_path / "recordings")
    try:
        texts = [t.text for t in reopened.turns(result.session.call_id)]
        assert texts == [env.greeting("Alice"), COFFEE_Q, COFFEE]
        assert reopened.get_call(result.session.call_id).outcome == Outcome.ABANDONED
    finally:
        reopened.close()
