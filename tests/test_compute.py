"""Model work runs below the media path's CPU priority (``voicebot.compute``), read back from /proc for the real
parts: Whisper's CTranslate2 pool and a real pjsua2 endpoint's threads."""

from __future__ import annotations

import asyncio
import os
import threading

from sip_support import Ports, sip_config

from voicebot import compute
from voicebot.components import make_transcriber
from voicebot.models import ModelStore
from voicebot.telephony.sip import SipWorker


def niceness() -> dict[int, int]:
    """Every thread of this process: its id and nice value (field 19 of /proc/self/task/<tid>/stat)."""
    found = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as stat:
                found[int(tid)] = int(stat.read().rsplit(")", 1)[1].split()[16])
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended meanwhile
    return found


def test_model_threads_run_nicer_than_the_process_and_so_do_the_pools_they_start(config):
    base = niceness()[threading.get_native_id()]
    lowered = min(19, base + compute.COMPUTE_NICE)
    assert compute.call(compute.thread_nice) == lowered
    assert niceness()[threading.get_native_id()] == base  # the caller's thread is untouched

    before = set(niceness())
    transcriber = compute.call(make_transcriber, config, ModelStore.from_config(config))  # as Worker.load does
    text = compute.call(transcriber.transcribe, b"\0\0" * 16000, 16000)
    assert text is not None
    started = {tid: nice for tid, nice in niceness().items() if tid not in before}
    assert started, "loading Whisper started no thread"
    assert set(started.values()) == {lowered}, started  # CTranslate2's workers inherited the lower priority


def test_the_sip_endpoints_threads_keep_the_process_priority():
    """pjsua2's worker and pjmedia's clock carry every call's audio: started from the loop, never from a compute
    thread, they stay at the process's priority."""
    base = niceness()[threading.get_native_id()]
    compute.call(lambda: None)  # the compute pool exists: its threads must not be the endpoint's parents
    ports = Ports(27300)  # this module's ports: 27300-27349
    seen: dict[int, int] = {}

    async def bot(call) -> None:  # no call comes
        await asyncio.sleep(0)

    async def main() -> None:
        before = set(niceness())
        async with SipWorker(sip_config(ports.sip), bot, rtp_port=ports.rtp, rtp_port_range=ports.rtp_range):
            await asyncio.sleep(0.5)
            seen.update({tid: nice for tid, nice in niceness().items() if tid not in before})

    asyncio.run(main())
    assert seen, "the endpoint started no thread"
    assert set(seen.values()) == {base}, seen


def test_prestarted_pools_start_no_thread_for_the_calls_they_were_started_for():
    """Threads started before the first call are the worker's baseline: two calls' worth of overlapping model
    work and store writes afterwards start none. (Threads are told apart by ident: other tests' threads may come
    and go meanwhile, and their names may repeat.)"""
    def alive() -> dict[int, str]:
        return {t.ident: t.name for t in threading.enumerate() if t.ident is not None}

    size = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default executor's size

    async def main() -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
        before = alive()
        compute.prestart(2)
        ready = alive()
        gate, store_gate = threading.Barrier(compute.THREADS_PER_CALL * 2), threading.Barrier(size)
        loop = asyncio.get_running_loop()
        await asyncio.gather(*[compute.run(gate.wait, 5.0) for _ in range(compute.THREADS_PER_CALL * 2)],
                             *[loop.run_in_executor(None, store_gate.wait, 5.0) for _ in range(size)])
        return before, ready, alive()

    before, ready, after = asyncio.run(main())
    started = {ident: name for ident, name in ready.items() if ident not in before}
    assert sum(name.startswith("asyncio_") for name in started.values()) == size, started
    assert sum(name.startswith("compute_") for name in ready.values()) >= compute.THREADS_PER_CALL * 2, ready
    later = [name for ident, name in after.items() if ident not in ready]
    assert not [name for name in later if name.startswith(("compute_", "asyncio_"))], later
