"""What a soak's call store kept of its calls (``voicebot bench soak``, with or without workers): calls recorded and
ended, the audio each side got according to the recordings, and calls with no greeting on record.

Why a module: both soaks (``voicebot.bench_soak``, ``voicebot.bench_soak_workers``) read the store the same way
after their last call, and the soak itself is about processes and sipp.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from voicebot.audio import read_wav, rms_dbfs
from voicebot.bench import Row


def audible_s(path: Path | None, floor_dbfs: float = -60.0) -> float:
    """Seconds of a recording louder than ``floor_dbfs`` in 20 ms blocks: from the caller's recording, the
    caller audio the bot received over RTP (no packets record as digital silence); from the bot's, what it said."""
    if path is None or not path.exists():
        return 0.0
    pcm, rate = read_wav(path)
    block = rate // 50 * 2
    return sum(rms_dbfs(pcm[i:i + block]) > floor_dbfs for i in range(0, len(pcm), block)) / 50


class Stored(NamedTuple):
    recorded: int  # calls in the call store
    ended: int  # of them with an end (an outcome)
    heard: list[float]  # per call: seconds of caller audio the bot recorded
    spoke: list[float]  # per call: seconds of the bot's own audio
    by_worker: dict[str, int]  # calls per worker name ("w0"; "" for a single process)
    greeted: list[float | None]  # per call: the greeting's start in call audio (None: no greeting turn)


def stored_calls(folder: Path, calls: int) -> Stored:
    """What the soak's call store (``folder``/calls.db, its recordings) kept of the calls."""
    from voicebot.store import CallStore

    store = CallStore(folder / "calls.db", folder / "recordings", readonly=True)
    try:
        ended = store.select("select count(*) as n from calls where ended_at is not null")[0]["n"]
        by_worker = {r["worker"] or "": r["n"] for r in store.select("select worker, count(*) as n from calls "
                                                                      "group by worker order by worker")}
        listed = store.list_calls(limit=calls + 100)
        heard = [audible_s(store.recording_file(c, "caller")) for c in listed]
        spoke = [audible_s(store.recording_file(c, "bot")) for c in listed]
        greeted = [next((t.started_at for t in store.turns(c.id) if t.role == "bot"), None) for c in listed]
        return Stored(store.count_calls(), ended, heard, spoke, by_worker, greeted)
    finally:
        store.close()


def audio_rows(part: str, caller_says: str, packets: int, heard: list[float], spoke: list[float],
               greeted: list[float | None]) -> list[Row]:
    """The RTP each way: what sipp sent per call, what the bot's recordings show it heard and said, and when the
    calls without a greeting turn (a call with no bot audio but a greeting on record: the bot was silent)."""
    return [Row(part, "calls with no greeting on record (the caller left before it started)", "calls",
                (float(sum(g is None for g in greeted)),)),
            Row(part, f"RTP packets sipp sent per call ({'speech' if caller_says else 'line noise'}, one pcap)",
                "packets", (float(packets),)),
            Row(part, f"caller audio the bot received per call ({sum(h == 0 for h in heard)} call(s) with none)",
                "s", tuple(heard) or (0.0,)),
            Row(part, f"bot audio sent per call ({sum(s == 0 for s in spoke)} call(s) with none)", "s",
                tuple(spoke) or (0.0,))]
