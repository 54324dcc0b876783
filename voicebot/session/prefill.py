"""The agent's prefill on one thread of its own, dropped for a caller who has gone.

A prefill lets the model evaluate the call so far while the bot speaks, so that the next model turn pays only for
the caller's new words. It first waits for the model's lock, which another call's turn, another call's prefill or
the after-call analysis's prompt evaluation can hold for seconds on a loaded machine. Why not the event loop's
default executor, where it used to run: every waiting prefill held one of that pool's few threads
(min(32, cores + 4): 6 on 2 cores), so store writes, speech recognition and the turn model queued behind them. A
soak at 4 calls at a time (`voicebot bench soak`, py-spy) showed 4 of the 6 threads parked in prefills on the
model's lock and 20 s in which new calls got no greeting and no turn on record. And a prefill whose caller hung
up meanwhile still evaluated the whole prompt once it got the lock, holding the model from the calls still up,
while the ending call waited for it (``HangUpGate.wait_released``).

On one thread, prefills queue without taking the shared pool, one whose caller has gone is dropped when its turn
comes, and llama.cpp's OpenMP keeps one worker team for all prefills instead of one per executor thread that ever
ran one (see ``voicebot.bench_soak.sample``).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from voicebot.compute import lower_this_thread

_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llm-prefill", initializer=lower_this_thread)


class Prefills(Protocol):
    def prefill(self) -> None: ...


def prefill_soon(agent: Prefills, hung_up: threading.Event) -> asyncio.Future:
    """Queue ``agent.prefill()`` on the prefill thread (call it on the event loop); it never raises."""
    return asyncio.get_running_loop().run_in_executor(_EXECUTOR, _prefill, agent, hung_up)


def _prefill(agent: Prefills, hung_up: threading.Event) -> None:
    if not hung_up.is_set():  # the caller left while it waited: evaluating their call helps nobody
        agent.prefill()
