"""Heavy model work runs on threads of lower CPU priority than the media path.

Why: on the 2 cores a bot shares, Whisper, llama.cpp, Piper and the turn model want every cycle, and so do the
threads that must never wait: pjmedia's clock, which sends and receives a frame every 20 ms, and the event loop,
which runs the turn detector on each frame and lowers or stops the bot's voice when the caller talks over it.
Real-time audio stacks give the media path the higher priority rather than hoping for a free core: the model
threads here run ``COMPUTE_NICE`` steps nicer than the process (a weight of about a tenth under Linux's fair
scheduler), so the media path gets a core as soon as it wakes, and the models still get every cycle it leaves,
which is nearly all of them. Measured with Whisper and llama.cpp running flat out beside a 20 ms tick on the event
loop: the tick's lateness at p99 went from 7.8-9.7 ms to 4.7-4.9 ms, its worst from 14-18 ms to 9-12 ms; the
median (under 1 ms) did not move. That is the media path's own jitter; a barge-in heard at the caller over SIP
did not change measurably (``bench sip``: 0.22 s median before and 0.21 after at 3 calls, 12 interruptions each).

Threads inherit their creator's priority, and a process without CAP_SYS_NICE can lower a thread's priority but
never raise it again. So only threads that do nothing else are lowered: the pool behind ``run`` (speech
recognition, synthesis, the turn model, retrieval, model loading: the pools that CTranslate2, ONNX Runtime and
OpenMP start from these threads inherit the lower priority) and the dedicated threads that call ``lower_this_thread``
themselves (the model's generation and prefill threads, the review's analysis). The SIP endpoint's thread is
never started from one of them. Where the OS refuses (not Linux), nothing changes and the bot runs as before.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

COMPUTE_NICE = 10
"""How much nicer model threads run than the process (Linux: nice 10 weighs 110 against nice 0's 1024)."""
MAX_THREADS = 16
"""A hung model call is left behind by its timeout (``session.faults``), holding its thread: room for several."""
THREADS_PER_CALL = 2
"""Compute threads started before the first call for each line (``prestart``): a call's recognition, turn model
and synthesis overlap by two at most (a 300-call soak, 2 calls at a time, reached 4)."""


def lower_this_thread(steps: int = COMPUTE_NICE) -> None:
    """Make the calling thread (and every thread it starts from now on) ``steps`` nicer, at most 19."""
    if not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + steps))
    except OSError as exc:  # not permitted or not per-thread here: the thread keeps the process's priority
        log.debug("could not lower the priority of thread %s: %s", threading.current_thread().name, exc)


def thread_nice() -> int:
    """The calling thread's nice value (Linux; the process's elsewhere)."""
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


_POOL = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="compute", initializer=lower_this_thread)


async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on a lowered compute thread (the ``asyncio.to_thread`` of model work)."""
    return await asyncio.get_running_loop().run_in_executor(_POOL, functools.partial(fn, *args, **kwargs))


def submit(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """The future of ``fn(*args)`` on a compute thread, for code that awaits it later (the turn model's score)."""
    return asyncio.get_running_loop().run_in_executor(_POOL, fn, *args)


def prestart(lines: int) -> None:
    """Start the compute threads ``lines`` calls at once will use (``THREADS_PER_CALL`` each), and the running
    loop's default executor's (store writes, the after-call trim) with it, before the worker says it is ready.

    Why: both pools start a thread the first time more tasks overlap than they have idle threads, and each new
    thread takes a malloc arena of its own, so a worker's threads and RSS went on growing for a hundred calls or
    more after the warm-up as calls first happened to overlap (soak: 21 -> 25 threads over 300 calls), and never
    came back to the figure taken at ready. Started now, they are the baseline: a thread is added later only past
    that many overlapping tasks (a hung model call's, see ``MAX_THREADS``)."""
    _fill(_POOL, min(MAX_THREADS, THREADS_PER_CALL * lines))
    loop = asyncio.get_running_loop()
    size = min(32, (os.cpu_count() or 1) + 4)  # asyncio's own default, made here so that its threads start now
    executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="asyncio")
    loop.set_default_executor(executor)
    _fill(executor, size)


def _fill(pool: ThreadPoolExecutor, n: int) -> None:
    """Have ``pool`` run ``n`` tasks at once (so it has ``n`` threads); a pool that cannot (busy threads) is left
    as it is after a second."""
    barrier = threading.Barrier(n)
    for future in [pool.submit(barrier.wait, 1.0) for _ in range(n)]:
        try:
            future.result()
        except threading.BrokenBarrierError:
            pass


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` on a compute thread, waited for here (loading models from a plain thread: the pools
    they start inherit the lower priority)."""
    return _POOL.submit(fn, *args, **kwargs).result()
