"""The knowledge base the dialogue asks: ``KnowledgeBase.answer(question, now) -> KnowledgeAnswer``.

One call does everything a knowledge turn needs, with no language model: retrieval over the entries, the
opening hours and the price items (one hybrid index, so English and Russian questions find all three), then

* an **entry** found with confidence is spoken from its own text, cut to one or two sentences for the phone;
* the **hours** found: the answer is computed from ``hours.yaml`` for the moment or day asked about;
* a **price** item found: an estimate from ``prices.yaml`` for a quantity said, else the unit price (an estimate);
* a **weak** match asks one clarifying question naming the closest entry, or offers a person; never a guess;
* **none**: nothing close; the text offers a person and the dialogue decides (the question shows a gap to fill).

So every figure, date and time the caller hears comes from the admin's files or from the code here.

For the dialogue: build one ``KnowledgeBase.from_config(config)`` per process (it raises ``ModelMissingError``
when the embedding model is not pulled) and share it between calls. ``answer`` is synchronous CPU work (the
query embedding, ~10-50 ms on 2 cores), so an asyncio session calls it in a thread:
``await asyncio.to_thread(kb.answer, text, datetime.now(UTC))``. Speak ``text`` for entry / hours / price;
a rephrasing may use only the figures in ``grounds``. After a weak answer the caller confirms or not: on a
yes, ``answer_document(entry_ids[0], question, now)`` answers from the confirmed document.

The folder is read at start and again whenever a file in it changes (size or mtime; checked at most every
``check_interval_s`` before an answer), so an admin's edit is live on the next question without a restart. A
bad file is reported (``problems``, and the log) and skipped; the bot keeps answering from the rest.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from voicebot.knowledge.actions import off_subject
from voicebot.knowledge.embed import Embedder
from voicebot.knowledge.files import Entry, KnowledgeFiles, PriceItem, Problem, folder_stamp, load_folder, plain_text
from voicebot.knowledge.hours import SOMEONE_IN, OpeningHours
from voicebot.knowledge.price_groups import compared_price, group_price
from voicebot.knowledge.prices import (SELLS, Estimate, counted_words, estimate, in_sentence, misprices, named_parts,
                                       names_item, naming_strength, quantity_in, say_estimate, say_estimates,
                                       say_prices, say_unit_price)
from voicebot.knowledge.price_asked import PRICE_WORDS, price_question, says_a_price
from voicebot.knowledge.retrieval import Document, Hit, HybridIndex, load_vectors, save_vectors, tokens

log = logging.getLogger(__name__)

AnswerKind = Literal["entry", "hours", "price", "weak", "none"]
HOURS_ID = "hours"
SPOKEN_MAX_CHARS = 220
OFFER_PERSON = "I don't have that information. Would you like me to connect you with a colleague?"
HOURS_KEYS = ("What are your opening hours?", "Are you open now?", "Are you open on Saturday?",
              "When do you close today?", "What time do you open tomorrow?", "Are you open on the 31st?")
_HOURS_WORDS = re.compile(r"\b(open(?!ings\b)\w*|clos\w*|hours?|work\w*|come (by|in|over)|visit|available|"
                          r"(any|some)(one|body) there|работа\w*|открыт\w*|закрыт\w*|час\w*)\b|" + SOMEONE_IN.pattern,
                          re.IGNORECASE)
_TOGETHER = re.compile(r"\b(together|both|in total|altogether|combined|all in)\b", re.IGNORECASE)
_COUNT = r"(\d+|a few|a dozen|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|" \
         r"forty|fifty|sixty|seventy|eighty|ninety|a hundred|hundred)"
_SELL_WORDS = re.compile(r"\b(sell|sells|selling|stock|stocks|carry|supply|in stock|available|discount\w*|"
                         r"(?:tell me|find out|know|hear|learn|information|info|details) (?:a bit |a little |some"
                         r"thing |more )?(?:about|on)|"
                         r"(?:do|does|can) (?:you|u|they) (?:do|offer|provide|have)|"
                         rf"(order|buy|purchase|get|need|want) (\w+ )?{_COUNT}|продаёте|продаете|"
                         r"есть ли у вас|в наличии)\b", re.IGNORECASE)
"""A question whether an item is sold ("do you sell standing desks?"), or a request to buy a number of it ("I'd like
to order 5 toner cartridges", "a discount if I order a hundred boxes?") is answered from the price list too: yes and
its price, or the estimate; before, the nearest entry answered the first ("we deliver and assemble furniture") and
the others were read back as leads with no figure."""
_LEADING_YES_NO = re.compile(r"^(?:yes|no|да|нет)(?:[.!]\s*|,?\s+(?!\d|(?:at|on|in|from|until|till|between|by|for|"
                             r"within|during|up|around|about|any|anytime|every|always|seven|twenty|one|two|only|"
                             r"just)\b))", re.IGNORECASE)
"""An entry's "Yes." or "No." answers its own question only. Said to a question with words its title, tags and
``asked:`` lines do not have, it is dropped and the rest is said: "do you deliver on Saturdays?" was answered "Yes.
Orders placed before 2 PM on a business day can be delivered the next business day", and "do you sell laptops?"
"Yes. We set up new laptops". A "Yes," that a clause follows goes too ("Yes, corkage is ..."); one before a fragment
(a number, a preposition: "Yes, 24 hours a day", "Yes, until 9 PM") stays:
"I have a burst pipe!" heard "24 hours a day, 7 days a week." of "Yes, 24 hours a day, 7 days a week."."""
_YES_NO_SENTENCE = re.compile(r"^(?:yes|no|да|нет)\b[^.!?]*[.!?]\s+(?=\S)", re.IGNORECASE)
"""An entry's first sentence when it is its yes or no ("Yes, 24 hours a day, 7 days a week.") and more follows:
asked a price ("Is an emergency call-out free?"), it is dropped when it says nothing of money and the rest does."""
_BOUGHT = re.compile(r"\b(?:i|we|you|they|she|he)(?: have| had|'ve|'d)? (?:ordered|bought|purchased|received|got)\b|"
                     r"\b(?:was|were|been|never|wasn't|weren't|it|they|got|had|have|has|hasn't|haven't)(?: not| never)? "
                     r"(?:delivered|sent|shipped)\b|\b(?:arrived|ordered)\b(?! (?:by|before))", re.IGNORECASE)
"""A count of a named price item the retrieval answers only weakly is a price question ("we need 40 chairs" scored
weak beside the greeting and the company's name around it, and the lead had no estimate), unless it speaks of what
was bought already ("I ordered 2 chairs last week"). An entry the retrieval is sure of keeps the question: "How much
is delivery for one chair?" is the delivery entry's, not one chair's price."""
PRICE_FIRST = 0.1  # how far behind an entry a named price item may be and still answer a "how much" question
SURE_ABOVE = 0.2  # a score this far above ``confident`` answers even without the margin
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(А-ЯЁ])")


@dataclass(frozen=True)
class KnowledgeAnswer:
    """What the bot would say to a knowledge question, and why.

    ``text`` is ready to speak. ``entry_ids`` names what answered (entry ids, ``hours``, ``price:<item id>``;
    for ``weak``, the candidates), for the call's record and the supervisors. ``score`` is the fused retrieval
    score of the best hit (0..1). ``estimate`` is set for a price answer with a quantity: the lead keeps it.
    ``grounds`` is the text a rephrasing may take figures, dates and times from: the whole entry for an entry
    (``text`` is cut from it), the computed sentence itself for hours and prices; empty when nothing answered."""

    kind: AnswerKind
    text: str
    entry_ids: tuple[str, ...] = ()
    score: float = 0.0
    estimate: Estimate | None = None
    hits: tuple[Hit, ...] = ()
    latency_s: float = 0.0
    grounds: str = ""
    also: tuple[Estimate, ...] = ()  # the other items' estimates, when one question priced several

    @property
    def answered(self) -> bool:
        return self.kind in ("entry", "hours", "price")


def spoken(answer: str, max_chars: int = SPOKEN_MAX_CHARS) -> str:
    """An entry's answer for the phone: its first sentence, and the second when both fit in ``max_chars``."""
    sentences = [s.strip() for s in _SENTENCE_END.split(plain_text(answer)) if s.strip()]
    if not sentences:
        return ""
    text = sentences[0]
    if len(sentences) > 1 and len(text) + 1 + len(sentences[1]) <= max_chars:
        text += " " + sentences[1]
    return text


def clarifying_question(entry_title: str) -> str:
    """A weak match: ask whether the caller meant the closest entry, and offer a person."""
    title = entry_title.strip().rstrip("?.!")
    title = title[:1].lower() + title[1:]
    return f"Just to check, is your question: {title}? If not, I can connect you with a colleague."


def clarifying_topic(topic: str) -> str:
    """A weak match on computed knowledge (hours, a price): ask about the topic, and offer a person."""
    return f"Just to check, are you asking about {topic}? If not, I can connect you with a colleague."


@dataclass(frozen=True)
class _Snapshot:
    """One reading of the folder and its index: swapped whole, so a question never sees half a reload."""

    files: KnowledgeFiles
    index: HybridIndex
    hours: OpeningHours | None
    entries: dict[str, Entry]
    items: dict[str, PriceItem]


class KnowledgeBase:
    """The knowledge folder, indexed for questions. Thread-safe: calls may ask while a reload swaps the index."""

    def __init__(self, folder: str | Path, embedder: Embedder, confident: float = 0.32, weak: float = 0.25,
                 margin: float = 0.10, check_interval_s: float = 1.0, vectors_file: Path | None = None):
        self.folder = Path(folder)
        self.embedder = embedder
        self.confident = confident
        self.weak = weak
        self.margin = margin
        self.check_interval_s = check_interval_s
        self.vectors_file = vectors_file  # embeddings kept between starts (None: only in memory)
        self._cache: dict = load_vectors(vectors_file, embedder.dim) if vectors_file else {}
        self._reloading = threading.Lock()
        self._checked_at = 0.0
        self._now = _Snapshot(KnowledgeFiles(self.folder), HybridIndex((), embedder, self._cache), None, {}, {})
        self.reload()

    @classmethod
    def from_config(cls, config, embedder: Embedder | None = None, store=None) -> KnowledgeBase:
        """The configured knowledge base; the embedding model is loaded through the model store unless given."""
        from voicebot.knowledge.embed import load_embedder

        k = config.knowledge
        return cls(config.path(k.dir), embedder or load_embedder(config, store), k.confident, k.weak, k.margin,
                   vectors_file=vectors_file(config))

    @property
    def files(self) -> KnowledgeFiles:
        return self._now.files

    @property
    def index(self) -> HybridIndex:
        return self._now.index

    @property
    def hours(self) -> OpeningHours | None:
        return self._now.hours

    @property
    def problems(self) -> tuple[Problem, ...]:
        return self._now.files.problems

    def misprices(self, sentence: str) -> bool:
        """Whether ``sentence`` gives the one price item it names an amount the price list cannot (``misprices``)."""
        return misprices(sentence, list(self._now.items.values()))

    def price_names(self) -> list[tuple[str, ...]]:
        """Each price item's name and aliases: the words callers use for what the company sells or does."""
        return [(item.name, *item.aliases) for item in self._now.items.values()]

    # -- loading -----------------------------------------------------------------------------------------------
    def reload(self) -> KnowledgeFiles:
        """Read the folder and build a new index; the old one answers until the new one is ready."""
        with self._reloading:
            return self._reload()

    def _reload(self) -> KnowledgeFiles:
        files = load_folder(self.folder)
        for problem in files.problems:
            log.warning("knowledge: %s", problem)
        documents = [Document(e.id, "entry", e.search_text, _entry_keys(e), plain_text(e.answer), e.tags)
                     for e in files.entries]
        hours = OpeningHours(files.hours) if files.hours is not None else None
        if hours is not None:
            documents.append(Document(HOURS_ID, "hours", "Opening hours, business hours: when we are open and "
                                      "closed, days and times, holidays. " + hours.summary(), HOURS_KEYS))
        items = {item.id: item for item in files.prices.items} if files.prices is not None else {}
        for item in items.values():
            names = (item.name, *item.aliases)
            documents.append(Document(f"price:{item.id}", "price",
                                      f"Price of {', '.join(names)}: cost per {item.unit}. {item.conditions}",
                                      tuple(f"How much does {n.lower()} cost?" for n in names), tags=names))
        before = len(self._cache)
        index = HybridIndex(documents, self.embedder, self._cache)
        if self.vectors_file is not None and len(self._cache) != before:
            save_vectors(self.vectors_file, self._cache, index.cache_keys)
        self._now = _Snapshot(files, index, hours, {e.id: e for e in files.entries}, items)
        self._checked_at = time.monotonic()
        return files

    def refresh(self, force: bool = False) -> bool:
        """Reload when a knowledge file changed since the last read; True when it did."""
        now = time.monotonic()
        if not force and now - self._checked_at < self.check_interval_s:
            return False
        self._checked_at = now
        if folder_stamp(self.folder) == self._now.files.stamp:
            return False
        if not self._reloading.acquire(blocking=False):
            return False  # another thread is reloading: answer from the current index meanwhile
        try:
            self._reload()
        finally:
            self._reloading.release()
        return True

    # -- asking ------------------------------------------------------------------------------------------------
    def entry(self, entry_id: str) -> Entry | None:
        return self._now.entries.get(entry_id)

    def search(self, question: str, top: int = 5) -> list[Hit]:
        self.refresh()
        return self.index.search(question, top)

    def answer(self, question: str, now: datetime) -> KnowledgeAnswer:
        """What to say to ``question`` asked at ``now`` (an aware datetime). Never raises for what the admin
        wrote; an empty or unanswerable question gives ``none``."""
        started = time.perf_counter()
        self.refresh()
        snap = self._now
        found = snap.index.search(question, top=8) if question.strip() else []
        hits = tuple(h for h in found if _fits(h, question))[:5]
        result = self._decide(question, now, hits, snap)
        return KnowledgeAnswer(result.kind, result.text, result.entry_ids, result.score, result.estimate, hits,
                               time.perf_counter() - started, result.grounds, result.also)

    def _decide(self, question: str, now: datetime, hits: tuple[Hit, ...], snap: _Snapshot) -> KnowledgeAnswer:
        entries, items = snap.entries, snap.items
        parts = named_parts(question, items.values()) if snap.files.prices is not None else []
        ids = tuple(f"price:{item.id}" for item, _ in parts)
        if len(parts) > 1 and not _BOUGHT.search(question) and any(
                quantity_in(part, counted_words(item)) for item, part in parts):
            text, ests = say_estimates(parts, snap.files.prices)  # "a quote for 25 standing desks and 25 chairs"
            return KnowledgeAnswer("price", text, ids, self.confident, ests[0], grounds=text, also=tuple(ests[1:]))
        if len(parts) > 1 and (PRICE_WORDS.search(question) or _TOGETHER.search(question)):
            text = say_prices([item for item, _ in parts], snap.files.prices)  # "a haircut and a beard trim
            return KnowledgeAnswer("price", text, ids, self.confident, grounds=text)  # together?": each, and the sum
        if (hits and hits[0].doc.kind == "entry" and (price_question(question) or SELLS.search(question))
                and not PRICE_WORDS.search(entries[hits[0].doc.id].title)):
            # "how much is furniture assembly?" wants the figure: a price item it names, close behind an entry that
            # only describes the service, answers it ("how much does shipping cost?" keeps "... for a desk?"); so
            # does "do you have any printer paper?" (the printer repair entry was 0.09 ahead)
            priced = next((h for h in hits[1:3] if h.doc.kind == "price" and h.score >= hits[0].score - PRICE_FIRST
                           and names_item(question, items[h.doc.id.removeprefix("price:")])), None)
            if priced is not None:
                hits = (priced, *(h for h in hits if h is not priced))
        decided = self._retrieved(question, now, hits, snap)
        if decided.kind not in ("entry", "hours") and snap.files.prices and not _BOUGHT.search(question) and (
                grouped := group_price(question, items.values(), snap.files.prices)):  # "your cheapest plan?"
            return KnowledgeAnswer("price", grouped[0], grouped[1], 1.0, grounds=grouped[0])  # computed: certain
        if decided.kind in ("weak", "none") and not _BOUGHT.search(question):
            counted = max((i for i in items.values() if names_item(question, i)
                           and quantity_in(question, counted_words(i)) is not None),
                          key=lambda i: naming_strength(question, i), default=None)
            if counted is not None:  # "Hi, this is Dana from Acme, we need 40 chairs for a new office."
                doc = next(d for d in snap.index.documents if d.id == f"price:{counted.id}")
                score = next((h.score for h in hits if h.doc is doc), self.confident)
                return self._from_document(doc, question, now, snap, max(score, self.confident))
        return decided

    def _retrieved(self, question: str, now: datetime, hits: tuple[Hit, ...], snap: _Snapshot) -> KnowledgeAnswer:
        """The answer the retrieval's hits give on their own (see ``_decide``)."""
        entries, items = snap.entries, snap.items
        if not hits or (top := hits[0]).score < self.weak:
            return KnowledgeAnswer("none", OFFER_PERSON, (), hits[0].score if hits else 0.0)
        lead = top.score - hits[1].score if len(hits) > 1 else top.score
        item = items.get(top.doc.id.removeprefix("price:")) if top.doc.kind == "price" else None
        if top.score < self.confident or (lead < self.margin and top.score < self.confident + SURE_ABOVE) or (
                top.doc.kind == "entry" and off_subject(question, entries[top.doc.id], entries)):  # sell, not repair
            candidates = tuple(h.doc.id for h in hits[:2] if h.score >= self.weak)
            if top.doc.kind == "entry":
                text = clarifying_question(entries[top.doc.id].title)
            elif item is not None:
                text = clarifying_topic(f"the price of the {in_sentence(item.name)}")
            else:
                text = clarifying_topic("our opening hours")
            return KnowledgeAnswer("weak", text, candidates, top.score)
        if item is not None and not names_item(question, item):  # "how much would twelve of them cost?" names no
            # item: never a price for a guessed one
            return KnowledgeAnswer("weak", clarifying_topic(f"the price of the {in_sentence(item.name)}"),
                                   (top.doc.id,), top.score)
        return self._from_document(top.doc, question, now, snap, top.score)

    def answer_document(self, document_id: str, question: str, now: datetime) -> KnowledgeAnswer:
        """The answer from one document (an entry id, ``hours``, ``price:<item id>``), e.g. the one a caller
        confirmed after a weak match; ``none`` when the id is unknown (the files changed since)."""
        snap = self._now
        doc = next((d for d in snap.index.documents if d.id == document_id), None)
        if doc is None:
            return KnowledgeAnswer("none", OFFER_PERSON)
        return self._from_document(doc, question, now, snap, 1.0)

    def compare(self, document_id: str, question: str) -> KnowledgeAnswer | None:
        """"Anything cheaper?" after the price of item ``price:<id>``: those of its kind below (or above) it
        (``price_groups.compared_price``); None when the question compares nothing or the item has no kind."""
        snap = self._now
        item = snap.items.get(document_id.removeprefix("price:"))
        if item is None or snap.files.prices is None:
            return None
        compared = compared_price(question, item, snap.items.values(), snap.files.prices)
        return None if compared is None else KnowledgeAnswer("price", compared[0], compared[1], 1.0,
                                                            grounds=compared[0])

    @staticmethod
    def _from_document(doc: Document, question: str, now: datetime, snap: _Snapshot,
                       score: float) -> KnowledgeAnswer:
        if doc.kind == "hours" and snap.hours is not None:
            text = snap.hours.answer(question, now)
            return KnowledgeAnswer("hours", text, (HOURS_ID,), score, grounds=text)
        if doc.kind == "price" and snap.files.prices is not None:
            item, prices = snap.items[doc.id.removeprefix("price:")], snap.files.prices
            quantity = quantity_in(question, counted_words(item))
            if quantity is None:
                text = say_unit_price(item, prices, question, price_question(question))
                return KnowledgeAnswer("price", text, (doc.id,), score, grounds=text)
            est = estimate(item, quantity, prices.currency)
            text = say_estimate(est, item, prices, quantity)
            return KnowledgeAnswer("price", text, (doc.id,), score, est, grounds=text)
        entry = snap.entries[doc.id]
        text = spoken(entry.answer)
        if not set(tokens(question)) <= set(tokens(" ".join((entry.title, *entry.tags, *entry.asked)))):
            first = _YES_NO_SENTENCE.match(text) if price_question(question) else None
            if first is not None and not says_a_price(first.group()) and says_a_price(text[first.end():]):
                text = text[first.end():]  # "Is an emergency call-out free?": "Yes, 24 hours a day, ..." is no answer
            text = _LEADING_YES_NO.sub("", text, count=1)
            text = text[:1].upper() + text[1:]
        return KnowledgeAnswer("entry", text, (entry.id,), score, grounds=plain_text(entry.answer))


def vectors_file(config) -> Path:
    """Where the knowledge base's embeddings are kept between starts: beside the model downloads."""
    return config.path(config.models.cache_dir) / "knowledge" / f"{config.knowledge.model}.npz"


def _entry_keys(entry: Entry) -> tuple[str, ...]:
    """The title, the title with its tags, and the admin's other phrasings (``asked:``)."""
    tagged = (f"{entry.title} ({', '.join(entry.tags)})",) if entry.tags else ()
    return (entry.title, *tagged, *entry.asked)


def _fits(hit: Hit, question: str) -> bool:
    """Computed answers only for questions of their kind: "how long is the guarantee on a desk?" is near the
    desk's price item, and "what's the weather tomorrow?" near "are you open tomorrow?"; neither is one."""
    if hit.doc.kind == "price":
        return bool(price_question(question) or _SELL_WORDS.search(question))
    if hit.doc.kind == "hours":
        return bool(_HOURS_WORDS.search(question))
    return True
