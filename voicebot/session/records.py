"""CallRecords: one call's writes to the call store, in order, off the conversation's path.

Why a queue: a locked database makes each write wait (SQLite's busy timeout, 5 s) and a full disk makes it fail;
the caller must not hear either. So the session hands each record (an op of ``voicebot.store_journal``) to
``add`` and carries on; a task writes them in order in a worker thread. A write that fails is retried, with a
growing pause, and everything after it waits behind it so the turns keep their order. The first failure of a
call is logged once and counted (``voicebot_errors_total{kind="store"}``). ``close`` at the end of the call gives
the queue a last few seconds, then spills what is left (``CallStore.spill``), to be imported at the next start.

What the caller hears is the session's choice (``faults.store_errors``): ``on_failure`` is told once, when the
store first fails for real. A full disk fails at once; a lock has already waited SQLite's busy timeout (5 s) and
counts when it fails twice in a row, so a moment of contention never sends a caller to a person.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import deque
from collections.abc import Callable

from voicebot import metrics
from voicebot.store import CallStore
from voicebot.store_journal import Op

log = logging.getLogger(__name__)

RETRY_S = (0.05, 0.1, 0.2, 0.5, 1.0)  # pauses between attempts of one write; the last repeats
LOCKED_FAILURES = 2  # a write that failed on a lock this many times in a row is a failure for on_failure


def _locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and any(w in str(exc) for w in ("locked", "busy"))


class CallRecords:
    def __init__(self, store: CallStore, call_id: str,
                 on_failure: Callable[[BaseException], None] | None = None):
        self.store = store
        self.call_id = call_id
        self.on_failure = on_failure  # told once (module docstring)
        self.failed: BaseException | None = None  # what on_failure was told
        self.pending: deque[Op] = deque()
        self.log: list[Op] = []  # every record of the call in order: the outcome is decided from it at the end
        self.failures = 0  # failed attempts, all writes together
        self.spilled = 0  # ops written to a spill file (or held in memory) at the end
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()  # set while nothing is queued
        self._drained.set()
        self._failed_now = asyncio.Event()  # set once on_failure has been told
        self._stop = False  # close(): end after the attempt in flight (never cut one: it may still commit)
        self._task: asyncio.Task | None = None

    def add(self, op: Op) -> None:
        """Queue one record; never blocks, never raises."""
        self.pending.append(op)
        self.log.append(op)
        self._drained.clear()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        attempt = 0
        while not self._stop:
            if not self.pending:
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            op = self.pending[0]
            try:
                await asyncio.to_thread(self.store.apply, op)
            except Exception as exc:  # noqa: BLE001 - a full disk, a locked database, a closed store: retry
                self.failures += 1
                if self.failures == 1:
                    log.error("call %s: the call store failed (%s: %s); its records are retried, then spilled",
                              self.call_id, type(exc).__name__, exc)
                    metrics.ERRORS.labels(kind="store").inc()
                if self.failed is None and (not _locked(exc) or attempt + 1 >= LOCKED_FAILURES):
                    self.failed = exc
                    self._failed_now.set()
                    if self.on_failure is not None:
                        try:
                            self.on_failure(exc)
                        except Exception:  # noqa: BLE001 - the records go on whatever the session did with it
                            log.exception("call %s: on_failure failed", self.call_id)
                self._wake.clear()
                try:  # a pause before the next attempt; close() cuts it short
                    await asyncio.wait_for(self._wake.wait(), RETRY_S[min(attempt, len(RETRY_S) - 1)])
                except TimeoutError:
                    pass
                attempt += 1
                continue
            attempt = 0
            self.pending.popleft()

    async def settled(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` until what is queued is written or the store has failed (``on_failure`` told).
        The session waits so for the call's first row before the greeting: a full disk then means the apology
        and a person first, every time, not a greeting and then the apology (which came first was a race)."""
        waits = [asyncio.ensure_future(self._drained.wait()), asyncio.ensure_future(self._failed_now.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    async def flush(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for every queued record to be written; True when they all were."""
        if not self.pending:
            return True
        try:
            await asyncio.wait_for(self._drained.wait(), timeout_s)
        except TimeoutError:
            pass
        return not self.pending

    async def close(self, timeout_s: float = 3.0) -> int:
        """The call has ended: a last ``timeout_s`` for the queue, then what is left is spilled. Returns how many
        records were spilled (0: all are in the database). Waits for a write in flight to end (at most SQLite's
        busy timeout), so a record is never both written and spilled."""
        written = await self.flush(timeout_s)
        self._stop = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if written or not self.pending:
            return 0
        left = list(self.pending)
        self.pending.clear()
        path = await asyncio.to_thread(self.store.spill.write, left)
        self.spilled = len(left)
        metrics.STORE_SPILLED.inc(len(left))
        log.error("call %s: %d record(s) the call store could not take were kept in %s; they are imported at the "
                  "next start", self.call_id, len(left), path or "memory (no spill place could be written)")
        return len(left)
