"""Demo calls that ask the company's knowledge (issue 15): answered turns that name their entry, and questions
the knowledge base could not answer, so the demo's call pages show "which entry answered each turn" and its
"Unanswered" page has groups with counts.

Why built from the files and not written out like ``scenarios.py``: every answer here is what the bot would say.
An entry's answer is cut for the phone by the knowledge base's own ``spoken``; the opening hours are computed
for the call's own date and time; a price estimate is computed from the price list. So the demo cannot drift
from the demo knowledge base, and it needs no model (retrieval is not run: the scripts name the entry each
question is about, with a plausible score). A script whose entry or price item is gone from the folder is
left out.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from voicebot.events import EventKind, TransferReason
from voicebot.knowledge.base import HOURS_ID, OFFER_PERSON, clarifying_question, spoken
from voicebot.knowledge.files import KnowledgeFiles, load_folder
from voicebot.knowledge.hours import OpeningHours
from voicebot.knowledge.prices import counted_words, estimate, quantity_in, say_estimate
from voicebot.review.scenarios import GREETING, TRANSFER, Line, Scenario, bot, caller
from voicebot.store import Outcome

DEMO_KNOWLEDGE = Path(__file__).resolve().parent.parent.parent / "knowledge"

# Questions the demo base has no answer for, each in a few wordings (they group on the Unanswered page).
UNANSWERED = (
    ("Do you rent out projectors for events?", "Can I rent a projector for a weekend?",
     "Is it possible to rent a projector from you?"),
    ("Do you sell gift cards?", "Can I buy a gift card for a colleague?"),
    ("Do you have a loyalty program?", "Is there a loyalty program for regular customers?"),
)
# (question, the entry it is close to, what the caller says to "is your question: ...?")
WEAK = (
    ("Do you buy back used office furniture?", "services/do-you-take-away-old-furniture-or-electronics",
     "No, I want to sell you our old desks."),
    ("Can you print our company logo on notebooks?", "company/do-you-have-a-catalog", "No, that's not it."),
)
ANSWERED = (  # (question, entry id)
    ("Can I still send back a chair I bought two weeks ago?", "returns/what-is-your-return-policy"),
    ("How soon would the paper get here?", "delivery/how-long-does-delivery-take"),
    ("Where exactly is your showroom?", "company/where-are-you-located"),
    ("Can I pay with PayPal?", "payment/which-payment-methods-do-you-accept"),
    ("Can you get it to me by tomorrow?", "delivery/do-you-offer-next-day-delivery"),
)
HOURS_QUESTIONS = ("Are you open on Saturday?", "What time do you close today?", "Are you open right now?")
PRICE_QUESTIONS = (("How much would 20 office chairs cost?", "office-chair"),
                   ("What would 12 standing desks cost?", "standing-desk"),
                   ("Price for 30 boxes of copy paper?", "copy-paper"))
_BYE = (caller("Great, that's all I needed. Bye."), bot("Thank you for calling. Goodbye.", fixed=True))


def _event(kind: str, entry_ids: tuple[str, ...], score: float, question: str) -> tuple[str, Mapping[str, Any]]:
    return (EventKind.KNOWLEDGE, {"answer": kind, "entry_ids": list(entry_ids), "score": round(score, 4),
                                  "question": question})


class _Answers:
    """The demo base's answers, as the knowledge base would give them at ``when``."""

    def __init__(self, files: KnowledgeFiles, when: datetime, rng: random.Random):
        self.files, self.when, self.rng = files, when, rng
        self.entries = {e.id: e for e in files.entries}
        self.items = {i.id: i for i in files.prices.items} if files.prices is not None else {}

    def entry(self, question: str, entry_id: str) -> tuple[Line, Line] | None:
        entry = self.entries.get(entry_id)
        if entry is None:
            return None
        return caller(question), bot(spoken(entry.answer), events=(
            _event("entry", (entry_id,), self.rng.uniform(0.5, 0.85), question),))

    def hours(self, question: str) -> tuple[Line, Line] | None:
        if self.files.hours is None:
            return None
        return caller(question), bot(OpeningHours(self.files.hours).answer(question, self.when), events=(
            _event("hours", (HOURS_ID,), self.rng.uniform(0.55, 0.9), question),))

    def price(self, question: str, item_id: str) -> tuple[Line, Line] | None:
        item, prices = self.items.get(item_id), self.files.prices
        quantity = quantity_in(question, counted_words(item)) if item is not None else None
        if item is None or prices is None or quantity is None:
            return None
        text = say_estimate(estimate(item, quantity, prices.currency), item, prices, quantity)
        return caller(question), bot(text, events=(
            _event("price", (f"price:{item_id}",), self.rng.uniform(0.6, 0.9), question),))


def knowledge_scenarios(files: KnowledgeFiles, when: datetime, rng: random.Random) -> list[Scenario]:
    """The knowledge scripts for a call at ``when`` (each wording and entry drawn with ``rng``)."""
    a = _Answers(files, when, rng)
    out: list[Scenario] = []
    asked = [a.entry(*rng.choice(ANSWERED)), a.hours(rng.choice(HOURS_QUESTIONS)),
             a.entry(*rng.choice(ANSWERED))]
    if all(asked) and asked[0] != asked[2]:
        out.append(Scenario(
            "knowledge questions", 14, "knowledge", Outcome.RESOLVED, "caller hung up",
            "{name} asked three questions; each was answered from the knowledge base.",
            "Knowledge questions answered.",
            (bot(GREETING, fixed=True), *(line for pair in asked for line in pair), *_BYE)))
    priced, delivery = a.price(*rng.choice(PRICE_QUESTIONS)), a.entry(*ANSWERED[1])
    if priced and delivery:
        out.append(Scenario(
            "price estimate", 8, "pricing", Outcome.RESOLVED, "caller hung up",
            "{name} asked for a price; the bot gave an estimate computed from the price list.",
            "Price estimate given.", (bot(GREETING, fixed=True), *priced, *delivery, *_BYE)))
    question = rng.choice(rng.choice(UNANSWERED))
    transfer = ((EventKind.TRANSFER_REQUESTED, {"reason": TransferReason.OPERATOR_REQUEST,
                                                "target": "sip:operator@127.0.0.1:5070"}),
                (EventKind.TRANSFER_RESULT, {"ok": True, "status": 200, "reason": "OK"}))
    out.append(Scenario(
        "unanswered question", 9, "knowledge", Outcome.TRANSFERRED, TransferReason.OPERATOR_REQUEST,
        "{name} asked something the knowledge base has no answer for and was put through to a person.",
        f"Caller asked: {question} (not in the knowledge base).", (
            bot(GREETING, fixed=True),
            caller(question),
            bot(OFFER_PERSON, events=(_event("none", (), rng.uniform(0.05, 0.24), question),)),
            caller("Yes, please."),
            bot(TRANSFER, fixed=True, events=transfer))))
    question, near, reply = rng.choice(WEAK)
    if near in a.entries:
        out.append(Scenario(
            "unclear question", 5, "knowledge", Outcome.RESOLVED, "caller hung up",
            "{name} asked something the knowledge base only came close to; the bot asked back and the caller "
            "did not want a person.", f"Caller asked: {question} (not answered).", (
                bot(GREETING, fixed=True),
                caller(question),
                bot(clarifying_question(a.entries[near].title),
                    events=(_event("weak", (near,), rng.uniform(0.26, 0.31), question),)),
                caller(reply),
                bot(OFFER_PERSON),
                caller("No thanks, I'll email you. Bye."),
                bot("Thank you for calling. Goodbye.", fixed=True))))
    return out


def load_demo_knowledge(folder: Path | None = DEMO_KNOWLEDGE) -> KnowledgeFiles | None:
    """The knowledge files the demo's scripts answer from (None: no folder, no knowledge calls)."""
    if folder is None or not folder.is_dir():
        return None
    return load_folder(folder)
