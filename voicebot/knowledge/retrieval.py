"""Hybrid retrieval: BM25 over words plus e5 cosine over meaning, fused into one score from 0 to 1.

Why both: callers paraphrase ("can I send it back?" for the return policy), which only the embedding sees; but
they also name things the embedding blurs together ("toner", "shredder", "VAT number"), which BM25 catches
exactly. Neither score alone says how sure we are, so each is mapped onto 0..1 first and the two are mixed:

* dense: three cosines between the question (``query:``) and a document, each read as evidence of its own and
  averaged: (1) its short keys, embedded as ``query:`` too (the entry's title and the admin's ``asked:``
  phrasings, a price item's names; question-to-question similarity is the sharpest e5 makes, the best key
  counts), (2) the whole document as a ``passage:`` (title, topic, tags and answer), (3) the answer alone as a
  ``passage:`` (what the entry says, without the title's wording). Taking the best of the three instead
  (the earlier design) let one near-miss title win on its own; the mean wants the question, the document and
  the answer to agree (bench: top-1 87% -> 90% on the same questions, before any ``asked:`` line). e5's
  cosines sit in a narrow band (unrelated ~0.75, a paraphrase ~0.87), so ``DENSE_FLOOR``..``DENSE_CEIL`` is
  stretched onto 0..1 for each before the mean. An entry's keys also include its title with its tags ("Can I
  pick up my order? (collect, click and collect, pickup)"): the tags are the admin's own words for how
  callers ask.
* lexical: bm25s over lower-cased words without stop words (English and Russian), plurals folded, a question's
  word no document holds taken in the form they do hold ("parking" -> "park": ``known_form``); a raw score
  ``b`` becomes ``b / (b + BM25_HALF)``: saturating, and the same for every query length.

``fused = DENSE_WEIGHT * dense + (1 - DENSE_WEIGHT) * lexical - UNKNOWN_PENALTY * unknown``, where ``unknown`` is
the share of the question's words that no document contains ("do you do *car* repairs?" to an office-supply
base): the more a question names what the base never mentions, the surer the match must be. It shifts every
document alike, so it changes the decision, never the ranking; it is 0 for a question in another script.

Score blending, not reciprocal rank fusion: RRF over the same four rankings put the right document first less
often (bench top-1 88% at k=10, 86% at k=60, against 92%), and it throws away how close the best match is,
which is what tells a question the base answers from one it does not.

The decision thresholds (``knowledge.confident``, ``knowledge.margin`` and ``knowledge.weak``) apply to the
fused score; they and the constants here were chosen with ``voicebot bench kb`` on its tuning half (the even
questions, ``bench kb --split tune``; a grid over the constants and thresholds keeping the abstain rate at 90%
or more) and then checked on the other half (``--split test``).

Speed: a search is three matrix-vector products, one BM25 lookup and a sort. The products run in blocks of
``BLOCK`` rows: a product over more than about a thousand rows makes OpenBLAS wake its thread pool, which on a
busy 2-core machine turned a 0.05 ms product into 15-20 ms at p95 (``bench kb --entries 500``).

Embeddings are cached by text, so rebuilding after an admin changes one entry embeds only what changed; the
cache is kept on disk too (``save_vectors`` / ``load_vectors``), so a restart embeds nothing that did not change.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_RUSSIAN

from voicebot.fileio import atomic_path
from voicebot.knowledge.embed import Embedder

logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets itself to DEBUG: a line per index built

DENSE_FLOOR = 0.76
DENSE_CEIL = 0.92
BM25_HALF = 2.0
DENSE_WEIGHT = 0.86
UNKNOWN_PENALTY = 0.2
TAG_BONUS = 0.08
"""Added when the question holds one of the entry's tags in full: a tag is the admin's word for how callers ask, and
an exact one is stronger evidence than the blurred cosines of a short question ("what's your address?" ranked the
tracking entry above the one tagged "address"). Only a tag that no other document names in its title or
``asked:`` lines (a price item: its names) singles an entry out: "refund", a tag of the return policy, outweighed
the entry titled "How long does a refund take?", which both cosines and BM25 put first for "What's the status of
my refund?" (``bench kb``: the same 92 of 100 first, 88 answered right; "Can I order tea and paper cups?" now
right, "Where can I find your shop?" now wrong: "where" titles other entries)."""
BLOCK = 512

_STOP = frozenset(STOPWORDS_EN) | frozenset(STOPWORDS_RUSSIAN) | {
    "can", "could", "would", "please", "hi", "hello", "tell", "know", "want", "like", "need", "get", "us", "do",
    "does", "you", "your", "yours", "i", "me", "my", "we", "our", "much", "many", "any", "also",
    # what every question has: "what's your address?" matched "I received the wrong item. What now?" on "what"
    "what", "whats", "s", "t", "d", "ll", "re", "ve", "m", "am", "are", "was", "were", "have", "has", "there"}
_WORD = re.compile(r"\w+", re.UNICODE)
_TAGS_IN_KEY = re.compile(r"\([^)]*\)")  # an entry's key is its title with its tags: "Can I pick up my order? (pickup)"


def tokens(text: str) -> list[str]:
    """Words for BM25: lower case, stop words out, an English plural -s folded ("desks" -> "desk")."""
    out = []
    for word in _WORD.findall(text.casefold()):
        if word in _STOP or word.isdigit():
            continue
        if len(word) > 4 and word.isascii():
            if word.endswith("ies"):
                word = word[:-3] + "y"
            elif word.endswith("s") and not word.endswith("ss"):
                word = word[:-1]
        out.append(word)
    return out


def known_form(word: str, vocabulary: frozenset[str]) -> str:
    """``word``, or the form of it the documents use when they use only that one: "parking" -> "park" ("Visitors
    can park for free"), "delivered" -> "deliver", "shipping" -> "ship", "repair" -> "repairing". Only a word no
    document holds is changed, so a word the base knows keeps its own matches (Snowball stemming of every word
    cost the bench more right answers than it gained)."""
    if word in vocabulary or len(word) < 5 or not word.isascii():
        return word
    stems = [word[:-3], word[:-3] + "e", word[:-4]] if word.endswith("ing") else []
    stems += [word[:-2], word[:-1], word[:-3]] if word.endswith("ed") else []
    forms = [*stems, word + "ing", word + "ed"]
    return next((form for form in forms if len(form) >= 3 and form in vocabulary), word)


@dataclass(frozen=True)
class Document:
    """Something retrieval can find: an entry, the opening hours, or a price item (``kind`` says which)."""

    id: str
    kind: str  # "entry" | "hours" | "price"
    text: str  # embedded as a passage and indexed by BM25
    keys: tuple[str, ...]  # short question-like texts, embedded as queries
    body: str = ""  # the answer alone, embedded as a passage ("": the text again)
    tags: tuple[str, ...] = ()  # the admin's words for how callers ask; one said in full adds TAG_BONUS


@dataclass(frozen=True)
class Hit:
    doc: Document
    score: float  # fused, 0..1
    dense: float  # raw cosine, the mean of the three (best key, document, answer)
    lexical: float  # raw BM25


class HybridIndex:
    """An immutable index over ``documents``; build a new one when the documents change."""

    def __init__(self, documents: Sequence[Document], embedder: Embedder, cache: dict[tuple[str, str], np.ndarray]
                 | None = None):
        self.documents = tuple(documents)
        self.embedder = embedder
        cache = {} if cache is None else cache
        self._passages = _embed_all(embedder, [d.text for d in self.documents], "passage", cache)
        self._bodies = _embed_all(embedder, [d.body or d.text for d in self.documents], "passage", cache)
        keys = [(i, key) for i, d in enumerate(self.documents) for key in d.keys]
        self._key_doc = np.array([i for i, _ in keys], dtype=np.int64)
        self._keys = _embed_all(embedder, [k for _, k in keys], "query", cache)
        corpus = [tokens(d.text + " " + " ".join(d.keys)) or ["_"] for d in self.documents]
        self._script = _script([w for doc in corpus for w in doc])
        self._vocabulary = frozenset(w for doc in corpus for w in doc)
        named = [set(tokens(" ".join(_TAGS_IN_KEY.sub("", k) for k in d.keys))) for d in self.documents]
        self._tags = [[set(t) for tag in d.tags if (t := tokens(tag)) and not any(
            set(t) <= words for j, words in enumerate(named) if j != i)] for i, d in enumerate(self.documents)]
        self._bm25 = bm25s.BM25()
        if corpus:
            self._bm25.index(corpus, show_progress=False)

    def __len__(self) -> int:
        return len(self.documents)

    @property
    def cache_keys(self) -> set[tuple[str, str]]:
        """The (kind, text) embeddings this index uses: what is worth keeping on disk."""
        return ({("passage", d.text) for d in self.documents} | {("passage", d.body or d.text) for d in self.documents}
                | {("query", k) for d in self.documents for k in d.keys})

    def search(self, question: str, top: int = 5, vector: np.ndarray | None = None) -> list[Hit]:
        """The ``top`` documents for ``question``, best first (one hit per document)."""
        if not self.documents:
            return []
        q = vector if vector is not None else self.embedder.queries([question])[0]
        whole, body = _matvec(self._passages, q), _matvec(self._bodies, q)
        key = whole.copy()  # a document without keys: its passage stands in
        if len(self._key_doc):
            best = np.full(len(self.documents), -1.0, dtype=np.float32)
            np.maximum.at(best, self._key_doc, _matvec(self._keys, q))
            key = np.where(best > -1.0, best, whole)
        dense = (key + whole + body) / 3
        words = [known_form(w, self._vocabulary) for w in tokens(question)]
        lexical = self._bm25.get_scores(words) if words else np.zeros(len(self.documents), dtype=np.float32)
        other_script = _script(words) != self._script
        fused = fuse((key, whole, body), lexical, other_script)
        if words and not other_script:
            fused -= UNKNOWN_PENALTY * sum(w not in self._vocabulary for w in words) / len(words)
        said = set(words)
        fused += TAG_BONUS * np.array([any(tag <= said for tag in tags) for tags in self._tags], dtype=np.float32)
        np.minimum(fused, 1.0, out=fused)
        order = np.argsort(-fused)[:top]
        return [Hit(self.documents[i], float(fused[i]), float(dense[i]), float(lexical[i])) for i in order]


def fuse(dense: Sequence[np.ndarray], lexical: np.ndarray, other_script: bool = False) -> np.ndarray:
    """The dense cosines (each stretched onto 0..1, then averaged) and the lexical score, mixed. A question
    written in another script than the base (a Russian question to an English base) can share no word with it:
    there is no lexical evidence, for or against, so the dense score alone decides instead of being scaled down
    by the missing half. (An English question that shares no word is scored as usual: that absence is evidence,
    "can I speak to my doctor?" is not in an office-supply base.)"""
    d = sum(np.clip((x - DENSE_FLOOR) / (DENSE_CEIL - DENSE_FLOOR), 0.0, 1.0) for x in dense) / len(dense)
    if other_script and not np.any(lexical > 0):
        return d
    b = lexical / (lexical + BM25_HALF)
    return DENSE_WEIGHT * d + (1 - DENSE_WEIGHT) * b


def _matvec(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``matrix @ vector`` in blocks of ``BLOCK`` rows, each small enough for OpenBLAS to do on the calling
    thread (see the module docstring: its thread pool costs more than the product on a busy machine)."""
    if len(matrix) <= BLOCK:
        return matrix @ vector
    return np.concatenate([matrix[i:i + BLOCK] @ vector for i in range(0, len(matrix), BLOCK)])


def _script(words: Sequence[str]) -> str:
    """"latin" when most words are ASCII, else "other": enough to tell a Russian question from an English base."""
    return "latin" if sum(w.isascii() for w in words) * 2 >= len(words) else "other"


_CACHE_LOCK = threading.Lock()


def _embed_all(embedder: Embedder, texts: list[str], kind: str, cache: dict) -> np.ndarray:
    """Embed ``texts`` as passages or queries, reusing ``cache`` (text -> vector) for those seen before."""
    with _CACHE_LOCK:
        todo = sorted({t for t in texts if (kind, t) not in cache})
    if todo:
        vectors = embedder.passages(todo) if kind == "passage" else embedder.queries(todo)
        with _CACHE_LOCK:
            for text, vector in zip(todo, vectors):
                cache[(kind, text)] = vector
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return np.stack([cache[(kind, t)] for t in texts])


_SEP = "\x1f"


def load_vectors(path: Path, dim: int) -> dict[tuple[str, str], np.ndarray]:
    """The embeddings saved by ``save_vectors``; empty when the file is missing, unreadable or of another size."""
    try:
        with np.load(path, allow_pickle=False) as data:
            keys, vectors = data["keys"], data["vectors"]
    except (OSError, ValueError, KeyError):
        return {}
    if vectors.ndim != 2 or vectors.shape[1] != dim or len(keys) != len(vectors):
        return {}
    return {tuple(str(k).split(_SEP, 1)): v for k, v in zip(keys, vectors.astype(np.float32))}  # type: ignore[misc]


def save_vectors(path: Path, cache: dict[tuple[str, str], np.ndarray], keys: set[tuple[str, str]]) -> None:
    """Keep the embeddings of ``keys`` on disk (atomically; a failure only costs the next start some time)."""
    kept = sorted(k for k in keys if k in cache)
    if not kept:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, keys=np.array([f"{kind}{_SEP}{text}" for kind, text in kept]),
                     vectors=np.stack([cache[k] for k in kept]))
    except OSError:
        pass
