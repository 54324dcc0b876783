"""One worker process: its models, the session dependencies, the SIP endpoint, admission, the after-call analysis
and its idle gate, and drain.

The lifecycle, each step once and in this order (``close`` may come at any point, and twice)::

    worker = Worker(config)              # or Worker.for_slot(config, i): worker i of `serve --workers N`
    worker.load(on_stage=...)            # native-library check, every model loaded (on a compute thread) and warm
    worker.start()                       # databases open (calls a dead process left are marked), analysis runs
    worker.run(on_ready=announce)        # SIP until SIGINT/SIGTERM (in a loop: ``await worker.serve(stop)``),
                                         # then drain: new INVITEs get 503, live calls get drain_timeout_s;
                                         # or until SIGUSR1 (retire): the same drain without a deadline
    worker.close()                       # the analysis stopped, the databases closed

``voicebot serve`` runs all of it; ``voicebot chat`` and ``simulate`` run load, start, ``run_call`` (one call on a
line of their own), ``finish_analysis`` and close.

Retiring (SIGUSR1, ``RETIRE_SIGNAL``): the supervisor recycles a worker whose memory grew too much or that
answered enough calls (``voicebot.recycle``). The worker drains exactly as on SIGTERM (503 for new INVITEs, which
Kamailio sends to another worker), but its live calls get all the time they need: it exits 0 once the last one
ended, and the supervisor starts a fresh one at once. SIGTERM during a retire still drains with drain_timeout_s
(``SipWorker.hurry``).

Admission is decided by the endpoint on its pjsua2 thread, before a call is answered: a source outside
``sip.allowed_sources`` gets 403, a call beyond ``sip.max_calls`` 486, any call once ``drain`` began 503.

The idle gate: the after-call analysis shares the language model with the calls, so it uses the model only while
``idle()``: no call of this worker in progress (checked before every token; counted in ``run_call``'s ``live``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from voicebot import compute
from voicebot.components import Components, Stage, load_components, system_prompt
from voicebot.config import Config
from voicebot.dialer.service import start_for_worker as start_dialer
from voicebot.memory import trim_soon
from voicebot.recycle import RETIRE_SIGNAL
from voicebot.review.worker import AnalysisWorker, unanalysed_calls
from voicebot.session import CallSession, SessionDeps
from voicebot.store import Outcome
from voicebot.telephony.base import CallTransport

if TYPE_CHECKING:
    from voicebot.dialer.loop import Dialer
    from voicebot.telephony.kamailio import WorkerSlot

log = logging.getLogger(__name__)

OnCall = Callable[[CallTransport], Awaitable[None]]
ANALYSIS_STOP_S = 3.0  # how long close() waits for the after-call analysis to leave the model


class Endpoint(Protocol):
    """What a worker needs of its SIP endpoint: ``telephony.sip_endpoint.SipWorker`` (a fake in tests). Entering
    it binds the transports and takes INVITEs, each answered call runs ``on_call``; leaving it hangs up and stops."""

    bound_port: int
    transports: list[str]

    async def __aenter__(self) -> Endpoint: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def drain(self, timeout_s: float = 30.0) -> None: ...

    def hurry(self, timeout_s: float) -> None: ...


EndpointFactory = Callable[[Config, OnCall, int | None], Endpoint]


def sip_endpoint(config: Config, on_call: OnCall, rtp_port: int | None) -> Endpoint:
    """The real endpoint: pjsua2 is imported only by a worker that serves SIP (not by chat or simulate)."""
    from voicebot.telephony.sip_endpoint import SipWorker

    return SipWorker(config, on_call, rtp_port=rtp_port)


class Phase(StrEnum):
    NEW = "new"
    LOADED = "loaded"  # models loaded and warm
    STARTED = "started"  # databases open, analysis running: calls may run
    SERVING = "serving"  # the SIP endpoint takes calls
    DRAINING = "draining"  # new calls get 503, live ones finish
    STOPPED = "stopped"  # the endpoint is closed
    CLOSED = "closed"


class WorkerStateError(RuntimeError):
    """A lifecycle step out of order (e.g. ``start`` before ``load``)."""


def open_session_deps(config: Config, parts: Components, worker: str = "main") -> SessionDeps:
    """The databases a worker needs, opened once per process. Calls this worker left unfinished (the process
    died mid-call) are marked interrupted now, with every turn they finished kept; records a failing store spilled
    are imported first. The apology a failing call plays is rendered now, so it plays even when synthesis breaks."""
    from voicebot.crm.repository import Repository
    from voicebot.store import CallStore

    crm_path = config.path(config.crm.database)
    if not crm_path.exists():
        raise FileNotFoundError(f"no CRM database at {crm_path}; run `voicebot crm seed` for the demo company "
                                "or `voicebot crm import` for your own data")
    from voicebot.session.faults import FallbackSpeech

    store = CallStore(config.path(config.store.database), config.path(config.store.recordings_dir),
                      spill_dir=config.path(config.store.spill_dir))  # records spilled earlier are imported here
    store.mark_interrupted(worker=worker)
    fallback = FallbackSpeech.render(parts.synthesizer, config.dialog.prompts, config.audio.sample_rate)
    return SessionDeps(config, parts.transcriber, parts.synthesizer, parts.chat, parts.vad,
                       Repository.from_config(config), store, worker=worker, turn_model=parts.turn_model,
                       intents=parts.intents, knowledge=parts.knowledge, fallback=fallback)


async def stop_when_orphaned(stop: asyncio.Event, poll_s: float = 1.0) -> None:
    """Set ``stop`` once this process's parent is gone: a worker whose supervisor vanished (killed with
    SIGKILL) drains and exits instead of lingering."""
    parent = os.getppid()
    while not stop.is_set():
        await asyncio.sleep(poll_s)
        if os.getppid() != parent:
            stop.set()


class Worker:
    """One process that answers calls; see the module docstring for its lifecycle.

    ``name`` is stored with every call (``calls.worker``); ``rtp_port`` is the first of the endpoint's RTP ports
    (default: the SIP port + 2); ``drain_timeout_s`` defaults to ``serve.drain_timeout_s``; ``endpoint`` builds
    the SIP endpoint (the real one by default)."""

    def __init__(self, config: Config, name: str = "main", *, rtp_port: int | None = None,
                 drain_timeout_s: float | None = None, endpoint: EndpointFactory = sip_endpoint,
                 analysis_stop_s: float = ANALYSIS_STOP_S):
        self.config = config
        self.name = name
        self.rtp_port = rtp_port
        self.drain_timeout_s = config.serve.drain_timeout_s if drain_timeout_s is None else drain_timeout_s
        self.make_endpoint = endpoint
        self.analysis_stop_s = analysis_stop_s
        self.model_busy = False  # set by close: the analysis thread is still inside the model (see close)
        self.slot: WorkerSlot | None = None  # set by for_slot
        self.phase = Phase.NEW
        self.parts: Components | None = None
        self.deps: SessionDeps | None = None
        self.analysis: AnalysisWorker | None = None
        self.endpoint: Endpoint | None = None
        self.dialer: Dialer | None = None  # the dialer, when this worker owns it (voicebot.dialer.service)
        self.live = 0  # calls in progress (the idle gate); changed on the event loop only
        self.finished = 0  # calls run to their end
        self.retiring = False  # SIGUSR1: the drain waits for every live call, without a deadline
        self._owns_deps = False

    @classmethod
    def for_slot(cls, config: Config, index: int, **kwargs: object) -> Worker:
        """Worker ``index`` of ``serve --workers N``: its own SIP port and RTP block, INVITEs from the proxy only."""
        from voicebot.telephony.kamailio import worker_config, worker_slots

        slot = worker_slots(config, index + 1)[index]
        worker = cls(worker_config(config, slot), slot.name, rtp_port=slot.rtp_port, **kwargs)
        worker.slot = slot
        return worker

    def _expect(self, step: str, *phases: Phase) -> None:
        if self.phase not in phases:
            raise WorkerStateError(f"worker {self.name}: cannot {step} when {self.phase} "
                                   f"(only when {' or '.join(phases)})")

    # -- load, start -----------------------------------------------------------------------------------------
    def expose_metrics(self) -> None:
        """Serve ``/metrics`` on ``serve.metrics_address:metrics_port`` unless the port is 0 (a worker on its own;
        under the supervisor, the supervisor serves every worker's). Call it before ``load``, so a port clash
        fails at once: raises OSError."""
        from voicebot.metrics import serve_metrics

        serve = self.config.serve
        if serve.metrics_port:
            serve_metrics(serve.metrics_port, serve.metrics_address)

    def load(self, on_stage: Callable[[Stage], None] | None = None) -> Components:
        """Check the native libraries in a child process, then load and warm every model (``on_stage`` after
        each). Raises ModelError (NativeLibraryError included) or LlmError."""
        self._expect("load", Phase.NEW)
        self.parts = compute.call(load_components, self.config, on_stage=on_stage)  # pools: compute's priority
        self.phase = Phase.LOADED
        return self.parts

    def start(self, deps: SessionDeps | None = None, *, analysis: bool = True) -> SessionDeps:
        """Open the databases for the loaded models (FileNotFoundError without a CRM), or take ``deps`` ready made
        (the caller keeps them: ``close`` does not close them); then, with ``analysis``, start the after-call
        analysis behind the idle gate and have every call that ends submit itself to it."""
        if deps is None:
            self._expect("start", Phase.LOADED)
            assert self.parts is not None
            deps = open_session_deps(self.config, self.parts, worker=self.name)
            self._owns_deps = True
        else:
            self._expect("start", Phase.NEW, Phase.LOADED)
        self.deps = deps
        if analysis:
            chat, prompt = deps.chat, system_prompt(self.config)
            # the model serves live calls first: the analysis runs only while no call is up, and stops within a
            # token or a graph node when one starts; afterwards the dialogue's prompt is warmed again in the cache
            self.analysis = AnalysisWorker(deps.store, chat, self.config.review, idle=self.idle,
                                           after_model=lambda: chat.warm(prompt)).start()
            deps.on_call_end = self.analysis.submit
            self._queue_unanalysed(deps)
        self.phase = Phase.STARTED
        return deps

    def _queue_unanalysed(self, deps: SessionDeps) -> None:
        """Queue this worker's ended calls that still lack the model's analysis: the last stop abandoned them."""
        assert self.analysis is not None
        try:
            pending = unanalysed_calls(deps.store, self.name)
        except Exception:  # a store that cannot be read here fails the calls loudly; the analysis can wait
            log.exception("worker %s: could not look for calls left unanalysed", self.name)
            return
        for call_id in pending:
            self.analysis.submit(call_id)
        if pending:
            log.info("worker %s: %d call(s) left unanalysed by the last run queued for analysis", self.name,
                     len(pending))

    # -- calls ---------------------------------------------------------------------------------------------------
    def idle(self) -> bool:
        """The analysis's idle gate: no call of this worker is in progress (read from the analysis thread)."""
        return self.live == 0

    async def run_call(self, transport: CallTransport,
                       on_turn: Callable[[str, str, object], None] | None = None) -> Outcome:
        """Run one call to its end as a CallSession on ``transport``, counted in ``live`` while it lasts.
        ``on_turn(role, text, timings)`` sees every turn (chat and simulate print them)."""
        self._expect("run a call", Phase.STARTED, Phase.SERVING, Phase.DRAINING)
        session = CallSession(transport, self.deps)
        if on_turn is not None:
            session.on_turn = on_turn
        self.live += 1
        try:
            return await session.run()
        finally:
            self.live -= 1
            self.finished += 1
            trim_soon()

    async def _on_call(self, call: CallTransport) -> None:
        outcome = await self.run_call(call)
        log.info("call %s from %s: %s", call.info.call_id, call.info.caller_id, outcome)

    # -- serve, drain ----------------------------------------------------------------------------------------
    async def serve(self, stop: asyncio.Event | None = None,
                    on_ready: Callable[[Endpoint], None] | None = None) -> None:
        """Answer calls on the SIP endpoint until ``stop`` is set (or forever), then drain.

        ``on_ready(endpoint)`` is called once the transports are bound and the account takes INVITEs: only then
        may a readiness line be printed, or a script that dials on it races the endpoint's start."""
        self._expect("serve", Phase.STARTED)
        compute.prestart(self.config.sip.max_calls)  # the pools' threads are part of a fresh worker's figures
        async with self.make_endpoint(self.config, self._on_call, self.rtp_port) as endpoint:
            self.endpoint, self.phase = endpoint, Phase.SERVING
            try:
                log.info("SIP worker %s listening on %s:%s (%s)", self.name, self.config.sip.listen_address,
                         endpoint.bound_port, ",".join(endpoint.transports))
                if on_ready is not None:
                    on_ready(endpoint)
                stop = stop or asyncio.Event()
                dialing = start_dialer(self, endpoint, stop)  # proactive calls: only when enabled, one owner
                await stop.wait()
                await self.drain()
                if dialing is not None and self.dialer is not None:
                    await asyncio.wait([dialing], timeout=5)
                    await self.dialer.wait_idle(5)  # drained calls' attempts are recorded
            finally:
                self.endpoint = None
                if self.phase is not Phase.CLOSED:
                    self.phase = Phase.STOPPED

    async def drain(self) -> None:
        """Stop taking calls (new INVITEs get 503), give the live ones ``drain_timeout_s`` to finish (all the time
        they need when retiring), then hang up what is left; the endpoint stops."""
        if self.endpoint is None:
            return
        self.phase = Phase.DRAINING
        if self.retiring:
            log.info("worker %s retiring: %d live call(s), each ends in its own time", self.name, self.live)
            await self.endpoint.drain(math.inf)
            return
        log.info("worker %s draining: %d live call(s), up to %.0f s", self.name, self.live, self.drain_timeout_s)
        await self.endpoint.drain(self.drain_timeout_s)

    def run(self, on_ready: Callable[[Endpoint], None] | None = None, *, watch_parent: bool = False) -> None:
        """Serve until SIGINT or SIGTERM (with ``watch_parent`` also until the parent process is gone), then
        drain; or until SIGUSR1, then retire: the blocking main loop of ``voicebot serve``."""
        asyncio.run(self._serve_until_signalled(on_ready, watch_parent))

    async def _serve_until_signalled(self, on_ready: Callable[[Endpoint], None] | None, watch_parent: bool) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop_serving, stop)
        loop.add_signal_handler(RETIRE_SIGNAL, self._retire, stop)
        watcher = loop.create_task(stop_when_orphaned(stop)) if watch_parent else None
        try:
            await self.serve(stop, on_ready)
        finally:
            if watcher is not None:
                watcher.cancel()

    def _stop_serving(self, stop: asyncio.Event) -> None:
        """SIGTERM or SIGINT: drain, and stop the after-call analysis now, not after the drain, so that it takes
        up no model work it would hold the exit with (``close``); what it leaves runs at the next start."""
        if self.retiring:  # a retire under way: its live calls now get drain_timeout_s, as on any stop
            self.retiring = False
            if self.endpoint is not None and self.phase is Phase.DRAINING:
                self.endpoint.hurry(self.drain_timeout_s)
        self._stop(stop)

    def _retire(self, stop: asyncio.Event) -> None:
        """SIGUSR1: stop taking calls and end once the live ones have, however long they take (a second SIGUSR1,
        or one during a drain, changes nothing)."""
        if stop.is_set():
            return
        self.retiring = True
        self._stop(stop)

    def _stop(self, stop: asyncio.Event) -> None:
        stop.set()
        if self.analysis is not None:
            self.analysis.stop(timeout=0)

    # -- close -----------------------------------------------------------------------------------------------
    def finish_analysis(self, timeout_s: float = 180.0) -> bool:
        """Wait until every finished call is analysed, then stop the analysis (chat, simulate); False on timeout."""
        if self.analysis is None:
            return True
        done = self.analysis.wait(timeout=timeout_s)
        self.analysis.stop()
        return done

    def close(self) -> None:
        """Stop the analysis, waiting at most ``analysis_stop_s``, and close the databases this worker opened.

        On the embedded model the analysis leaves the model within one graph node, prompt evaluation included
        (llama.cpp's abort callback: ``voicebot.llm.abort``); a backend without one (Ollama) first finishes
        evaluating its prompt, seconds on a long transcript, so SIGTERM would wait on it. Past the deadline it is
        abandoned: ``model_busy`` is set and the caller must end the process without freeing the model
        (``os._exit``, as `voicebot serve` does): freeing it under the running thread crashes. Nothing is lost:
        the abandoned call and those queued behind it keep ``model`` NULL and are queued again at the next
        start (``unanalysed_calls``)."""
        if self.phase is Phase.CLOSED:
            return
        if self.analysis is not None and not self.analysis.stop(timeout=self.analysis_stop_s):
            self.model_busy = True
            log.warning("worker %s: the analysis of call %s is still in the model after %.0f s: abandoned, it is "
                        "analysed again at the next start", self.name, self.analysis.current, self.analysis_stop_s)
        if self._owns_deps and self.deps is not None:
            self.deps.store.close()
            self.deps.crm.close()
        self.phase = Phase.CLOSED

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def run_worker(config: Config, worker_name: str = "main", deps: SessionDeps | None = None,
                     stop: asyncio.Event | None = None, rtp_port: int | None = None,
                     drain_timeout_s: float = 30.0, on_ready: Callable[[Endpoint], None] | None = None) -> None:
    """A whole worker answering SIP calls until ``stop`` is set, then draining (see ``Worker.serve``). Without
    ``deps`` it loads the models, opens the databases and runs the analysis; with them, it only serves."""
    worker = Worker(config, worker_name, rtp_port=rtp_port, drain_timeout_s=drain_timeout_s)
    try:
        if deps is None:
            await asyncio.to_thread(worker.load)
            worker.start()
        else:
            worker.start(deps, analysis=False)
        await worker.serve(stop, on_ready)
    finally:
        worker.close()
