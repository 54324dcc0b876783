"""What the caller wants, recognised in code: nearest examples in an embedding space, no generated JSON.

Why: on 2 cores the 1.5B model needs seconds to write ~20 tokens of JSON, and it chose wrong tools ("what are
your opening hours?" got furniture-fitting slots three times out of three). Most requests are one of a few
kinds, so each kind has example utterances (defaults here, more from ``dialog.intents`` in the config), embedded
once at start with multilingual-e5-small (English, Russian and ~100 languages, ~10 ms a query). A caller turn is
embedded and compared with every example; the intent of the nearest examples wins when it is both close enough
(``threshold``) and clearly ahead of the best other intent (``margin``). Anything less is left to the model,
which still sees only the node's tools. e5 puts all sentences fairly close (cosines of 0.8 are common), so the
margin matters as much as the threshold: both were set on the phrasings in tests/test_intents.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from voicebot.knowledge.embed import Embedder

OTHER = "other"

DEFAULT_EXAMPLES: dict[str, tuple[str, ...]] = {
    "order_status": (
        "where is my order", "has my order shipped yet", "when will my package arrive", "I'm still waiting for my "
        "delivery", "can you track my parcel", "what's the status of my order", "my order hasn't come",
        "is my delivery on its way", "when is my stuff coming", "I want to check on an order",
        "has it been dispatched", "my delivery is overdue", "when should I expect the goods", "did you send my order",
        "I'm calling about my order", "it still hasn't shown up", "где мой заказ", "когда придёт моя посылка",
    ),
    "order_history": (
        "what did I order last time", "what was my previous order", "can you tell me what I bought before",
        "I want to reorder what I got last month", "what have I ordered from you", "my order history",
        "which products did we get from you last time", "read me my recent purchases", "can you look up my account",
        "what's on my account",
        "что я заказывал в прошлый раз",
    ),
    "booking": (
        "I need a repair visit", "can someone come and fix my printer", "I'd like to book an appointment",
        "when can a technician come", "can you send someone to set up my laptop", "I need the furniture assembled",
        "do you have a free slot next week", "book me a service visit", "my printer needs servicing, when can you "
        "come", "I want to schedule a repair", "I need a technician to install something",
        "can you come on Friday to assemble the desks", "I'd like to make an appointment", "can you see me today",
        "can I come in tomorrow", "is there an opening on Thursday", "when is the earliest you can fit me in",
        "do you have any availability this week", "I need an appointment for my son", "запишите меня на ремонт",
    ),
    "reschedule": (
        "I need to move my appointment to another time", "can I reschedule my repair visit", "I won't be home when "
        "the technician comes, can we change the appointment", "I'd like to change the time of my booking",
        "can we push my service visit back", "I can't make my appointment, can we move it", "I want my repair "
        "appointment moved", "is it possible to bring my visit forward", "I have to postpone the technician",
        "the visit I booked needs to be on a different day", "the laptop setup has to move to another week",
        "перенесите мою запись на другой день",
    ),
    "ticket_status": (
        "what's the status of my ticket", "any update on my support case", "is my ticket still open",
        "what happened with my ticket", "is there any news on my case number", "has my ticket been closed",
        "did anyone look at my complaint", "what came of the problem I reported", "что с моей заявкой",
    ),
    "my_appointments": (
        "when is my appointment", "what time is the technician coming", "do I have a booking with you",
        "remind me when my repair visit is", "is my laptop setup still on", "what day is my furniture fitting",
        "when is the engineer booked to come", "can you check my appointment time", "when's my next appointment",
        "have I got anything booked", "what have I got booked with you", "is my repair visit still going ahead",
        "is the technician still coming", "когда придёт мастер",
    ),
    "cancel_booking": (
        "I want to cancel my appointment", "please cancel the technician visit", "we don't need the repair visit "
        "any more", "cancel my booking please", "call off the visit, we don't need it", "we no longer need "
        "the engineer to come", "can you cancel the service visit I booked", "I won't need the "
        "laptop setup after all", "drop my appointment please", "I booked a repair visit but I want to cancel it",
        "отмените мою запись",
    ),
    "ticket": (
        "the chair arrived broken", "you sent me the wrong item", "something is missing from my delivery",
        "I want to make a complaint", "the desk is damaged", "the product is faulty", "I'd like to report a problem "
        "with my order", "it stopped working after a week", "the parcel was damaged in transit",
        "I received the wrong colour", "part of the delivery is missing", "the item is scratched and dented",
        "the printer you sold me keeps breaking down", "it makes a horrible noise", "it broke after only a few days",
        "I'm unhappy with the quality of what you sent", "the screen has a crack in it",
        "I already tried that and it still doesn't work", "I restarted it but the problem is still there",
        "it keeps cutting out", "I was charged twice", "there's a wrong charge on my bill",
        "товар пришёл сломанным",
    ),
    "lead": (
        "I'd like a quote for fifty desks", "how much would twenty chairs cost", "we want to buy office furniture",
        "I'm interested in buying printers for our office", "can I get a price for bulk paper", "we're opening a new "
        "office and need equipment", "do you offer discounts for large orders", "I want to place a big order",
        "can you send me a written quote", "сколько стоят офисные стулья",
    ),
    "callback": (
        "can someone call me back", "please have a colleague ring me later", "I'd like a callback",
        "call me back tomorrow", "can you get someone to phone me", "I can't talk now, call me later",
        "перезвоните мне пожалуйста",
    ),
    "knowledge": (
        "what are your opening hours", "are you open on saturday", "what is your return policy",
        "how long does delivery take", "do you deliver to my area", "where is your shop", "what payment methods do "
        "you accept", "how much is shipping", "do you have a warranty", "can I return an item",
        "what time do you open", "how do I send something back", "what does delivery cost",
        "what makes you different from other suppliers", "why should I buy from you", "tell me about your company",
        "what kind of products do you sell", "do you sell printer paper", "how do I open an account",
        "when will I get my refund",
        "I still haven't got my money back",
        "когда вы работаете", "как вернуть товар",
    ),
    OTHER: (
        "hello", "hello, can you hear me", "yes", "no", "okay", "thanks a lot", "thank you, bye", "um, I'm not sure",
        "tell me a joke", "what's the weather like", "my name is Sam", "who are you", "I like football",
        "I need help", "can you help me", "I have a question",
        "sorry, I was talking to someone else", "hold on a second", "is this the right number",
        "the repair visit went well, thank you", "алло", "да",
        "спасибо",
    ),
}
"""Example utterances per intent. An admin adds more (or other languages) in ``dialog.intents``. ``other``
holds what is no request at all: when it is nearest, the turn goes to the model as if nothing matched."""


TOP_K = 3
FAMILIES = (frozenset({"order_status", "order_history"}),)
"""Intents that read the same records the same way (the PIN, then the caller's orders): the margin that counts is
the one to the best intent outside the family. "I placed an order on Monday, where is it now?" was order status by
0.004 over order history and so went to the model, though both answer it from the caller's orders."""


@dataclass(frozen=True)
class Intent:
    name: str
    score: float  # cosine of the nearest example of this intent
    margin: float  # ahead of the best other intent by this much
    example: str  # the nearest example (for the call's record: why this intent)


class IntentClassifier:
    """Nearest-example intent recognition over an ``Embedder``. Thread-safe as its embedder is."""

    def __init__(self, embedder: Embedder, examples: Mapping[str, Sequence[str]] | None = None, *,
                 threshold: float = 0.84, margin: float = 0.005):
        merged: dict[str, list[str]] = {name: list(texts) for name, texts in DEFAULT_EXAMPLES.items()}
        for name, texts in (examples or {}).items():
            merged.setdefault(name, []).extend(texts)
        self.embedder, self.threshold, self.margin = embedder, threshold, margin
        self._labels = [name for name, texts in merged.items() for _ in texts]
        self._texts = [text for texts in merged.values() for text in texts]
        self._vectors = embedder.queries(self._texts)  # symmetric task: both sides are "query:"
        self.names = tuple(merged)

    def scores(self, text: str) -> dict[str, tuple[float, str]]:
        """Per intent: the mean cosine of its ``TOP_K`` nearest examples (one lucky example is weak evidence),
        and the nearest example."""
        sims = self._vectors @ self.embedder.queries([text])[0]
        per: dict[str, list[tuple[float, str]]] = {}
        for label, example, sim in zip(self._labels, self._texts, sims.tolist(), strict=True):
            per.setdefault(label, []).append((sim, example))
        out = {}
        for label, pairs in per.items():
            pairs.sort(reverse=True)
            out[label] = (float(np.mean([p[0] for p in pairs[:TOP_K]])), pairs[0][1])
        return out

    def classify(self, text: str) -> Intent | None:
        """The caller's intent, or None when no intent is both close enough and clearly ahead."""
        if not text.strip():
            return None
        ranked = sorted(self.scores(text).items(), key=lambda kv: kv[1][0], reverse=True)
        name, (score, example) = ranked[0]
        family = next((f for f in FAMILIES if name in f), {name})
        margin = score - next((other for n, (other, _) in ranked[1:] if n not in family), 0.0)
        if name == OTHER or score < self.threshold or margin < self.margin:
            return None
        return Intent(name, round(float(score), 4), round(float(margin), 4), example)

    def is_small_talk(self, text: str) -> bool:
        """Whether ``text`` is nearest to ``other`` (greetings, thanks, chit-chat) and close to it: no question for
        the knowledge base either, so such a turn goes to the model rather than to a document that shares a word
        with it ("how's your day going?" is not a question about next-day delivery)."""
        if not text.strip():
            return False
        name, (score, _example) = max(self.scores(text).items(), key=lambda kv: kv[1][0])
        return name == OTHER and score >= self.threshold


def cosine_table(classifier: IntentClassifier, texts: Sequence[str]) -> np.ndarray:
    """(len(texts), intents) best cosines: for calibrating thresholds on a labelled set."""
    return np.array([[classifier.scores(t)[n][0] for n in classifier.names] for t in texts])
