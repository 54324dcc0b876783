"""Recycling the workers of ``voicebot serve --workers N``: retire a worker that grew too much, start a fresh one.

Why: a worker's resident memory creeps (~7 MB per 100 calls) with free memory glibc keeps in its main arena,
fragmentation that ``malloc_trim`` cannot return (``voicebot.memory``, README "bench soak"). Nothing leaks, and
the cure mature servers use is to replace the process now and then (gunicorn ``max_requests``, celery
``max_memory_per_child``, uwsgi ``reload-on-rss``). Here that never cuts a call:

1. the supervisor sends the worker ``RETIRE_SIGNAL`` (SIGUSR1); it answers new INVITEs with 503, which Kamailio's
   failure_route sends to another worker, and exits 0 once its live calls ended, however long they take
   (``Worker._retire``); SIGTERM meanwhile still drains it with ``serve.drain_timeout_s``;
2. the supervisor starts a fresh worker in the same slot at once (no restart delay, no failure counted).

Only with two workers or more, one at a time, and only while another worker is ready and up in Kamailio: a
single process has nobody to take the calls while it reloads its models.

What the supervisor measures, every ``POLL_S`` (``Supervisor.recycle``), of each ready worker:

- **memory**: ``RssAnon`` from ``/proc/<pid>/status``, the anonymous resident memory (heap, arenas, model
  buffers). Not ``VmRSS``: the LLM's weights are a mapped file, resident or not as the kernel pleases. The
  baseline is the first reading once the worker printed its ready line, i.e. with every model loaded and warmed
  and before its first call. The first calls step memory up once (buffers and thread arenas reaching their
  sizes: tens of MB, README "bench soak"); that step counts in the growth, small against the default 512 MB,
  and a worker that never got a call still has a baseline.
- **calls**: what the worker already writes after every call, its Prometheus multiprocess file
  ``<run_dir>/metrics/counter_<pid>.db`` (``voicebot_calls_total``, summed over outcomes: every call its
  sessions ended). No new file, no message from the worker; a fresh process has a fresh pid and so a fresh
  count, and the supervisor decides, so it can first make sure another worker is up.

``choose`` is the whole decision, a pure function of ``RecyclePolicy`` and one ``WorkerState`` per worker.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voicebot.config_telephony import ServeConfig

RETIRE_SIGNAL = signal.SIGUSR1  # voicebot.worker handles it; SIGUSR2 is the heap probe (voicebot.memory)
POLL_S = 5.0  # how often the supervisor measures the ready workers
RETIRE_WARN_S = 3600.0  # a worker retiring this long (a call that never ends) is reported once, not killed


@dataclass(frozen=True)
class RecyclePolicy:
    """``serve.recycle_growth_mb`` and ``serve.recycle_after_calls``; 0 turns either off."""

    growth_mb: int = 512
    after_calls: int = 0

    @classmethod
    def from_serve(cls, serve: ServeConfig) -> RecyclePolicy:
        return cls(serve.recycle_growth_mb, serve.recycle_after_calls)

    @property
    def enabled(self) -> bool:
        return self.growth_mb > 0 or self.after_calls > 0

    def reason(self, worker: WorkerState) -> Reason | None:
        """Why ``worker`` is due for recycling, or None when it is not (or is not ready)."""
        if not worker.ready:
            return None
        if self.growth_mb and worker.growth_mb is not None and worker.growth_mb >= self.growth_mb:
            return Reason("memory", f"memory +{worker.growth_mb:.0f} MB since ready (limit {self.growth_mb})")
        if self.after_calls and worker.calls >= self.after_calls:
            plural = "s" if worker.calls != 1 else ""
            return Reason("calls", f"{worker.calls} call{plural} since ready (limit {self.after_calls})")
        return None

    def urgency(self, worker: WorkerState) -> float:
        """How far past its limits a worker is (1.0: just at one): the most urgent one is retired first."""
        growth = (worker.growth_mb or 0.0) / self.growth_mb if self.growth_mb else 0.0
        calls = worker.calls / self.after_calls if self.after_calls else 0.0
        return max(growth, calls)


@dataclass(frozen=True)
class Reason:
    kind: str  # memory, calls: the label of voicebot_worker_recycles_total
    text: str  # for the log line: "memory +530 MB since ready (limit 512)"


@dataclass(frozen=True)
class WorkerState:
    """One worker as the supervisor sees it at one look."""

    name: str
    ready: bool  # running, printed its ready line, not retiring
    up: bool = False  # Kamailio's OPTIONS pings reach it (dispatcher flags AP)
    retiring: bool = False  # sent RETIRE_SIGNAL and still running
    growth_mb: float | None = None  # RssAnon now minus at ready; None when unknown
    calls: int = 0  # calls ended since it started


def choose(policy: RecyclePolicy, workers: Sequence[WorkerState]) -> tuple[WorkerState, Reason] | None:
    """The worker to retire now and why, or None: one due by ``policy`` (the most urgent first), only while no
    worker is retiring, and only when another worker is ready and up to take the calls meanwhile."""
    if not policy.enabled or any(w.retiring for w in workers):
        return None
    due = [(w, why) for w in workers if (why := policy.reason(w)) is not None]
    for worker, why in sorted(due, key=lambda item: policy.urgency(item[0]), reverse=True):
        if any(other is not worker and other.ready and other.up for other in workers):
            return worker, why
    return None


def rss_anon_mb(pid: int) -> float | None:
    """A process's anonymous resident memory (``RssAnon``) in MB, or None (gone, or no /proc)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def calls_ended(metrics_dir: Path, pid: int) -> int:
    """``voicebot_calls_total`` (all outcomes) in the Prometheus multiprocess file worker ``pid`` writes; 0 when
    it has none yet."""
    from prometheus_client.multiprocess import MultiProcessCollector

    path = metrics_dir / f"counter_{pid}.db"
    if not path.exists():
        return 0
    try:
        families = MultiProcessCollector.merge([str(path)], accumulate=False)
    except (OSError, ValueError):  # being created this moment: the next look reads it
        return 0
    return int(sum(sample.value for family in families for sample in family.samples
                   if sample.name == "voicebot_calls_total"))
