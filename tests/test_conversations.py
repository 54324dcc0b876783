"""Ten scripted calls, 40+ caller turns, through the simulated line with the real models (Piper as the caller,
Whisper, webrtcvad, the intent step, the knowledge base, the CRM and, where nothing in code places a turn, the
1.5B model). Each turn names what the bot's reply must (and must not) contain, checked on the bot's own text in
the call store; each call ends with the CRM rows it must have written, and no others.

These are the issue's failures as conversations: invented callback reasons, "next Tuesday" answered with
Monday, unknown numbers never asked to verify, no order history, "are you a robot?" transferring, knowledge
questions answered by the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from conftest import ALICE, caller_says, run_call
from voicebot.telephony.sim import HangUp, WaitForBot

UNKNOWN = "+15559990000"
OPERATOR = "sip:operator@127.0.0.1:5070"


@dataclass(frozen=True)
class Turn:
    says: str
    has: tuple[str, ...] = ()  # every one of these is in the bot's reply
    lacks: tuple[str, ...] = ()  # none of these is


@dataclass(frozen=True)
class Conversation:
    name: str
    turns: tuple[Turn, ...]
    caller: str = ALICE
    writes: dict[str, int] = field(default_factory=dict)  # CRM table -> rows added
    transferred: bool = False


def t(says: str, *has: str, lacks: tuple[str, ...] = ()) -> Turn:
    return Turn(says, has, lacks)


CONVERSATIONS = [
    Conversation("known caller: status, then history", (
        t("Hi, where is my order?", "PIN", lacks=("10452",)),
        t("one two three four", "10452", "UPS", "November 24"),
        t("What did I order last time?", "most recent order", "10452"),
        t("Thank you, that's all.", lacks=("99",)),
    )),
    Conversation("unknown number identifies with an order number", (
        t("Where is my order 10452?", "PIN", lacks=("UPS", "shipped")),
        t("one two three four", "10452", "UPS"),
        t("When will it arrive?", lacks=("2027",)),
        t("Great, thanks.", lacks=("99",)),
    ), caller=UNKNOWN),
    Conversation("a made-up order number gets the same questions and cannot pass", (
        # the number first: whisper-base dropped a trailing "99,999" on one machine's CPU (the same audio, 0.5 s
        # more silence after it, was heard whole), and this call is about verification, not recognition
        t("My order number is 99999, where is it?", "PIN", lacks=("find", "exist")),
        t("one two three four", "did not match"),
        t("four three two one", "did not match"),
        t("one one one one", "connect you"),
    ), caller=UNKNOWN, transferred=True),
    Conversation("a repair visit on the caller's day, read back, booked", (
        t("My printer keeps jamming. Can someone come on December 1st in the afternoon?", "December 1st", "3 PM"),
        t("Three PM would be great.", "Shall I book it?"),
        t("Yes, please.", "booked", "December 1st"),
        t("No, that's everything.", lacks=("booked for",)),
    ), writes={"bookings": 1}),
    Conversation("a damaged delivery becomes a ticket in the caller's words", (
        t("The chair you delivered arrived broken.", "ticket", "chair"),
        t("Yes, that's right.", "ticket for you, number"),
        t("Thanks. Can you also tell me your opening hours on Saturday?", "Saturday", "9 AM"),
        t("Perfect, bye.", lacks=("ticket for you",)),
    ), writes={"tickets": 1}),
    Conversation("a callback read back and declined writes nothing", (
        t("Could someone call me back tomorrow morning?", "call you back", "November 23rd", "morning"),
        t("No, don't do that.", "won't"),
        t("Actually, what is your return policy?", "30 days"),
        t("Okay, thank you.", lacks=("call you back",)),
    )),
    Conversation("knowledge questions are answered from the company's files", (
        t("What is your return policy?", "30 days"),
        t("Are you open on Saturday?", "Saturday", "9 AM", "1 PM"),
        t("Do you deliver on weekends?", lacks=("I'm not sure",)),
        t("And how can I pay?", lacks=("I'm not sure",)),
    )),
    Conversation("a question about the bot, then a real request for a person", (
        t("Am I talking to a real person?", "automated assistant", "operator"),
        t("Okay. Where is my order?", "PIN"),
        t("one two three four", "10452"),
        t("Real person, please.", "connect you"),
    ), transferred=True),
    Conversation("a price, then a written quote with the estimate", (
        t("How much would fifty office chairs cost?", "estimate", "$", "written quote"),
        t("Yes, please.", "sales team"),
        t("What is your delivery time for chairs?", lacks=("$1",)),
        t("Thanks, goodbye.", lacks=("$",)),
    ), writes={"leads": 1}),
    Conversation("an unknown number asks for its history and identifies by phone", (
        t("Can you tell me what I ordered last time?", "phone number on your account"),
        t("My number is five five five, zero one zero, two zero three zero.", "PIN"),
        t("one two three four", "most recent order", "10452"),
        t("That's all, thanks.", lacks=("10398 was placed on Monday",)),
    ), caller=UNKNOWN),
]


def test_the_set_has_ten_calls_and_forty_caller_turns():
    assert len(CONVERSATIONS) >= 10 and sum(len(c.turns) for c in CONVERSATIONS) >= 40


@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=[c.name for c in CONVERSATIONS])
def test_conversation(call_env, caller_voice, conversation):
    script = [WaitForBot()]
    for turn in conversation.turns:
        script += [caller_says(caller_voice, turn.says), WaitForBot()]
    before = call_env.crm.counts()
    line, _ = run_call(call_env, [*script, HangUp()], caller_id=conversation.caller)

    turns = call_env.store.turns(line.info.call_id)
    callers = [t.text for t in turns if t.role == "caller"]
    bots = [t.text for t in turns if t.role == "bot"][1:]  # after the greeting
    transcript = "\n".join(f"{t.role}: {t.text}" for t in turns)
    for i, turn in enumerate(conversation.turns):
        if i >= len(bots):
            assert conversation.transferred, f"no reply to {turn.says!r}:\n{transcript}"
            break
        reply = bots[i]
        for phrase in turn.has:
            assert phrase.lower() in reply.lower(), f"{phrase!r} missing after {callers[i]!r}:\n{transcript}"
        for phrase in turn.lacks:
            assert phrase.lower() not in reply.lower(), f"{phrase!r} said after {callers[i]!r}:\n{transcript}"
    assert (line.transfers == [OPERATOR]) is conversation.transferred, transcript
    after = call_env.crm.counts()
    for table in ("bookings", "tickets", "leads", "callbacks"):
        added = after.get(table, 0) - before.get(table, 0)
        assert added == conversation.writes.get(table, 0), f"{table}: {added} rows written\n{transcript}"
