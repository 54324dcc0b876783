"""A request the intent classifier recognises, answered without the model; and a second question in the same breath.

Why a module: the intent step is a rule of its own (which tool an intent leads to, when a write's evidence is
enough, a price before a lead), and the agent that owns the call's state stays one room. Callers also ask two
things at once: "Where's my order, and are you open on Saturday?" heard the order's PIN question and nothing about
Saturday. A clause of the turn that is a knowledge question of its own (the classifier places that clause alone as
``knowledge`` and the knowledge base answers it well) is answered first, from the admin's entry, and then the
request is handled as before: "On Saturday, December 5, we're open from 9 AM to 1 PM. For your security, please
tell me your PIN."
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterator
from datetime import date, datetime
from typing import Any, Protocol

from voicebot.crm.verification import CallerContext
from voicebot.dialog.agent_events import AgentEvent, IntentFound, Sentence
from voicebot.dialog.answers import ADDRESS_CHANGE, match_intent, tool_args
from voicebot.dialog.followups import OFFER_TICKET, OFFER_VISIT, offered
from voicebot.dialog.intents import Intent, IntentClassifier
from voicebot.dialog.knowledge_step import NO_PRICE, WHICH_ITEM, KnowledgeStep, KnowledgeUsed
from voicebot.dialog.other_times import another_service, later_times, neither_time, offer_dropped, same_day
from voicebot.dialog.placing import KNOWLEDGE_OVER_INTENT, placed_request
from voicebot.dialog.rendered import a_service, asks_how_long, order_sentence, slot_length
from voicebot.dialog.services import service_named
from voicebot.dialog.slots import spoken_date
from voicebot.dialog.writes import TAKES_IT, WRITE_TOOLS, asked_for, write_evidence
from voicebot.knowledge.price_asked import asks_price
from voicebot.knowledge.actions import actions, said_words
from voicebot.knowledge.prices import SELLS
from voicebot.llm.base import ChatMessage
from voicebot.text import normalize

INTENT_TOOLS = {"order_status": "list_open_orders", "order_history": "list_recent_orders", "booking": "list_free_slots",
                "ticket": "create_ticket", "lead": "create_lead", "callback": "request_callback",
                "reschedule": "reschedule_appointment", "cancel_booking": "cancel_appointment",
                "my_appointments": "list_my_appointments", "ticket_status": "get_caller_history"}
"""The tool each recognised intent leads to (knowledge questions go to the knowledge base, when there is one)."""

_CLAUSE = re.compile(r"[?;]\s*|[,.]?\s+(?:and also|and|also|plus|oh and)\s+(?=(?:are|is|do|does|can|could|what|"
                     r"whats|what's|when|where|how|which|who|will|would)\b)", re.IGNORECASE)


class Recognising(Protocol):
    """What the step uses of ``DialogueAgent`` (typed here, since agent.py imports this module)."""

    intents: IntentClassifier | None
    knowledge: KnowledgeStep | None
    context: CallerContext
    today: date
    facts: list[Any]
    history: list[ChatMessage]
    offered_slots: list[dict[str, Any]]
    detail_for: str | None

    def _services(self) -> list[str]: ...

    def _price_names(self) -> list[tuple[str, ...]]: ...

    def _reply(self, sentences: list[str]) -> Iterator[AgentEvent]: ...

    def _caller_name(self) -> str | None: ...

    def _know(self, used: KnowledgeUsed, grounds: str) -> Iterator[AgentEvent]: ...

    def _propose_write(self, name: str, evidence: bool = False) -> Iterator[AgentEvent]: ...

    def _tool(self, name: str, args: dict[str, Any], seen: set[str] | None = None) -> Iterator[AgentEvent]: ...


def clauses(text: str) -> list[str]:
    """The questions of one turn: "Where's my order, and are you open on Saturday?" -> two."""
    return [part.strip(" ,.") for part in _CLAUSE.split(text) if len(part.strip(" ,.").split()) >= 3]


def also_asked(agent: Recognising, caller_text: str) -> Generator[AgentEvent, None, set[str]]:
    """Answer each clause of the turn that is a knowledge question of its own (see the module docstring); returns
    the answers spoken, so the request's own step does not say one again."""
    parts, spoken = clauses(caller_text), set[str]()
    if len(parts) < 2 or agent.intents is None or agent.knowledge is None:
        return spoken
    for i, said in enumerate(parts):
        # "Can I book a repair visit? How much is it?": "it" is the clause before (alone, the delivery charges)
        part = f"{parts[i - 1]} {said}" if i and _IT.search(said) and len(said.split()) <= 6 else said
        found = agent.intents.classify(said)
        if found is not None and found.name == "knowledge" and agent.knowledge.score(part) >= KNOWLEDGE_OVER_INTENT:
            known = agent.knowledge.ask(part, must=False)
            if known is not None and known[0].text not in spoken:
                spoken.add(known[0].text)
                yield from agent._know(*known)
    return spoken


_CHANGE_IT = re.compile(r"\b(add|change|modify|amend|remove|take off|swap|update|edit)\b.{0,30}\b(to|from|on|in|of)? ?"
                        r"(it|that|that order|the order|my order|this order)\b")
_IT = re.compile(r"\b(it|that|this|they|them)\b", re.IGNORECASE)
_ITS_ARRIVAL = re.compile(r"\b(when|what time|what day|how long|how soon|where)\b.{0,30}\b(it|they|that|them|this "
                          r"one|that one|my stuff|my things)\b.{0,20}\b(arrive|arriving|get here|getting here|come|"
                          r"coming|be delivered|delivered|turn up|be here|ship|shipped|now)\b")
"""A question about the order just spoken of: "When will it arrive?" after its status was the knowledge base's
delivery times ("Items in stock are delivered in 2 to 3 business days"), not the order's own date."""


_ITS_COST = re.compile(r"\b(what|how much)\b.{0,25}\b(did i|have i|i)\b.{0,12}\b(pay|paid|spend|spent|charged)\b|"
                       r"\bhow much (was|is|did|were) (it|that|this|they|them|the order|that order|my order)\b|"
                       r"\bwhat (was|is) (the|its|my) (total|price|cost|amount|bill)\b|\bhow much did (it|that|they) "
                       r"cost\b")
"""A question about what the order just spoken of cost: "And what did I pay for it?" read the whole history."""


def _orders(fact: Any) -> list[dict[str, Any]] | None:
    """The orders a CRM order answer holds (one or several), or None for any other fact."""
    value = fact.get("result") if isinstance(fact, dict) and fact.get("ok") else None
    orders = value if isinstance(value, list) else [value]
    if orders and all(isinstance(o, dict) and o.get("number") and o.get("status") for o in orders):
        return orders
    return None


def last_order(facts: list[Any]) -> str | None:
    """The number of the one order the CRM's latest order answer of this call was about, or of the one order in it
    still on its way (an order history: "When will it arrive?" after the last order and one delivered before it
    heard the delivery times entry), else None."""
    for fact in reversed(facts):
        if (orders := _orders(fact)) is not None:
            coming = [o for o in orders if str(o.get("status")) not in _ARRIVED] if len(orders) > 1 else orders
            return str(coming[0]["number"]) if len(coming) == 1 else None
    return None


_ARRIVED = frozenset({"delivered", "cancelled", "returned"})


def its_cost(facts: list[Any], caller_text: str) -> list[str] | None:
    """"What did I pay for it?" right after the CRM's answer about one order: its total, from that record."""
    orders = _orders(facts[-1]) if facts and _ITS_COST.search(caller_text.lower()) else None
    if orders is None or len(orders) != 1 or orders[0].get("total") is None:
        return None
    from decimal import Decimal

    from voicebot.knowledge.prices import money

    order = orders[0]
    total = money(Decimal(str(order["total"])), str(order.get("currency") or "USD"))
    return [f"Order {order['number']} came to {total}.", ANYTHING_ELSE]


_REFUND = re.compile(r"\b(refund|refunds|refunded|money back|reimburs\w*)\b")
_ASKS_REFUND = re.compile(r"\b(want|would like|like|need|can i|could i|can we|get a|ask for|request|how do i|how can i)"
                          r"\b")
REFUND_QUESTION = "When will I get my refund?"
"""Where a refund is, asked without an order number ("I haven't received my refund yet" had the wrong-item entry:
its words "I received"): the CRM holds no refunds, the knowledge base's answer to this question says when."""
_RETURN = re.compile(r"\b(?:want|would like|i'd like|need|like|can i|could i|how do i|how can i|have to|going to|"
                     r"trying to)\b.*\b(?:return|send (?:\w+ )?back)\b(?!.*\b(?:refund|money back)\b)")
RETURN_QUESTION = "How do I return an item?"
"""Asking to return something ("I'd like to return the chair."): how returns work, from the knowledge base, then the
offer of a ticket (``followups.with_offer``). It was a booking by the intent step and went to the model, which read
back a ticket at once: the caller never heard the return process."""
_A_BOOKING = re.compile(r"\b(appointment|visit|booking|reservation|technician|engineer|fitting|setup|repair|slot)\b")
_TRACKING = re.compile(r"\b(tracking|track(ing)? (number|code|id|link)|waybill|consignment number)\b")
ANYTHING_ELSE = "Is there anything else I can help with?"


def its_tracking(facts: list[Any], caller_text: str) -> list[str] | None:
    """"What's the tracking number?" after the CRM's answer about one order (in the last three facts): its carrier
    and tracking number from that record, a character at a time (a code, not an amount); the
    knowledge base's "we email you the tracking number" answered it while the record held it."""
    if not _TRACKING.search(caller_text.lower()):
        return None
    orders = next((found for fact in reversed(facts[-3:]) if (found := _orders(fact)) is not None), None)
    if orders is None or len(orders) != 1:
        return None
    order = orders[0]
    code = str(order.get("tracking") or "").replace(" ", "")
    if not code:
        return [f"Order {order['number']} has no tracking number yet.", ANYTHING_ELSE]
    groups = ", ".join(code)  # "9, A, A, 1": Piper read "9 A A 1" as "nine uh uh one" (Whisper heard "901")
    carrier = f" with {order['carrier']}" if order.get("carrier") else ""
    return [f"The tracking number of order {order['number']}{carrier} is {groups}.", ANYTHING_ELSE]


_WHY = re.compile(r"\bwhy\b|\bwhat(?:s| is)? (?:the )?(?:reason|cause|problem|holdup|hold up|delay)\b|"
                  r"\bhow come\b|\bwhat(?:s| is) (?:going on|happening|happened) with\b")
NO_REASON = "I'm sorry, I don't have the reason here: our records only show the status."
"""Asked why an order is late, the model said "the carrier DHL is experiencing technical issues with their delivery
system": an invented cause. The CRM holds a status, a carrier and a date; a colleague can find out the rest."""


def its_reason(facts: list[Any], caller_text: str) -> list[str] | None:
    """"Can you tell me why it's delayed?" after the CRM's answer about one order (in the last three facts): that the
    record holds no reason, what it holds, and the offer of a ticket (``followups.OFFER_TICKET``: a yes reads it
    back from the caller's words)."""
    if not _WHY.search(caller_text.lower()) or _A_BOOKING.search(caller_text.lower()):
        return None
    orders = next((found for fact in reversed(facts[-3:]) if (found := _orders(fact)) is not None), None)
    if orders is None or len(orders) != 1:
        return None
    return [NO_REASON, order_sentence(orders[0]), OFFER_TICKET]


def its_length(agent: Recognising, caller_text: str) -> list[str] | None:
    """"How long does a boiler service take?" with no times offered yet: the service's length from its free slots in
    the CRM (``rendered.slot_length``), and the offer of a visit. It was asked back "is your question: is your work
    guaranteed?" (a plumber's knowledge base says nothing of lengths)."""
    if not asks_how_long(caller_text):  # no CRM lookup for any other turn
        return None
    named = service_named(caller_text, agent._services(), agent._price_names())
    slots = agent.context.repo.list_free_slots(service=named, limit=5) if named else []
    length = slot_length(caller_text, [{"service": s.service, "duration_min": s.duration_min} for s in slots])
    return [length, OFFER_VISIT] if length else None


def _books_an_item(agent: Recognising, caller_text: str) -> bool:
    """Whether "Can I book that?" asks for the item just priced while it is no service the CRM books, and the
    words name no service. Why: a plumber's "How much is a new tap?" then "Can I book that?" was asked "Which
    service do you need: boiler service or drain unblocking?"; the team arranges it (a lead, with the estimate)."""
    services, prices, knowledge = agent._services(), agent._price_names(), agent.knowledge
    return knowledge is not None and bool(knowledge.priced) and knowledge.on_item and \
        knowledge.priced_service(services, prices) is None and service_named(caller_text, services, prices) is None


def unanswered_service(agent: Recognising, caller_text: str) -> str | None:
    """The CRM service a question about the company's services names ("Do you do installations?", "How much does
    an engineer visit cost?") when the knowledge base and the price list have no answer to it, or None. Each heard
    "I don't have that information", another item's price or the PIN question: the company books the service, so
    it does it (``answer_recognised``: "Yes, we do." and its free times), and no price for it is known. Not a
    question about the caller's own booking ("Do you have my installation booked?")."""
    plain = normalize(caller_text)
    if agent.knowledge is None or not (SELLS.search(plain) or asks_price(plain) or (
            _CAN_YOU.search(plain) and actions(plain))) or _MINE.search(plain):  # "Do you install routers?"
        return None
    service = service_named(caller_text, agent._services(), agent._price_names())
    if service is None or not (said_words(service) & said_words(plain) or actions(service) == actions(plain) != set()):
        return None  # named by its own words or its action, never a guess: "a quote for ten desks" is no fitting
    return None if agent.knowledge.score(caller_text) else service


_MINE = re.compile(r"\b(my|our|mine|ours)\b")
_CAN_YOU = re.compile(r"\b(do|does|can|could|will|would) (you|your \w+|someone|somebody|anyone)\b")


_TODAYS_DATE = re.compile(r"^(?:(?:sorry|um|so|and|hi|hello|oh)\W+)*(?:(?:can you tell me |do you know )?what(?:s| is) "
                          r"(?:the date|todays date|the day|the date today|today)|what (?:day|date) is (?:it|today))"
                          r"(?: today)?\W*$")
""""What's today's date?" was the caller's bookings (by 0.006: "what day is my furniture fitting") and asked for the
phone number on their account: the call's date, from code."""


def answer_recognised(agent: Recognising, caller_text: str, allowed: list[str]) -> Iterator[AgentEvent]:
    """Answer a request the intent classifier recognises, without the model. True: the turn is answered."""
    if _TODAYS_DATE.search(normalize(caller_text)):
        yield from agent._reply([f"Today is {spoken_date(agent.today)}."])
        return True
    found: Intent | None = None
    if agent.intents is not None:
        found = placed_request(agent.intents.classify(caller_text), caller_text, agent._services(), agent.today,
                               agent.knowledge and agent.knowledge.score, agent._price_names())
    if "get_order" in allowed and (said := its_cost(agent.facts, caller_text) or its_tracking(
            agent.facts, caller_text) or its_reason(agent.facts, caller_text)) or (
            not agent.offered_slots and "list_free_slots" in allowed and (said := its_length(agent, caller_text))):
        # "Why is it late?": a ticket offered; "How long does a boiler service take?": a visit offered
        yield from agent._reply(said)
        agent.detail_for = offered(said[-1])  # a yes to that offer: the ticket, read back from the caller's words
        return True
    if (agent.knowledge is not None and _REFUND.search(plain := normalize(caller_text))
            and not _ASKS_REFUND.search(plain) and not re.search(r"\d{4}", plain)
            and (used := agent.knowledge.ask(REFUND_QUESTION, must=False))):
        yield from agent._know(*used)  # "I haven't received my refund yet" had the wrong-item entry (0.63)
        return True
    if (agent.knowledge is not None and (found is None or found.name != "ticket") and _RETURN.search(plain)
            and not re.search(r"\d{4}", plain) and (used := agent.knowledge.ask(RETURN_QUESTION, must=False))):
        yield from agent._know(*used)  # "I'd like to return the chair.": the process, then a ticket offered
        return True
    if (found is None or found.name in ("knowledge", "order_status")) and "get_order" in allowed and \
            _ITS_ARRIVAL.search(caller_text.lower()) and (number := last_order(agent.facts)):
        return (yield from agent._tool("get_order", {"order_number": number}))  # that order, not delivery times
    if (agent.knowledge is not None and agent.facts and _orders(agent.facts[-1])
            and _CHANGE_IT.search(caller_text.lower()) and not _A_BOOKING.search(caller_text.lower())
            and not ADDRESS_CHANGE.search(normalize(caller_text))):  # a new address: a ticket (placing)
        # "Can I add a chair to it?" after the order was read out had the furniture delivery entry
        yield from agent._know(*agent.knowledge.ask("Can I change my order?", must=True))
        return True
    if (found is not None and found.name in ("cancel_booking", "reschedule") and agent.knowledge is not None
            and agent.facts and _orders(agent.facts[-1]) and not _A_BOOKING.search(caller_text.lower())):
        # "Cancel it." right after an order's status was a booking's cancellation ("I don't see any upcoming
        # appointments"): it is the order, and what can be done about one is the company's policy
        asked = "Can I cancel my order?" if found.name == "cancel_booking" else "Can I change my order?"
        yield from agent._know(*agent.knowledge.ask(asked, must=True))
        return True
    if "list_free_slots" in allowed and ((yield from later_times(agent, caller_text)) or (
            yield from neither_time(agent, caller_text)) or (yield from offer_dropped(agent, caller_text))):
        return True
    if "list_free_slots" in allowed and (other := another_service(agent, caller_text)):
        return (yield from agent._tool("list_free_slots", {**same_day(agent, caller_text), **(tool_args(
            "list_free_slots", "", caller_name=None, services=agent._services(), offered_slots=[],
            caller_text=caller_text, today=agent.today, aliases=agent._price_names()) or {}), "service": other}))
    if "create_lead" in allowed and not agent.offered_slots and _books_an_item(agent, caller_text) and \
            TAKES_IT.search(normalize(caller_text)):  # "OK, I'll take it." after a plan's price went to the model
        yield IntentFound(Intent("lead", found.score if found else 0.0, 1.0, "(the item just priced is taken)"))
        return (yield from agent._propose_write("create_lead", evidence=True))
    if "list_free_slots" in allowed and not agent.offered_slots and (service := unanswered_service(agent,
                                                                                                 caller_text)):
        if asks_price(normalize(caller_text)):  # none on the price list: no other item's price, nor the PIN
            yield from agent._reply([NO_PRICE.replace("that", a_service(service), 1)])
            return True
        args = tool_args("list_free_slots", "", caller_name=None, services=agent._services(), offered_slots=[],
                         caller_text=caller_text, today=agent.today, aliases=agent._price_names()) or {}
        if "date_from" not in args:  # "Do you do installations on Saturdays?": the times of that day say it
            yield from agent._reply(["Yes, we can." if re.search(r"\b(can|could|will|would) (you|your|some|any)",
                                                                  normalize(caller_text)) else "Yes, we do."])
        return (yield from agent._tool("list_free_slots", {**args, "service": service}))
    if found is not None and found.name == "knowledge" and agent.knowledge is not None:
        yield IntentFound(found)
        yield from agent._know(*agent.knowledge.ask(caller_text, must=True))
        return True
    tool = INTENT_TOOLS.get(found.name) if found else None
    if tool == "list_free_slots" and "create_lead" in allowed and _books_an_item(agent, caller_text):
        yield IntentFound(Intent("lead", found.score, found.margin, "(the item just priced is no service booked)"))
        return (yield from agent._propose_write("create_lead", evidence=True))  # the team arranges it
    if found is None or tool is None or tool not in allowed or not write_evidence(tool, caller_text, found.margin):
        return False
    yield IntentFound(found)
    spoken = yield from also_asked(agent, caller_text)
    if tool == "create_lead" and agent.knowledge is not None:
        if agent.knowledge.names_no_item(caller_text, " ".join(agent.caller_words[-3:])):  # "How much would 12 of them
            agent.knowledge.which = caller_text  # cost?": which item, then that question for it
            return (yield from agent._reply([WHICH_ITEM])) or True
        before = agent.knowledge.estimate
        priced = agent.knowledge.ask(caller_text, must=False)
        # the estimate first, then offer the lead; "Do you have standing desks, and how much are they?" had its
        # price said twice (the second clause's answer, then the whole turn's)
        if priced is not None and priced[0].kind == "price":
            used, grounds = priced
            said_last = next((m.content for m in reversed(agent.history[:-1]) if m.role == "assistant"), "")
            if used.text not in spoken and json.dumps(used.text)[1:-1] not in said_last:  # "Can I order one?" after its price
                yield used
                agent.facts.append(grounds)
                agent.history.append(ChatMessage("assistant", json.dumps({"action": "reply", "text": used.text})))
                yield Sentence(used.text)
            if agent.knowledge.estimate is before and not asked_for(tool, [caller_text]):
                return True  # "is the chair in stock?": its price answers it, no lead read back
    if tool in WRITE_TOOLS:
        return (yield from agent._propose_write(tool, evidence=True))
    args = tool_args(tool, "", caller_name=agent._caller_name(), services=agent._services(),
                     offered_slots=agent.offered_slots, caller_text=caller_text, today=agent.today,
                     aliases=agent._price_names())
    if tool == "list_open_orders" and (number := match_intent(f"where is order {caller_text}")):
        tool, args = number  # "has order 10452 shipped?": the one order
    return False if args is None else (yield from agent._tool(tool, args))


_CANCEL_OR_CHANGE = re.compile(r"\b(cancel|cancell?ing|change|changing|modify|amend)\b")


def change_policy(agent: Recognising, tool: str, result: dict[str, Any]) -> tuple[KnowledgeUsed, str] | None:
    """The company's policy for an order the caller asked, by its number, to cancel or change ("I want to cancel
    order 10452."), to say after the order's record: verified, the caller heard the order's status and nothing
    more, and had to ask again. None for any other request, a new delivery address (a ticket: ``ADDRESS_CHANGE``)
    or a booking."""
    request = normalize(agent.caller_words[-1]) if agent.caller_words else ""
    if tool != "get_order" or not result.get("ok") or agent.knowledge is None:
        return None
    if _REFUND.search(request):  # "Where is my refund for order 10398?" heard only that the order was delivered:
        return agent.knowledge.ask(REFUND_QUESTION, must=False)  # the CRM holds no refunds, the policy
    if not _CANCEL_OR_CHANGE.search(request) or ADDRESS_CHANGE.search(request) or _A_BOOKING.search(request):
        return None  # says when (nothing, where the company's files have no refund entry)
    return agent.knowledge.ask("Can I change or cancel my order?", must=True)
