"""SIGTERM must not wait on the after-call analysis: a worker stops it at the signal, abandons it past
``analysis_stop_s`` when it is stuck inside the model (a prompt evaluation cannot be interrupted), and the next
start analyses what was left. Fakes for the models and the SIP endpoint (tests/test_worker.py's), a real call
store and a real SIGTERM; the real `voicebot serve` is in tests/test_sip_serve.py."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from fakes import CallerVoice, FakeSynthesizer, FakeTranscriber, ScriptedChat, ScriptedVad
from review_support import GOOD_REPLY
import test_worker
from test_worker import ALICE, FakeEndpoint, line, until
from voicebot import worker as worker_module
from voicebot.components import Components, Stage
from voicebot.llm.base import ChatMessage
from voicebot.review.analysis import load_analysis
from voicebot.review.worker import unanalysed_calls
from voicebot.store import CallStore, Outcome
from voicebot.worker import Worker

cfg = test_worker.cfg  # the fixture: the project's config in this test's folder, the demo CRM seeded there


class StuckInPrompt:
    """A chat model whose analysis requests (a schema with a topic) block before their first piece, as llama.cpp
    does while it evaluates a long prompt; everything else is ScriptedChat's."""

    def __init__(self) -> None:
        self.inner = ScriptedChat([GOOD_REPLY], repeat=True)
        self.name = "stuck"
        self.entered = threading.Event()
        self.release = threading.Event()

    def stream(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Iterator[str]:
        schema = kwargs.get("json_schema") or {}
        if "topic" in schema.get("properties", {}):
            self.entered.set()
            self.release.wait(30)
        yield from self.inner.stream(messages, **kwargs)

    def warm(self, system_prompt: str) -> None:
        pass


def components(chat: Any) -> Components:
    voice = CallerVoice(sample_rate=16000)
    return Components(FakeTranscriber(voice), FakeSynthesizer(), chat, ScriptedVad(),
                      [Stage("language model", "scripted", 0.0, 0.0)])


def test_sigterm_abandons_an_analysis_stuck_in_the_model_and_the_next_start_analyses_the_call(cfg, monkeypatch):
    chat = StuckInPrompt()
    monkeypatch.setattr(worker_module, "load_components", lambda config, on_stage=None: components(chat))
    worker = Worker(cfg, "w1", drain_timeout_s=2, analysis_stop_s=0.5,
                    endpoint=lambda config, on_call, rtp_port: FakeEndpoint(config, on_call, rtp_port))
    worker.load()
    deps = worker.start()
    caller = line(cfg)
    signalled: list[float] = []

    def on_ready(endpoint: FakeEndpoint) -> None:
        async def call_then_sigterm() -> None:
            await endpoint.ring(caller)  # the call ends: the analysis takes the model once the line is quiet
            await until(chat.entered.is_set)
            signalled.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGTERM)  # the handler `run` installs: drain and stop the analysis

        asyncio.get_running_loop().create_task(call_then_sigterm())

    try:
        worker.run(on_ready=on_ready)
        worker.close()
        exited = time.monotonic() - signalled[0]
        assert worker.model_busy  # still inside the model: `voicebot serve` exits without freeing it
        assert exited < 3.0, f"{exited:.1f} s from SIGTERM to closed"
        store = CallStore(cfg.path(cfg.store.database), cfg.path(cfg.store.recordings_dir))
        left = load_analysis(store, caller.info.call_id)
        assert left is not None and left.flags is not None and left.model is None  # the deterministic part only
        assert unanalysed_calls(store, "w1") == [caller.info.call_id]
        store.close()
    finally:
        chat.release.set()  # let the abandoned thread leave (in `voicebot serve` the process is gone by now)
    assert deps.store is not None

    monkeypatch.setattr(worker_module, "load_components", lambda config, on_stage=None: components(
        ScriptedChat([GOOD_REPLY], repeat=True)))
    again = Worker(cfg, "w1")
    again.load()
    store = again.start().store
    assert again.finish_analysis(10)  # queued at start, analysed while no call is up
    assert load_analysis(store, caller.info.call_id).generated_summary == GOOD_REPLY["summary"]
    assert unanalysed_calls(store, "w1") == [] and not again.model_busy
    again.close()


def test_unanalysed_calls_are_the_worker_s_ended_calls_without_the_model_s_part(tmp_path):
    with CallStore(tmp_path / "calls.db", tmp_path / "rec") as store:
        ended = [store.start_call(ALICE, worker="w1") for _ in range(3)]
        for call_id in ended:
            store.finish_call(call_id, Outcome.RESOLVED)
        live = store.start_call(ALICE, worker="w1")
        other = store.start_call(ALICE, worker="w2")
        store.finish_call(other, Outcome.RESOLVED)
        store.save_analysis(ended[0], summary="flags only")  # deterministic part: the model's is still due
        store.save_analysis(ended[1], summary="done", model="m")
        store.save_analysis(ended[2], summary="failed", model="m", error="the model timed out")
        assert unanalysed_calls(store, "w1") == [ended[0]]
        assert set(unanalysed_calls(store)) == {ended[0], other}
        assert unanalysed_calls(store, "w1", limit=0) == []
        assert live not in unanalysed_calls(store)
