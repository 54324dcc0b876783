"""One bot turn: the caller's words and the call's context in, actions out (tool calls, spoken sentences, transfer).

The model answers with schema-constrained JSON (``{"action": "reply", "text": ...}``, ``{"action": "tool", "tool":
NAME, "args": {...}}`` or ``{"action": "transfer", "reason": ...}``) allowing only the current menu node's tools.
Tools run in code (the CRM checks verification, never the model). The reply is streamed out of the JSON sentence
by sentence; before a sentence is spoken, code checks that every number, date and amount in it comes from a tool
result, the caller's context or words, and does not recite the instructions (else a safe one, and an event)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from voicebot.crm.spoken import digits_in
from voicebot.crm.tools import CRM_TOOLS
from voicebot.crm.toolkit import ToolRegistry
from voicebot.dialog.identity import IdentityResult, IdentityStep, stated_phone
from voicebot.dialog.intents import IntentClassifier
from voicebot.dialog.knowledge_step import KnowledgeStep, KnowledgeUsed
from voicebot.dialog.recognised import INTENT_TOOLS, also_asked, answer_recognised, change_policy, last_order  # noqa: F401
from voicebot.dialog.answers import bare_order_number, match_intent, pick_slot, readback_answer, tool_args
from voicebot.dialog.rendered import render
from voicebot.dialog.services import service_named
from voicebot.dialog.appointments import CHANGES, AppointmentStep, picked_booking
from voicebot.dialog.offered_times import fitting_slots, latest_first
from voicebot.dialog.followups import also_booking, follow_up, more_for_the_lead, question_for, with_offer
from voicebot.dialog.spoken_check import said_enough, spoken_or_safe
from voicebot.dialog.names import introduced_name, spoken_name
from voicebot.dialog.writes import (DETAIL_QUESTION, NAME_QUESTIONS, TEXT_UNUSED, WRITE_TOOLS, PendingWrite, readback,
                                    answer_to_readback, asked_for, choosable, grounded_args, new_callback_time)
from voicebot.crm.verification import CallerContext
from voicebot.dialog.streaming import JsonTextStream, parse_json_object
from voicebot.speech.tts import SentenceBuffer
from voicebot.llm.base import ChatMessage, ChatModel
from voicebot.review.redact import mask_secrets
from voicebot.dialog.agent_events import (AgentEvent, FirstToken, Guarded, IntentFound, Sentence,  # noqa: F401
                                          ToolCalled, TransferRequested)
from voicebot.dialog.prompting import (EXAMPLES, MAX_TOOL_STEPS, NO_SECRETS_REPLY, PIN_PROMPT_WORDS,  # noqa: F401
                                       RULES, SAFE_REPLY, TROUBLE_REPLY, action_schema, compact_result,
                                       full_system_prompt, leaks, signature)
log = logging.getLogger(__name__)


@dataclass
class DialogueAgent:
    """The model-led part of one call; not thread-safe: one turn at a time (the session makes sure). The history
    only grows (facts come as new system notes): llama.cpp reuses what it evaluated, each turn pays for new tokens."""

    chat: ChatModel
    context: CallerContext
    company_prompt: str
    tools: ToolRegistry = CRM_TOOLS
    today: date = field(default_factory=date.today)
    max_tokens: int | None = None  # None: the chat model's own, i.e. llm.max_tokens
    temperature: float | None = None  # None: llm.temperature
    history: list[ChatMessage] = field(default_factory=list)
    facts: list[Any] = field(default_factory=list)  # everything the bot may state, for grounding
    caller_words: list[str] = field(default_factory=list)
    pending_tool: tuple[str, dict[str, Any]] | None = None  # asked for before the caller was verified
    offered_slots: list[dict[str, Any]] = field(default_factory=list)  # the times the bot last read out
    pending_write: PendingWrite | None = None  # read back to the caller, waiting for their yes
    detail_for: str | None = None  # a question was asked before this tool (followups): the next words answer it
    detail_since: int = 0  # the caller's turn (index in caller_words) whose request the open question completes
    name_asked: bool = False  # NAME_QUESTION was asked this call (a caller the CRM does not know, booking)
    intents: IntentClassifier | None = None  # recognises requests in code; None: the model decides every turn
    knowledge: KnowledgeStep | None = None  # the company's knowledge base; None: questions go to the model
    appointments: AppointmentStep = field(default_factory=AppointmentStep)  # moving or cancelling a booking

    def __post_init__(self) -> None:
        self.identity = IdentityStep(self.context, self.tools)
        who = (f"known by phone number as {c.name.split()[0]}, not verified" if (c := self.context.customer)
               else "unknown caller (number not in the CRM)")
        self._note(f"Today is {self.today.isoformat()}. Caller: {who}.", {"today": self.today.isoformat()})
        self._verified_noted = False

    def _note(self, text: str, fact: Any = None) -> None:
        self.history.append(ChatMessage("system", text))
        self.facts.append(text if fact is None else fact)

    def system_prompt(self) -> str:
        """Fixed for the whole deployment, so llama.cpp keeps it evaluated between turns and calls."""
        return full_system_prompt(self.company_prompt, self.tools.specs())

    def _note_verified(self) -> None:
        if (customer := self.context.verified_customer) is None or self._verified_noted:
            return
        self._verified_noted = True
        orders = self.tools.call("list_open_orders", {}, self.context)
        self.facts.append(orders)
        self._note(f"Caller verified: {customer.name}. Open orders: {compact_result(orders) or 'none'}.")

    def _caller_name(self) -> str | None:
        """The CRM's name for the caller, else the one they gave in this call ("Hi, this is Lucy Hall ...")."""
        customer = self.context.verified_customer or self.context.customer
        return customer.name if customer else introduced_name(self.caller_words)

    def _services(self) -> list[str]:  # the company's services (a salon's, a repair desk's)
        return list(self.context.repo.services())

    def _price_names(self) -> list[tuple[str, ...]]:
        return self.knowledge.price_names() if self.knowledge is not None else []  # the company's words for services

    def prefill(self) -> None:
        """The call's history evaluated now, as the caller talks (blocking; never raises): the next turn pays less."""
        try:
            for _ in self.chat.stream([ChatMessage("system", self.system_prompt()), *self.history], max_tokens=1):
                pass
        except Exception:  # noqa: BLE001
            log.debug("prefill failed", exc_info=True)

    def _allowed(self, allowed_tools: list[str] | None) -> list[dict[str, Any]]:
        skip = {"verify_caller", *(("identify_caller",) if self.context.customer else ())}  # both are done in code
        return [s for s in self.tools.specs()
                if s["name"] not in skip and (allowed_tools is None or s["name"] in allowed_tools)]

    def instructions(self) -> str:
        """Not to be recited: the company prompt and rules; not the examples (guarding those lost good replies)."""
        return f"{self.company_prompt}\n{RULES}"

    def _speak(self, sentence: str, system: str, spoken: list[str]) -> Iterator[AgentEvent]:
        """Yield the sentence, or the guard event and a safe sentence instead (``spoken_check``)."""
        yield from spoken_or_safe(sentence, spoken, self.instructions(), self.facts, self.caller_words,
                                  self.context.repo.region, self.knowledge and self.knowledge.misprices)

    def _tool(self, name: str, args: dict[str, Any], seen: set[str] | None = None) -> Iterator[AgentEvent]:
        """Run one tool in code. Returns True (via StopIteration) when the turn is answered already: a template
        spoke the result, or the caller must first give their PIN."""
        if name == "list_free_slots" and not args.get("service"):
            # the service named in the caller's last turns ("I'd like a checkup." ... "Anything on Thursday?"), by
            # its own name or by its price item's words ("new tires": "Tyre fitting"), else the one just priced
            services, prices, k = self._services(), self._price_names(), self.knowledge
            args = {**args, "service": next((s for said in reversed(self.caller_words[-3:]) if (s := service_named(
                said, services, prices))), None) or (k.priced_service(services, prices) if k else None)}
        said = " ".join(self.caller_words[self.detail_since:][-3:])  # the request and its details, as said
        args = latest_first(args, said) if name == "list_free_slots" else args  # "the latest you have on Friday?"
        if name == "list_free_slots" and (yield from self._ask_first(name, args)):
            return True  # "I need a repair visit": which service, before any times
        key, started = json.dumps([name, args], sort_keys=True), time.perf_counter()
        repeated = seen is not None and key in seen
        result = {"ok": False, "error": "repeated", "message": "Same call as before; answer the caller."} if repeated \
            else self.tools.call(name, args, self.context)
        if seen is not None:
            seen.add(key)
        self.facts.append(result)
        yield ToolCalled(name, args, result, time.perf_counter() - started)
        if name == "book_appointment" and result.get("ok"):
            self.offered_slots = []  # booked: a later "yes" answers something else
        if name == "list_free_slots" and result.get("ok"):
            result = fitting_slots(result, said, self.today)
            self.offered_slots = list(result["result"].get("slots") or [])[:2]
            if self.knowledge is not None:  # "How much does it cost?": the service offered
                self.knowledge.offered(self.offered_slots)
        if result.get("error") == "verification_required":
            self.pending_tool = (name, args)
            phone, _ = stated_phone(" ".join(self.caller_words[-2:]))
            yield from self._reply(self.identity.ask(digits_in(str(args.get("order_number") or "")), phone))
            return True
        self.history.append(ChatMessage("system", f"Result of {name}: {compact_result(result)}"))
        if (yield from self.appointments.after_tool(self, name, result)):
            return True  # the caller is moving or cancelling a booking (dialog/appointments.py)
        if spoken := render(name, args, result):
            policy = change_policy(self, name, result)  # "I want to cancel order 10452.": then what can be done
            yield from self._reply(also_booking(self, name, spoken[:-1] if policy else spoken))  # "You also asked"
            if policy is not None:
                yield from self._know(*policy)
            return True
        return False

    def _know(self, used: KnowledgeUsed, grounds: str) -> Iterator[AgentEvent]:
        """Speak a knowledge answer: from the admin's entry or computed in code, so it is its own ground."""
        used, grounds = self.knowledge.not_again(used, grounds, self.history) if self.knowledge else (used, grounds)
        yield used
        self.facts.append(grounds)
        said, self.detail_for = with_offer(used.text, (self.caller_words or [""])[-1], self._services())
        yield from self._reply(said)  # "... we can open a ticket": a yes asks for that (followups)

    def _propose_write(self, name: str, evidence: bool = False) -> Iterator[AgentEvent]:
        """The model chose a CRM write: read it back from the caller's words (True: the turn is answered), or
        tell the model why not and let it answer (False). See voicebot/dialog/writes.py."""
        if name in CHANGES and (evidence or asked_for(name, self.caller_words)):
            return (yield from self.appointments.start(self, name))  # which booking, which new time
        if name == "book_appointment":
            slot, args = picked_booking(self.caller_words, self.offered_slots, self.today, self._caller_name())
        elif not evidence and not asked_for(name, self.caller_words):
            self.history.append(ChatMessage("system", f"The caller has not asked for {name}: answer what they said, "
                                                      "or ask what they need."))
            return False
        else:
            slot, args = None, grounded_args(name, self.caller_words, self.today, caller_name=self._caller_name(),
                                             knowledge=self.knowledge, region=self.context.repo.region)  # a callback's
        if args is None:
            self.history.append(ChatMessage("system", f"{name} needs more detail: ask the caller for it."))
            return False
        if (yield from self._ask_first(name, args)):
            return True
        if name == "create_lead" and self.knowledge is not None and (note := self.knowledge.estimate_note()):
            args["notes"] = note  # the estimate the caller heard, computed from the price list
        if name in NAME_QUESTIONS and self._caller_name() is None and not self.name_asked:
            self.name_asked = True  # once a call: a caller who gives none is booked as "Caller"
            self.pending_write = PendingWrite(name, args, readback(name, args, slot), name_asked=True, read=False)
            yield from self._reply([NAME_QUESTIONS[name]])
            return True
        given = not (self.context.verified_customer or self.context.customer) and bool(self._caller_name())
        yield from self._read_back(PendingWrite(name, args, readback(name, args, slot, given)))  # given: "for Lucy"
        return True

    def _read_back(self, write: PendingWrite) -> Iterator[AgentEvent]:
        self.pending_write, _ = write, self.identity.set_aside()  # its yes is not the answer to an identity question
        yield from self._reply([write.readback])

    def _ask_first(self, name: str, args: dict[str, Any]) -> Iterator[AgentEvent]:
        """Ask what ``name`` still needs before it runs (``followups.question_for``). True: asked."""
        asked_before = any(DETAIL_QUESTION in m.content for m in self.history)
        if (question := question_for(name, args, self._services(), asked_before)) is None:
            return False
        self.detail_for = name
        yield from self._reply([question])
        return True

    def _choosable(self, allowed: list[str]) -> list[str]:
        """The tools the model may choose this step (``writes.choosable``)."""
        said = (self.caller_words or [""])[-1]
        picked = bool(self.offered_slots) and pick_slot(said, self.offered_slots, today=self.today) is not None
        return choosable(allowed, self.caller_words, slot_picked=picked)

    def bot_said(self, sentence: str) -> None:
        """A prompt the session spoke outside the agent (a menu's "What is your order number?"), as context."""
        self.history.append(ChatMessage("assistant", json.dumps({"action": "reply", "text": sentence})))

    def _reply(self, sentences: list[str]) -> Iterator[AgentEvent]:
        """Speak fixed or templated sentences and keep them in the history as the bot's reply."""
        self.history.append(ChatMessage("assistant", json.dumps({"action": "reply", "text": " ".join(sentences)})))
        for sentence in sentences:
            yield Sentence(sentence)

    @property
    def awaiting_pin(self) -> bool:
        """An identity question is open: the caller's next words are secret (the session masks them)."""
        return self.identity.waiting

    def _identified(self, result: IdentityResult, quiet: bool = False) -> Iterator[AgentEvent]:
        """Act on an identity answer (dialog/identity.py): the checks, what it asks, a lock-out, the waiting request."""
        for checked in result.checked:
            self.facts.append(checked.result)
            yield ToolCalled(checked.name, checked.args, checked.result, checked.elapsed_s)
        if result.locked or result.hand_over:  # no attempts left, or the caller took the person offered
            self._note(result.hand_over or "Verification failed: no attempts left.")
            yield TransferRequested(result.hand_over or "caller could not be verified")
            return
        if result.say:
            self.history.append(ChatMessage("system", "Identity check: " + " ".join(result.say)))
            yield from self._reply(result.say)
            return
        if result.verified:
            self._note_verified()
            pending, self.pending_tool = self.pending_tool, None
            if pending and (yield from self._tool(*pending)):
                return
            if not pending and not quiet:
                yield from self._reply(["Thank you, you're verified. How can I help?"])

    def turn(self, caller_text: str, allowed_tools: list[str] | None = None) -> Iterator[AgentEvent]:
        """Answer one caller turn. Runs the model (blocking): call it from a worker thread."""
        started = time.perf_counter()
        system = self.system_prompt()
        if self.identity.waiting and (identified := self.identity.answer(caller_text)) is not None:
            # a secret or account detail: never evidence for a spoken number or a CRM field, never in the history
            self.history.append(ChatMessage("user", "Caller: (answers the identity question)"))
            yield from self._identified(identified)
            return
        # the model never sees a PIN, a card number or a birth date: it can neither say nor write one (no evidence)
        last_said = next((m.content for m in reversed(self.history) if m.role == "assistant"), "")
        early, rest = self.identity.volunteered(  # "Where's my order? My PIN is 1 2 3 4."
            caller_text, last_said, account=self.pending_write is None and self.detail_for is None)
        if early is not None and (not early.verified or len(rest.split()) < 3):
            self.history.append(ChatMessage("user", "Caller: (gives identity details)"))
            yield from self._identified(early)  # a wrong one, or nothing asked besides: answered now
            return
        if early is not None:
            yield from self._identified(early, quiet=True)  # verified: the request is answered below
        said = mask_secrets(caller_text)
        self.caller_words.append(said)
        self.history.append(ChatMessage("user", f"Caller: {said}"))
        allowed = [spec["name"] for spec in self._allowed(allowed_tools)]
        pending, self.pending_write = self.pending_write, None
        if pending is not None and pending.name_asked and (named := spoken_name(caller_text)):
            slot = next((s for s in self.offered_slots if s["id"] == pending.args.get("slot_id")), None)
            args = {**pending.args, "name": named}  # "It's Maria Lopez.": the booking read back with her name
            yield from self._read_back(PendingWrite(pending.tool, args, readback(pending.tool, args, slot, True)))
            return
        if pending is not None and (moved := new_callback_time(pending, said, self.today, self.knowledge,
                                                               self.context.repo.region)):
            return (yield from self._read_back(moved))  # "In twenty minutes." or a number: read back with it
        if pending is not None:
            answer = readback_answer(caller_text, pending.tool, pending.args, self.offered_slots, self.today)
            if answer is True and not pending.read:  # "Yes, have sales call me." to the name: no name, no yes yet
                return (yield from self._read_back(PendingWrite(pending.tool, pending.args, pending.readback, True)))
            if answer is True:
                if (yield from self._tool(pending.tool, pending.args)):
                    return
            elif answer is False:
                self._note(f"The caller said no: {pending.tool} was not done.")
                return (yield from self._reply(["All right, I won't do that. What else can I help you with?"]))
            else:
                self._note(f"The caller did not confirm {pending.tool}: nothing was written.")
                if pending.tool == "create_ticket":
                    self.detail_for = pending.tool  # "It's just the wrong colour": more of the same problem
                elif (grown := more_for_the_lead(pending, caller_text)) is not None:
                    return (yield from self._read_back(grown))  # "To the 900.": what the lead is for, said
        asked, self.detail_for = self.detail_for, None
        found = self.intents.classify(caller_text) if asked and self.intents is not None else None
        if asked and (step := follow_up(asked, self.caller_words[self.detail_since:], found and found.name,
                                        self._services(), self.today, last_order(self.facts[-1:]), self._price_names())):
            yield from (self._read_back(step) if isinstance(step, PendingWrite) else self._reply(step)
                        if isinstance(step, list) else self._tool(*step))
            return
        self.detail_since = len(self.caller_words) - 1  # no answer to the open question: a request of its own
        if self.knowledge is not None and (confirmed := self.knowledge.follow_up(caller_text)):
            return (yield from self._know(*confirmed))  # "yes" to "is your question: ...?"
        if (yield from self.appointments.answer(self, caller_text, allowed)):
            return  # "Tuesday at 10" after times were offered, or another day asked for (dialog/appointments.py)
        last_said = next((m.content for m in reversed(self.history) if m.role == "assistant"), "")
        number = bare_order_number(caller_text, last_said)
        intent = match_intent(caller_text) or (  # "10452" (said or keyed) to "What is your order number?"
            ("get_order", {"order_number": number}) if number else None)
        if intent and intent[0] in allowed:
            yield from also_asked(self, caller_text)  # "..., and are you open on Saturday?" (dialog/recognised.py)
            if (yield from self._tool(*intent)):
                return
        elif (yield from answer_recognised(self, caller_text, allowed)):
            return
        small_talk = self.intents is not None and self.intents.is_small_talk(caller_text)
        if self.knowledge is not None and (known := self.knowledge.ask(caller_text, must=False, strong=small_talk,
                                                                         items=True)):  # an item: never the model's
            return (yield from self._know(*known))  # nothing else placed it, but the knowledge base answers it well
        seen_calls, first = set[str](), True
        for step in range(MAX_TOOL_STEPS + 1):
            schema = action_schema(self._choosable(allowed) if step < MAX_TOOL_STEPS else [])
            # the reply's first clause is spoken on its own: the caller hears it while the model writes on
            stream, sentences, spoken = JsonTextStream(), SentenceBuffer(clause_first=step == 0), []
            pieces = self.chat.stream([ChatMessage("system", system), *self.history], json_schema=schema,
                                      max_tokens=self.max_tokens, temperature=self.temperature)
            try:
                for piece in pieces:
                    if first:
                        first = False
                        yield FirstToken(time.perf_counter() - started)
                    for sentence in sentences.feed(stream.feed(piece)):
                        yield from self._speak(sentence, system, spoken)
                        if said_enough(spoken):
                            break
                    else:
                        if stream.settled(TEXT_UNUSED) is None:
                            continue
                    break
            finally:
                if (close := getattr(pieces, "close", None)) is not None:
                    close()  # stops generation (a barge-in, a blocked sentence)
            action = parse_json_object(stream.raw) or stream.settled(TEXT_UNUSED)
            if said_enough(spoken):
                action = {"action": "reply", "text": " ".join(spoken)}
            elif action is not None and action.get("action") == "reply":
                for sentence in sentences.flush():
                    yield from self._speak(sentence, system, spoken)
                action = {"action": "reply", "text": " ".join(spoken)}
            if action is None:
                yield Sentence(TROUBLE_REPLY)
                return
            self.history.append(ChatMessage("assistant", json.dumps(action)))
            if action["action"] == "reply":
                if self.context.verified_customer is None and any(
                        word in action["text"].lower() for word in PIN_PROMPT_WORDS):
                    self.identity.awaiting_pin = True  # the model asked for the PIN itself
                return
            if action["action"] == "transfer":
                # the model's own line ("caller asked for a person") is no fact: the operator and the review see
                # what the caller said, which is what the model went on
                said = (self.caller_words or [""])[-1]
                yield TransferRequested(f"the assistant handed over after: {said[:120]!r}" if said else
                                        "the assistant handed over")
                return
            name = str(action["action"])
            if name in WRITE_TOOLS:
                if (yield from self._propose_write(name)):
                    return
                continue
            args = tool_args(name, str(action.get("text", "")), caller_name=self._caller_name(), today=self.today,
                             services=self._services(), offered_slots=self.offered_slots, aliases=self._price_names(),
                             caller_text=(self.caller_words or [""])[-1])
            if args is None:
                self.history.append(ChatMessage("system", f"{name} needs more detail: ask the caller for it."))
                continue
            if (yield from self._tool(name, args, seen_calls)):
                return
        yield Sentence(TROUBLE_REPLY)
