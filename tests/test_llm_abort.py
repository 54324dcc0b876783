"""Aborting llama.cpp mid-computation (voicebot/llm/abort.py) through the real embedded model: a prompt evaluation
stops within a graph node of its predicate turning true, the KV cache it leaves gives the next request the output it
would have had without the abort, and the after-call analysis gives the model back to a call that starts while
the analysis prompt is being evaluated, then completes later."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest

from voicebot.llm.abort import Aborted
from voicebot.llm.base import ChatMessage, complete
from voicebot.review.analysis import load_analysis
from voicebot.review.demo import write_demo_call
from voicebot.review.worker import AnalysisWorker
from voicebot.store import CallStore

SYSTEM = ChatMessage("system", "You summarise phone calls of a parcel shop for its staff, in one sentence.")
TRANSCRIPT = " ".join(f"Caller: my order {10450 + i} has not arrived, the tracking page says it left the depot "
                      f"on day {i + 1}. Bot: I can see order {10450 + i}; it is with the courier." for i in range(8))
REQUEST = [SYSTEM, ChatMessage("user", TRANSCRIPT + "\nSummarise this call.")]


class Counted:
    """A should_stop predicate that turns true at its ``flip_at``-th question (never, with None) and counts them."""

    def __init__(self, flip_at: int | None = None, when=lambda: True):
        self.flip_at, self.when, self.asked, self.asked_after = flip_at, when, 0, 0

    def __call__(self) -> bool:
        if self.flip_at is None or not self.when():
            return False
        self.asked += 1
        if self.asked > self.flip_at:
            self.asked_after += 1
        return self.asked >= self.flip_at


def _timed(chat_model, should_stop, **kwargs) -> float:
    started = time.perf_counter()
    complete(chat_model, REQUEST, max_tokens=1, temperature=0.0, should_stop=should_stop, **kwargs)
    return time.perf_counter() - started


def test_a_prompt_evaluation_stops_within_a_node_of_the_predicate_turning(chat_model):
    """The same prompt on a fresh cache, evaluated whole and aborted at llama.cpp's 30th check: the aborted run
    asked nothing after its true answer, computed a small part of the graphs the whole run did, and took a fraction of its
    time (both measured here, on the same machine and load)."""
    prompt_tokens = len(chat_model._tokens(REQUEST)[0])
    assert prompt_tokens > 200  # a transcript's worth: seconds of evaluation on 2 cores

    chat_model._llm.reset()
    whole_s = _timed(chat_model, Counted(None))
    whole_polls = chat_model._abort.polls
    assert not chat_model._abort.fired

    chat_model._llm.reset()
    stop = Counted(30)
    started = time.perf_counter()
    with pytest.raises(Aborted):
        _timed(chat_model, stop)
    aborted_s = time.perf_counter() - started

    assert chat_model._abort.polls == 30 and stop.asked_after == 0  # llama.cpp asked nothing after the true
    assert chat_model._llm.n_tokens < prompt_tokens  # the prompt was not evaluated
    assert whole_polls > 10 * 30  # the whole evaluation computed far more graph nodes ...
    assert aborted_s < whole_s / 2, (aborted_s, whole_s)  # ... and took far longer


def test_the_next_request_after_an_abort_answers_as_without_it(chat_model, monkeypatch):
    """Aborted in the middle of its third batch, a request leaves two batches in the cache and the third's cells
    half written; the same request asked again ordinarily (a call's turn: no predicate) then writes, greedily, what
    it writes without any abort before it. Batches of 64 tokens make a few hundred cross batch boundaries as a
    long transcript crosses them at 512; both runs start from the same warmed system prompt, so they split the
    prompt at the same positions."""
    monkeypatch.setattr(chat_model._llm, "n_batch", 64)
    llm = chat_model._llm

    def fresh() -> None:
        llm.reset()
        chat_model.warm(SYSTEM.content)

    fresh()
    plain = complete(chat_model, REQUEST, max_tokens=16, temperature=0.0)

    fresh()
    first = []
    stop = Counted(100, when=lambda: bool(first.append(llm.n_tokens) or llm.n_tokens >= first[0] + 128))
    with pytest.raises(Aborted):
        complete(chat_model, REQUEST, max_tokens=16, temperature=0.0, should_stop=stop)
    assert llm.n_tokens == first[0] + 128  # two batches kept; the third was stopped at its 100th check
    after = complete(chat_model, REQUEST, max_tokens=16, temperature=0.0)
    assert after == plain and plain.strip()
    short = [SYSTEM, ChatMessage("user", "Say hello.")]
    after_short = complete(chat_model, short, max_tokens=8, temperature=0.0)
    fresh()
    assert after_short == complete(chat_model, short, max_tokens=8, temperature=0.0)


@pytest.fixture
def store(tmp_path):
    with CallStore(tmp_path / "calls.db", tmp_path / "recordings") as s:
        yield s


def test_a_call_starting_during_the_analysis_prompt_gets_the_model_at_once(chat_model, store):
    """A call starts (idle turns false) while the analysis prompt is being evaluated: the model's lock is free
    within a fraction of the analysis's time (measured here: the retried, uninterrupted run), the worker counts
    the preemption, and once the line is quiet it runs the model's part of the analysis again, to the end."""
    call_id = write_demo_call(store, "order status", datetime(2026, 3, 3, 10, tzinfo=timezone.utc), call_id="c0",
                              recording=False)
    store.save_analysis(call_id, model=None, summary=None, topic=None, qa={}, qa_score=None,
                        generated_summary=None)  # as a live call leaves it
    busy, flipped = threading.Event(), threading.Event()
    inside = [0]

    def idle() -> bool:
        if chat_model._lock.locked() and not flipped.is_set():  # asked from inside llama.cpp's evaluation
            inside[0] += 1
            if inside[0] == 20:
                busy.set()
                flipped.set()
        return not busy.is_set()

    chat_model._llm.reset()  # the whole analysis prompt is evaluated
    with AnalysisWorker(store, chat_model, idle=idle, poll_s=0.02) as worker:
        worker.submit(call_id)
        assert flipped.wait(120)
        started = time.perf_counter()
        assert chat_model._lock.acquire(timeout=120)
        freed_s = time.perf_counter() - started
        chat_model._lock.release()
        started = time.perf_counter()
        busy.clear()
        assert worker.wait(300)
        retried_s = time.perf_counter() - started
    assert (worker.preempted, worker.analysed, worker.failed) == (1, 1, 0)
    # the model's part ran to its end (its answer on this transcript, interrupted or not, is the model's own
    # business: it may overrun the analysis's token budget, which is stored as the analysis's error)
    assert load_analysis(store, call_id).model == chat_model.name
    assert freed_s < retried_s / 4, (freed_s, retried_s)
