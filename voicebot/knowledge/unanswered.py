"""The questions the bot could not answer, from the call store, grouped by similarity (issue 15's learning loop).

What counts as unanswered:

* a ``knowledge`` event whose answer is ``weak`` (the bot asked back or offered a person) or ``none`` (nothing
  close in the knowledge base); its ``question`` is the caller's words as stored (secrets already masked);
* a transfer right after a caller question the knowledge base never saw: the last caller turn or the one before
  it (before the ``transfer_requested`` event) reads as a question ("...?", or it starts with what/how/can/do/...),
  does not ask for a person itself, got no knowledge event and no CRM tool call in the bot's reply. "Can I talk to
  someone?" is not a question for the knowledge base; "do you install printers on site?" followed by "operator" is.

Grouping. The same question comes in many wordings, so the list groups them. With the embedding model the
knowledge base uses (multilingual-e5-small, ``queries`` side) a question joins the group whose members it is
closest to on average when that mean cosine is at least ``EMBED_THRESHOLD`` (0.885): on e5, paraphrases score
0.89-0.98 ("do you repair cars?" / "can you fix my car?" 0.94, English / Russian "wifi password" 0.90) while
unrelated customer questions stay at 0.75-0.88 ("gift vouchers" / "plumbing services" 0.88); a lower value merges
topics, a higher one splits paraphrases. Without the model (a review server where it was never pulled) the
fallback is word overlap: the Jaccard index of content-word stems at least ``WORD_THRESHOLD``; it groups only
wordings that share their words ("do you repair cars" / "car repairs") and never crosses languages. Which one
grouped is reported (``Grouping.method``), so the page and the CLI can say so.

Groups are listed most asked first; each has its count, first and last time asked, and the calls. A group is
``answered`` once every question in it was marked answered by an admin (``marks``: question key -> entry id).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from voicebot.events import EventKind, TransferReason
from voicebot.store import CallStore
from voicebot.store_records import _time

UNANSWERED_KINDS = ("weak", "none")
EMBED_THRESHOLD = 0.885
WORD_THRESHOLD = 0.5
_QUESTION_START = re.compile(
    r"^\s*(?:(?:so|and|but|well|um|uh|okay|ok|hi|hello|yes|no),?\s+)*(?:what|when|where|which|who|whom|whose|why|"
    r"how|can|could|do|does|did|is|are|was|were|will|would|should|shall|may|have|has|any|"
    r"как|что|где|когда|сколько|почему|можно|есть|ли)\b", re.IGNORECASE)
_ASKS_FOR_PERSON = re.compile(r"\b(operator|person|human|agent|someone|somebody|representative|manager|"
                              r"real people|colleague|transfer|оператор\w*|человек\w*)\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_STOP = frozenset("""a an the and or but if of to in on at by for with about from into is are was were be been am do
does did doing have has had i you we they he she it me my your our their this that these those there here what
when where which who whom why how can could would should will shall may might must please just so then than too
very also any some no not yes ok okay um uh hi hello well like get got want need know tell let s t""".split())


@dataclass(frozen=True)
class Question:
    """One question the bot could not answer."""

    key: str  # "<call id>:<event id>": stable, what an admin's answer marks
    call_id: str
    text: str  # as stored (secrets masked at storage); redact by role before showing
    source: str  # weak | none | transfer
    asked_at: datetime | None
    score: float | None = None
    entry_ids: tuple[str, ...] = ()  # the closest entries, for a weak match


@dataclass
class Group:
    """Questions that ask the same thing."""

    questions: list[Question] = field(default_factory=list)
    answered_by: tuple[str, ...] = ()  # entry ids an admin answered its questions with

    @property
    def key(self) -> str:
        """The oldest question's key: what the answer form names (members asked later still join the group)."""
        return self.questions[0].key

    @property
    def title(self) -> str:
        """The wording asked most often (the first of those asked)."""
        counts: dict[str, int] = {}
        for q in self.questions:
            counts[q.text.strip()] = counts.get(q.text.strip(), 0) + 1
        return max(counts, key=lambda t: counts[t])

    @property
    def count(self) -> int:
        return len(self.questions)

    @property
    def calls(self) -> list[str]:
        return list(dict.fromkeys(q.call_id for q in sorted(self.questions, key=_newest_first)))

    @property
    def call_times(self) -> list[tuple[str, datetime | None]]:
        """(call id, when its question was last asked there), newest first."""
        out: dict[str, datetime | None] = {}
        for q in sorted(self.questions, key=_newest_first):
            out.setdefault(q.call_id, q.asked_at)
        return list(out.items())

    @property
    def wordings(self) -> list[str]:
        return list(dict.fromkeys(q.text.strip() for q in self.questions))

    @property
    def first_seen(self) -> datetime | None:
        times = [q.asked_at for q in self.questions if q.asked_at is not None]
        return min(times) if times else None

    @property
    def last_seen(self) -> datetime | None:
        times = [q.asked_at for q in self.questions if q.asked_at is not None]
        return max(times) if times else None

    @property
    def sources(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for q in self.questions:
            out[q.source] = out.get(q.source, 0) + 1
        return out

    def open_questions(self, marks: Mapping[str, str]) -> list[Question]:
        return [q for q in self.questions if q.key not in marks]


@dataclass(frozen=True)
class Grouping:
    groups: list[Group]
    method: str  # "embeddings (multilingual-e5-small)" or "shared words"
    note: str = ""  # why the fallback was used


def _newest_first(q: Question) -> float:
    return -(q.asked_at.timestamp() if q.asked_at else 0.0)


def looks_like_question(text: str) -> bool:
    text = text.strip()
    return bool(text) and (text.endswith("?") or bool(_QUESTION_START.match(text)))


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.casefold()).strip(" ?.!")


def collect(store: CallStore, since: datetime | None = None) -> list[Question]:
    """Every unanswered question in the store (recorded at or after ``since``), oldest first."""
    where, params = "", []
    if since is not None:
        # the store's fixed-width UTC text, so string comparison compares times
        where, params = " AND e.recorded_at >= ?", [since.astimezone(timezone.utc).isoformat(timespec="microseconds")]
    rows = store.select(
        "SELECT e.id, e.call_id, e.kind, e.data, e.at, e.recorded_at FROM events e "
        f"WHERE e.kind IN (?, ?){where} ORDER BY e.recorded_at, e.id",
        (EventKind.KNOWLEDGE.value, EventKind.TRANSFER_REQUESTED.value, *params))
    out: list[Question] = []
    transfers: list[Any] = []
    for row in rows:
        data = json.loads(row["data"] or "{}")
        if row["kind"] == EventKind.TRANSFER_REQUESTED.value:
            transfers.append((row, data))
            continue
        question = str(data.get("question") or "").strip()
        if data.get("answer") not in UNANSWERED_KINDS or not question:
            continue
        score = data.get("score")
        out.append(Question(f"{row['call_id']}:{row['id']}", row["call_id"], question, data["answer"],
                            _time(row["recorded_at"]), float(score) if score is not None else None,
                            tuple(data.get("entry_ids") or ())))
    for row, data in transfers:
        found = _question_before_transfer(store, row, data)
        if found is not None:
            out.append(found)
    out.sort(key=lambda q: (q.asked_at.timestamp() if q.asked_at else 0.0, q.key))
    return out


def _question_before_transfer(store: CallStore, row: Any, data: Mapping[str, Any]) -> Question | None:
    if data.get("reason") == TransferReason.DTMF:
        return None
    call_id, at = row["call_id"], row["at"]
    turns = [t for t in store.turns(call_id) if at is None or t.started_at is None or t.started_at <= at]
    caller = [i for i, t in enumerate(turns) if t.role == "caller"]
    asked = {_norm(str(json.loads(r["data"] or "{}").get("question") or "")) for r in store.select(
        "SELECT data FROM events WHERE call_id = ? AND kind = ?", (call_id, EventKind.KNOWLEDGE.value))}
    for i in reversed(caller[-2:]):
        text = turns[i].text.strip()
        if _ASKS_FOR_PERSON.search(text) or not looks_like_question(text):
            continue
        reply = turns[i + 1] if i + 1 < len(turns) else None
        if _norm(text) in asked or (reply is not None and reply.role == "bot" and reply.tool_calls):
            return None  # the knowledge base saw it (listed already, or answered), or the CRM answered it
        return Question(f"{call_id}:{row['id']}", call_id, text, "transfer", _time(row["recorded_at"]))
    return None


# -- grouping ------------------------------------------------------------------------------------------------------

def _stem(word: str) -> str:
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def content_words(text: str) -> frozenset[str]:
    return frozenset(_stem(w) for w in _WORD.findall(text.casefold()) if w not in _STOP and len(w) > 1)


def _word_groups(questions: Sequence[Question], threshold: float) -> list[list[int]]:
    words = [content_words(q.text) for q in questions]
    groups: list[list[int]] = []
    for i, w in enumerate(words):
        best, best_score = None, threshold
        for g, members in enumerate(groups):
            scores = [len(w & words[m]) / len(w | words[m]) if w | words[m] else 1.0 for m in members]
            mean = sum(scores) / len(scores)
            if mean >= best_score:
                best, best_score = g, mean
        if best is None:
            groups.append([i])
        else:
            groups[best].append(i)
    return groups


def _vector_groups(vectors: np.ndarray, threshold: float) -> list[list[int]]:
    """Each vector joins the group with the highest mean cosine to its members (kept as the members' sum: the
    mean of dot products is the dot product with the sum over the count), or starts a group."""
    groups: list[list[int]] = []
    if len(vectors) == 0:
        return groups
    sums = np.zeros_like(vectors)  # row g: the sum of group g's vectors
    counts = np.zeros(len(vectors), np.float32)
    for i, vector in enumerate(vectors):
        n = len(groups)
        if n:
            means = (sums[:n] @ vector) / counts[:n]
            best = int(np.argmax(means))
            if means[best] >= threshold:
                groups[best].append(i)
                sums[best] += vector
                counts[best] += 1
                continue
        groups.append([i])
        sums[n], counts[n] = vector, 1
    return groups


class QuestionVectors:
    """The embedder's query vectors for question texts, kept by text (a page view embeds only new questions)."""

    def __init__(self, embedder: Any, limit: int = 20_000):
        self.embedder = embedder
        self.limit = limit
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            if len(self._cache) + len(missing) > self.limit:
                self._cache.clear()
            for start in range(0, len(missing), 64):
                chunk = missing[start:start + 64]
                for text, vector in zip(chunk, self.embedder.queries(chunk)):
                    self._cache[text] = vector
        dim = getattr(self.embedder, "dim", 0)
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, dim), np.float32)


def group_questions(questions: Sequence[Question], vectors: QuestionVectors | None = None,
                    marks: Mapping[str, str] | None = None, *, note: str = "",
                    embed_threshold: float = EMBED_THRESHOLD, word_threshold: float = WORD_THRESHOLD) -> Grouping:
    """``questions`` (oldest first) grouped: by embeddings when ``vectors`` is given, else by shared words.
    Most asked first, then most recently asked."""
    marks = marks or {}
    if vectors is not None:
        method = f"embeddings ({getattr(vectors.embedder, 'name', 'embedding model')})"
        indices = _vector_groups(vectors([q.text for q in questions]), embed_threshold) if questions else []
    else:
        method = "shared words"
        indices = _word_groups(questions, word_threshold)
    groups = []
    for members in indices:
        group = Group([questions[i] for i in members])
        group.answered_by = tuple(dict.fromkeys(marks[q.key] for q in group.questions if q.key in marks))
        groups.append(group)
    groups.sort(key=lambda g: (-g.count, -(g.last_seen.timestamp() if g.last_seen else 0.0)))
    return Grouping(groups, method, note)


def split_answered(groups: Iterable[Group], marks: Mapping[str, str]) -> tuple[list[Group], list[Group]]:
    """(open groups: at least one question not marked answered, answered groups)."""
    open_, done = [], []
    for group in groups:
        (open_ if group.open_questions(marks) else done).append(group)
    return open_, done
