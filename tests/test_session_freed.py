"""Nothing of a call outlives it: once a worker's calls have ended (and the garbage collector has run), no
CallSession, transport, listener, agent or record queue of theirs is left in the process.

Why: the soak (`voicebot bench soak`) measures the server's RSS per 100 calls, and a per-call object kept alive
by a cache keyed by call id, a callback list, a metric label or a queued prefill would hold its audio buffers
with it; over a few thousand calls a day that is the leak the soak is there to catch. The heap probe
(``voicebot.memory``, ``VOICEBOT_HEAP_PROBE``) found none in the real server: these tests keep it so, without
a SIP stack or models, on the simulated line. A call's objects form reference cycles (the listener calls back
into its session), so they go at the collector's next pass, not at once: the tests collect before they count.
"""

from __future__ import annotations

import asyncio
import gc

import pytest
from conftest import morning_of

from fakes import CallerVoice, FakeSynthesizer, FakeTranscriber, ScriptedChat, ScriptedVad
from test_session import COFFEE, TODAY, reply

from voicebot.crm.repository import Repository
from voicebot.crm.seed import seed_demo
from voicebot.session import SessionDeps, prefill
from voicebot.store import CallStore
from voicebot.telephony.sim import HangUp, SimulatedLine, WaitForBot
from voicebot.worker import Worker

PER_CALL = ("CallSession", "SimulatedLine", "Listener", "Speaker", "TurnDetector", "DialogueAgent", "HangUpGate",
            "CallRecords", "SilenceWatchdog", "CallerContext")


def alive(names: tuple[str, ...] = PER_CALL) -> dict[str, int]:
    """Instances of ``names`` left after a full collection, by type (only those with any)."""
    gc.collect()
    counts: dict[str, int] = {}
    for obj in gc.get_objects():
        name = type(obj).__name__
        if name in names:
            counts[name] = counts.get(name, 0) + 1
    return counts


@pytest.fixture
def worker(tmp_path, config):
    crm = Repository.open(tmp_path / "crm.db", region=config.crm.default_region, clock=morning_of(TODAY))
    seed_demo(crm, today=TODAY)
    store = CallStore(tmp_path / "calls.db", tmp_path / "recordings")
    voice = CallerVoice(sample_rate=config.audio.sample_rate)
    chat = ScriptedChat([reply(COFFEE) for _ in range(3)])
    deps = SessionDeps(config, FakeTranscriber(voice), FakeSynthesizer(), chat, ScriptedVad(), crm, store,
                       today=TODAY)
    worker = Worker(config)
    worker.start(deps, analysis=False)
    worker.voice = voice  # type: ignore[attr-defined] - the caller's voice, for the scripts below
    yield worker
    worker.close()
    store.close()
    crm.close()


def line(worker: Worker, script: list) -> SimulatedLine:
    return SimulatedLine(script, caller_id="+15550102030", speed=float("inf"),
                         sample_rate=worker.config.audio.sample_rate)


def test_calls_that_reached_the_model_leave_nothing_behind(worker):
    """Three calls with a model turn (and the prefills it queues on their own thread) and a hang-up: afterwards
    none of their objects is alive, and the worker counts them as finished."""
    before = alive()

    async def calls() -> None:
        for _ in range(3):
            script = [WaitForBot(), worker.voice.say("do you sell coffee"), WaitForBot(), HangUp()]
            await asyncio.wait_for(worker.run_call(line(worker, script)), timeout=20)

    asyncio.run(calls())
    prefill._EXECUTOR.submit(lambda: None).result(timeout=10)  # the prefills queued by the calls have run

    assert worker.finished == 3 and worker.live == 0
    assert alive() == before


def test_a_caller_who_hangs_up_during_the_greeting_leaves_nothing_behind(worker):
    """The shortest call, cut while the bot speaks (a cancelled turn, the records closed early)."""
    before = alive()
    asyncio.run(asyncio.wait_for(worker.run_call(line(worker, [HangUp()])), timeout=20))
    prefill._EXECUTOR.submit(lambda: None).result(timeout=10)

    assert alive() == before
