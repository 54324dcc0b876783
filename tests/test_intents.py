"""The intent step with the real multilingual-e5-small: labelled phrasings (tests/intent_phrasings.py, none
copied from the examples), a config's own examples, and the agent answering recognised requests without the
model."""

from __future__ import annotations

from datetime import date

import pytest
from conftest import morning_of

from fakes import ScriptedChat
from intent_phrasings import PHRASINGS
from voicebot.crm.repository import Repository
from voicebot.crm.seed import seed_demo
from voicebot.crm.verification import CallerContext
from voicebot.dialog.agent import DialogueAgent, IntentFound, Sentence, ToolCalled
from voicebot.dialog.intents import IntentClassifier

TODAY = date(2026, 11, 22)


def test_labelled_phrasings_are_mostly_recognised_and_small_talk_never(intent_classifier):
    right = wrong = left = small_talk = 0
    misses = []
    for text, label in PHRASINGS:
        found = intent_classifier.classify(text)
        name = found.name if found else None
        if label is None:
            small_talk += name is not None
        elif name == label:
            right += 1
        elif name is None:
            left += 1
        else:
            wrong += 1
            misses.append(f"{text!r}: {label} -> {name}")
    labelled = sum(1 for _, label in PHRASINGS if label)
    assert small_talk == 0  # chit-chat is never taken for a request
    assert right / labelled >= 0.8, misses  # measured: 68 of 84
    assert wrong / labelled <= 0.08, misses  # measured: 6 of 84; a wrong read-only answer, or a read-back


def test_an_admins_examples_teach_a_new_phrasing(intent_classifier):
    phrase = "my fax machine smells of burning toast"
    taught = IntentClassifier(intent_classifier.embedder, {"ticket": ["the fax machine smells of burning"]})
    found = taught.classify(phrase)
    assert found is not None and found.name == "ticket" and "fax" in found.example


def test_recognised_requests_are_answered_without_the_model(intent_classifier):
    repo = Repository.open(None, clock=morning_of(TODAY))
    seed_demo(repo, today=TODAY)
    chat = ScriptedChat()  # any model call fails the test
    agent = DialogueAgent(chat, CallerContext.start(repo, "+15550102030"), "Northwind.", today=TODAY,
                          intents=intent_classifier)
    events = list(agent.turn("Could you tell me what I bought from you the previous time?"))
    assert any(isinstance(e, IntentFound) and e.intent.name == "order_history" for e in events)
    assert "PIN" in [e for e in events if isinstance(e, Sentence)][-1].text
    events = list(agent.turn("1 2 3 4"))
    assert "most recent order, number 10452" in " ".join(e.text for e in events if isinstance(e, Sentence))
    events = list(agent.turn("The headset you sent me doesn't work at all"))
    assert not [e for e in events if isinstance(e, ToolCalled)]  # a write is read back first
    assert "ticket" in " ".join(e.text for e in events if isinstance(e, Sentence))
    called = [e for e in agent.turn("yes") if isinstance(e, ToolCalled)]
    assert called[0].name == "create_ticket" and called[0].args["subject"].startswith("The headset you sent")
    assert chat.calls == []


@pytest.mark.parametrize("text, small_talk", [
    ("Hello, how's your day going so far?", True), ("Good morning, how are you?", True), ("Tell me a joke", True),
    ("What are your opening hours?", False), ("How long does delivery usually take?", False),
    ("Do you sell coffee machines?", False), ("Where is my order?", False)])
def test_small_talk_is_told_apart_from_questions_for_the_knowledge_base(intent_classifier, text, small_talk):
    """Small talk goes to the model, never to a document that shares a word with it (a greeting asking how the
    day is going was answered with the next-day delivery entry)."""
    assert intent_classifier.is_small_talk(text) is small_talk


def test_a_stock_question_placed_as_a_lead_hears_the_price_and_no_read_back(intent_classifier, tmp_path):
    """"Is the ergonomic chair in stock?" (a lead by 0.022) heard the chair's price and then "I'll pass this to our
    sales team: Is the ergonomic chair in stock. Shall I send it?"; a count to buy still gets its estimate and the
    offer of a written quote."""
    from pathlib import Path

    from voicebot.dialog.knowledge_step import KnowledgeStep
    from voicebot.knowledge.base import KnowledgeBase

    repo = Repository.open(None, clock=morning_of(TODAY))
    seed_demo(repo, today=TODAY)
    kb = KnowledgeBase(Path(__file__).resolve().parents[1] / "knowledge", intent_classifier.embedder)
    agent = DialogueAgent(ScriptedChat(), CallerContext.start(repo, "+15550102030"), "Northwind.", today=TODAY,
                          intents=intent_classifier, knowledge=KnowledgeStep(kb))
    spoken = [e.text for e in agent.turn("Is the ergonomic chair in stock?") if isinstance(e, Sentence)]
    assert len(spoken) == 1 and "$189" in spoken[0] and agent.pending_write is None, spoken
    spoken = [e.text for e in agent.turn("I'd like to order 5 toner cartridges.") if isinstance(e, Sentence)]
    assert "For 5 cartridges" in spoken[0] and "written quote" in spoken[-1], spoken
    assert agent.pending_write is not None and agent.pending_write.tool == "create_lead"


def test_a_knowledge_question_asked_with_a_request_is_answered_too(intent_classifier, knowledge_base):
    """"Where's my order, and are you open on Saturday?" heard the PIN question and nothing about Saturday."""
    from datetime import UTC, datetime

    from voicebot.dialog.knowledge_step import KnowledgeStep
    from voicebot.dialog.recognised import clauses

    assert clauses("Where is my order and when do you close today?") == ["Where is my order",
                                                                         "when do you close today"]
    assert clauses("My printer is broken and I need it fixed") == ["My printer is broken and I need it fixed"]
    repo = Repository.open(None, clock=morning_of(TODAY))
    seed_demo(repo, today=TODAY)
    step = KnowledgeStep(knowledge_base, clock=lambda: datetime(2026, 11, 23, 17, 0, tzinfo=UTC))  # Monday, 9 AM PT
    agent = DialogueAgent(ScriptedChat(), CallerContext.start(repo, "+15550102030"), "Northwind.", today=TODAY,
                          intents=intent_classifier, knowledge=step)
    spoken = [e.text for e in agent.turn("Hi, two questions: where's my order, and are you open on Saturday?")
              if isinstance(e, Sentence)]
    assert spoken == ["On Saturday, November 28, we're open from 9 AM to 1 PM.",
                      "For your security, please tell me your PIN."], spoken
    # one question alone is answered once
    spoken = [e.text for e in agent.turn("Are you open on Saturday?") if isinstance(e, Sentence)]
    assert len(spoken) == 1


@pytest.mark.parametrize("text", ["I placed an order on Monday, where is it now?",
                                  "Has the chair I ordered been sent out?"])
def test_order_status_and_history_are_one_family_for_the_margin(intent_classifier, text):
    """Each was order status by under 0.005 over order history, so it went to the model; both read the caller's
    orders after the PIN, so the margin that counts is the one to the best intent outside the two."""
    found = intent_classifier.classify(text)
    assert found is not None and found.name in ("order_status", "order_history"), found
