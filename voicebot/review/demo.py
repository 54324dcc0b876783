"""Realistic demo calls for the review app: tests seed a store with them, `voicebot review seed-demo` shows them.

``seed_calls(store, n)`` writes ``n`` finished calls spread over the last ``days`` days: turns with audio-time
stage timings, tool calls, guard events, transfers (some failing), upset callers, silences, a card number and
a PIN said aloud, synthetic recordings (two voices) for the most recent calls, and an analysis row per call
(the deterministic part computed for real; summary, topic and QA taken from the scenario, marked ``demo``).
About one call in four asks the company's knowledge (``demo_knowledge``): turns answered from an entry, the
opening hours or the price list with the knowledge event naming what answered, and questions the knowledge
base had no answer for, which fill the "Unanswered" page. The same ``seed`` gives the same calls.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from voicebot.config import ReviewConfig
from voicebot.review.analysis import analyze_call
from voicebot.review.demo_knowledge import DEMO_KNOWLEDGE, knowledge_scenarios, load_demo_knowledge
from voicebot.review.scenarios import SCENARIOS, Line, Scenario
from voicebot.store import CallStore, Outcome, Turn, TurnTimings

RATE = 8000


@dataclass(frozen=True)
class DemoCustomer:
    id: str
    phone: str
    first_name: str


@dataclass
class _Clock:
    """Stands in for the store's clock while seeding so rows carry the demo's times, not today's."""

    value: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def __call__(self) -> datetime:
        return self.value


@contextmanager
def _backdated(store: CallStore) -> Iterator[_Clock]:
    clock = _Clock()
    saved = store._now  # noqa: SLF001 - demo data only: the store stamps rows with its clock
    store._now = clock
    try:
        yield clock
    finally:
        store._now = saved


def _r(seconds: float) -> float:
    return round(seconds, 3)


def _speech_s(text: str, rng: random.Random, per_word: float) -> float:
    return max(0.6, len(text.split()) * per_word * rng.uniform(0.85, 1.2))


@dataclass
class _Timeline:
    """Places the scenario's lines on the call's audio clock, as the session would have measured them."""

    rng: random.Random
    now: float = 0.0
    spans: list[tuple[str, float, float]] = field(default_factory=list)  # (role, start, end) for the recording
    slow: bool = False

    def bot(self, text: str, after: TurnTimings | None) -> tuple[float, float, TurnTimings]:
        if after is None:  # greeting or a fixed prompt: plays at once
            start = _r(self.now + self.rng.uniform(0.3, 0.7))
            timings = TurnTimings()
        else:
            eos = after.end_of_speech or self.now
            latency = self.rng.lognormvariate(0.25, 0.35) + (self.rng.uniform(4.5, 7.0) if self.slow else 0.0)
            ready = after.transcript_ready or eos + 0.9
            timings = TurnTimings(eos, ready, _r(ready + 0.25), _r(ready + 0.45), _r(max(eos + latency, ready + 0.5)))
            start = timings.first_audio_out
        end = _r(start + _speech_s(text, self.rng, 0.34))
        self.spans.append(("bot", start, end))
        self.now = end
        return start, end, timings

    def caller(self, text: str, pause: float | None = None) -> tuple[float, float, TurnTimings]:
        start = _r(self.now + (pause if pause is not None else self.rng.uniform(0.5, 1.4)))
        end = _r(start + _speech_s(text, self.rng, 0.38))
        self.spans.append(("caller", start, end))
        self.now = end
        return start, end, TurnTimings(end, _r(end + 0.7 + self.rng.uniform(0.15, 0.4)))


def synth_recording(spans: Sequence[tuple[str, float, float]], length_s: float, seed: int) -> bytes:
    """A stand-in recording: a voice-like buzz for each turn (bot higher, caller lower) over line noise."""
    rng = np.random.default_rng(seed)
    n = int(length_s * RATE)
    out = rng.normal(0, 60, n)
    for role, start, end in spans:
        a, b = int(start * RATE), min(n, int(end * RATE))
        if b <= a:
            continue
        t = np.arange(b - a) / RATE
        pitch = 190.0 if role == "bot" else 120.0
        voice = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in (1, 2, 3, 4))
        syllables = 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(3.5, 5.0) * t) ** 2
        out[a:b] += 2600 * voice * syllables
    return np.clip(out, -32768, 32767).astype(np.int16).tobytes()


def _caller_id(rng: random.Random) -> str:
    return f"+1{rng.choice(('212', '312', '415', '617', '646', '718'))}555{rng.randint(100, 9999):04d}"


def _pick(rng: random.Random, scenarios: Sequence[Scenario]) -> Scenario:
    return rng.choices(scenarios, weights=[s.weight for s in scenarios])[0]


def _start_times(n: int, end: datetime, days: int, rng: random.Random) -> list[datetime]:
    """Business-hours starts, busier on weekdays, oldest first."""
    first_day = (end - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    starts = []
    while len(starts) < n:
        day = first_day + timedelta(days=rng.randrange(days))
        if day.weekday() >= 5 and rng.random() < 0.6:
            continue
        moment = day + timedelta(hours=rng.triangular(8, 18.5, 11), seconds=rng.randrange(60))
        if moment < end:
            starts.append(moment)
    return sorted(starts)


def seed_calls(store: CallStore, n: int, *, seed: int = 7, end: datetime | None = None, days: int = 14,
               recordings: int = 10, customers: Sequence[DemoCustomer] = (), worker: str = "demo",
               config: ReviewConfig | None = None, knowledge: Path | None = DEMO_KNOWLEDGE) -> list[str]:
    """Write ``n`` finished demo calls (oldest first) and return their ids.

    ``recordings``: how many of the most recent calls get a recording (each is about 1 MB a minute).
    ``customers``: CRM customers to use as known callers (else made-up numbers and no customer id).
    ``knowledge``: the knowledge folder the knowledge calls answer from (None: no knowledge calls).
    """
    rng = random.Random(seed)
    end = (end or datetime.now(timezone.utc)).astimezone(timezone.utc)
    files = load_demo_knowledge(knowledge)
    ids = []
    for number, started in enumerate(_start_times(n, end, days, rng)):
        extra = knowledge_scenarios(files, started, random.Random(f"{seed}-{number}")) if files else []
        scenario = _pick(rng, (*SCENARIOS, *extra))
        customer = rng.choice(customers) if customers and rng.random() < 0.7 else None
        ids.append(write_demo_call(store, scenario, started, call_id=f"demo-{seed}-{number:04d}", customer=customer,
                                   recording=number >= n - recordings, rng=rng, worker=worker, config=config))
    return ids


def write_demo_call(store: CallStore, scenario: Scenario | str, started: datetime, *, call_id: str,
                    customer: DemoCustomer | None = None, recording: bool = True, rng: random.Random | None = None,
                    worker: str = "demo", config: ReviewConfig | None = None, test: bool = False) -> str:
    """Write one finished call following ``scenario`` (or its name, e.g. "card number"), with its analysis;
    ``test``: marked as a test call (as ``voicebot chat`` marks its calls)."""
    if isinstance(scenario, str):
        scenario = next(s for s in SCENARIOS if s.name == scenario)
    rng = rng or random.Random(call_id)
    caller_id = customer.phone if customer else _caller_id(rng)
    name = customer.first_name if customer else rng.choice(("Sam", "Maria", "Li", "Omar", "Priya", "Jan"))
    with _backdated(store) as clock:
        clock.value = started
        store.start_call(caller_id, customer_id=customer.id if customer else None, worker=worker, call_id=call_id,
                         test=test)
        timeline = _write_turns(store, call_id, scenario, rng, name)
        length = timeline.now + rng.uniform(0.8, 2.0)
        if recording:
            pcm = synth_recording(timeline.spans, length, zlib.crc32(call_id.encode()))  # rng untouched
            store.save_recording(call_id, "mixed", pcm, RATE)
        clock.value = started + timedelta(seconds=length)
        transferred = scenario.outcome in (Outcome.TRANSFERRED, Outcome.TRANSFER_FAILED)
        store.finish_call(call_id, scenario.outcome, scenario.reason, summary=scenario.handover,
                          transfer_target="sip:operator@127.0.0.1:5070" if transferred else None)
        clock.value = started + timedelta(seconds=length + 20)
        analyze_call(store, call_id, None, config)
        store.save_analysis(call_id, **_demo_model_part(scenario, rng, name))
    return call_id


def _write_turns(store: CallStore, call_id: str, scenario: Scenario, rng: random.Random, name: str) -> _Timeline:
    timeline = _Timeline(rng, slow=scenario.slow)
    last_caller: TurnTimings | None = None
    for line in scenario.lines:
        text = line.text.format(name=name)
        if line.role == "caller":
            start, end, timings = timeline.caller(text, line.pause)
            last_caller = timings
            store.add_turn(call_id, Turn("caller", text, start, end, timings, barged_in=line.barge_in))
        elif line.role == "bot":
            start, end, timings = timeline.bot(text, last_caller if not line.fixed else None)
            if line.barge_in:  # the caller talked over the end of it
                end = _r(start + (end - start) * 0.6)
                timeline.now = end
            store.add_turn(call_id, Turn("bot", text, start, end, timings, tool_calls=line.tools,
                                         barged_in=line.barge_in, guard_event=line.guard))
            last_caller = None
        else:
            timeline.now += line.pause or 0.0
        for kind, data in line.events:
            store.add_event(call_id, kind, data, at=round(timeline.now, 2))
    return timeline


def _demo_model_part(scenario: Scenario, rng: random.Random, name: str) -> dict[str, Any]:
    """What the model adds to a demo call: a topic and a generated summary (the QA is computed from the record)."""
    return {"model": "demo", "generated_summary": scenario.summary.format(name=name), "topic": scenario.topic,
            "error": None}


__all__ = ["DemoCustomer", "Line", "seed_calls", "synth_recording", "write_demo_call"]
