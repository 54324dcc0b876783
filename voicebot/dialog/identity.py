"""Who the caller is, settled in code: finding the account of an unknown number, then the PIN, or the date of
birth and postcode for a caller without a PIN. The model never sees or judges an answer.

Why apart from the agent: this is a small state machine with rules of its own. An unknown or withheld number is
asked for the account's phone number or an order number; when that matches nothing the PIN is asked all the
same (``decoy``) and can only fail, so a stranger cannot learn which numbers are customers' or which orders
exist. A caller who says a date at the PIN prompt (or "I don't have a PIN") is verifying by date of birth: the
date is held here, never in the history or the store, until the postcode comes, and no attempt is used until
both are compared. Attempts are limited per account across calls (voicebot/crm/verification.py).

``answer`` takes one caller turn while the step is waiting; it returns None when the turn is not an answer (the
agent then handles it), else an ``IdentityResult``: the tool-call events to record, the sentences to say, and
whether the caller is now verified or must go to a person.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from voicebot.crm.models import NotFound
from voicebot.crm.phone import normalize_phone
from voicebot.crm.spoken import digits_in, find_dates, numbers_in, words_to_digits
from voicebot.crm.toolkit import ToolRegistry
from voicebot.crm.verification import CallerContext, attempts_left
from voicebot.dialog.no_number import without_number
from voicebot.dialog.writes import asked_for
from voicebot.text import normalize

PIN_PROMPT = "For your security, please tell me your PIN."  # 4 to 8 digits (crm import): no length said
ACCOUNT_PROMPT = ("I can help with that once I've found your account. What is the phone number on your account, "
                  "or one of your order numbers?")
FIND_FIRST_PROMPT = ("Thank you. Before the PIN I need to find your account: what is the phone number on it, or one "
                     "of your order numbers?")
NO_ORDERS = ", or one of your order numbers?"
"""Left out of both prompts where the CRM holds no orders: a hair salon's caller was asked for an order number."""
NOT_A_PHONE_PROMPT = ("Sorry, I did not get a whole phone number. What is the phone number on your account, with the "
                      "area code, or one of your order numbers?")
PIN_MAX_DIGITS = 8  # a PIN is 4 to 8 digits (crm/importer.py)
TOO_LONG_FOR_A_PIN = "That's longer than a PIN. For your security, I need your PIN: 4 to 8 digits."
"""A phone number said at the PIN prompt by a caller who found the account by an order number used an attempt."""
ORDER_NOT_PIN = "That sounds like an order number. For your security, I first need your PIN."
BIRTH_PROMPT = "No problem. Please tell me your date of birth, and then the postcode on your account."
NO_PIN_PROMPT = "For your security, please tell me your date of birth."
GO_AHEAD = "Take your time. What is your PIN? You can say it or key it in."
PIN_NOT_CAUGHT = "Sorry, I didn't catch that. Please say your PIN one digit at a time, or key it in on your keypad."
"""Nothing usable heard at the PIN prompt (Whisper wrote "A.D.D.D.D.D.D.D.D.D.D." for "Eight eight eight eight."):
how to give it, not a bare "say it again"; no attempt is used."""
_READY_WORDS = (r"(?:yes|yeah|yep|sure|ok|okay|right|alright|of course|fine|go on|no problem|um+|uh+|please|then|"
                r"(?:one|just a|give me a|a) (?:moment|sec|second|minute)|(?:hang|hold) on|wait|let me (?:check|"
                r"find it|look|see)|i(?:ll| will) (?:check|find it|look))")
_READY = re.compile(rf"^{_READY_WORDS}(?: {_READY_WORDS})*$")
"""A caller who agrees to give the PIN, or asks for a moment, and says nothing more: asked again, gently."""
POSTCODE_PROMPT = "Thank you. And the postcode on your account?"
STILL_NEED_POSTCODE = "To check who you are, I still need the postcode on your account. What is it?"
"""Words with no digit in them are no postcode (postcodes and ZIP codes have digits): no attempt is used."""
STILL_NEED_PIN = ("I understand. I'll look into it as soon as you're verified. What is your PIN? If you don't have "
                  "one, just say so.")
_ASKS = re.compile(r"^\W*(what|where|when|why|how|who|which|is|are|do|does|did|can|could|would|will|may|should)\b|\?|"
                   r"\b(want|wanna|need|like|please|book|cancel|change|speak|talk|operator|agent|human|person|someone|"
                   r"somebody|representative|transfer|instead|actually|else|other|another)\b", re.IGNORECASE)
ASKED_IN_WORDS = ("create_ticket", "create_lead", "request_callback", "reschedule_appointment", "cancel_appointment")
"""The writes ``asked_for`` reads in words (a booking is asked by picking an offered time)."""


def more_of_the_same(text: str) -> bool:
    """At the PIN prompt, words that tell more of the matter rather than ask something new: "It has been two weeks.",
    "I ordered it two weeks ago and nothing came." (both were taken for new requests: a ticket "It has been two
    weeks" was read back, and a knowledge entry about wrong items read out). A question, a request, a bid for a
    person or words that ask for a write of their own ("The table top is cracked.": a ticket, ``writes.asked_for``)
    are a new turn, answered as such."""
    return len(text.split()) >= 3 and not _ASKS.search(text) and not any(asked_for(t, [text]) for t in ASKED_IN_WORDS) \
        or _A_DAY.match(normalize(text)) is not None  # "Thursday please." for the visit to move: it went to the model


_A_DAY = re.compile(r"^(?:(?:on|next|this|the|in the|um|uh|er) )*(?:monday|tuesday|wednesday|thursday|friday|saturday|"
                    r"sunday|tomorrow|today|morning|afternoon|evening|weekend)(?: (?:morning|afternoon|evening))?"
                    r"(?: (?:please|if possible|would be (?:good|great|best)|is (?:fine|good|best)))?$")


_NO_PIN = re.compile(r"\b(dont|do not|never) (have|know|remember|got)\b.*\b(pin|code|number|one|it)\b|\bforgot\b|"
                     r"\bno pin\b|\bdate of birth\b|\bbirthday\b|\bnever (set|had|got|made|created|chose|picked)\b|"
                     r"\bdont (think|believe) i (have|had|set)\b|\bno idea\b|\bcant (remember|recall|find)\b")
_FORGOT_PIN = re.compile(r"\b(forgot|forgotten|lost|dont know|do not know|cant remember|cannot remember|dont "
                         r"remember|never (set|had|got))( what)? (my|the|our) (pin|pin code|passcode)\b")
_WHAT_PIN = re.compile(r"^\W*(what|which|whats|what is|what s)( a| the| my| your| that)? (pin|code)\b|\bwhat do you "
                       r"mean\b|\bwhere (do|would|can) i find (it|my pin|the pin)\b")
WHAT_PIN = ("Your PIN is the number you chose for your account with us. If you don't have one, I can check your date "
            "of birth and postcode instead.")
""""What PIN?" at the PIN prompt went to the model: what it is, and the other way, from code (no attempt used)."""

_ANSWER_WORDS = frozenset("""my the pin code number is its it was er um uh oh yes yeah yep sure ok okay right so well
    i think believe guess sorry thats that and please account order phone mobile postcode zip here you go""".split())
_ASKS_A_NUMBER = re.compile(r"\bnumbers?\b[^.!?]*\?", re.IGNORECASE)
"""A question for a number ("What is your order number?"); not a statement with the word ("... just ask us with the
order number.", the invoices entry: there a SIP caller's bare PIN was taken for an order number and kept in clear)."""
_FILLERS = frozenset("um uh er erm so its it is ok okay".split())  # "Um, it's 1 2 3 4." and nothing else
_ASKING = frozenset("how what where when why which who much many cost costs price can could would do does".split())

_LEAD_IN = re.compile(r"^\W*(?:(?:is|it'?s|its|my|the|and|of|postcode|zip|code)\b\W*)*", re.IGNORECASE)


@dataclass(frozen=True)
class Checked:
    """A tool-like record of an identity step for the call's events (answers are never in it)."""

    name: str
    args: dict[str, Any]
    result: dict[str, Any]
    elapsed_s: float


@dataclass
class IdentityResult:
    checked: list[Checked] = field(default_factory=list)
    say: list[str] = field(default_factory=list)
    verified: bool = False  # the caller is now verified: the waiting request can run
    locked: bool = False  # no attempts left: a person must help
    hand_over: str = ""  # the caller said yes to the person offered (``NEITHER_NUMBER``): why, for the transfer


@dataclass
class IdentityStep:
    context: CallerContext
    tools: ToolRegistry
    awaiting_pin: bool = False
    awaiting_account: bool = False
    decoy: bool = False
    birth: str | None = None  # a date of birth said at the PIN prompt, until the postcode comes (never stored)
    reminded: bool = False  # STILL_NEED_PIN was said this call: once, never a loop
    reminded_postcode: bool = False  # STILL_NEED_POSTCODE was said: once
    unknown: set[str] = field(default_factory=set)  # "order", "phone": the numbers the caller said they lack

    @property
    def waiting(self) -> bool:
        """A question about identity is open: the caller's next words are secret (the store masks them)."""
        return self.awaiting_pin or self.awaiting_account or self.birth is not None

    def set_aside(self) -> None:
        """The bot has asked something else since (a write read back): the caller's next words answer that. "Yes."
        to "I'll open a ticket saying: ... Is that right?" was taken for the PIN prompt's, and nothing was written."""
        self.awaiting_pin = self.awaiting_account = False
        self.birth = None

    def ask(self, order_number: str = "", phone: str = "") -> list[str]:
        """A request needs verification: what to ask first (an order number in the request finds the account, and
        so does a phone number the caller named as theirs: ``stated_phone``)."""
        if self.context.customer is None and not self.decoy:
            if phone and (numbers := self._account_numbers(phone, ())):
                return self._find(numbers).say
            if not order_number:
                self.awaiting_account = True
                return [self._without_orders(ACCOUNT_PROMPT)]
            heard = (n for text in self.context.heard_also for n in numbers_in(text) if 4 <= len(n) < 7)
            return self._find(list(dict.fromkeys([order_number, *heard]))).say
        self.awaiting_pin = True
        return [PIN_PROMPT if self._has_pin() else NO_PIN_PROMPT]

    def volunteered(self, text: str, bot_said: str = "", account: bool = True) -> tuple[IdentityResult | None, str]:
        """A known caller's PIN, or date of birth and postcode, said before being asked (``volunteered``), or an
        unknown caller's own phone number (``stated_phone``; only with ``account``: no read-back waits for a number
        to call back on): the result of checking it and the rest of the turn; (None, text) when there is nothing."""
        if _FORGOT_PIN.search(normalize(text)) and self.context.verified_customer is None and not self.waiting:
            # "I forgot my PIN." before any was asked had the website's password reset entry: the other way now
            # (an account not found yet first: its phone number or an order number)
            if self.context.customer is None and not self.decoy:
                return IdentityResult(say=self.ask()), ""
            self.awaiting_pin = True
            return IdentityResult(say=[BIRTH_PROMPT]), ""
        phone, rest = stated_phone(text)
        if phone and account and self.context.customer is None and not self.decoy and not self.waiting and (
                len(rest.split()) < 3 or _OTHER_PHONE.search(rest)):
            numbers = self._account_numbers(phone, ())  # "My phone number is 555 010 2030." and nothing more
            return (self._find(numbers), "") if numbers else (None, text)
        given, rest = volunteered(text, self.context.repo.region)
        given, rest = (text, "") if not given and self.bare_pin(text, bot_said) and self._has_pin() else (given, rest)
        if not given or self.context.customer is None or self.context.verified_customer is not None or self.waiting:
            return None, text
        self.awaiting_pin = True
        result = self.answer(given)
        if result is None:
            self.awaiting_pin = False
        return result, rest

    def bare_pin(self, text: str, bot_said: str = "", order_lengths: Collection[int] | None = None) -> bool:
        """Whether ``text`` may be a known caller's PIN said before it was asked: nothing but a number of 4 to 8
        digits ("1, 2, 3, 4."), from a caller known by their phone number and not yet verified, the bot's last words
        (``bot_said``) asking no question for a number, and no order number in the CRM that long
        (``order_lengths``: ``Repository.order_number_lengths``, asked of the CRM when None). On a SIP call, said
        after a knowledge answer, it was taken for an order number: the PIN was asked for all the same and the
        caller's PIN stored in clear. It is checked as the PIN (an attempt, as any other) and stored masked. With
        ``order_lengths`` given this reads no database: the session asks it on the event loop."""
        if (self.context.customer is None or self.context.verified_customer is not None or self.waiting
                or _ASKS_A_NUMBER.search(bot_said)):
            return False
        words = normalize(words_to_digits(text)).split()
        digits = "".join(w for w in words if w.isdigit())
        if not 4 <= len(digits) <= PIN_MAX_DIGITS or any(not w.isdigit() and w not in _FILLERS for w in words):
            return False
        return len(digits) not in (self.context.repo.order_number_lengths() if order_lengths is None else
                                   order_lengths)

    def _without_orders(self, prompt: str) -> str:
        """``prompt`` without "or one of your order numbers" where the CRM holds no orders at all."""
        if self.context.repo.db.execute("select exists(select 1 from orders)").fetchone()[0]:
            return prompt
        return prompt.replace(NO_ORDERS, "?")

    def _has_pin(self) -> bool:
        """Whether the account asks for a PIN (a decoy always does: it must sound like any account)."""
        customer = self.context.customer
        if customer is None:
            return True
        record = self.context.repo.verification_record(customer.id)
        return isinstance(record, NotFound) or bool(record.pin_hash)

    def answer(self, text: str) -> IdentityResult | None:
        """Handle ``text`` when it answers an open identity question; None when it does not."""
        digits = digits_in(text) if only_numbers(text) else ""
        if self.birth is not None:
            if len(digits.replace(" ", "")) == 4 and (re.search(r"\bpin\b", text, re.I) or self._has_pin()):
                self.birth = None  # four digits on an account with a PIN: the caller gave the PIN after all
                return self._pin(text)
            if not re.search(r"\d", words_to_digits(text)):  # "What's the new delivery date?" used an attempt
                if self.reminded_postcode:  # the agent answers; the date is still held for the postcode
                    return None
                self.reminded_postcode = True
                return IdentityResult(say=[STILL_NEED_POSTCODE])
            return self._birth_and_postcode(self.birth, text)
        if self.awaiting_account and re.search(r"\b(pin|passcode)\b", text, re.IGNORECASE):
            return IdentityResult(say=[self._without_orders(FIND_FIRST_PROMPT)])  # before the account: no attempt
        if self.awaiting_account and len(digits) >= 4:
            numbers = self._account_numbers(digits, self.context.heard_also)
            return self._find(numbers) if numbers else \
                IdentityResult(say=[self._without_orders(NOT_A_PHONE_PROMPT)])
        if self.awaiting_account and not digits and (reply := without_number(
                text, self.unknown, self._without_orders(NO_ORDERS) == NO_ORDERS)):  # dialog/no_number.py
            kind, words = reply
            self.awaiting_account = kind == "say"  # the person taken, or not wanted: the question is closed
            return IdentityResult(hand_over=words) if kind == "hand_over" else \
                IdentityResult(say=[self._without_orders(words)])
        if not self.awaiting_pin or (self.context.customer is None and not self.decoy):
            return None
        if find_dates(text, self.context.repo.region):  # a day and a month: a date of birth, not a PIN
            keyword, bare = _POSTCODE_WORD.search(text), _POSTCODE_AFTER.search(text)  # "02/11/1979, BN2 1TW."
            said, postcode = ((text[:keyword.start()], text[keyword.end():]) if keyword else
                              (text[:bare.start()], bare.group(0)) if bare else (text, ""))
            self.birth = said
            if postcode.strip(" ,.:is"):  # "... and my postcode is 98101" in the same breath
                return self._birth_and_postcode(said, postcode)
            return IdentityResult(say=[POSTCODE_PROMPT])
        if len(digits) >= 4 and re.search(r"\border\b", text, re.I) and not re.search(r"\b(pin|code)\b", text, re.I):
            return IdentityResult(say=[ORDER_NOT_PIN])  # "The order number is 55021.": no attempt used
        if len(digits) >= 7 and max(len(digits_in(t).replace(" ", "")) for t in (text, *self.context.heard_also)
                                    if only_numbers(t)) > PIN_MAX_DIGITS:  # a phone number: no attempt used
            return IdentityResult(say=[TOO_LONG_FOR_A_PIN])  # (Whisper wrote "55502030", its other hearing 10 digits)
        if len(digits) >= 4:
            return self._pin(text)
        if _NO_PIN.search(normalize(text)):
            return IdentityResult(say=[BIRTH_PROMPT])  # "I never set one up."
        if _WHAT_PIN.search(normalize(text)):
            return IdentityResult(say=[WHAT_PIN])
        if _READY.match(normalize(text)):
            return IdentityResult(say=[GO_AHEAD])  # "Yes." to the PIN prompt went to the model: "Please contact
        if not self.reminded and more_of_the_same(text):  # our customer service for assistance."
            self.reminded = True
            return IdentityResult(say=[STILL_NEED_PIN])
        return None

    def _account_numbers(self, digits: str, heard_also: tuple[str, ...]) -> list[str]:
        """The numbers to try, in order, to find the caller's account: each an order number (under 7 digits) or a
        phone number (E.164), as heard and then as the recogniser also heard it (``CallerContext.heard_also``);
        empty when none is either.
        Why: Whisper once heard "five five five, zero one zero, two zero three zero" as "55502030" where its first
        hearing had "555-010-2030"; taken as it was, no account matched and the caller's right PIN was refused
        three times. An order number it changed the same way met the decoy. A number that cannot be a phone number
        is asked again (no attempt used, nothing said about any account), never looked up."""
        numbers: list[str] = []
        for said in (digits, *(digits_in(text) if only_numbers(text) else "" for text in heard_also)):
            number = said if 4 <= len(said) < 7 else self._e164(said) if len(said) >= 7 else None
            if number and number not in numbers:
                numbers.append(number)
        return numbers

    def _e164(self, digits: str) -> str | None:
        """A national number in the CRM's region, or an international one said without its "+" ("four four, two
        zero, ..."): 11 digits or more, so a short misheard number does not pass for a foreign one."""
        region = self.context.repo.region
        return normalize_phone(digits, region) or (normalize_phone("+" + digits, region) if len(digits) >= 11
                                                   else None)

    def _find(self, numbers: list[str]) -> IdentityResult:
        """Look the account up by each number in turn: the first that finds one wins; the caller hears the same
        whether one did or not (the decoy)."""
        started = time.perf_counter()
        repo, found, by = self.context.repo, None, "phone" if numbers[0].startswith("+") else "order"
        for number in numbers:
            kind = "phone" if number.startswith("+") else "order"
            if kind == "phone":
                customer = repo.find_customer_by_phone(number)
            else:
                order = repo.get_order(number)
                customer = order if isinstance(order, NotFound) else repo.get_customer(order.customer_id)
            if not isinstance(customer, NotFound):
                found, by = customer, kind
                break
        if found is not None:
            self.context.identify(found)
        self.decoy = found is None
        self.awaiting_account, self.awaiting_pin = False, True
        checked = Checked("identify_caller", {"by": by}, {"ok": found is not None}, time.perf_counter() - started)
        return IdentityResult([checked], [f"Thank you. {PIN_PROMPT}"])

    def _pin(self, text: str) -> IdentityResult:
        return self._compare({"pin": text}, {"pin": "<redacted>"})

    def _birth_and_postcode(self, birth: str, postcode: str) -> IdentityResult:
        self.birth = None
        postcode = _LEAD_IN.sub("", postcode)  # "is 98101", "it's SW1A 1AA"
        return self._compare({"date_of_birth": birth, "postcode": postcode},
                             {"date_of_birth": "<redacted>", "postcode": "<redacted>"})

    def _compare(self, args: dict[str, str], shown: dict[str, str]) -> IdentityResult:
        started = time.perf_counter()
        verification = self.context.verification
        if self.decoy and self.context.customer is None:  # no account matched: every answer is wrong
            verification.attempts_used += 1
            message = "That did not match." + ("" if verification.locked else
                                              f" {attempts_left(verification.attempts_left)}")
            result = {"ok": True, "result": {"verified": False, "outcome": "wrong", "message": message}}
        else:
            result = self.tools.call("verify_caller", args, self.context)
        checked = [Checked("verify_caller", shown, result, time.perf_counter() - started)]
        if self.context.verified_customer is not None:
            self.awaiting_pin = False
            return IdentityResult(checked, verified=True)
        if verification.locked:
            self.awaiting_pin = False
            return IdentityResult(checked, locked=True)
        message = (result.get("result") or {}).get("message") or result.get("message") or "That did not match."
        again = "Please tell me your PIN again." if "pin" in args else \
            "Please tell me your date of birth and postcode again, or your PIN."
        return IdentityResult(checked, [f"{message} {again}"])


_PIN_SAID = re.compile(r"\b(?:pin|passcode|pin code|pin number)\b\W*(?:is|it'?s|its|=|:)?\W*(.+)$", re.IGNORECASE)


_POSTCODE_AFTER = re.compile(r"(?<=[,;] )(?:[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|\d{5}(?:-\d{4})?)\W*$", re.IGNORECASE)
"""A UK postcode or a US ZIP code said after the date of birth with no word for it."""
_BIRTH_WORDS = re.compile(r"\b(date of birth|born|birthday|d\.?o\.?b)\b", re.IGNORECASE)
_POSTCODE_WORD = re.compile(r"\b(post ?code|zip(?: ?code)?)\b", re.IGNORECASE)


def volunteered(text: str, region: str) -> tuple[str, str]:
    """Identity details a caller gives before being asked, and the rest of the turn: ("1 2 3 4.", "What's the
    status of my order?") for "What's the status of my order? My PIN is 1 2 3 4."; the whole turn for "My date of
    birth is ... and my postcode is ..."; ("", text) when there are none. The details are kept for this turn's
    check only; the history and the store hold the turn masked."""
    found = _PIN_SAID.search(text)
    if found is not None and len(digits_in(found.group(1)).replace(" ", "")) >= 4:
        return found.group(1), text[:found.start()]
    if _BIRTH_WORDS.search(text) and _POSTCODE_WORD.search(text) and find_dates(text, region):
        return text, ""
    return "", text


_PHONE_SAID = re.compile(r"\b(?:my|our|the)\s+(?:(?:phone|mobile|cell|cellphone|telephone|home|work|account|contact|"
                         r"other|usual|landline)\s+)?(?:phone\s+)?number(?:\s+on\s+(?:my|the|our)\s+account)?"
                         r"\s*(?:is|was|'s|:)?\s*(?P<number>\+?\d[\d\s().-]{5,}\d)", re.IGNORECASE)


_OTHER_PHONE = re.compile(r"^\W*(?:(?:hi|hello|yes|so|um|uh|well)\W+)*(?:i'?m|i am|we'?re|we are) (?:calling|ringing|phoning) "
                          r"(?:from|on) [\w' ]{0,30}?(?:phone|number|line|mobile|cell)\W*$", re.IGNORECASE)
"""All the rest of a turn that names the caller's number: "I'm calling from a different phone."."""


def stated_phone(text: str) -> tuple[str, str]:
    """A phone number the caller names as theirs ("my phone number is 555 010 2030", "my number's 555-010-2030"),
    as digits, and the turn without it; ("", text) when there is none. An unknown caller calling from another
    phone says it to be found: "My phone number is ..." heard the company's contact entry, and "Where is my order?
    My phone number is 555 010 2030." looked up order 2030, the number's tail."""
    found = _PHONE_SAID.search(words_to_digits(text))
    if found is None or len(digits := re.sub(r"\D", "", found.group("number"))) < 7:
        return "", text
    spoken = words_to_digits(text)
    return digits, (spoken[:found.start()] + spoken[found.end():]).strip(" ,.;")


def only_numbers(text: str) -> bool:
    """Whether a turn with digits in it is an answer ("it's 4 8 2 1", "my PIN is one two three four, I think") and
    not a question or request of its own: "How much is the 500 one?" at the PIN prompt read as the digits 5001 (the
    "one" a number), used an attempt and said "That did not match"; such a turn is the agent's to answer, and the
    question stays open."""
    rest = [w for w in normalize(words_to_digits(text)).split() if not w.isdigit() and w not in _ANSWER_WORDS]
    return len(rest) <= 3 and not _ASKING.intersection(rest)
