"""The demo's call scripts (data for ``voicebot.review.demo``): what callers say, what the bot does, how it ends.

``{name}`` in a line is the caller's first name. Bot lines marked ``fixed`` are cached prompts (greeting,
transfer notice) that play at once; other bot lines answer the caller line before them, with measured latency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from voicebot.events import EventKind
from voicebot.store import Outcome

GREETING = ("Hello, you are speaking with the automated assistant of Northwind Supplies. How can I help you "
            "today? You can say operator at any time.")
TRANSFER = "I'll connect you with a colleague now. Please hold."


@dataclass(frozen=True)
class Line:
    role: str  # "bot", "caller" or "pause" (a silence of ``pause`` seconds)
    text: str = ""
    tools: tuple[Mapping[str, Any], ...] = ()
    events: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    guard: str | None = None
    barge_in: bool = False
    fixed: bool = False
    pause: float | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    weight: float
    topic: str
    outcome: Outcome
    reason: str | None
    summary: str
    handover: str
    lines: tuple[Line, ...]
    qa: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # criterion -> (low, high) score
    reasons: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    slow: bool = False


def bot(text: str, **kw: Any) -> Line:
    return Line("bot", text, **kw)


def caller(text: str, **kw: Any) -> Line:
    return Line("caller", text, **kw)


def tool(name: str, arguments: Mapping[str, Any], result: Any) -> Mapping[str, Any]:
    return {"name": name, "arguments": dict(arguments), "result": result}


_ORDER = {"number": "10452", "status": "shipped", "carrier": "UPS", "eta": "2026-03-05", "items": ["Ergonomic chair"]}
_TRANSFER_OK = ((EventKind.TRANSFER_REQUESTED, {"reason": "operator_request", "target": "sip:operator@127.0.0.1:5070"}),
                (EventKind.TRANSFER_RESULT, {"ok": True, "status": 200, "reason": "OK"}))

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("order status", 30, "order_status", Outcome.RESOLVED, "caller hung up",
             "{name} asked where order 10452 is; it has shipped with UPS and arrives on March 5.",
             "Order status for 10452: shipped, ETA March 5.", (
                 bot(GREETING, fixed=True),
                 caller("Hi, I'd like to know where my order is. The number is one zero four five two."),
                 bot("Your order 10452 has shipped with UPS and should arrive on March 5.",
                     tools=(tool("order_status", {"number": "10452"}, _ORDER),),
                     events=((EventKind.TOOL_CALL, {"tool": "order_status", "args": {"number": "10452"}, "result": _ORDER}),)),
                 caller("Great, thank you so much."),
                 bot("You're welcome. Is there anything else I can help with?"),
                 caller("No, that's all. Bye."),
                 bot("Thank you for calling. Goodbye.", fixed=True))),
    Scenario("late delivery", 12, "delivery_problem", Outcome.RESOLVED, "ticket created",
             "{name}'s order is delayed a second time; the bot apologised and opened a high-priority ticket.",
             "Delayed order 10461; ticket 88 opened.", (
                 bot(GREETING, fixed=True),
                 caller("My order still hasn't arrived and it's already a week late. This is really annoying."),
                 bot("I'm sorry about the wait. Order 10461 is delayed at the carrier; the new estimate is Friday.",
                     tools=(tool("order_status", {"number": "10461"},
                                 {"number": "10461", "status": "delayed", "eta": "2026-03-06"}),)),
                 caller("Friday? That's not good enough, I needed it for Monday."),
                 bot("I understand. I've opened a priority ticket so a colleague follows up with the carrier today.",
                     tools=(tool("create_ticket", {"subject": "Delayed order 10461", "priority": "high"},
                                 {"ticket_id": 88}),)),
                 caller("Okay. Thanks, I guess."),
                 bot("Thank you for calling. Goodbye.", fixed=True)),
             qa={"empathy": (3, 5)}),
    Scenario("repair visit", 12, "repair_visit", Outcome.RESOLVED, "booking made",
             "{name} booked a printer repair visit for Tuesday at 10 am.", "Repair visit booked: Tuesday 10:00.", (
                 bot(GREETING, fixed=True),
                 caller("Hello, our office printer is broken, can someone come and fix it?"),
                 bot("I can book a technician. The next free slots are Tuesday at 10 am or Wednesday at 2 pm.",
                     tools=(tool("list_free_slots", {"service": "printer repair"},
                                 [{"id": 31, "starts_at": "2026-03-10T10:00"}, {"id": 32, "starts_at": "2026-03-11T14:00"}]),)),
                 caller("Tuesday at ten works."),
                 bot("Done: a technician will visit on Tuesday at 10 am.",
                     tools=(tool("book_slot", {"slot_id": 31}, {"booking_id": 140}),)),
                 caller("Perfect, thanks."),
                 bot("Thank you for calling. Goodbye.", fixed=True))),
    Scenario("card number", 8, "billing", Outcome.TRANSFERRED, "model",
             "{name} wanted to pay an invoice by card and read the card number aloud; the bot declined to take card "
             "details and transferred the call to billing.", "Invoice payment by card; caller read a card number.", (
                 bot(GREETING, fixed=True),
                 caller("I want to pay my invoice. My card number is 4111 1111 1111 1111, expiry next May."),
                 bot("For your security I can't take card details on this line. Let me connect you with billing."),
                 bot(TRANSFER, fixed=True, events=((EventKind.TRANSFER_REQUESTED, {"reason": "model", "target":
                                                    "sip:operator@127.0.0.1:5070"}),
                                                   (EventKind.TRANSFER_RESULT, {"ok": True, "status": 200, "reason": "OK"}))))),
    Scenario("operator", 10, "other", Outcome.TRANSFERRED, "operator_request",
             "{name} asked for a person at once and was transferred.", "Caller asked for an operator.", (
                 bot(GREETING, fixed=True, barge_in=True),
                 caller("Operator.", pause=0.2, events=((EventKind.ESCALATION, {"reason": "operator_request",
                                                                        "detail": "said 'operator'"}),)),
                 bot(TRANSFER, fixed=True, events=_TRANSFER_OK))),
    Scenario("upset caller", 7, "complaint", Outcome.TRANSFERRED, "frustration",
             "{name} complained about a wrong item delivered twice and was handed to a person when the frustration "
             "showed.", "Wrong item delivered twice; caller angry.", (
                 bot(GREETING, fixed=True),
                 caller("You sent me the wrong chair. Again. Second time this month."),
                 bot("I'm sorry to hear that. Could you tell me the order number?"),
                 caller("This is ridiculous, I already gave it last time! Useless.",
                        events=((EventKind.ESCALATION, {"reason": "frustration", "detail": "angry: 'ridiculous'"}),)),
                 bot("I'm sorry about this. Let me get you to a person who can help.", fixed=True,
                     events=_TRANSFER_OK)),
             qa={"empathy": (2, 4), "structure": (3, 4)}),
    Scenario("transfer failed", 5, "returns_refunds", Outcome.TRANSFER_FAILED, "operator_request; callback 12",
             "{name} wanted to return a desk; no agent was free, so a callback was arranged.",
             "Return of a desk; transfer failed, callback requested.", (
                 bot(GREETING, fixed=True),
                 caller("I want to return a desk, can I talk to a person please?",
                        events=((EventKind.ESCALATION, {"reason": "operator_request", "detail": "said 'person'"}),)),
                 bot(TRANSFER, fixed=True, events=(
                     (EventKind.TRANSFER_REQUESTED, {"reason": "operator_request", "target": "sip:operator@127.0.0.1:5070"}),
                     (EventKind.TRANSFER_RESULT, {"ok": False, "status": 486, "reason": "Busy Here"}),
                     (EventKind.CALLBACK_CREATED, {"id": 12}))),
                 bot("I'm sorry, no one can take your call right now. I've asked a colleague to call you back at "
                     "this number. Is there anything else I can help with?", fixed=True),
                 caller("No. Bye."))),
    Scenario("grounding", 5, "order_status", Outcome.RESOLVED, "caller hung up",
             "{name} asked when a refund would arrive; the bot's first answer named a date the CRM did not give and "
             "was held back.", "Refund timing question for order 10455.", (
                 bot(GREETING, fixed=True),
                 caller("When will I get my refund for order 10455?"),
                 bot("Let me check. I can see the return was received; I can't see a refund date yet. A colleague "
                     "will confirm it by email.",
                     tools=(tool("order_status", {"number": "10455"}, {"number": "10455", "status": "returned"}),),
                     guard="ungrounded", events=((EventKind.GUARD_UNGROUNDED, {"original": "Your refund arrives on March 9.",
                                                                       "items": ["March 9"]}),)),
                 caller("Okay, thanks."),
                 bot("Thank you for calling. Goodbye.", fixed=True)),
             qa={"grounding": (2, 3)}),
    Scenario("silent caller", 5, "other", Outcome.ABANDONED, "caller hung up",
             "The caller did not speak and hung up after two prompts.", "No answer from the caller.", (
                 bot(GREETING, fixed=True),
                 Line("pause", pause=7.0, events=((EventKind.NO_INPUT, {}),)),
                 bot("Sorry, I didn't catch that. Could you say it again?", fixed=True),
                 Line("pause", pause=7.0, events=((EventKind.NO_INPUT, {}),)))),
    Scenario("pin", 6, "account", Outcome.RESOLVED, "caller hung up",
             "{name} verified with a PIN and asked about two open orders; both are on the way.",
             "Verified caller; two open orders checked.", (
                 bot(GREETING, fixed=True),
                 caller("Hi, I want to check my open orders."),
                 bot("Sure. For your security, please tell me your PIN."),
                 caller("My PIN is 4 8 2 1."),
                 bot("Thank you, you're verified. You have two open orders: 10470 is processing and 10471 has shipped.",
                     tools=(tool("verify_pin", {"pin": "4821"}, {"verified": True}),
                            tool("open_orders", {}, [{"number": "10470", "status": "processing"},
                                                     {"number": "10471", "status": "shipped"}]))),
                 caller("Great, that's all I needed."),
                 bot("Thank you for calling. Goodbye.", fixed=True))),
    Scenario("slow answer", 4, "buying", Outcome.RESOLVED, "lead created",
             "{name} asked for a quote on twenty desks; the bot took the details as a sales lead after a long pause.",
             "Quote request: 20 standing desks.", (
                 bot(GREETING, fixed=True),
                 caller("We need a quote for twenty standing desks for our new office."),
                 bot("Happy to help. I've passed your request to our sales team; they will call you with a quote "
                     "today.", tools=(tool("create_lead", {"interest": "20 standing desks"}, {"lead_id": 57}),)),
                 caller("Thanks, that's great."),
                 bot("Thank you for calling. Goodbye.", fixed=True)),
             qa={"clarity": (3, 5)}, slow=True),
)
