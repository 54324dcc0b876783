"""AnalysisWorker: submit never blocks, the model gives way to calls, one bad call does not stop the rest."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest

from fakes import ScriptedChat
from review_support import GOOD_REPLY
from voicebot.review.analysis import load_analysis
from voicebot.review.demo import write_demo_call
from voicebot.review.worker import AnalysisWorker, Preempted, YieldingChatModel
from voicebot.store import CallStore

START = datetime(2026, 3, 3, 10, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path):
    with CallStore(tmp_path / "calls.db", tmp_path / "recordings") as s:
        yield s


def _call(store: CallStore, name: str = "order status", n: int = 0) -> str:
    call_id = write_demo_call(store, name, START, call_id=f"c{n}", recording=False)
    store.save_analysis(call_id, model=None, summary=None, topic=None, qa={}, qa_score=None,  # as a live call
                        generated_summary=None)  # leaves it
    return call_id


def test_submit_returns_at_once_while_the_model_is_slow(store):
    ids = [_call(store, n=i) for i in range(3)]
    chat = ScriptedChat([GOOD_REPLY], repeat=True, delay_s=0.01)
    with AnalysisWorker(store, chat) as worker:
        started = time.perf_counter()
        assert all(worker.submit(call_id) for call_id in ids)
        assert time.perf_counter() - started < 0.05
        assert worker.wait(30)
    assert worker.analysed == 3 and worker.failed == 0
    for call_id in ids:
        analysis = load_analysis(store, call_id)
        assert analysis.generated_summary == GOOD_REPLY["summary"]  # the model's, labelled generated
        assert analysis.summary.startswith("CRM: order status (number 10452) succeeded.")  # from the record


def test_the_model_waits_for_a_quiet_line_and_gives_way_to_a_new_call(store):
    call_id = _call(store, "upset caller")
    line_busy = threading.Event()
    line_busy.set()  # a call is in progress when this one ends
    seen_flags = []

    def piece(i: int) -> None:
        if i == 3 and chat.closed == 0:  # a call starts while the model writes: it must stop
            line_busy.set()
            threading.Timer(0.3, line_busy.clear).start()

    chat = ScriptedChat([GOOD_REPLY], repeat=True, on_piece=piece)
    with AnalysisWorker(store, chat, idle=lambda: not line_busy.is_set(), poll_s=0.02) as worker:
        worker.submit(call_id)
        deadline = time.monotonic() + 5
        while (analysis := load_analysis(store, call_id)) is None or "upset_caller" not in analysis.flags:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        seen_flags.append(dict(analysis.flags))  # the deterministic part is there before the model ran
        assert chat.calls == []
        line_busy.clear()
        assert worker.wait(10)
    assert seen_flags and "upset_caller" in seen_flags[0]
    assert worker.preempted == 1  # stopped once mid-generation ...
    assert chat.closed == 2 and len(chat.calls) == 2  # ... the generator was closed, then it ran again
    assert load_analysis(store, call_id).topic == "order_status"


def test_yielding_model_stops_within_a_piece():
    busy = threading.Event()
    chat = ScriptedChat([GOOD_REPLY], repeat=True, on_piece=lambda i: busy.set() if i == 2 else None)
    stream = YieldingChatModel(chat, idle=lambda: not busy.is_set()).stream([])
    pieces = []
    with pytest.raises(Preempted):
        for piece in stream:
            pieces.append(piece)
    assert len(pieces) == 2 and chat.closed == 1


def test_a_failing_call_does_not_stop_the_worker(store, caplog):
    good = _call(store)
    with AnalysisWorker(store, ScriptedChat([GOOD_REPLY], repeat=True), after_model=lambda: None) as worker:
        worker.submit("no-such-call")
        worker.submit(good)
        assert worker.wait(10)
    assert (worker.failed, worker.analysed) == (1, 1)
    assert "analysis of call no-such-call failed" in caplog.text


def test_without_a_model_only_the_deterministic_part_runs(store):
    call_id = _call(store, "transfer failed")
    with AnalysisWorker(store) as worker:
        worker.submit(call_id)
        assert worker.wait(10)
    analysis = load_analysis(store, call_id)
    assert "transfer_failed" in analysis.flags and analysis.generated_summary is None and analysis.model is None
    assert analysis.summary == ("Escalated (operator request). Outcome: transfer failed (the transfer did not "
                                "complete (486 Busy Here)).")  # the record's summary and QA need no model
    assert analysis.qa["handoff"].score == 2 and analysis.qa_score is not None


def test_stop_leaves_queued_calls_and_refuses_new_ones(store, caplog):
    ids = [_call(store, n=i) for i in range(3)]
    gate = threading.Event()
    chat = ScriptedChat([GOOD_REPLY], repeat=True, on_piece=lambda i: gate.wait(5))
    worker = AnalysisWorker(store, chat, idle=lambda: True).start()
    for call_id in ids:
        worker.submit(call_id)
    time.sleep(0.1)
    stopper = threading.Thread(target=worker.stop)
    stopper.start()
    time.sleep(0.05)
    gate.set()
    stopper.join(10)
    assert not worker._thread.is_alive()
    assert worker.submit("later") is False
    assert "not analysed" in caplog.text
