"""AnalysisWorker: after-call analysis on a background thread that never delays a call.

The session calls ``worker.submit(call_id)`` when a call ends (``SessionDeps.on_call_end``); ``submit`` only
puts the id on a queue and returns at once. The worker thread then

1. runs the deterministic part at once (VADER and a few SQLite reads: milliseconds), so flags show in the app;
2. waits until ``idle()`` says no call needs the model, then runs the model's part through a wrapper that
   checks ``idle()`` before every token and, on the embedded model, inside llama.cpp's prompt evaluation too
   (its abort callback: voicebot/llm/abort.py): when a call starts meanwhile, the model is given back within a
   token or a graph node (it serves one generation at a time, so a call would otherwise wait for the whole
   analysis), and the analysis starts again once the line is quiet;
3. calls ``after_model()`` if given, e.g. to re-warm the dialogue's system prompt in llama.cpp's cache, which
   the analysis prompt displaced.

The idle gate is any ``IdleGate``: a callable the worker thread asks, before the model's part and before every
token, whether the model is free. The process that answers calls owns it: ``voicebot.worker.Worker.idle``, true
while none of its calls is in progress, by the count of calls it runs. It wires the analysis so::

    analysis = AnalysisWorker(store, chat, config.review, idle=worker.idle,
                              after_model=lambda: chat.warm(system_prompt)).start()
    deps.on_call_end = analysis.submit
    ...
    for call_id in unanalysed_calls(store, worker.name):   # what the last stop left
        analysis.submit(call_id)
    ...
    analysis.stop(timeout=5)   # at shutdown: bounded; what it leaves is found again by ``unanalysed_calls``
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from voicebot.compute import lower_this_thread
from voicebot.config import ReviewConfig
from voicebot.llm.abort import Aborted
from voicebot.llm.base import ChatMessage, ChatModel
from voicebot.review.analysis import analyze_call
from voicebot.store import CallStore

log = logging.getLogger(__name__)

_STOP = object()

IdleGate = Callable[[], bool]
"""True while no call needs the model (read from the analysis thread: it must be cheap and thread-safe)."""


def unanalysed_calls(store: CallStore, worker: str | None = None, limit: int = 200) -> list[str]:
    """Ended calls (of ``worker``, or all) still without the model's part of the analysis, oldest first, at most
    the newest ``limit``: a worker queues them when it starts, because a stop (SIGTERM) abandons the analysis
    under way and leaves the calls queued behind it; their records are complete, only the summary and topic wait.
    Calls whose model part failed (``error``) are not retried here: `voicebot review analyze --missing` does."""
    sql = ("SELECT c.id FROM calls c LEFT JOIN call_analysis a ON a.call_id = c.id "
           "WHERE c.outcome != 'in_progress' AND a.model IS NULL")
    params: list[Any] = []
    if worker is not None:
        sql += " AND c.worker = ?"
        params.append(worker)
    rows = store.select(sql + " ORDER BY c.started_at DESC, c.id LIMIT ?", (*params, limit))
    return [row["id"] for row in rows][::-1]


class Preempted(Exception):
    """A call needs the model: the analysis gives it back and runs again when the line is quiet."""


class YieldingChatModel:
    """A ChatModel that stops as soon as ``idle()`` turns false (raising ``Preempted``): before every token, and,
    on a model that can abort a computation (``abortable``: the embedded llama.cpp, voicebot/llm/abort.py), inside
    the prompt evaluation too, which on a whole transcript would otherwise hold the model for seconds."""

    def __init__(self, chat: ChatModel, idle: IdleGate):
        self.name = chat.name
        self._chat = chat
        self._idle = idle

    def stream(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Iterator[str]:
        if not self._idle():
            raise Preempted
        if getattr(self._chat, "abortable", False):
            kwargs["should_stop"] = lambda: not self._idle()
        inner = self._chat.stream(messages, **kwargs)
        try:
            for piece in inner:
                if not self._idle():
                    raise Preempted
                yield piece
        except Aborted:
            raise Preempted from None
        finally:
            close = getattr(inner, "close", None)
            if close is not None:
                close()  # stops the model and releases its lock now, not when garbage-collected

    def warm(self, system_prompt: str) -> None:
        self._chat.warm(system_prompt)


class AnalysisWorker:
    """A queue of finished calls and one daemon thread that analyses them in order."""

    def __init__(self, store: CallStore, chat: ChatModel | None = None, config: ReviewConfig | None = None, *,
                 idle: IdleGate = lambda: True, after_model: Callable[[], None] | None = None,
                 poll_s: float = 0.5, max_queue: int = 10_000):
        self.store = store
        self.chat = chat
        self.config = config or ReviewConfig()
        self.idle = idle
        self.after_model = after_model
        self.poll_s = poll_s
        self.analysed = 0
        self.failed = 0
        self.preempted = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._stopping = threading.Event()
        self._current: str | None = None
        self._thread = threading.Thread(target=self._run, name="call-analysis", daemon=True)

    def start(self) -> AnalysisWorker:
        self._thread.start()
        return self

    def __enter__(self) -> AnalysisWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def submit(self, call_id: str) -> bool:
        """Queue a finished call; never blocks. False (and a warning) when the worker is stopped or full."""
        if self._stopping.is_set():
            log.warning("analysis worker stopped: call %s not queued", call_id)
            return False
        try:
            self._queue.put_nowait(call_id)
        except queue.Full:
            log.warning("analysis queue full: call %s not queued (run `voicebot review analyze --missing`)", call_id)
            return False
        return True

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every queued call is done (tests, CLI); False on timeout."""
        done = threading.Event()

        def waiter() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=waiter, daemon=True).start()
        return done.wait(timeout)

    def stop(self, timeout: float | None = 60.0) -> bool:
        """Stop now: no new call is taken and queued calls are left (their ids are logged); a model generation in
        progress is abandoned at its next token, or, on the embedded model, within a graph node of the prompt
        evaluation (a model without an abort hook, e.g. Ollama, finishes evaluating the prompt first). Waits up to
        ``timeout`` for the thread and says whether it ended; may be called again to wait longer. Calls left
        without the model's part keep ``model`` NULL, so ``unanalysed_calls`` finds them at the next start (or
        `voicebot review analyze --missing`)."""
        if not self._stopping.is_set():
            self._stopping.set()
            left = []
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                self._queue.task_done()
                left.append(item)
            if left:
                log.warning("analysis worker stopping with %d call(s) not analysed: %s", len(left), ", ".join(left))
            self._queue.put(_STOP)
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def current(self) -> str | None:
        """The call being analysed now, if any (a stop that times out names it)."""
        return self._current

    # -- the thread ---------------------------------------------------------------------------------------------

    def _run(self) -> None:
        lower_this_thread()  # the model's work after calls: below the media path (voicebot.compute)
        while True:
            call_id = self._queue.get()
            try:
                if call_id is _STOP:
                    return
                self._current = call_id
                self._analyse(call_id)
            except Exception:  # one bad call must not stop the others
                self.failed += 1
                log.exception("analysis of call %s failed", call_id)
            finally:
                self._current = None
                self._queue.task_done()

    def _analyse(self, call_id: str) -> None:
        analyze_call(self.store, call_id, None, self.config)
        if self.chat is None:
            self.analysed += 1
            return
        # stopping preempts too: the model must not be freed at exit while this thread is inside llama.cpp
        chat = YieldingChatModel(self.chat, lambda: self.idle() and not self._stopping.is_set())
        while not self._stopping.is_set():
            if not self.idle():
                self._stopping.wait(self.poll_s)
                continue
            try:
                analyze_call(self.store, call_id, chat, self.config)
            except Preempted:
                self.preempted += 1
                log.info("analysis of call %s paused: a call needs the model", call_id)
                continue
            self.analysed += 1
            if self.after_model is not None and not self._stopping.is_set():  # a stop does not wait for a warm-up
                try:
                    self.after_model()
                except Exception:  # e.g. re-warming failed: the next call warms the model itself
                    log.exception("after-analysis hook failed")
            return
