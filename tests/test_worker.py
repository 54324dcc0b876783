"""The worker process without models or pjsua2: its lifecycle (load -> start -> serve until stop -> drain -> close)
and the idle gate of the after-call analysis, which is the worker's own count of its live calls.

The models are the fakes of fakes.py, the SIP endpoint a stand-in that hands the worker calls on simulated lines;
the CRM, the call store, the sessions and the analysis are real. Each test runs in well under a second or two.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from crm_support import TODAY, seeded_repo
from fakes import CallerVoice, FakeSynthesizer, FakeTranscriber, ScriptedChat, ScriptedVad
from review_support import GOOD_REPLY
from voicebot import worker as worker_module
from voicebot.components import Components, Stage
from voicebot.config import Config, load_config
from voicebot.crm.repository import Repository
from voicebot.review.analysis import load_analysis
from voicebot.session import SessionDeps
from voicebot.store import CallStore, Outcome
from voicebot.telephony.sim import HangUp, SimulatedLine, WaitForBot
from voicebot.worker import Phase, Worker, WorkerStateError, stop_when_orphaned

ALICE = "+15550102030"  # a known caller: "..., Alice"
STRANGER = "+15559876543"


@pytest.fixture
def cfg(tmp_path, config) -> Config:
    """The project's config, its databases in this test's folder (the demo CRM seeded there)."""
    local = config.model_copy(update={"base_dir": tmp_path})
    crm = local.path(local.crm.database)
    crm.parent.mkdir(parents=True, exist_ok=True)
    seeded_repo(crm).close()
    return local


def fake_components(config: Config) -> Components:
    voice = CallerVoice(sample_rate=config.audio.sample_rate)
    return Components(FakeTranscriber(voice), FakeSynthesizer(), ScriptedChat([GOOD_REPLY], repeat=True),
                      ScriptedVad(), [Stage("language model", "scripted", 0.0, 0.0)])


def line(config: Config, caller_id: str = ALICE) -> SimulatedLine:
    """A caller who hears the greeting out and hangs up."""
    return SimulatedLine([WaitForBot(), HangUp()], caller_id=caller_id, speed=float("inf"),
                         sample_rate=config.audio.sample_rate)


@dataclass
class FakeEndpoint:
    """Stands in for SipWorker: bound once entered; ``ring`` answers a call on a line (refused once draining)."""

    config: Config
    on_call: Callable
    rtp_port: int | None
    transports: list[str] = field(default_factory=lambda: ["udp"])
    bound_port: int = 0
    draining: bool = False
    drained_with: float | None = None
    closed: bool = False
    tasks: set = field(default_factory=set)

    async def __aenter__(self) -> FakeEndpoint:
        self.bound_port = self.config.sip.port
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.closed = True

    async def drain(self, timeout_s: float = 30.0) -> None:
        self.draining, self.drained_with = True, timeout_s
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=timeout_s)

    def ring(self, transport) -> asyncio.Task | None:
        if self.draining:
            return None  # 503
        task = asyncio.get_running_loop().create_task(self.on_call(transport))
        self.tasks.add(task)
        return task


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_a_worker_loads_starts_serves_drains_and_closes(cfg, monkeypatch):
    monkeypatch.setattr(worker_module, "load_components", lambda config, on_stage=None: fake_components(config))
    with CallStore(cfg.path(cfg.store.database), cfg.path(cfg.store.recordings_dir)) as store:
        mine = store.start_call(ALICE, worker="w7")  # a call this worker's last process left unfinished
        other = store.start_call(ALICE, worker="w8")
    endpoints: list[FakeEndpoint] = []

    def make_endpoint(config, on_call, rtp_port):
        endpoints.append(FakeEndpoint(config, on_call, rtp_port))
        return endpoints[-1]

    worker = Worker(cfg, "w7", rtp_port=4000, drain_timeout_s=2.5, endpoint=make_endpoint)
    assert worker.load().stages[0].detail == "scripted" and worker.phase == Phase.LOADED
    deps = worker.start()
    assert worker.phase == Phase.STARTED and deps.worker == "w7" and deps.on_call_end == worker.analysis.submit
    assert deps.store.get_call(mine).outcome == Outcome.INTERRUPTED
    assert deps.store.get_call(other).outcome == Outcome.IN_PROGRESS  # another worker's call is left alone
    ready: list[tuple[FakeEndpoint, int]] = []
    caller = line(cfg)

    async def main() -> None:
        stop = asyncio.Event()
        serving = asyncio.create_task(worker.serve(stop, on_ready=lambda e: ready.append((e, e.bound_port))))
        await until(lambda: bool(ready))
        assert worker.phase == Phase.SERVING
        await endpoints[0].ring(caller)
        stop.set()
        await serving

    asyncio.run(asyncio.wait_for(main(), 20))
    [endpoint] = endpoints
    assert ready == [(endpoint, cfg.sip.port)]  # on_ready only once the endpoint is up (bound)
    assert endpoint.rtp_port == 4000 and endpoint.drained_with == 2.5 and endpoint.closed
    assert worker.phase == Phase.STOPPED and worker.live == 0 and worker.finished == 1
    record = deps.store.get_call(caller.info.call_id)
    assert (record.worker, record.outcome) == ("w7", Outcome.ABANDONED)
    assert worker.finish_analysis(10)
    assert load_analysis(deps.store, caller.info.call_id).generated_summary == GOOD_REPLY["summary"]
    worker.close()
    worker.close()
    assert worker.phase == Phase.CLOSED
    with pytest.raises(Exception):
        deps.store.get_call(mine)  # the worker opened the databases, so it closed them


def test_the_analysis_uses_the_model_only_while_none_of_the_worker_s_calls_is_up(cfg):
    """The idle gate is the worker's own count of its live calls: call A ends while call B is still up, so A's
    analysis gets its deterministic part at once and the model's part only once B has ended."""
    voice = CallerVoice(sample_rate=cfg.audio.sample_rate)
    b_greeting = cfg.dialog.greeting.format(name="", company=cfg.dialog.company)
    hold_b = threading.Event()  # B's greeting is being synthesised until the test lets it go
    synth = FakeSynthesizer(before=lambda text: hold_b.wait(10) if text == b_greeting else None)
    chat = ScriptedChat([GOOD_REPLY], repeat=True)
    crm = Repository.from_config(cfg)
    store = CallStore(cfg.path(cfg.store.database), cfg.path(cfg.store.recordings_dir))
    deps = SessionDeps(cfg, FakeTranscriber(voice), synth, chat, ScriptedVad(), crm, store, today=TODAY)
    worker = Worker(cfg)
    worker.start(deps)  # ready-made dependencies: no models loaded, the caller keeps them
    call_a, call_b = line(cfg, ALICE), line(cfg, STRANGER)
    assert worker.idle()

    async def main() -> None:
        b = asyncio.create_task(worker.run_call(call_b))
        await until(lambda: worker.live == 1)
        assert not worker.idle()
        assert await worker.run_call(call_a) == Outcome.ABANDONED
        assert worker.live == 1 and not worker.idle()
        await until(lambda: load_analysis(store, call_a.info.call_id) is not None)  # flags, sentiment: at once
        await asyncio.sleep(0.3)
        assert load_analysis(store, call_a.info.call_id).generated_summary is None and chat.calls == []
        hold_b.set()
        await b
        assert worker.live == 0 and worker.idle()

    asyncio.run(asyncio.wait_for(main(), 20))
    assert worker.finish_analysis(10)
    summaries = [load_analysis(store, c.info.call_id).generated_summary for c in (call_a, call_b)]
    assert summaries == [GOOD_REPLY["summary"]] * 2  # the model's part, labelled generated
    assert worker.analysis.preempted == 0  # it never started while B was up
    worker.close()
    assert store.get_call(call_a.info.call_id).outcome == Outcome.ABANDONED  # still open: not the worker's to close
    store.close()
    crm.close()


def test_steps_out_of_order_are_refused(cfg):
    worker = Worker(cfg, endpoint=FakeEndpoint)
    with pytest.raises(WorkerStateError, match="cannot start when new"):
        worker.start()  # no models loaded, no deps given
    with pytest.raises(WorkerStateError, match="cannot serve"):
        asyncio.run(worker.serve(asyncio.Event()))
    with pytest.raises(WorkerStateError, match="cannot run a call"):
        asyncio.run(worker.run_call(line(cfg)))
    worker.close()  # closing a worker that never started is fine
    with pytest.raises(WorkerStateError, match="cannot load when closed"):
        worker.load()


def test_a_supervisor_s_worker_takes_its_slot(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("sip:\n  port: 19000\nserve:\n  workers: 2\n  worker_base_port: 19010\n  rtp_base_port: 30000\n"
                    "  rtp_ports_per_worker: 100\n  metrics_port: 0\n")
    worker = Worker.for_slot(load_config(path), 1)
    assert (worker.name, worker.rtp_port, worker.slot.index) == ("w1", 30100, 1)
    assert (worker.config.sip.port, worker.config.sip.allowed_sources) == (19011, ["127.0.0.1"])


def test_a_worker_whose_parent_is_gone_stops(monkeypatch):
    parents = iter([100, 100, 1])
    monkeypatch.setattr(os, "getppid", lambda: next(parents, 1))

    async def main() -> None:
        stop = asyncio.Event()
        await asyncio.wait_for(stop_when_orphaned(stop, poll_s=0.01), 2)
        assert stop.is_set()

    asyncio.run(main())


def test_run_worker_is_the_worker_s_and_the_sip_facade_re_exports_it():
    from voicebot.telephony import sip

    assert sip.run_worker is worker_module.run_worker
