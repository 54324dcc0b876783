"""Stopping llama.cpp inside a computation: a request that a predicate may interrupt, prompt evaluation included.

The after-call analysis uses the model only while no call needs it, but it cannot only stop between tokens: the
prompt evaluation of a whole transcript takes seconds on 2 cores, and a call that starts meanwhile would wait for
it (its turn waits on the model's lock), as would a worker's shutdown. llama.cpp has the hook for this: the
context's abort callback, which ggml's CPU backend asks between the nodes of every compute graph (hundreds of
times per ubatch, so within milliseconds); when it answers true, ``llama_decode`` returns 2 ("aborted") and
llama-cpp-python raises RuntimeError.

What an abort leaves is consistent, so the next request (a call's turn) needs nothing done by hand:
``Llama.eval`` advances ``n_tokens`` and ``input_ids`` only after a batch has been decoded, so they name the
batches that completed, whose KV cells are intact; cells of the aborted batch are dropped by llama.cpp itself (a
failed ubatch's positions are removed: "decode: removing memory module entries" on stderr) and again by the next
request (``generate`` and ``eval`` remove everything from ``n_tokens`` on before decoding), which evaluates what
it does not share with the cache (tests/test_llm_abort.py: the next answer is the one without the abort). Only
the logits are not the last cached token's any more, so ``_requires_eval`` is set: a next prompt equal to the
cached tokens replays its last token instead of sampling stale logits.

The callback is a Python function and each call takes the GIL: cheap while nothing else runs Python, but it waits
whenever another thread holds the GIL, hundreds of times per token. So it is installed on the context only for an
interruptible request and removed after it: a call's requests run with no callback at all, never aborted and never
slowed. The ctypes trampoline is made once and kept here for the model's life, so llama.cpp never holds a pointer
to a freed one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

StopPredicate = Callable[[], bool]
"""True once the request must stop (asked from llama.cpp's compute thread, per graph node: keep it cheap)."""


class Aborted(Exception):
    """The request was stopped by its own ``should_stop`` predicate (e.g. a call needs the model). Not an
    LlmError: nothing is wrong with the model or the request, which may simply run again later."""


class AbortSwitch:
    """One llama.cpp context's abort callback, armed with a predicate for one request at a time (callers hold the
    model's lock, so arming never races a decode)."""

    def __init__(self, llm: Any):
        import llama_cpp

        self._llm = llm
        self._set = llama_cpp.llama_set_abort_callback
        self._callback = llama_cpp.ggml_abort_callback(self._poll)  # kept: llama.cpp holds only its address
        self._no_callback = llama_cpp.ggml_abort_callback()  # NULL: llama.cpp asks nothing
        self._should_stop: StopPredicate | None = None
        self.fired = False
        self.polls = 0  # how often llama.cpp asked during the last armed request (tests count computation by it)

    def _poll(self, _data: Any) -> bool:
        """The callback: sticky once fired, so every later check of the same computation aborts too."""
        should_stop = self._should_stop
        if should_stop is None or self.fired:
            return self.fired
        self.polls += 1
        try:
            self.fired = bool(should_stop())
        except Exception:  # an exception cannot cross into C: the request goes on, the predicate's bug is logged
            log.exception("abort predicate failed")
        return self.fired

    @contextmanager
    def armed(self, should_stop: StopPredicate | None) -> Iterator[AbortSwitch]:
        """Within the block llama.cpp stops computing once ``should_stop()`` is true; None: not interruptible
        (no callback is installed). After an abort the model's logits are marked stale (see the module)."""
        self.fired, self.polls = False, 0
        if should_stop is None:
            yield self
            return
        self._should_stop = should_stop
        self._set(self._llm._ctx.ctx, self._callback, None)
        try:
            yield self
        finally:
            self._set(self._llm._ctx.ctx, self._no_callback, None)
            self._should_stop = None
            if self.fired:
                self._llm._requires_eval = True
