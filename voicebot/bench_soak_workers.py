"""The soak with workers and recycling (`voicebot bench soak --workers N`): the short sipp calls of
``voicebot.bench_soak`` placed on Kamailio in front of `voicebot serve --workers N`, every worker sampled.

Why: a worker's memory creeps (README "bench soak"), and ``serve --workers N`` replaces a worker that grew by
``serve.recycle_growth_mb`` or ended ``serve.recycle_after_calls`` calls (``voicebot.recycle``). A soak of one
process cannot show that this works: that a recycle happens under load, that no call is lost while a worker
retires and its replacement loads, that the replacement starts back at a fresh worker's size, and what the
supervisor and Kamailio themselves keep over hundreds of calls.

How: the bench config (``voicebot.bench_soak.prepare``) gets the ports below and the run's recycle limits, and
`voicebot serve --workers N` starts. A thread samples, every ``SAMPLE_S``, every worker once it is ready (the
supervisor's children whose command line has ``--worker-index``: a replacement has a new pid and counts from
its "ready again" line), the supervisor on its own and Kamailio's processes. A worker's figures are those of
one process (one "life"): RSS at ready, its baseline (the first batch mark it saw as ready: after the warm-up
for the first workers), peak and last, fds and threads likewise, and the calls it ended (its Prometheus
multiprocess file, as the supervisor counts them). After the last batch the run waits until no worker is
retiring or loading, so the last replacement's fresh figures are in; recycles are counted from pid changes and
from ``voicebot_worker_recycles_total`` on /metrics; then SIGTERM, and the call store is read.

Ports from ``port``: Kamailio on port, sipp on port+2 (media port+4), /metrics on port+9, worker i on port+10+i,
RTP from port+30, 100 ports per worker.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from voicebot import recycle
from voicebot.bench import Row
from voicebot.bench_soak import Usage, _described, _sipp, failed_calls, last_words, prepare, sample
from voicebot.bench_soak_store import audio_rows, stored_calls
from voicebot.config import Config

SAMPLE_S = 1.0  # how often every live process is sampled
LOAD_TIMEOUT_S = 900.0  # N workers loading their models at once on 2 cores
SETTLE_S = 600.0  # after the last call: the longest wait for retiring and loading workers to be done
READY_AGAIN = re.compile(r"worker (w\d+) ready again \(pid (\d+)\)")
RECYCLED = re.compile(r"worker (w\d+) \(pid (\d+)\) recycled: ")
CRASHED = re.compile(r"worker (w\d+) \(pid (\d+)\) exited with code (-?\d+); restarting")


def proxied(xml: str) -> str:
    """A soak call (``voicebot.bench_soak.UAC``) as a UAC behind a record-routing proxy: keep the 200 OK's
    Record-Route set and Contact, and send ACK and BYE to the worker's Contact along that route (through
    Kamailio to the worker that answered; a BYE to the proxy's own address would go nowhere)."""
    xml = xml.replace('<recv response="200" rtd="true"/>', '<recv response="200" rtd="true" rrs="true"/>')
    for method in ("ACK", "BYE"):
        xml = xml.replace(f"      {method} sip:voicebot@[remote_ip]:[remote_port] SIP/2.0\n",
                          f"      {method} [next_url] SIP/2.0\n      [routes]\n")
    return xml


def _children(pid: int) -> list[int]:
    """The children of every thread of ``pid`` (a child started from another thread is listed under it)."""
    out: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def supervised(pid: int) -> tuple[dict[int, str], int | None]:
    """The supervisor ``pid``'s workers (pid -> slot name "w0", by their ``--worker-index``) and Kamailio's pid."""
    workers, kamailio = {}, None
    for child in _children(pid):
        try:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            comm = Path(f"/proc/{child}/comm").read_text().strip()
        except OSError:
            continue
        if b"--worker-index" in argv[:-1]:
            workers[child] = f"w{int(argv[argv.index(b'--worker-index') + 1])}"
        elif comm == "kamailio":
            kamailio = child
    return workers, kamailio


@dataclass
class Life:
    """One process's figures from its first sample to its last: a worker from its ready line to its exit, the
    supervisor, or Kamailio."""

    name: str  # "w0", "supervisor", "kamailio"
    pid: int
    fresh: Usage | None = None  # the first sample (a worker: once ready, before its first call)
    baseline: Usage | None = None  # at the first batch mark it was sampled at
    last: Usage | None = None
    samples: list[Usage] = field(default_factory=list)
    calls: int = 0  # calls it ended (workers)
    retired: bool = False  # recycled: the supervisor said so

    def add(self, usage: Usage) -> None:
        self.fresh = self.fresh or usage
        self.last = usage
        self.samples.append(usage)

    @property
    def peak_mb(self) -> float:
        return max((u.rss_mb for u in self.samples), default=0.0)


class Supervised:
    """`voicebot serve --workers N` in a child process, its output read as it comes, its processes sampled."""

    def __init__(self, cfg: Path, folder: Path, workers: int, metrics_dir: Path):
        self.output: list[str] = []
        self.metrics_dir = metrics_dir
        self.proc = subprocess.Popen([sys.executable, "-m", "voicebot.cli", "serve", "--config", str(cfg),
                                      "--workers", str(workers)], cwd=folder, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"})
        threading.Thread(target=lambda: self.output.extend(self.proc.stdout), daemon=True).start()
        self.lives: list[Life] = []  # every worker process that was ready, in order of readiness
        self.others: dict[str, Life] = {}  # supervisor, kamailio
        self.ready: set[int] = set()  # worker pids that printed their ready line
        self.live: list[int] = []  # of them, those running at the last look
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while not any("answering calls" in line for line in self.output):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("voicebot serve --workers did not start:\n" + last_words(self.text))
            time.sleep(0.2)
        self.ready = set(supervised(self.proc.pid)[0])  # every worker was ready before that line
        self.look()
        threading.Thread(target=self._watch, daemon=True, name="soak-sampler").start()

    @property
    def text(self) -> str:
        return "".join(self.output)

    def count(self, pattern: re.Pattern) -> int:
        return len(pattern.findall(self.text))

    def pending(self) -> int:
        """Workers retiring or loading now: recycled or crashed and not ready again yet."""
        return self.count(RECYCLED) + self.count(CRASHED) - self.count(READY_AGAIN)

    def life(self, pid: int) -> Life | None:
        return next((life for life in self.lives if life.pid == pid), None)

    def look(self, mark: bool = False) -> None:
        """Sample every ready worker, the supervisor and Kamailio once; ``mark``: a batch ended (baselines)."""
        with self.lock:
            text = self.text
            self.ready |= {int(pid) for _, pid in READY_AGAIN.findall(text)}
            retiring = {int(pid) for _, pid in RECYCLED.findall(text)}
            workers, kamailio = supervised(self.proc.pid)
            self.live = [pid for pid in workers if pid in self.ready and pid not in retiring]
            for pid, name in sorted(workers.items(), key=lambda item: item[1]):
                if pid not in self.live:
                    continue  # loading (its figures start at its ready line) or retiring (they ended there)
                life = self.life(pid)
                if life is None:
                    life = Life(name, pid)
                    self.lives.append(life)
                self._add(life, sample(pid), mark)
                life.calls = max(life.calls, recycle.calls_ended(self.metrics_dir, pid))
            for name, pid, tree in (("supervisor", self.proc.pid, False), ("kamailio", kamailio, True)):
                if pid is not None and self.proc.poll() is None:
                    life = self.others.setdefault(name, Life(name, pid))
                    life.pid = pid
                    self._add(life, sample(pid, tree=tree), mark)

    def described(self) -> str:
        """The live ready workers' last figures, for the log."""
        with self.lock:
            return "; ".join(f"{life.name} pid {life.pid} {_described(life.last)}, {life.calls} calls"
                             for life in self.lives if life.pid in self.live and life.last is not None)

    @staticmethod
    def _add(life: Life, usage: Usage, mark: bool) -> None:
        if usage.rss_mb <= 0:  # gone between the listing and the sample
            return
        life.add(usage)
        if mark and life.baseline is None:
            life.baseline = usage

    def _watch(self) -> None:
        while not self.stopped.wait(SAMPLE_S):
            if self.proc.poll() is not None:
                return
            self.look()

    def settle(self, log: Callable[[str], None], quiet_s: float = 2 * recycle.POLL_S + 2, recycles: int = 0,
               timeout_s: float = SETTLE_S) -> None:
        """Wait until at least ``recycles`` workers were recycled and no worker has been retiring or loading for
        ``quiet_s`` (by default two of the supervisor's recycle looks: one due then is seen)."""
        deadline, quiet_since = time.monotonic() + timeout_s, None
        if self.pending() or self.count(RECYCLED) < recycles:
            log(f"waiting for {self.pending()} worker(s) retiring or loading ({self.count(RECYCLED)} recycle(s), "
                f"at least {recycles} wanted) ...")
        while time.monotonic() < deadline and self.proc.poll() is None:
            now = time.monotonic()
            if self.pending() > 0 or self.count(RECYCLED) < recycles:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= quiet_s:
                return
            time.sleep(0.5)
        if self.proc.poll() is None:
            log(f"still {self.pending()} worker(s) retiring or loading after {timeout_s:.0f} s")

    def stop(self, timeout_s: float = 180) -> None:
        self.stopped.set()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def workers_config(cfg: Path, port: int, workers: int, growth_mb: int | None, after_calls: int | None) -> None:
    """Give the bench config (``cfg``, rewritten) its worker ports, /metrics and the run's recycle limits."""
    data = yaml.safe_load(cfg.read_text())
    serve = data.setdefault("serve", {})
    serve.update(workers=workers, worker_base_port=port + 10, rtp_base_port=port + 30, rtp_ports_per_worker=100,
                 drain_timeout_s=10, metrics_port=port + 9)
    if growth_mb is not None:
        serve["recycle_growth_mb"] = growth_mb
    if after_calls is not None:
        serve["recycle_after_calls"] = after_calls
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))


def metric_sum(port: int, name: str) -> dict[str, float]:
    """``name``'s samples on /metrics at 127.0.0.1:``port`` by their labels as written ("" without any)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = re.findall(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)$", text, flags=re.M)
    return {labels: float(value) for labels, value in found}


@dataclass
class WorkersSoak:
    """What a soak with workers measured (``soak_workers``); ``rows()`` for the table."""

    workers: int
    calls: int  # placed
    answered: int  # sipp completed them (200, on the line, BYE answered)
    failed: int  # sipp counted them failed
    recorded: int
    ended: int
    by_worker: dict[str, int]
    lives: list[Life]  # every worker process, in order of readiness
    others: dict[str, Life]  # supervisor, kamailio
    recycles_metric: dict[str, float]  # voicebot_worker_recycles_total by its labels
    crashes: int  # workers that exited with an error code and were restarted
    exit_code: int | None
    caller_says: str
    packets: int
    heard: list[float]
    spoke: list[float]
    greeted: list[float | None]

    @property
    def recycles(self) -> int:
        """Worker processes that were replaced, seen as new pids in a slot, less the crashes."""
        return len(self.lives) - len({life.name for life in self.lives}) - self.crashes

    def replacements(self) -> list[tuple[Life, Life, Life]]:
        """(the slot's first worker, the one replaced, its replacement) for every replacement."""
        out = []
        for i, life in enumerate(self.lives):
            before = [x for x in self.lives[:i] if x.name == life.name]
            if before:
                out.append((before[0], before[-1], life))
        return out

    def rows(self) -> list[Row]:
        rows: list[Row] = []
        for life in [*self.lives, *self.others.values()]:
            rows += _life_rows(life)
        pairs = self.replacements()
        metric = sum(self.recycles_metric.values())
        rows.append(Row("workers", f"recycles seen from pid changes (voicebot_worker_recycles_total: {metric:.0f})",
                        "recycles", (float(self.recycles),)))
        rows.append(Row("workers", "workers that crashed and were restarted", "workers", (float(self.crashes),)))
        if pairs:
            rows.append(Row("workers", "RSS of a replacement at ready minus its slot's first worker's at ready",
                            "MB", tuple(new.fresh.rss_mb - first.fresh.rss_mb for first, _, new in pairs)))
            rows.append(Row("workers", "RSS of a replacement at ready minus the retired worker's last", "MB",
                            tuple(new.fresh.rss_mb - old.last.rss_mb for _, old, new in pairs)))
        per = ", ".join(f"{name or '?'} {n}" for name, n in self.by_worker.items())
        rows.append(Row("calls", f"placed (sipp; {self.workers} workers behind Kamailio)", "calls",
                        (float(self.calls),)))
        rows.append(Row("calls", "answered (sipp completed: 200, on the line, BYE answered)", "calls",
                        (float(self.answered),)))
        rows.append(Row("calls", "sipp counted as failed", "calls", (float(self.failed),)))
        rows.append(Row("calls", f"recorded in the call store ({per})", "calls", (float(self.recorded),)))
        rows.append(Row("calls", "of them ended with an outcome", "calls", (float(self.ended),)))
        rows += audio_rows("calls", self.caller_says, self.packets, self.heard, self.spoke, self.greeted)
        rows.append(Row("serve", "exit code after SIGTERM (0: clean drain)", "code",
                        (float(self.exit_code if self.exit_code is not None else -1),)))
        return rows


def _life_rows(life: Life) -> list[Row]:
    fresh, base, last = life.fresh, life.baseline or life.fresh, life.last
    if fresh is None or last is None:
        return []
    part = f"{life.name} pid {life.pid}"
    what = f", {life.calls} calls{', recycled' if life.retired else ''}" if life.name.startswith("w") else ""
    start = "at ready" if life.name.startswith("w") else "first"
    return [Row(part, f"RSS: {start} {fresh.rss_mb:.0f}, baseline {base.rss_mb:.0f}, peak {life.peak_mb:.0f}, "
                      f"last {last.rss_mb:.0f} MB (anonymous {fresh.anon_mb:.0f} -> {last.anon_mb:.0f}){what}",
                "MB", tuple(u.rss_mb for u in life.samples)),
            Row(part, f"fds: {start} {fresh.fds}, baseline {base.fds}, last {last.fds}", "fds",
                tuple(float(u.fds) for u in life.samples)),
            Row(part, f"threads: {start} {fresh.threads}, baseline {base.threads}, last {last.threads} "
                      f"({last.openmp} OpenMP workers)", "threads", tuple(float(u.threads) for u in life.samples))]


def soak_workers(config: Config, workers: int = 2, calls: int = 300, concurrency: int = 2, hold_s: float = 1.5,
                 batch: int = 50, log: Callable[[str], None] = print, port: int = 25400,
                 caller_says: str = "Hello?", warmup: int = 20, recycle_growth_mb: int | None = None,
                 recycle_after_calls: int | None = None, settle_quiet_s: float = 2 * recycle.POLL_S + 2,
                 expect_recycles: int = 0) -> WorkersSoak:
    """Place ``warmup`` then ``calls - warmup`` short calls in batches of ``batch`` on Kamailio in front of
    `voicebot serve --workers N`, sampling every process; see the module docstring (ports included). After the
    calls, wait for ``expect_recycles`` recycles and then for ``settle_quiet_s`` with no worker retiring or
    loading (``Supervised.settle``; 0: stop as soon as the last replacement is ready)."""
    if workers < 2:
        raise ValueError("a soak with workers needs 2 or more (one process has no Kamailio and no recycling)")
    with tempfile.TemporaryDirectory(prefix="voicebot-bench-soak-workers-") as tmp:
        folder = Path(tmp)
        cfg, pcap, packets = prepare(config, folder, port, caller_says, hold_s)
        workers_config(cfg, port, workers, recycle_growth_mb, recycle_after_calls)
        log(f"starting voicebot serve --workers {workers}: Kamailio on 127.0.0.1:{port}, workers on "
            f"{port + 10}-{port + 9 + workers} ...")
        started = time.monotonic()
        server = Supervised(cfg, folder, workers, folder / "run" / "metrics")
        log(f"{workers} workers ready in {time.monotonic() - started:.0f} s: " + server.described())
        started, hold_ms, failed, answered = time.monotonic(), int(hold_s * 1000), 0, 0
        recycles_metric: dict[str, float] = {}
        try:
            done = 0
            while done < calls:
                n = min(warmup, calls) if done == 0 else min(batch, calls - done)
                out = _sipp(folder, port, port + 2, n, concurrency, hold_ms, pcap, scenario_of=proxied)
                failed, answered = failed + failed_calls(out), answered + failed_calls(out, "Successful")
                done += n
                time.sleep(2)  # the last calls end, their records are written
                server.look(mark=True)
                if server.proc.poll() is not None:
                    raise RuntimeError(f"voicebot serve --workers died (exit {server.proc.returncode}) after {done} "
                                       "calls:\n" + last_words(server.text))
                log(f"after {done} calls ({time.monotonic() - started:.0f} s): {failed} failed, "
                    f"{server.count(RECYCLED)} recycle(s); {server.described()}")
            server.settle(log, settle_quiet_s, expect_recycles)
            server.look(mark=True)
            log(f"settled ({time.monotonic() - started:.0f} s): {server.count(RECYCLED)} recycle(s); "
                + server.described())
            try:
                recycles_metric = metric_sum(port + 9, "voicebot_worker_recycles_total")
            except OSError as exc:
                log(f"/metrics not read: {exc}")
        finally:
            crashes = server.count(CRASHED)
            server.stop()
        retired = {int(pid) for _, pid in RECYCLED.findall(server.text)}
        for life in server.lives:  # its last calls ended while it retired, after its last sample
            life.calls = max(life.calls, recycle.calls_ended(server.metrics_dir, life.pid))
            life.retired = life.pid in retired
        stored = stored_calls(folder, calls)
    return WorkersSoak(workers, calls, answered, failed, stored.recorded, stored.ended, stored.by_worker,
                       server.lives, server.others, recycles_metric, crashes, server.proc.returncode,
                       caller_says, packets, stored.heard, stored.spoke, stored.greeted)


def bench_soak_workers(config: Config, workers: int = 2, **kwargs) -> list[Row]:
    """``soak_workers`` as the table's rows (``voicebot bench soak --workers N``)."""
    return soak_workers(config, workers, **kwargs).rows()
