"""Process memory: handing back to the system the heap pages a call freed, and (for debugging only) snapshots of
what the heap holds, taken by `voicebot bench soak`.

Why ``trim``: glibc's malloc gives every thread that allocates an arena of its own (up to 8 per core) and keeps
what is freed there for reuse; only the top of the main heap goes back to the system by itself. A call's audio,
transcription, synthesis and model buffers are allocated and freed in several threads (the event loop's
executor, the prefill thread, OpenMP's and CTranslate2's workers), so after a call their free pages stay
resident, scattered over arenas: Whisper run three times on each of 6 new threads left 40 MB resident that
``malloc_trim(0)`` gave back at once. It releases the free pages of every arena (``madvise``), costs a few
milliseconds, and nothing else does it; the worker calls it after each call.

Why the probe: a soak whose RSS grows has either a leak (objects or native blocks that are never freed) or a
heap that is still reaching its high-water marks, and RSS alone cannot say which. With
``VOICEBOT_HEAP_PROBE=<folder>`` in its environment, `voicebot serve` writes on every SIGUSR2 a snapshot to that
folder: the cyclic garbage a full collection finds, live Python objects by type, glibc's arenas (bytes in use
and free, and the big blocks mapped on their own), the threads, and with ``VOICEBOT_HEAP_TRACE=1`` a tracemalloc
snapshot (allocation sites by traceback); ``VOICEBOT_HEAP_HOLDERS=TypeA,TypeB`` adds what keeps the first
instance of those types alive. ``bench soak`` (same variables) sends the signal at every sample and prints
``heap_report`` of the first and last. What it found in soaks of 220 to 420 calls 4 at a time: the Python heap
flat at 4 MB, no per-call object left once the prefill queue drained (a call's objects form cycles: the
collector frees them, about 20 calls' worth at a time), glibc's bytes in use flat after one step in the first 50
calls, and what grew besides was free memory left in the threads' arenas, which the trim gives back; see
``voicebot.bench_soak``.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import json
import logging
import os
import re
import signal
import threading
import tracemalloc
import types
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PROBE_ENV = "VOICEBOT_HEAP_PROBE"
PROBE_SIGNAL = signal.SIGUSR2
TRACE_ENV = "VOICEBOT_HEAP_TRACE"  # "1": trace Python allocations too (tracemalloc, 10 frames)
HOLDERS_ENV = "VOICEBOT_HEAP_HOLDERS"  # type names (comma-separated) whose first instance's holders are written


@cache
def _glibc() -> Any:
    """glibc with the prototypes used here, or None (musl, macOS: no ``malloc_trim``, no ``malloc_info``)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
        libc.open_memstream.restype = ctypes.c_void_p
        libc.open_memstream.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t)]
        libc.fclose.argtypes = [ctypes.c_void_p]
        libc.free.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    return libc


def trim() -> bool:
    """Give the free pages of every malloc arena back to the system (see the module docstring). Takes a few
    milliseconds on the server's heap: call it off the event loop. False where there is no glibc."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def trim_soon() -> None:
    """After a call: its buffers were freed in whichever threads' malloc arenas they came from, so give their free
    pages back (``trim``) on the running loop's executor, unawaited, so that neither a cancelled call nor the next
    INVITE waits for it."""
    try:
        asyncio.get_running_loop().run_in_executor(None, trim)
    except RuntimeError:  # the loop's executor is shut down: the process is ending anyway
        pass


# -- the debug probe ------------------------------------------------------------------------------------------
def install_probe() -> Path | None:
    """In `voicebot serve`: when ``VOICEBOT_HEAP_PROBE`` names a folder, take a snapshot on every SIGUSR2
    (numbered in order); with ``VOICEBOT_HEAP_TRACE=1`` also trace Python allocations (slower). Returns the
    folder, or None when the variable is unset."""
    folder = os.environ.get(PROBE_ENV)
    if not folder:
        return None
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    if os.environ.get(TRACE_ENV) == "1":
        tracemalloc.start(10)
    taken = [0]

    def on_signal(signum: int, frame: object) -> None:
        taken[0] += 1
        try:
            snapshot(out / f"heap-{taken[0]:03d}")
        except Exception:  # a debugging aid must not take the bot down
            log.exception("heap probe: snapshot %d failed", taken[0])

    signal.signal(PROBE_SIGNAL, on_signal)
    log.info("heap probe: snapshots to %s on SIGUSR2", out)
    return out


def snapshot(stem: Path) -> None:
    """``stem``.json: the cyclic garbage a full collection found (types), live objects by type, glibc's arenas
    (``arenas``), and with tracing the traced size, plus ``stem``.pickle (the tracemalloc snapshot)."""
    stats = gc.get_stats()  # before this snapshot's own collections: how often the process collects by itself
    tracing = tracemalloc.is_tracing()
    before = tracemalloc.get_traced_memory()[0] if tracing else 0
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a full collection finds unreachable is kept in gc.garbage, to count
    try:
        gc.collect()
        garbage = Counter(type(o).__qualname__ for o in gc.garbage)
        gc.garbage.clear()
    finally:
        gc.set_debug(0)
    gc.collect()  # now freed for real
    traced = 0
    if tracing:
        tracemalloc.take_snapshot().dump(str(stem.with_suffix(".pickle")))
        traced = tracemalloc.get_traced_memory()[0]
    objects = gc.get_objects()
    counts = Counter(type(o).__qualname__ for o in objects)
    held = {name: holders(next(o for o in objects if type(o).__qualname__ == name), ignore=[objects])
            for name in os.environ.get(HOLDERS_ENV, "").split(",") if counts.get(name)}
    del objects
    stem.with_suffix(".json").write_text(json.dumps({
        "traced_bytes": traced, "garbage_bytes": before - traced, "garbage": dict(garbage.most_common(30)),
        "types": dict(counts), "holders": held, "arenas": arenas(), "gc_stats": stats,
        "threads": {t.native_id: t.name for t in threading.enumerate()}}))  # gdb's LWPs (thread_arena) by name


def arenas() -> list[dict[str, int]]:
    """glibc's view of its heap, one entry per arena (``malloc_info``): ``system`` bytes it holds from the
    kernel, ``free`` bytes of that in free chunks. In use = system - free: a leak grows it, fragmentation grows
    free. Empty without glibc."""
    libc = _glibc()
    if libc is None:
        return []
    buf, size = ctypes.c_char_p(), ctypes.c_size_t()
    stream = libc.open_memstream(ctypes.byref(buf), ctypes.byref(size))
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    xml = ctypes.string_at(buf, size.value).decode()
    libc.free(buf)
    found = []
    for heap in re.findall(r'<heap nr="(\d+)">(.*?)</heap>', xml, re.S):
        body = heap[1]
        free = sum(int(m) for m in re.findall(r'<total type="(?:fast|rest)" count="\d+" size="(\d+)"', body))
        system = re.search(r'<system type="current" size="(\d+)"', body)
        found.append({"arena": int(heap[0]), "system": int(system.group(1)) if system else 0, "free": free})
    mmapped = re.search(r'<total type="mmap" count="\d+" size="(\d+)"', xml.rsplit("</heap>", 1)[-1])
    found.append({"arena": -1, "system": int(mmapped.group(1)) if mmapped else 0, "free": 0})  # big blocks
    return found


def holders(obj: object, depth: int = 8, ignore: list[object] = ()) -> list[str]:
    """What keeps ``obj`` alive: the chain of its first referrers (an instance, container or frame rather than a
    bare ``__dict__``), ``depth`` deep, each as its type and a short repr; ``ignore``: the caller's own
    containers. A leaked object of a type that grows per call names its owner here."""
    chain: list[str] = []
    skip = {id(x) for x in ignore} | {id(chain)}
    current = obj
    for _ in range(depth):
        skip.add(id(current))
        refs = [r for r in gc.get_referrers(current) if id(r) not in skip
                and not (isinstance(r, types.FrameType) and r.f_code.co_filename == __file__)]
        skip.add(id(refs))
        if not refs:
            break
        current = next((r for r in refs if not isinstance(r, dict)), refs[0])
        chain.append(f"{type(current).__qualname__}: {_short(current)}")
    return chain


def _short(obj: object) -> str:
    try:
        text = repr(obj)
    except Exception:  # noqa: BLE001 - any repr may fail
        text = "?"
    return text[:120]


def heap_report(folder: Path, first: int, last: int, top: int = 15) -> list[str]:
    """What grew between snapshots ``first`` and ``last`` of ``folder``: glibc's arenas (in use and free), the
    cyclic garbage found, the object types whose count grew most and, when traced, the allocation sites (by
    traceback) that grew most."""
    a, b = (folder / f"heap-{n:03d}" for n in (first, last))
    ja, jb = (json.loads(p.with_suffix(".json").read_text()) for p in (a, b))
    lines = []
    for n, j in ((first, ja), (last, jb)):
        used = sum(x["system"] - x["free"] for x in j["arenas"]) / 1e6
        free = sum(x["free"] for x in j["arenas"]) / 1e6
        lines.append(f"snapshot {n}: malloc in use {used:.1f} MB, free in arenas {free:.1f} MB; "
                     f"arenas in use (MB): {[round((x['system'] - x['free']) / 1e6, 1) for x in j['arenas']]}")
        if tracemalloc_data := j["traced_bytes"]:
            lines.append(f"  traced Python heap {tracemalloc_data / 1e6:.1f} MB; a full collection freed "
                         f"{j['garbage_bytes'] / 1e6:.1f} MB")
        lines.append(f"  cyclic garbage found: {dict(list(j['garbage'].items())[:8])}")
    grown = Counter(jb["types"])
    grown.subtract(ja["types"])
    lines += [f"  {n:+7d} {name}" for name, n in grown.most_common(top) if n > 0]
    for name, chain in jb.get("holders", {}).items():
        lines.append(f"  what holds the first {name}:")
        lines += [f"      <- {link}" for link in chain]
    if not all(p.with_suffix(".pickle").exists() for p in (a, b)):
        return lines
    sa, sb = (tracemalloc.Snapshot.load(str(p.with_suffix(".pickle"))) for p in (a, b))
    for stat in sb.compare_to(sa, "traceback")[:top]:
        if stat.size_diff <= 0:
            continue
        lines.append(f"  {stat.size_diff / 1e3:+9.1f} kB {stat.count_diff:+6d} blocks")
        lines += [f"      {frame.filename}:{frame.lineno}" for frame in stat.traceback[-6:]]
    return lines
