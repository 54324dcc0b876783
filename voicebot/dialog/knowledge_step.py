"""The company's knowledge inside a call: a question answered from the admin's files, never by the model.

Why a step of its own: a knowledge answer is spoken from an entry, or computed in code from the hours or the
price list (voicebot/knowledge/), so it needs no grounding check and no model pass; and it has a little state of
its own. After a weak match the bot asked "is your question: how do I return an item?": a yes answers from that
entry, a no (or anything else) drops it. A price estimate is kept, so a lead made later in the call records it.

``ask`` is called twice in a turn's order: with ``must=True`` when the intent step recognised a knowledge
question (a weak or empty match is then said as the knowledge base words it: a clarifying question or the offer
of a person, never a guess), and with ``must=False`` for a turn nothing else placed (only a confident answer is
taken; otherwise the model gets the turn). A turn the intent classifier reads as small talk must be answered
``strong``ly: "How's your day going?" shares words with the next-day delivery entry (0.46), while "Where are you
located?" and "Is there a data cap?", nearest to "I have a question", are their entries word for word (0.67, 0.79).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any, Protocol

from voicebot.dialog.slots import parse_when
from voicebot.dialog.writes import answer_to_readback
from voicebot.dialog.services import service_named
from voicebot.knowledge.base import OFFER_PERSON, KnowledgeAnswer
from voicebot.knowledge.price_asked import PRICE_WORDS, asks_price, says_a_price
from voicebot.knowledge.hours import OpeningHours
from voicebot.knowledge.prices import AMOUNT, quantity_in
from voicebot.review.redact import mask_secrets
from voicebot.speech.tts import split_sentences
from voicebot.text import words


KNOWLEDGE_OVER_INTENT = 0.6
"""The knowledge base's fused score (0-1) from which it takes a turn whose words do not make the intent's request.
Questions the knowledge base holds scored 0.60-0.91 on two companies' files; order-status phrasings that name no
order of the caller's do not occur in the labelled set, and the demo's delivery entries score up to 0.73 for ones
that do (which keep their intent)."""
AGAIN_BELOW = 0.6
"""An entry that was the bot's last reply is not said again for other words scoring under this (``not_again``)."""
STRONG = 0.55
"""The least score of an answer to a turn that reads as small talk (see the module docstring)."""
NO_PRICE = "I don't have a price for that. Would you like me to connect you with a colleague?"
"""A price asked for something neither the price list nor an entry knows ("How much is a whiteboard?")."""
_REFERS_BACK = re.compile(r"\b(them|those|these|it|ones?|that|той|тех|них|его|их)\b", re.IGNORECASE)
_IT = re.compile(r"\b(it|that|this)\b", re.IGNORECASE)
_ABOUT_IT = re.compile(r"^\W*(?:and |so |but |ok(?:ay)?,? )?(?:how|what|whats|what's|which|does|do|will|would|can|could)"
                       r"\b", re.IGNORECASE)
"""A question about the service just offered ("How much does it cost?", "What does that include?"); "Is that OK?"
to the times offered is no question about the service."""
_ASKS_A_PRICE = re.compile(r"\d|\b(how much|cost|costs|price|pricing|total|quote|estimate|dozen|hundred|thousand|"
                           r"(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|"
                           r"forty|fifty|sixty|seventy|eighty|ninety)|сколько|стоит|стоят|цена)\b", re.IGNORECASE)
"""A turn that refers back to the last price item must ask a price or a count: "Thanks, that's all." after the
fastest plan's price was answered with that price again ("that")."""


_DISCOUNT = re.compile(r"\b(discount|deal|cheaper|reduction|volume price|bulk price)\b", re.IGNORECASE)
_QUESTION = re.compile(r"\?\s*$|^\W*(?:and |so |but )?(?:are|is|do|does|did|what|whats|what's|which|how|can|could|"
                       r"will|would|have|has)\b", re.IGNORECASE)
_THEY = re.compile(r"\b(they|their|theirs)\b", re.IGNORECASE)
_OF_THEM = re.compile(r"\b(?:of )?(?:them|those|these|it|they|that|ones?)\b", re.IGNORECASE)
_DO_YOU = re.compile(r"^\W*(?:(?:hi|hello|and|so|ok|okay|um|also|just wondering)\W+)*(?:do|does) (?:you|you guys|your "
                     r"(?:company|shop|store|firm|team))\b(?! (?:know|understand|hear|remember|think|mean|see|want)\b)",
                     re.IGNORECASE)
_OF_YOURS = re.compile(r"^\W*(?:(?:hi|hello|and|so|ok|okay|um|also)\W+)*(?:what|where|who|which)(?:s|'s| is| are| was|"
                       r" were)? (?:your\b(?! (?:name|job|role)\b)|you (?:located|based|situated)\b)|"
                       r"^\W*(?:(?:hi|hello|and|so|ok|okay|um|also)\W+)*(?:is|are) there (?:a|an|any)\b", re.IGNORECASE)
"""A question about the company's own things ("What's your address?", "Where are you based?", "Who is your
manager?", "Is there a dress code?"): with no entry, the model took "your address" for the caller's and asked for
their phone number, and may make up a rule."""
_ABOUT_THE_CALLER = re.compile(r"\b(?:i|i'm|i've|me|my|mine|we|our|us)\b", re.IGNORECASE)
"""Whether the company does something, asked of it ("Do you price match?"), with nothing about the caller's own
records. With no entry to answer it, the model said "I'm sorry, I don't have the ability to price match": a policy
nobody wrote. Such a question is the offer of a person (and the supervisors' unanswered list), never the model's."""
WHICH_ITEM = "Which item would you like a price for?"
"""A price for "them" as nothing was spoken of yet ("How much would twelve of them cost?" as the call's first words
was read back as a lead, asking the caller's name for the sales team, for no item at all)."""
_ALSO_WHEN = re.compile(r"^\W*(?:and |so |ok(?:ay)?,? )?(?:(?:what|how) about|and(?: on)?)\b(?=.{3,40}$)",
                        re.IGNORECASE)
"""A follow-up that names only another day ("What about Christmas Eve?", "And the Sunday after?") or, after a price,
another item ("What about a beard trim?")."""


_HOLIDAY = re.compile(r"\b(christmas|xmas|boxing|new year'?s?|easter|eve|holiday|bank holiday|thanksgiving|"
                      r"independence|memorial|labou?r day|good friday)\b", re.IGNORECASE)


def names_a_day(text: str, today: date) -> bool:
    """Whether ``text`` names a day or a holiday ("Christmas Eve", "the Sunday after", "Thursday")."""
    when = parse_when(text, today)
    return bool(_HOLIDAY.search(text)) or (when is not None and when.has_day)


_DAY_WORDS = frozenset("""the a an on this next coming after before that then day days eve morning afternoon evening
    weekend week following one of in at and or monday tuesday wednesday thursday friday saturday sunday mondays
    tuesdays wednesdays thursdays fridays saturdays sundays january february march april may june july august
    september october november december today tomorrow night""".split())


def only_a_day(text: str, today: date) -> bool:
    """Whether ``text`` names a day and nothing else ("Christmas Eve", "the Sunday after", "the 31st"): "What about
    an emergency on a Sunday?" after the hours named an emergency too, and heard the hours again."""
    rest = words(_HOLIDAY.sub(" ", text))
    return names_a_day(text, today) and all(w in _DAY_WORDS or re.fullmatch(r"\d+(?:st|nd|rd|th)?", w) for w in rest)


class KnowledgeSource(Protocol):
    """What the step needs of voicebot.knowledge.base.KnowledgeBase (a fake in tests)."""

    def answer(self, question: str, now: datetime) -> Any: ...  # a KnowledgeAnswer

    def answer_document(self, document_id: str, question: str, now: datetime) -> Any: ...


@dataclass(frozen=True)
class KnowledgeUsed:
    """A turn answered (or not) from the knowledge base: for the call's record and the "Unanswered" list."""

    kind: str  # entry | hours | price | weak | none
    entry_ids: tuple[str, ...]
    score: float
    question: str  # the caller's words, secrets masked
    text: str  # what the bot said


@dataclass
class KnowledgeStep:
    kb: KnowledgeSource
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    pending: tuple[str, str] | None = None  # (entry id, question) asked back after a weak match
    estimate: Any = None  # the last price estimate (voicebot.knowledge.prices.Estimate), for a lead
    also: tuple[Any, ...] = ()  # the other items' estimates when one question priced several
    last_price: tuple[str, str] | None = None  # (price document id, question) of the last price answered
    on_item: bool = False  # an item was priced, and no other entry answered since: "they" may be that item
    last_kind: str = ""  # the kind of the last answer given ("hours": "What about Christmas Eve?" asks hours too)
    topic: str | None = None  # the service whose times were just offered (the agent sets it), until a price is said
    which: str | None = None  # a price question asked back with WHICH_ITEM: the item named next is "them"
    priced: str = ""  # the last price said, as said ("Drain unblocking costs $95 per job."): what "it" is to book
    last_entry: tuple[str, str, str] | None = None  # (entry id, its whole answer, the question) of the last entry
    _last: tuple[str, float, Any] | None = None  # (question, when, answer): one turn asks up to twice

    def offered(self, slots: list[dict[str, Any]]) -> None:
        """Times were offered: their service is what "it" means in a question about it, until a price is said."""
        self.topic = next((str(s["service"]) for s in slots if s.get("service")), None)

    def _answer(self, question: str) -> Any:
        """The base's answer, asked once a turn: the same question a turn later is asked again (the hours
        move on, an admin's edit is live on the next question)."""
        now = time.monotonic()
        if self._last is None or self._last[0] != question or now - self._last[1] > 2.0:
            self._last = (question, now, self.kb.answer(question, self.clock()))
        return self._last[2]

    def opening_hours(self) -> OpeningHours | None:
        """The company's opening hours (``hours.yaml``), None when it has none (or the source is a fake)."""
        return getattr(self.kb, "hours", None)

    def score(self, question: str) -> float:
        """The score of the answer the knowledge base would give ``question``, 0 when it would give none."""
        answer = self._answer(question)
        return float(answer.score) if answer.answered else 0.0

    def follow_up(self, caller_text: str) -> tuple[KnowledgeUsed, str] | None:
        """The caller's answer to a clarifying question: the confirmed entry's answer on a yes; or, right after an
        answer about opening hours, the hours of another day the caller names alone ("What about Christmas Eve?"
        was given to the model, which said "December 26"; "What about Thursday?" was a booking); else None."""
        which, self.which = self.which, None
        if which and self._names_an_item(caller_text):
            named = _OF_THEM.sub(caller_text.strip(" ?.!"), which, count=1)  # "... twelve of them" -> "twelve desks"
            if (price := self.kb.answer(named, self.clock())).kind == "price":
                return self._used(price, named)
        if (self.pending is None and self.last_kind == "hours" and (also := _ALSO_WHEN.match(caller_text))
                and only_a_day(day := caller_text[also.end():].strip(" ?."), self.clock().date())
                and (hours := self.kb.answer(f"Are you open on {day}?", self.clock())).kind == "hours"):
            return self._used(hours, caller_text)
        if (self.pending is None and self.last_kind == "price" and (also := _ALSO_WHEN.match(caller_text))
                and (price := self.kb.answer(f"How much is {caller_text[also.end():].strip(' ?.')}?",
                                             self.clock())).kind == "price"):
            return self._used(price, caller_text)  # "What about a beard trim?" after a price: the model said
            # "Beard trim costs £25" (the blow-dry's price, so its digits passed the grounding check)
        if (self.pending is None and self.last_kind == "hours" and _ALSO_WHEN.match(caller_text)
                and names_a_day(caller_text, self.clock().date())
                and (other := self.kb.answer(caller_text, self.clock())).kind == "entry"
                and other.score >= KNOWLEDGE_OVER_INTENT):
            return self._used(other, caller_text)  # "What about an emergency on a Sunday?" after the hours: the
            # emergency entry (a booking had asked which service: the words name a day)
        pending, self.pending = self.pending, None
        if pending is None or answer_to_readback(caller_text) is not True or (
                "?" in caller_text and len(caller_text.split()) > 3):  # "Okay. Do you deliver to Canada?" asks anew
            return None
        return self._used(self.kb.answer_document(pending[0], pending[1], self.clock()), pending[1])

    def misprices(self, sentence: str) -> bool:
        """Whether the model's ``sentence`` prices the one item it names as the price list cannot; False from a
        source without prices."""
        check = getattr(self.kb, "misprices", None)
        return bool(check(sentence)) if callable(check) else False

    def about_an_item(self, question: str) -> bool:
        """Whether ``question`` asks about something the price list sells: it names an item, or refers back to
        the one just priced ("Are they comfortable?", "What colours do they come in?"). Such a question is the
        knowledge base's to answer, or no one's here: the model said "They come in black, white, and gray."."""
        if not _QUESTION.search(question):
            return False
        said = question.lower()
        if any(re.search(rf"\b{re.escape(name.lower())}", said) for names in self.price_names() for name in names
               if len(name) >= 3):
            return True
        return self.on_item and bool(_REFERS_BACK.search(question) or _THEY.search(question))

    def price_names(self) -> list[tuple[str, ...]]:
        """Each price item's name and aliases (``KnowledgeBase.price_names``); none from a source without prices."""
        names = getattr(self.kb, "price_names", None)
        return names() if callable(names) else []

    def only_a_day(self, text: str) -> bool:
        """A few words that name a day or a time and ask nothing ("Next Tuesday morning."): the answer to a question
        about when, never a question for the knowledge base. Given alone, it had the next-day delivery entry (0.40)."""
        return len(words(text)) <= 5 and not _QUESTION.search(text) and names_a_day(text, self.clock().date())

    def ask(self, question: str, must: bool, strong: bool = False,
            items: bool = False) -> tuple[KnowledgeUsed, str] | None:
        """The knowledge answer to ``question`` (the event and the grounds it may be checked against), or None
        when it is not one to give (see the module docstring). With ``items``, a question about an item
        (``about_an_item``) is always answered, and a weak match is no answer: "What colours do they come in?"
        after a chair's price was asked back "is your question: which carriers do you use?"."""
        if self.topic and _ABOUT_IT.search(question) and len(question.split()) <= 8 and _IT.search(question) and \
                not self._names_an_item(question):
            # "How much does it cost?" after printer repair times were offered had the delivery charges entry, "How
            # long does it take?" the delivery times: "it" is the service offered
            question = _IT.sub(self.topic, question, count=1)
        answer = self._entry_price(question) or self._answer(question)
        if items and self.about_an_item(question):
            must = True
            if answer.kind == "weak":
                answer = replace(answer, kind="none", text=OFFER_PERSON, entry_ids=(), grounds="")
        bare_count = (quantity_in(question) is not None  # "How much for 3?", "Can I get a discount if I buy 12?"
                      and (len(question.split()) <= 6 or (self.on_item and _DISCOUNT.search(question) is not None))
                      and not self._names_an_item(question))
        they = answer.kind == "entry" and self.on_item and (bare_count or len(question.split()) <= 6 and bool(
            _REFERS_BACK.search(question) or _THEY.search(question)))  # "How much are they?" after the chairs'
        # price had the delivery charges entry, "Can I get a discount if I buy 12?" the volume discount entry
        if self.last_price and (answer.kind in ("weak", "none") and (_REFERS_BACK.search(question) or bare_count)
                                or they) and _ASKS_A_PRICE.search(question):
            # "How much would twelve of them cost?" after the desk's price: the desks, now for twelve; "How much will
            # that be altogether?" after the estimate for 3 desks: the same 3 desks, not one desk's price
            counted = quantity_in(question) is not None or quantity_in(self.last_price[1]) is None
            asked = f"{question.rstrip(' ?.!')} of them" if bare_count and not _REFERS_BACK.search(question) \
                else question  # "How much for 3?": 3 of the item just priced
            answer = self.kb.answer_document(self.last_price[0], asked if counted else self.last_price[1],
                                             self.clock())
        if self.last_price and answer.kind in ("weak", "none") and not self._names_an_item(question) and (
                compared := getattr(self.kb, "compare", lambda *_: None)(self.last_price[0], question)):
            answer = compared  # "Do you have anything cheaper?" after Fiber 900's price: the cheaper plans
        weak_item = not must and answer.kind == "weak" and any(i.startswith("price:") for i in answer.entry_ids[:1])
        if (answer.kind == "none" or weak_item) and PRICE_WORDS.search(question) and _QUESTION.search(question) \
                and not (_REFERS_BACK.search(question) or _THEY.search(question)):  # "them": which, is the model's
            # "How much is a whiteboard?" (the fitting's price, weakly) went to the model, which took it for a lead
            # and asked for a name: no one here knows that price (the model cannot: any amount it said is held
            # back), a colleague may. A weak entry ("how much does shipping cost?") is left as it was.
            answer, must = replace(answer, kind="none", text=NO_PRICE, entry_ids=(), grounds=""), True
        elif answer.kind == "entry" and asks_price(question) and not says_a_price(answer.text) and not (
                _REFERS_BACK.search(question) or _THEY.search(question)):  # "Is the router free?" had the
            # router's restart steps: an entry that says nothing of money answers another question
            answer, must = replace(answer, kind="none", text=NO_PRICE, entry_ids=(), grounds=""), True
        if items and not must and not answer.answered and (_DO_YOU.search(question) or _OF_YOURS.search(
                question)) and not _ABOUT_THE_CALLER.search(question):  # "Do you price match?", "What's your
            # address?" with no entry: a person, not a policy the model makes up (or the caller's address asked)
            answer, must = replace(answer, kind="none", text=OFFER_PERSON, entry_ids=(), grounds=""), True
        if not must and (not answer.answered or (strong and answer.score < STRONG) or self.only_a_day(question)):
            return None
        if answer.kind == "weak" and answer.entry_ids:
            self.pending = (answer.entry_ids[0], question)
        return self._used(answer, question)

    def _names_an_item(self, text: str) -> bool:
        """Whether ``text`` holds a price item's name or alias (as said, any case)."""
        said = text.lower()
        return any(name.lower() in said for names in self.price_names() for name in names)

    def names_no_item(self, question: str, recent: str) -> bool:
        """Whether ``question`` asks the price of "them" (or "it", "those") while no item, price or service was
        spoken of in the call, and neither it nor the caller's ``recent`` words name one (``WHICH_ITEM``). "Can I
        order that again?" asks no price: a reorder, for the sales team."""
        return bool(PRICE_WORDS.search(question) and (_REFERS_BACK.search(question) or _THEY.search(question))) and \
            not (self.last_price or self.on_item or self.topic) and not self._names_an_item(f"{question} {recent}")

    def not_again(self, used: KnowledgeUsed, grounds: str, history: list[Any]) -> tuple[KnowledgeUsed, str]:
        """``used``, unless it is the entry the bot's last reply said (``history``: the agent's messages), now for
        other words at a modest score: "What about ink for an HP printer?" after "Do you sell laser printers?" heard
        the printer repair entry a second time. The entry holds nothing more: the caller hears that, with the offer
        of a person, and the question goes to the supervisors' unanswered list."""
        last = next((m.content for m in reversed(history) if m.role == "assistant"), "{}")
        try:
            said = json.loads(last).get("text", "")
        except (ValueError, AttributeError):
            said = ""
        if used.kind != "entry" or used.text != said or used.score >= AGAIN_BELOW:
            return used, grounds
        self.pending, self.last_kind = None, "none"
        return replace(used, kind="none", entry_ids=(), text=OFFER_PERSON), OFFER_PERSON

    def priced_service(self, services: list[str], price_names: list[tuple[str, ...]]) -> str | None:
        """The CRM service the price just said is for, while no other entry answered since, or None. Why: "My
        kitchen sink is blocked, how much do you charge?" heard drain unblocking's price, and "Can someone come
        tomorrow?" was asked "Which service do you need: boiler service or drain unblocking?" twice."""
        return service_named(self.priced, services, price_names) if self.on_item and self.priced else None

    def _entry_price(self, question: str) -> Any:
        """The last entry's sentences that carry an amount, as its answer to "How much is that?", else the price of
        the one price item that entry or its question named, or None. Why: after the emergency call-out entry ("...
        An emergency call-out costs $150 plus parts and labour."), "How much is that?" was asked back "are you
        asking about the price of the tap replacement?"."""
        if self.last_kind != "entry" or self.last_entry is None or len(question.split()) > 8 or \
                not (PRICE_WORDS.search(question) and _IT.search(question)) or self._names_an_item(question):
            return None
        said = " ".join(s for s in split_sentences(self.last_entry[1]) if AMOUNT.search(s))
        if said:
            return KnowledgeAnswer("entry", said, (self.last_entry[0],), 1.0, grounds=said)
        named = {names[0] for names in self.price_names() for name in names if len(name) >= 3 and re.search(
            rf"\b{re.escape(name.lower())}\b", f"{self.last_entry[2]} {self.last_entry[1]}".lower())}
        # "Can I wait while you do the MOT?" (the waiting-room entry), then "How much is it?": the MOT test's price
        return self.kb.answer(f"How much is the {named.pop()}?", self.clock()) if len(named) == 1 else None

    def _used(self, answer: Any, question: str) -> tuple[KnowledgeUsed, str]:
        self.last_kind = answer.kind
        if answer.kind == "price":
            self.priced = answer.text
        if answer.kind == "entry" and answer.entry_ids:
            self.last_entry = (answer.entry_ids[0], answer.grounds or answer.text, question)
        self.on_item = answer.kind == "price" or (self.on_item and answer.kind in ("weak", "none"))
        if answer.kind == "price" and answer.entry_ids:
            self.last_price, self.topic = (answer.entry_ids[0], question), None
        if getattr(answer, "estimate", None) is not None:
            self.estimate, self.also = answer.estimate, tuple(getattr(answer, "also", ()))
        event = KnowledgeUsed(answer.kind, tuple(answer.entry_ids), round(float(answer.score), 4),
                              mask_secrets(question), answer.text)
        return event, answer.grounds or answer.text

    def estimate_note(self) -> str | None:
        """The last estimate in words, for a lead's notes (every figure computed in code from the price list), else
        the price just said: "Can I order one?" after the mesh kit's price told the sales team nothing of the kit."""
        if self.estimate is None:
            return f"Price given on the call: {self.priced}" if self.on_item and self.priced else None
        said = []
        for e in (self.estimate, *self.also):  # cents always: 189.00, not 189.0
            discount = f" after {e.discount_percent}% off" if e.discount_percent else ""
            said.append(f"{e.quantity} x {e.item} at {e.unit_price:.2f} {e.currency} per {e.unit}, {e.total:.2f} "
                        f"{e.currency} in total{discount}")
        if self.also:
            e = self.estimate
            said.append(f"{sum(x.total for x in (e, *self.also)):.2f} {e.currency} in all")
        return f"Estimate given on the call: {'; '.join(said)}."
