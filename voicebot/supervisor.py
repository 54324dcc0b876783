"""``voicebot serve --workers N``: N worker processes behind Kamailio, one ``/metrics`` for all of them.

The supervisor loads no model itself. It
1. prepares ``serve.run_dir`` (a fresh Prometheus multiprocess folder, the Kamailio config, checked);
2. serves ``/metrics`` on ``serve.metrics_address:metrics_port``, summing the workers' files;
3. starts N workers (``python -m voicebot.cli serve --worker-index i``): each a full bot with its own models,
   answering on ``worker_base_port + i`` and accepting INVITEs from the proxy only; each prints a ready line;
4. starts Kamailio on ``sip.listen_address:sip.port`` and waits until its OPTIONS pings reach every worker;
5. restarts a worker that dies (Kamailio's pings keep it out meanwhile) and Kamailio if it dies;
5b. recycles a worker grown by ``serve.recycle_growth_mb`` or past ``serve.recycle_after_calls``: SIGUSR1, it exits 0
   once its live calls ended and a fresh one starts at once (``voicebot.recycle``: one at a time, another one up);
6. on SIGHUP checks the config file and forwards SIGHUP to every ready worker (``voicebot.reload``);
7. on SIGTERM or SIGINT forwards SIGTERM to every worker, which drains (503 for new calls, live calls get
   ``serve.drain_timeout_s``), waits for them (SIGKILL after the drain time plus a margin), stops Kamailio and
   returns 0.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from voicebot import metrics, recycle
from voicebot.config import Config
from voicebot.telephony import kamailio
from voicebot.telephony.kamailio import Kamailio, KamailioError, RunFiles, WorkerSlot

log = logging.getLogger(__name__)

READY_PREFIX = "VOICEBOT-WORKER-READY"
READY_TIMEOUT_S = 600.0  # loading Whisper, Piper and the LLM in N processes at once on a small machine
STOP_MARGIN_S = 15.0  # beyond drain_timeout_s: writing the last records, unloading the models
UP_TIMEOUT_S = 12.0  # Kamailio's first OPTIONS round reaches every worker well within this
MAX_RESTART_DELAY_S = 30.0


class SupervisorError(RuntimeError):
    """The service could not start: a worker died while loading, Kamailio refused to start..."""


def ready_line(slot: WorkerSlot, pid: int) -> str:
    """What a worker prints (alone on a line) once its models are loaded and it is about to answer."""
    return f"{READY_PREFIX} index={slot.index} pid={pid} port={slot.port}"


def worker_command(index: int, config_path: Path | None) -> list[str]:
    cmd = [sys.executable, "-m", "voicebot.cli", "serve", "--worker-index", str(index)]
    if config_path is not None:
        cmd += ["--config", str(config_path)]
    return cmd


@dataclass
class WorkerProcess:
    """One worker process and the reader thread that relays its output and spots its ready line."""

    slot: WorkerSlot
    console: Console
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    ready: threading.Event = field(default_factory=threading.Event)
    tail: deque = field(default_factory=lambda: deque(maxlen=30))
    quick_failures: int = 0  # exits in a row soon after a start: the restart delay grows with it
    restart_at: float | None = None
    restarted: bool = False  # started again after dying: say so when it is ready
    baseline_mb: float | None = None  # RssAnon once ready (voicebot.recycle)
    retiring_since: float | None = None  # sent SIGUSR1: it exits 0 once its live calls ended
    retire_warned: bool = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, cmd: list[str], env: dict[str, str]) -> None:
        self.ready = threading.Event()
        self.tail.clear()
        self.restart_at = None
        self.baseline_mb, self.retiring_since, self.retire_warned = None, None, False
        self.started_at = time.monotonic()
        # a session of its own: Ctrl-C in the terminal reaches the supervisor only, which then drains each worker
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1, env=env,
                                     start_new_session=True)
        threading.Thread(target=self._relay, args=(self.proc, self.ready), daemon=True,
                         name=f"relay-{self.slot.name}").start()

    def _relay(self, proc: subprocess.Popen, ready: threading.Event) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith(READY_PREFIX):
                ready.set()
                continue
            self.tail.append(line)
            self.console.print(f"[{self.slot.name}] {line}", markup=False, highlight=False)

    def exited(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    def serving(self) -> bool:
        """Running, loaded, and not retiring: it takes calls."""
        return self.exited() is None and self.proc is not None and self.ready.is_set() and self.retiring_since is None


class Supervisor:
    """Runs the whole multi-worker service until SIGTERM/SIGINT; see the module docstring."""

    def __init__(self, config: Config, config_path: Path | None, workers: int, console: Console):
        self.config = config
        self.config_path = config_path.resolve() if config_path is not None else None
        self.serve = config.serve
        self.console = console
        self.slots = kamailio.worker_slots(config, workers)
        self.run_dir = config.path(self.serve.run_dir)
        self.files = RunFiles(self.run_dir)
        self.metrics_dir = self.run_dir / "metrics"
        self.kamailio = Kamailio(self.files)
        self.workers = [WorkerProcess(slot, console) for slot in self.slots]
        self.stopping = threading.Event()
        self.reloading = threading.Event()  # SIGHUP
        self.env: dict[str, str] = {}
        self.policy = recycle.RecyclePolicy.from_serve(self.serve)
        self.next_recycle_look = 0.0

    # -- start ---------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Write and check the Kamailio config, clear the metrics folder, serve /metrics. Nothing is started
        when any of it fails."""
        kamailio.kamailio_binary()
        kamailio.kamailio_binary("kamcmd")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        kamailio.write_files(self.config, self.run_dir, len(self.slots))
        stale = kamailio.stop_stale(self.files)
        if stale:
            self.console.print(f"stopped a Kamailio left running by an earlier start (pid {stale})", highlight=False)
        busy = kamailio.busy_ports(self.config, len(self.slots))
        if busy:
            raise SupervisorError(f"in use already: {', '.join(busy)} (another voicebot or SIP server?); stop it "
                                  "or change sip.port / serve.worker_base_port")
        self.files.log.unlink(missing_ok=True)  # one run's log; a restart within the run appends to it
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        self.metrics_dir.mkdir(parents=True)
        os.environ[metrics.MULTIPROC_ENV] = str(self.metrics_dir)
        self.env = {**os.environ, metrics.MULTIPROC_ENV: str(self.metrics_dir), "PYTHONUNBUFFERED": "1"}
        if self.serve.metrics_port:
            try:
                metrics.serve_metrics(self.serve.metrics_port, self.serve.metrics_address)
            except OSError as exc:
                raise SupervisorError(f"cannot serve /metrics on {self.serve.metrics_address}:"
                                      f"{self.serve.metrics_port}: {exc.strerror or exc} (set serve.metrics_port, "
                                      "or 0 to turn it off)") from exc

    def start_workers(self) -> None:
        """Start every worker and wait until each has printed its ready line."""
        for worker in self.workers:
            worker.start(worker_command(worker.slot.index, self.config_path), self.env)
        deadline = time.monotonic() + READY_TIMEOUT_S
        with self.console.status(f"loading the models in {len(self.workers)} workers ..."):
            while not all(w.ready.is_set() for w in self.workers):
                if self.stopping.is_set():
                    raise SupervisorError("stopped while the workers were loading")
                for worker in self.workers:
                    code = worker.exited()
                    if code is not None and not worker.ready.is_set():
                        time.sleep(0.2)  # let the relay thread take the last lines
                        raise SupervisorError(
                            f"worker {worker.slot.name} (pid {worker.pid}) exited with code {code} while loading; "
                            "its last output:\n" + "\n".join(worker.tail))
                if time.monotonic() > deadline:
                    raise SupervisorError(f"the workers were not ready within {READY_TIMEOUT_S:.0f} s")
                time.sleep(0.1)

    def wait_until_up(self) -> dict[str, bool]:
        """Wait until Kamailio's OPTIONS pings got an answer from every worker (flags AP); worker URI -> up."""
        deadline = time.monotonic() + UP_TIMEOUT_S
        state: dict[str, bool] = {}
        while time.monotonic() < deadline and not self.stopping.is_set():
            state = self.dispatcher_up()
            if state and all(state.values()):
                break
            time.sleep(0.25)
        return state

    def dispatcher_up(self) -> dict[str, bool]:
        """Worker URI -> whether Kamailio's OPTIONS pings reach it (flags AP); empty when kamcmd fails."""
        try:
            return {d.uri: d.flags == "AP" for d in kamailio.dispatcher_state(self.files)}
        except KamailioError:
            return {}

    def print_ready(self, up: dict[str, bool]) -> None:
        sip = self.config.sip
        table = Table(title=f"voicebot: {len(self.workers)} workers behind Kamailio")
        for column in ("worker", "pid", "SIP", "RTP ports", "state"):
            table.add_column(column)
        table.add_row("kamailio", str(self.kamailio.pid), f"{sip.listen_address}:{sip.port}", "",
                      f"log: {self.files.log}")
        transports = self.config.sip.transports
        for worker in self.workers:
            slot = worker.slot
            is_up = up.get(slot.uri(transports))
            state = "[green]up[/green]" if is_up else "[red]no answer to OPTIONS[/red]" if is_up is False else "?"
            table.add_row(slot.name, str(worker.pid), f"{slot.host}:{slot.port}",
                          f"{slot.rtp_port}-{slot.rtp_port + slot.rtp_ports - 1}", state)
        self.console.print(table)
        where = (f"http://{self.serve.metrics_address}:{self.serve.metrics_port}/metrics"
                 if self.serve.metrics_port else "off")
        self.console.print(
            f"[green]answering calls[/green] on sip:{sip.listen_address}:{sip.port} ({', '.join(transports)}) "
            f"through Kamailio: {len(self.workers)} workers x {kamailio.MAX_LOAD} calls; allowed sources: "
            f"{', '.join(sip.allowed_sources)}; metrics: {where}; Ctrl-C or SIGTERM drains and stops",
            highlight=False)

    # -- run -----------------------------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: object) -> None:
        self.stopping.set()

    def _on_hup(self, signum: int, frame: object) -> None:
        self.reloading.set()  # handled by the supervising loop, not inside the signal handler

    def reload(self) -> None:
        """SIGHUP: check the config file once here (its problems, with file:line, printed once, not by each
        worker), then forward SIGHUP to every ready worker, which applies what it can (``voicebot.reload``)."""
        from voicebot.reload import read

        path = self.config_path
        result = read(path, self.config) if path is not None else None
        if result is None or not result.ok:
            problems = result.problems if result is not None else ["no config file was given: nothing to reload"]
            self.console.print(f"[red]config reload (SIGHUP) refused[/red], the running config stays: "
                               f"{len(problems)} problem(s)", highlight=False)
            for problem in problems:
                self.console.print(f"  {problem}", markup=False, highlight=False)
            return
        ready = [w for w in self.workers if w.proc is not None and w.exited() is None and w.ready.is_set()]
        for worker in ready:
            worker.proc.send_signal(signal.SIGHUP)
        self.console.print(f"config reload (SIGHUP): forwarded to {len(ready)} worker(s)", highlight=False)

    def run(self) -> int:
        """Start everything, supervise until a stop signal, stop everything; the exit code (0 after a stop)."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hup)
        try:
            try:
                self.prepare()
                self.start_workers()
                self.kamailio.start()
            except (SupervisorError, KamailioError, OSError) as exc:
                self.console.print(f"[red]error:[/red] {exc}", highlight=False)
                return 0 if self.stopping.is_set() else 1
            self.print_ready(self.wait_until_up())
            while not self.stopping.wait(0.25):
                if self.reloading.is_set():
                    self.reloading.clear()
                    self.reload()
                self.supervise()
                self.recycle()
            return 0
        finally:
            self.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def supervise(self) -> None:
        """One look at every child: restart what died (with a growing delay if it keeps dying)."""
        now = time.monotonic()
        for worker in self.workers:
            if worker.restart_at is not None:
                if now >= worker.restart_at:
                    self.start_again(worker, "restarted")
                continue
            code = worker.exited()
            if code is None:
                if worker.restarted and worker.ready.is_set():
                    worker.restarted = False
                    self.console.print(f"[green]worker {worker.slot.name} ready again[/green] (pid {worker.pid}); "
                                       "Kamailio sends it calls once it answers OPTIONS", highlight=False)
                if worker.ready.is_set() and worker.quick_failures and now - worker.started_at > 60:
                    worker.quick_failures = 0
                continue
            metrics.worker_exited(worker.pid)
            if code == 0 and worker.retiring_since is not None:  # recycled: its calls ended, a fresh one now
                self.start_again(worker, f"retired (pid {worker.pid}) once its calls ended; started again")
                continue
            worker.quick_failures = worker.quick_failures + 1 if now - worker.started_at < 60 else 1
            delay = min(MAX_RESTART_DELAY_S, 2.0 ** (worker.quick_failures - 1))
            worker.restart_at = now + delay
            self.console.print(f"[red]worker {worker.slot.name} (pid {worker.pid}) exited with code {code}[/red]; "
                               f"restarting it in {delay:.0f} s (Kamailio sends its calls to the others meanwhile)",
                               highlight=False)
            log.error("worker %s (pid %s) exited with code %s", worker.slot.name, worker.pid, code)
        if not self.kamailio.alive():
            self.console.print(f"[red]kamailio exited[/red]; restarting it. The end of its log:\n"
                               f"{self.kamailio.log_tail(10)}", highlight=False)
            try:
                self.kamailio.start()
            except KamailioError as exc:
                self.console.print(f"[red]kamailio did not start again:[/red] {exc}", highlight=False)

    def start_again(self, worker: WorkerProcess, what: str) -> None:
        worker.start(worker_command(worker.slot.index, self.config_path), self.env)
        worker.restarted = True
        self.console.print(f"worker {worker.slot.name} {what} (pid {worker.pid}), loading ...", highlight=False)

    # -- recycle (voicebot.recycle) ------------------------------------------------------------------------
    def recycle(self) -> None:
        """Take each worker's memory baseline once it is ready; every ``recycle.POLL_S`` measure the serving
        workers and send SIGUSR1 to the one ``recycle.choose`` picks; warn once about a retire that takes hours."""
        if not self.policy.enabled:
            return
        for worker in self.workers:
            if worker.baseline_mb is None and worker.serving():
                worker.baseline_mb = recycle.rss_anon_mb(worker.pid)
        now = time.monotonic()
        if now < self.next_recycle_look:
            return
        self.next_recycle_look = now + recycle.POLL_S
        states = [self.worker_state(worker, now) for worker in self.workers]
        if not any(self.policy.reason(state) for state in states):
            return
        up, uris = self.dispatcher_up(), [w.slot.uri(self.config.sip.transports) for w in self.workers]
        pick = recycle.choose(self.policy, [replace(s, up=up.get(uri, False)) for s, uri in zip(states, uris)])
        if pick is None:
            return
        state, reason = pick
        worker = next(w for w in self.workers if w.slot.name == state.name)
        try:
            worker.proc.send_signal(recycle.RETIRE_SIGNAL)
        except ProcessLookupError:
            return
        worker.retiring_since = now
        metrics.WORKER_RECYCLES.inc(reason.kind)
        self.console.print(f"worker {worker.slot.name} (pid {worker.pid}) recycled: {reason.text}; it takes no "
                           "new calls and restarts once its live calls ended", highlight=False)
        log.info("worker %s (pid %s) recycled: %s", worker.slot.name, worker.pid, reason.text)

    def worker_state(self, worker: WorkerProcess, now: float) -> recycle.WorkerState:
        running = worker.proc is not None and worker.exited() is None
        retiring = running and worker.retiring_since is not None
        if retiring and not worker.retire_warned and now - worker.retiring_since > recycle.RETIRE_WARN_S:
            worker.retire_warned = True
            self.console.print(f"[yellow]worker {worker.slot.name} (pid {worker.pid}) still retiring after "
                               f"{recycle.RETIRE_WARN_S / 60:.0f} min[/yellow]: a call on it has not ended; left "
                               "alone (no other worker is recycled meanwhile)", highlight=False)
            log.warning("worker %s (pid %s) still retiring after %.0f s", worker.slot.name, worker.pid,
                        recycle.RETIRE_WARN_S)
        if not worker.serving():
            return recycle.WorkerState(worker.slot.name, ready=False, retiring=retiring)
        rss = recycle.rss_anon_mb(worker.pid)
        growth = rss - worker.baseline_mb if rss is not None and worker.baseline_mb is not None else None
        calls = recycle.calls_ended(self.metrics_dir, worker.pid) if self.policy.after_calls else 0
        return recycle.WorkerState(worker.slot.name, ready=True, growth_mb=growth, calls=calls)

    # -- stop ----------------------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """SIGTERM every worker (each drains), wait for them within the bound, SIGKILL the rest, stop Kamailio."""
        running = [w for w in self.workers if w.proc is not None and w.proc.poll() is None]
        if running:
            self.console.print(f"stopping: {len(running)} workers drain (live calls get up to "
                               f"{self.serve.drain_timeout_s:.0f} s) ...", highlight=False)
        for worker in running:
            try:
                worker.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.serve.drain_timeout_s + STOP_MARGIN_S
        for worker in self.workers:
            if worker.proc is None:
                continue
            try:
                code = worker.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                code = worker.proc.wait()
                self.console.print(f"[red]worker {worker.slot.name} (pid {worker.pid}) did not stop in time: "
                                   "killed[/red]", highlight=False)
            metrics.worker_exited(worker.pid)
            if code not in (0, None):
                self.console.print(f"worker {worker.slot.name} (pid {worker.pid}) exited with code {code}",
                                   highlight=False)
        self.kamailio.stop()
        self.console.print("stopped.")


def run_supervisor(config: Config, config_path: Path | None, workers: int, console: Console) -> int:
    """``voicebot serve --workers N`` (N > 1); returns the process exit code."""
    return Supervisor(config, config_path, workers, console).run()
