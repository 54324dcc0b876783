"""Recycling workers (voicebot/recycle.py): the supervisor's decision as a pure function, what it measures (RssAnon
from /proc, a worker's ended calls from its Prometheus multiprocess file), and the worker's side of SIGUSR1 (retire:
503 for new calls, the live ones end in their own time; SIGTERM meanwhile still drains with its timeout). No models,
no pjsua2: the endpoint is test_worker's stand-in with SipWorker's drain semantics. The real thing:
test_serve_recycle.py."""

from __future__ import annotations

import asyncio
import math
import os
import signal
from dataclasses import dataclass, field

import pytest
from prometheus_client import values

from test_worker import FakeEndpoint, until
from voicebot import metrics
from voicebot.recycle import RETIRE_SIGNAL, RecyclePolicy, WorkerState, calls_ended, choose, rss_anon_mb
from voicebot.worker import Phase, Worker


def ready(name: str, *, up: bool = True, growth_mb: float | None = 0.0, calls: int = 0) -> WorkerState:
    return WorkerState(name, ready=True, up=up, growth_mb=growth_mb, calls=calls)


# -- the decision ------------------------------------------------------------------------------------------------
def test_a_worker_over_the_limit_is_retired_while_another_is_up():
    pick = choose(RecyclePolicy(growth_mb=512), [ready("w0", growth_mb=600), ready("w1", growth_mb=20)])
    assert pick is not None
    worker, reason = pick
    assert worker.name == "w0" and reason.kind == "memory"
    assert reason.text == "memory +600 MB since ready (limit 512)"
    assert choose(RecyclePolicy(growth_mb=512), [ready("w0", growth_mb=511), ready("w1")]) is None


def test_the_only_ready_worker_is_never_retired():
    policy = RecyclePolicy(growth_mb=512)
    loading = WorkerState("w1", ready=False)
    assert choose(policy, [ready("w0", growth_mb=900), loading]) is None
    assert choose(policy, [ready("w0", growth_mb=900)]) is None
    # the other one is loaded but Kamailio's pings do not reach it yet: not yet
    assert choose(policy, [ready("w0", growth_mb=900), ready("w1", up=False)]) is None


def test_two_over_the_limit_go_one_at_a_time_the_most_grown_first():
    policy = RecyclePolicy(growth_mb=512)
    workers = [ready("w0", growth_mb=600), ready("w1", growth_mb=700), ready("w2")]
    worker, _ = choose(policy, workers)
    assert worker.name == "w1"
    retiring = WorkerState("w1", ready=False, retiring=True)
    assert choose(policy, [workers[0], retiring, workers[2]]) is None  # w0 waits for w1's turn to end
    loading = WorkerState("w1", ready=False)
    assert choose(policy, [workers[0], loading, workers[2]])[0].name == "w0"  # w2 covers for it
    # both over and only each other to cover: one goes, the other stays ready
    assert choose(policy, [ready("w0", growth_mb=600), ready("w1", growth_mb=700)])[0].name == "w1"


def test_the_calls_limit():
    policy = RecyclePolicy(growth_mb=0, after_calls=100)
    assert choose(policy, [ready("w0", calls=99), ready("w1", calls=12)]) is None
    worker, reason = choose(policy, [ready("w0", calls=100), ready("w1", calls=12)])
    assert worker.name == "w0" and reason.kind == "calls" and reason.text == "100 calls since ready (limit 100)"
    both = RecyclePolicy(growth_mb=512, after_calls=100)
    assert choose(both, [ready("w0", calls=150), ready("w1", growth_mb=1100)])[0].name == "w1"  # 2.1x over 1.5x


def test_zero_turns_recycling_off():
    off = RecyclePolicy(growth_mb=0, after_calls=0)
    assert not off.enabled
    assert choose(off, [ready("w0", growth_mb=10_000, calls=10_000), ready("w1")]) is None
    assert choose(RecyclePolicy(growth_mb=0), [ready("w0", growth_mb=10_000), ready("w1")]) is None
    assert choose(RecyclePolicy(), [ready("w0", growth_mb=None, calls=10_000), ready("w1")]) is None


def test_the_policy_comes_from_serve(config):
    assert RecyclePolicy.from_serve(config.serve) == RecyclePolicy(512, 0)  # the defaults
    serve = config.serve.model_copy(update={"recycle_growth_mb": 0, "recycle_after_calls": 500})
    assert RecyclePolicy.from_serve(serve) == RecyclePolicy(0, 500)


# -- what the supervisor measures -------------------------------------------------------------------------------
def test_rss_anon_of_a_process():
    mine = rss_anon_mb(os.getpid())
    assert mine is not None and 5 < mine < 100_000
    assert rss_anon_mb(2 ** 22 + 12345) is None  # beyond pid_max: no such process


def test_calls_ended_reads_the_workers_multiprocess_file(tmp_path, monkeypatch):
    """The file exactly as a worker's prometheus_client writes it (its MultiProcessValue), for a made-up pid."""
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    assert calls_ended(tmp_path, 4242) == 0
    value_class = values.MultiProcessValue(process_identifier=lambda: 4242)
    for outcome, count in (("resolved", 2), ("transferred", 1)):
        value = value_class("counter", "voicebot_calls", "voicebot_calls_total", ("outcome",), (outcome,),
                            "Calls that ended, by outcome.")
        value.inc(count)
    other = value_class("counter", "voicebot_hold_lines", "voicebot_hold_lines_total", (), (), "Hold lines.")
    other.inc(7)
    assert calls_ended(tmp_path, 4242) == 3
    assert calls_ended(tmp_path, 4243) == 0


def test_recycles_are_counted_in_the_summed_registry(tmp_path):
    from prometheus_client import generate_latest

    metrics.WORKER_RECYCLES.inc("memory")
    text = generate_latest(metrics.multiprocess_registry(tmp_path)).decode()
    assert 'voicebot_worker_recycles_total{reason="memory"}' in text


# -- the worker's side ------------------------------------------------------------------------------------------
@dataclass
class Endpoint(FakeEndpoint):
    """test_worker's stand-in with SipWorker's drain as far as retiring goes: it waits while calls are live, up to
    its timeout or ``hurry``."""

    calls: set = field(default_factory=set)  # live calls: events set when the caller hangs up
    drains: list[float] = field(default_factory=list)
    hurry_at: float = math.inf
    cut: int = 0

    async def drain(self, timeout_s: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        self.drains.append(timeout_s)
        deadline = loop.time() + timeout_s
        while any(not c.is_set() for c in self.calls) and loop.time() < min(deadline, self.hurry_at):
            await asyncio.sleep(0.01)
        self.cut = sum(not c.is_set() for c in self.calls)

    def hurry(self, timeout_s: float) -> None:
        self.hurry_at = min(self.hurry_at, asyncio.get_running_loop().time() + timeout_s)


def serving_worker(config, drain_timeout_s: float = 0.2) -> tuple[Worker, list[Endpoint]]:
    made: list[Endpoint] = []

    def endpoint(*args) -> Endpoint:
        made.append(Endpoint(*args))
        return made[-1]

    worker = Worker(config, "w1", drain_timeout_s=drain_timeout_s, endpoint=endpoint)
    worker.phase = Phase.STARTED  # no models, no databases: only serve and drain are under test
    return worker, made


async def retired_with_a_live_call(config):
    """A worker serving (drain_timeout_s 0.2) with one live call, just sent SIGUSR1: (worker, its endpoint, the
    call's hang-up event, the serve task, its stop event)."""
    worker, made = serving_worker(config, drain_timeout_s=0.2)
    stop = asyncio.Event()
    serving = asyncio.create_task(worker.serve(stop))
    await until(lambda: worker.phase is Phase.SERVING)
    call = asyncio.Event()
    made[0].calls.add(call)
    worker._retire(stop)
    return worker, made[0], call, serving, stop


def test_retire_waits_for_the_live_call_however_long(config):
    async def scenario():
        worker, endpoint, call, serving, stop = await retired_with_a_live_call(config)
        await until(lambda: worker.phase is Phase.DRAINING)
        await asyncio.sleep(0.6)  # three times drain_timeout_s: the call goes on
        assert not serving.done() and endpoint.drains == [math.inf]
        worker._retire(stop)  # a second SIGUSR1 changes nothing
        call.set()  # the caller hangs up
        await asyncio.wait_for(serving, 2)
        assert endpoint.cut == 0 and worker.phase is Phase.STOPPED

    asyncio.run(scenario())


def test_sigterm_during_a_retire_drains_with_the_timeout(config):
    async def scenario():
        worker, endpoint, _, serving, stop = await retired_with_a_live_call(config)  # a call that does not end
        await until(lambda: worker.phase is Phase.DRAINING)
        await asyncio.sleep(0.3)
        assert not serving.done()
        worker._stop_serving(stop)  # SIGTERM
        await asyncio.wait_for(serving, 1.0)  # within drain_timeout_s of the SIGTERM
        assert endpoint.cut == 1 and not worker.retiring

        # SIGTERM before the drain began (both signals in one loop turn): an ordinary drain
        worker, endpoint, _, serving, stop = await retired_with_a_live_call(config)
        worker._stop_serving(stop)
        await asyncio.wait_for(serving, 1.0)
        assert endpoint.drains == [0.2] and endpoint.cut == 1

    asyncio.run(scenario())


@pytest.mark.timeout(20)
def test_sigusr1_retires_a_serving_worker(config):
    """The real signal, through the worker's own loop (``Worker.run``): it stops serving, nothing cut."""
    assert RETIRE_SIGNAL == signal.SIGUSR1 and signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
    worker, made = serving_worker(config)
    worker.run(on_ready=lambda endpoint: asyncio.get_running_loop().call_later(
        0.1, os.kill, os.getpid(), signal.SIGUSR1))
    assert made[0].drains == [math.inf] and worker.phase is Phase.STOPPED
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL  # the loop's handler went with the loop
