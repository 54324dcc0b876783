"""``voicebot bench kb``: retrieval quality and speed over the demo knowledge base (never run by the tests).

The questions (``bench_questions.yaml`` beside this file) are written the way callers talk and on purpose not
in the entries' words: 100 with an answer in ``knowledge/`` (English and a few Russian) and 20 without one.
What is measured, and why each number matters on the phone:

* **top-1 accuracy**: the best hit is a right document (an entry, the hours or a price item). What a
  confident answer would say if the thresholds let it.
* **answered right / answered wrong**: after the confident / weak / none decision. A wrong answer is the
  expensive mistake (a caller acts on it); a weak or none is a clarifying question or a person.
* **abstain rate**: of the questions the base cannot answer, the share that got weak or none, not an answer.
* **latency**: ``KnowledgeBase.answer`` per question (embedding, BM25, fusion, the computed answer), median and
  p95, on the index of the demo base, warm; and the search alone on the index padded to ``size`` documents
  (500 by default, the size the issue sets a p95 of 30 ms for).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import yaml

from voicebot.knowledge.base import KnowledgeBase
from voicebot.knowledge.embed import Embedder

QUESTIONS = Path(__file__).resolve().parent / "bench_questions.yaml"
DEMO_DIR = Path(__file__).resolve().parent.parent.parent / "knowledge"
NOW = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # a Friday, 10:00 in Seattle: the bench repeats exactly


@dataclass(frozen=True)
class Case:
    question: str
    expect: tuple[str, ...]  # right document ids; empty: the base has no answer


@dataclass(frozen=True)
class Outcome:
    case: Case
    kind: str
    top: str  # id of the best hit
    score: float
    latency_s: float
    text: str

    @property
    def top_right(self) -> bool:
        return self.top in self.case.expect

    @property
    def answered(self) -> bool:
        return self.kind in ("entry", "hours", "price")


@dataclass
class KbBenchResult:
    outcomes: list[Outcome] = field(default_factory=list)
    build_s: float = 0.0
    documents: int = 0
    padded: tuple[int, np.ndarray] | None = None  # (documents, search latencies in ms) of the padded index

    @property
    def answerable(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.case.expect]

    @property
    def unanswerable(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.case.expect]

    def figures(self) -> list[tuple[str, str]]:
        """(metric, value) rows for the table."""
        ans, una = self.answerable, self.unanswerable
        lat = np.array([o.latency_s for o in self.outcomes]) * 1000
        share = lambda part, whole: f"{100 * len(part) / max(len(whole), 1):.0f}% ({len(part)}/{len(whole)})"
        return [
            ("documents indexed (entries, hours, price items)", str(self.documents)),
            ("index build (cold, embeds every document)", f"{self.build_s:.2f} s"),
            ("top-1 accuracy (answerable questions)", share([o for o in ans if o.top_right], ans)),
            ("answered right", share([o for o in ans if o.answered and o.top_right], ans)),
            ("answered wrong", share([o for o in ans if o.answered and not o.top_right], ans)),
            ("asked back or offered a person (weak / none)", share([o for o in ans if not o.answered], ans)),
            ("abstain rate (questions with no answer)", share([o for o in una if not o.answered], una)),
            ("answer latency median", f"{np.median(lat):.1f} ms"),
            ("answer latency p95", f"{np.percentile(lat, 95):.1f} ms"),
        ] + ([] if self.padded is None else [
            (f"search latency median, {self.padded[0]} documents", f"{np.median(self.padded[1]):.1f} ms"),
            (f"search latency p95, {self.padded[0]} documents", f"{np.percentile(self.padded[1], 95):.1f} ms"),
        ])

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if (o.case.expect and not (o.answered and o.top_right))
                or (not o.case.expect and o.answered)]


def latency_at_size(kb: KnowledgeBase, size: int, questions: list[str]) -> np.ndarray:
    """Search latency (ms, one per question) on an index padded to ``size`` documents: copies of the demo
    documents under new ids and texts, their vectors the originals' with a little noise (what a search costs
    depends on how many documents there are, not on what they say, so nothing new is embedded)."""
    from voicebot.knowledge.retrieval import Document, HybridIndex

    base = list(kb.index.documents)
    cache = dict(kb._cache)
    rng = np.random.default_rng(15)
    docs = list(base)
    for i in range(max(size - len(base), 0)):
        source = base[i % len(base)]
        doc = Document(f"pad/{i}", source.kind, f"{source.text} (copy {i})", tuple(f"{k} ({i})" for k in source.keys))
        for kind, old, new in [("passage", source.text, doc.text), *[("query", a, b) for a, b in
                                                                     zip(source.keys, doc.keys)]]:
            vector = cache[(kind, old)] + rng.normal(0, 0.01, kb.embedder.dim).astype(np.float32)
            cache[(kind, new)] = vector / np.linalg.norm(vector)
        docs.append(doc)
    index = HybridIndex(docs, kb.embedder, cache)
    times = []
    for question in questions:
        started = time.perf_counter()
        index.search(question, 8)
        times.append((time.perf_counter() - started) * 1000)
    return np.array(times)


def load_cases(path: Path = QUESTIONS) -> list[Case]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    cases = []
    for item in data["answerable"]:
        expect = item["expect"]
        cases.append(Case(item["q"], tuple(expect) if isinstance(expect, list) else (expect,)))
    cases += [Case(q, ()) for q in data["unanswerable"]]
    return cases


def bench_kb(config, embedder: Embedder | None = None, folder: Path = DEMO_DIR, runs: int = 1,
             log: Callable[[str], None] = print, size: int = 500) -> KbBenchResult:
    """Every question ``runs`` times against the knowledge base in ``folder`` (the demo base by default), with
    the config's thresholds and embedding model."""
    from voicebot.knowledge.embed import load_embedder

    embedder = embedder or load_embedder(config)
    k = config.knowledge
    started = time.perf_counter()
    kb = KnowledgeBase(folder, embedder, k.confident, k.weak)
    result = KbBenchResult(build_s=time.perf_counter() - started, documents=len(kb.index))
    for problem in kb.problems:
        log(f"  problem: {problem}")
    cases = load_cases()
    log(f"{len(kb.index)} documents indexed in {result.build_s:.2f} s; asking {len(cases)} questions x {runs} ...")
    for case in cases:  # warm: the first question pays for lazy imports (dateparser) and caches
        kb.answer(case.question, NOW)
        break
    for _ in range(runs):
        for case in cases:
            answer = kb.answer(case.question, NOW)
            top = answer.hits[0].doc.id if answer.hits else ""
            result.outcomes.append(Outcome(case, answer.kind, top, answer.score, answer.latency_s, answer.text))
    if size:
        result.padded = (size, latency_at_size(kb, size, [c.question for c in cases] * runs))
    return result
