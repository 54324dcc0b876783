"""``voicebot bench kb``: retrieval quality and speed over the demo knowledge base (never run by the tests).

The questions (``bench_questions.yaml`` beside this file) are written the way callers talk and on purpose not
in the entries' words: 100 with an answer in ``knowledge/`` (English and a few Russian) and 20 without one.
What is measured, and why each number matters on the phone:

* **top-1 accuracy**: the best hit is a right document (an entry, the hours or a price item). What a
  confident answer would say if the thresholds let it.
* **answered right / answered wrong**: after the confident / weak / none decision. A wrong answer is the
  expensive mistake (a caller acts on it); a weak or none is a clarifying question or a person.
* **abstain rate**: of the questions the base cannot answer, the share that got weak or none, not an answer.
* **latency**: per question, the query embedding and the rest of ``KnowledgeBase.answer`` (BM25, the
  three dense products, fusion, the decision and the computed answer), median and p95, warm; the embedder's
  memory of recent texts is emptied before each question, so every one pays for its embedding. First on the
  demo base, then on a base of ``entries`` Markdown entries (500 by default, the size the issue sets a p95 of
  30 ms for): the demo files plus generated ones (``bench_base``), loaded, embedded and indexed for real; its
  top-1 accuracy is shown too (the same questions, now among ten times as many entries).

``split`` picks the questions: ``tune`` (the even ones of each list, what the constants and thresholds were
tuned on), ``test`` (the odd ones, held out), or ``all``.
"""

from __future__ import annotations

import tempfile
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
    latency_s: float  # the whole answer: embedding and the rest
    text: str
    embed_s: float = 0.0  # of which the query embedding
    cpu_s: tuple[float, float] = (0.0, 0.0)  # CPU time of the embedding and of the rest

    @property
    def top_right(self) -> bool:
        return self.top in self.case.expect

    @property
    def answered(self) -> bool:
        return self.kind in ("entry", "hours", "price")


@dataclass
class Timed:
    """Latencies of one base, in ms per question: wall clock and the CPU time of the asking thread, each for
    the query embedding and the rest of the answer. On a busy machine the wall clock mostly measures the wait
    for a core; the CPU time is what the question costs, about its wall clock on an idle core."""

    label: str
    documents: int
    embed_ms: np.ndarray
    rest_ms: np.ndarray
    build_s: float
    top1: tuple[int, int] = (0, 0)  # (right, asked) on this base
    embed_cpu_ms: np.ndarray | None = None
    rest_cpu_ms: np.ndarray | None = None

    def rows(self) -> list[tuple[str, str]]:
        fmt = lambda a: f"{np.median(a):.1f} / {np.percentile(a, 95):.1f} ms"
        rows = [(f"{self.label}: documents, index build", f"{self.documents}, {self.build_s:.1f} s"),
                (f"{self.label}: answer median / p95, wall", fmt(self.embed_ms + self.rest_ms)),
                (f"{self.label}:   of which query embedding", fmt(self.embed_ms)),
                (f"{self.label}:   of which search and answer", fmt(self.rest_ms))]
        if self.embed_cpu_ms is not None and self.rest_cpu_ms is not None:
            rows += [(f"{self.label}: answer median / p95, CPU", fmt(self.embed_cpu_ms + self.rest_cpu_ms)),
                     (f"{self.label}:   of which query embedding", fmt(self.embed_cpu_ms)),
                     (f"{self.label}:   of which search and answer", fmt(self.rest_cpu_ms))]
        if self.top1[1]:
            rows.append((f"{self.label}: top-1 accuracy",
                         f"{100 * self.top1[0] / self.top1[1]:.0f}% ({self.top1[0]}/{self.top1[1]})"))
        return rows


@dataclass
class KbBenchResult:
    outcomes: list[Outcome] = field(default_factory=list)
    build_s: float = 0.0
    documents: int = 0
    large: Timed | None = None  # the base of ``entries`` entries

    @property
    def answerable(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.case.expect]

    @property
    def unanswerable(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.case.expect]

    def figures(self) -> list[tuple[str, str]]:
        """(metric, value) rows for the table."""
        ans, una = self.answerable, self.unanswerable
        share = lambda part, whole: f"{100 * len(part) / max(len(whole), 1):.0f}% ({len(part)}/{len(whole)})"
        ms = lambda values: np.array(values) * 1000
        demo = Timed("demo base", self.documents, ms([o.embed_s for o in self.outcomes]),
                     ms([o.latency_s - o.embed_s for o in self.outcomes]), self.build_s, (0, 0),
                     ms([o.cpu_s[0] for o in self.outcomes]), ms([o.cpu_s[1] for o in self.outcomes]))
        return [
            ("top-1 accuracy (answerable questions)", share([o for o in ans if o.top_right], ans)),
            ("answered right", share([o for o in ans if o.answered and o.top_right], ans)),
            ("answered wrong", share([o for o in ans if o.answered and not o.top_right], ans)),
            ("asked back or offered a person (weak / none)", share([o for o in ans if not o.answered], ans)),
            ("abstain rate (questions with no answer)", share([o for o in una if not o.answered], una)),
            *demo.rows(),
            *(self.large.rows() if self.large else []),
        ]

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if (o.case.expect and not (o.answered and o.top_right))
                or (not o.case.expect and o.answered)]


@dataclass(frozen=True)
class Asked:
    answer: object  # KnowledgeAnswer
    embed_s: float  # wall clock of the query embedding
    rest_s: float  # wall clock of the rest of ``answer``
    embed_cpu_s: float  # CPU time of this thread for each (the engine runs on it with knowledge.threads 1)
    rest_cpu_s: float


def ask(kb: KnowledgeBase, question: str) -> Asked:
    """``kb.answer(question)`` with the embedding paid for and timed on its own."""
    forget = getattr(kb.embedder, "forget_recent", None)
    if forget is not None:
        forget()
    wall, cpu = time.perf_counter(), time.thread_time()
    kb.embedder.queries([question])  # remembered by the embedder: the answer below reuses the vector
    embed_s, embed_cpu = time.perf_counter() - wall, time.thread_time() - cpu
    if forget is None:  # an embedder without a memory embeds again inside answer(): do not count it twice
        embed_s = embed_cpu = 0.0
    wall, cpu = time.perf_counter(), time.thread_time()
    answer = kb.answer(question, NOW)
    return Asked(answer, embed_s, time.perf_counter() - wall, embed_cpu, time.thread_time() - cpu)


def time_large_base(config, embedder: Embedder, entries: int, cases: list[Case],
                    log: Callable[[str], None]) -> Timed:
    """The questions against the demo base grown to ``entries`` Markdown entries (``bench_base``); its
    embeddings are kept beside the model downloads, so only the first run pays for embedding them."""
    from voicebot.knowledge.base import vectors_file
    from voicebot.knowledge.bench_base import write_base

    k = config.knowledge
    cache = vectors_file(config).with_name(f"bench-{entries}-{k.model}.npz")
    with tempfile.TemporaryDirectory(prefix="voicebot-bench-kb-") as tmp:
        made = write_base(Path(tmp), entries, DEMO_DIR)
        started = time.perf_counter()
        kb = KnowledgeBase(tmp, embedder, k.confident, k.weak, k.margin, vectors_file=cache)
        build_s = time.perf_counter() - started
        log(f"{len(kb.files.entries)} entries ({made} generated), {len(kb.index)} documents indexed in "
            f"{build_s:.1f} s; asking {len(cases)} questions ...")
        ask(kb, cases[0].question)  # warm
        asked, right = [], 0
        for case in cases:
            asked.append(ask(kb, case.question))
            hits = asked[-1].answer.hits
            right += bool(case.expect) and bool(hits) and hits[0].doc.id in case.expect
    ms = lambda name: np.array([getattr(a, name) for a in asked]) * 1000
    return Timed(f"{entries} entries", len(kb.index), ms("embed_s"), ms("rest_s"), build_s,
                 (right, sum(bool(c.expect) for c in cases)), ms("embed_cpu_s"), ms("rest_cpu_s"))


def load_cases(path: Path = QUESTIONS, split: str = "all") -> list[Case]:
    """The bench's questions; ``split`` "tune" keeps the even ones of each list, "test" the odd ones."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    answerable = []
    for item in data["answerable"]:
        expect = item["expect"]
        answerable.append(Case(item["q"], tuple(expect) if isinstance(expect, list) else (expect,)))
    unanswerable = [Case(q, ()) for q in data["unanswerable"]]
    if split != "all":
        if split not in ("tune", "test"):
            raise ValueError(f"split {split!r}: tune, test or all")
        first = 0 if split == "tune" else 1
        answerable, unanswerable = answerable[first::2], unanswerable[first::2]
    return answerable + unanswerable


def bench_kb(config, embedder: Embedder | None = None, folder: Path = DEMO_DIR, runs: int = 1,
             log: Callable[[str], None] = print, entries: int = 500, split: str = "all") -> KbBenchResult:
    """Every question ``runs`` times against the knowledge base in ``folder`` (the demo base by default), with
    the config's thresholds and embedding model; then once against a base of ``entries`` entries (0: not)."""
    from voicebot.knowledge.embed import load_embedder

    embedder = embedder or load_embedder(config)
    k = config.knowledge
    cases = load_cases(split=split)
    started = time.perf_counter()
    kb = KnowledgeBase(folder, embedder, k.confident, k.weak, k.margin)
    result = KbBenchResult(build_s=time.perf_counter() - started, documents=len(kb.index))
    for problem in kb.problems:
        log(f"  problem: {problem}")
    log(f"{len(kb.index)} documents indexed in {result.build_s:.2f} s; asking {len(cases)} questions x {runs} ...")
    ask(kb, cases[0].question)  # warm: the first question pays for lazy imports (dateparser) and caches
    for _ in range(runs):
        for case in cases:
            a = ask(kb, case.question)
            answer = a.answer
            top = answer.hits[0].doc.id if answer.hits else ""
            result.outcomes.append(Outcome(case, answer.kind, top, answer.score, a.embed_s + a.rest_s,
                                           answer.text, a.embed_s, (a.embed_cpu_s, a.rest_cpu_s)))
    if entries:
        result.large = time_large_base(config, embedder, entries, cases * runs, log)
    return result
