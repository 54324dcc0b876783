"""EscalationGuard: the fixed checks every caller event passes before any menu or model.

What it catches never reaches the language model, so "operator" and the escalation key work at any depth even when
the model is broken or slow, and no menu node can turn them off. It is pure, synchronous and cheap (regular
expressions, one VADER score per turn, a difflib ratio): the session calls it inline.

Triggers, in the order checked:

- ``operator_request``: an operator phrase from config as whole words in the normalised transcript ("OPERATOR!",
  "can I speak to a real person"). A small list of compounds that name something else ("travel agent", "human
  resources") is ignored; a false transfer costs a caller a short wait, a missed one is the failure the research
  names as the worst, so the list stays small and there is no negation handling ("I don't need an agent" does
  transfer).
- ``dtmf``: the escalation key.
- ``frustration``: anger words in a turn that VADER does not read as positive; ``max_confused_turns`` of the last
  four turns being "what?" / "sorry?" / "I don't understand"; the same sentence again after the bot answered it
  (the bot failed them); or the mean sentiment of the last ``sentiment_turns`` turns below the threshold.
- ``no_match`` / ``no_input``: that many turns in a row the bot could not use, or met by silence.

The session reports outcomes: ``note_no_match`` / ``note_no_input`` after a failed turn, ``note_progress`` after
one the bot understood. ``reset`` clears the signals after a transfer that did not happen (operator busy), so the
guard does not fire again on the same history.

``summary`` writes the note for the operator (the transfer event, the spoken warm-transfer brief, the callback,
the call store and the CRM's call history, which the model reads on later calls). It is built from typed facts,
never from a regular expression over the transcript: order numbers come from the CRM's answers on this call
(``confirmed_orders``) or from a caller turn that names them as an order ("order 1 0 4 5 2"); a turn that answers
a question for a PIN, date of birth or card number is never quoted or read for numbers; whatever caller text is
quoted (the request, an escalation's detail) has its PINs, dates of birth and card numbers masked.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any, Literal

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from voicebot.config import EscalationConfig
from voicebot.crm.spoken import words_to_digits
from voicebot.events import EventKind
from voicebot.review.redact import answers_secret_question, mask_secrets
from voicebot.text import normalize, phrase_pattern

EscalationReason = Literal["operator_request", "dtmf", "frustration", "no_match", "no_input"]


@dataclass(frozen=True)
class Escalation:
    """A transfer request. ``sentiment`` is the caller's mean over the recent turns (-1..1, 0 when unknown)."""

    reason: EscalationReason
    detail: str
    sentiment: float


# Words before / after a phrase that make it name something else ("travel agent", "human resources").
_NOT_AFTER = frozenset(
    "travel estate insurance shipping customs booking secret tour rental leasing letting cleaning forklift crane user"
    .split()
)
_NOT_BEFORE = frozenset("resources error errors rights nature".split())

_ANGER = re.compile(
    r"(?<!\S)(?:ridiculous|useless|pointless|stupid|idiot|idiotic|dumb|terrible|awful|horrible|pathetic|"
    r"unacceptable|outrageous|furious|angry|annoyed|annoying|hate|worst|rubbish|nonsense|damn|bloody|crap|"
    r"shit|fuck|fucking|fed up|sick of|sick and tired|waste of time|had enough)(?!\S)"
)
_CONFUSED_WORDS = frozenset("what sorry pardon huh eh excuse me come again please hm hmm".split())
_CONFUSED_PHRASE = re.compile(
    r"(?<!\S)(?:dont understand|didnt understand|dont get it|didnt get that|didnt catch|didnt hear|cant hear|"
    r"what do you mean|what did you say|say that again|say again|repeat that|come again|pardon|what was that|"
    r"missed (?:that|it|the \w+)|what (?:\w+ )?did you (?:just )?say|(?:say|read|tell me|give me) (?:the |those |them |"
    r"that |it )?(?:\w+ )?again|what (?:were|was) (?:the|those|that) \w+ again|one more time)(?!\S)"
)
"""Asked to hear it again in the caller's words: "Sorry, what were the times again?", "What times did you say?",
"Could you read them again?", "Sorry, I missed that." went to the model (or a knowledge entry) before."""
_ASKING_AGAIN = frozenset("what sorry pardon huh eh excuse".split())
_CONFUSED_MAX_WORDS = 6


_ROLES = (r"vet|veterinarian|doctor|dentist|nurse|hygienist|pharmacist|mechanic|technician|engineer|advisor|adviser|"
          r"specialist|lawyer|accountant")
"""People by their trade, asked for by name of it ("a vet", "the pharmacist")."""
_ROLE = re.compile(r"\b(?:speak|talk|put me through|put me on|connect me|transfer me|get me|pass me)\s+(?:to|with)\s+"
                   r"(?:the |your |a |an |some |one of your )?(?:manager|supervisor|boss|owner|person in charge|"
                   r"someone in charge|colleague|member of staff|staff member|receptionist|human being|someone|somebody|"
                   r"anybody|anyone|" + _ROLES + r"|"
                   r"(?:customer |technical |tech )?(?:service|support|services)(?: team| department| desk)?|sales"
                   r"(?: team| department)?|billing|accounts|accounting|reception|team member|live agent)\b|\b(?:want|"
                   r"need|get|ask for|give me) (?:a |the |your )?(?:manager|supervisor)\b|\b(?:complain|complaint|speak|talk) to (?:a |"
                   r"the |your )?(?:manager|supervisor)\b|^\W*(?:(?:please|can you|"
                   r"could you|just),? )*(?:transfer me|put me through)\W*(?:please\W*)?$", re.IGNORECASE)
"""A person by role or team ("Can I speak to the manager?" was answered by the model; "Can I talk to somebody?",
"Let me speak to customer service", "I want a supervisor", "Transfer me, please" were not operator phrases; nor was
a vet's "Can I speak to a vet?", which went to the model): as good as a name or "operator"."""
_ROLE_FREE = re.compile(r"\b(?:is|are) (?:the|a|your|there a|there an|any) (?:manager|supervisor|owner|" + _ROLES +
                        r")s? (?:available|free|around)\b(?! (?:on|this|next|tomorrow|today|tonight|at|in the)\b)",
                        re.IGNORECASE)
"""A person by role asked after as free now ("Is the pharmacist available to answer a question?" went to the model);
with a day it is the opening hours ("Is the mechanic in on Saturday?")."""
_PERSON = re.compile(
    r"(?<!\S)(?:(?:real|actual|live|proper) (?:person|human|human being|people)|"
    r"(?:want|need|get me|give me|put me through to|connect me (?:to|with)|pass me to) (?:to (?:talk|speak) "
    r"(?:to|with) )?(?:a |an )?(?:person|human|human being)(?! (?:to|who|that|for|with)(?!\S))|"
    r"(?:anyone|someone|somebody|anybody) (?:there )?(?:i|we) (?:can|could) (?:talk|speak) (?:to|with)|"
    r"(?:dont|do not) want (?:to (?:talk|speak) (?:to|with) )?(?:a |an |the |this |your )?"
    r"(?:machine|robot|bot|computer|recording)s?|"
    r"(?:need|want|like|get) (?:some )?(?:help|assistance) from (?:a |an )?(?:person|human|human being)|"
    r"^(?:(?:hi|hello|yes|yeah|um|uh) )*(?:a )?(?:person|human) please$|"
    r"^(?:(?:hi|hello|yes|yeah|um|uh) )*(?:customer|client) (?:service|services|support|care)"
    r"(?: team| department| desk)?(?: please)?$)(?!\S)")
"""A person in the caller's own words, matched on ``normalize``d text: "Put me through to a person, please", "Is
there anyone I can talk to?", "Speak to an actual person", "I don't want to talk to a machine", "Customer service,
please" went to the knowledge base or the model; so did "I need help from a person" and "Person, please". "I need a person to assemble the desks" asks for a service."""
_NAMED = re.compile(r"\b(speak|talk|put me through|connect me|transfer me)\s+(?:to|with)\s+(?:(?:Mr|Mrs|Ms|Miss|Dr)\.?\s+)?"
                    r"((?!I\b|You\b|Your\b|The\b|This\b|That\b|It\b)[A-Z][a-z]+)\b")


def _confused(words: str) -> bool:
    """A short turn of "what?", "sorry?", "I don't understand" (``words`` normalised)."""
    return len(words.split()) <= _CONFUSED_MAX_WORDS and (
        set(words.split()) <= _CONFUSED_WORDS or _CONFUSED_PHRASE.search(words) is not None)
_CONFUSED_WINDOW = 4  # EscalationConfig.max_confused_turns is at most this
_REPEAT_MIN_WORDS = 3  # "yes", "no", "one" twice are answers to two questions, not a repeat

_TOPICS = (
    (re.compile(r"(?<!\S)(?:orders?|deliver(?:y|ed)|package|parcel|shipping|tracking)(?!\S)"), "order"),
    (re.compile(r"(?<!\S)(?:repairs?|appointments?|visit|technician|fix)(?!\S)"), "repair visit"),
    (re.compile(r"(?<!\S)(?:refund|invoice|bill|billing|charged?|payment)(?!\S)"), "billing"),
    (re.compile(r"(?<!\S)(?:buy|price|quote|sales|purchase)(?!\S)"), "buying"),
    (re.compile(r"(?<!\S)(?:call ?back)(?!\S)"), "callback"),
)
# A number the caller names as an order ("order 10452", "order number is 1 0 4 5 2", "order #10452"), after
# spoken digits became digits. Any other number a caller says (a PIN, a date, a postcode) is not an order number.
_STATED_ORDER = re.compile(r"\border(?:\s+(?:number|no\.?|#))?(?:\s+(?:is|was))?[\s:#]*"
                           r"(?P<number>\d(?:(?:[\s-]|,\s?)?\d){2,11})(?!\d)", re.IGNORECASE)
_ORDER_TOOLS = ("get_order", "list_open_orders")
_MAX_ORDERS = 3


@functools.cache
def _analyzer() -> SentimentIntensityAnalyzer:
    """One analyzer per process (it reads its lexicon from disk); it is stateless, so calls share it."""
    return SentimentIntensityAnalyzer()


class EscalationGuard:
    """One per call. Feed it every transcript and key press, and the outcome of each turn."""

    def __init__(self, config: EscalationConfig):
        self.config = config
        self._phrases = [(phrase, phrase_pattern(phrase)) for phrase in config.operator_phrases]
        self.sentiments: list[float] = []
        """Every caller turn's compound score, in order (for the call store; never cleared)."""
        self.last: Escalation | None = None
        self._recent: deque[float] = deque(maxlen=config.sentiment_turns)
        self._confused: deque[bool] = deque(maxlen=_CONFUSED_WINDOW)
        self._previous: str | None = None
        self._no_match = 0
        self._no_input = 0

    # --- signals ---------------------------------------------------------------------------------------------

    def sentiment(self, text: str) -> float:
        """VADER compound score of ``text``: -1 (very negative) .. 1 (very positive)."""
        return _analyzer().polarity_scores(text)["compound"]

    @property
    def mood(self) -> float:
        """Mean sentiment of the recent caller turns (0 before any)."""
        return round(fmean(self._recent), 3) if self._recent else 0.0

    @staticmethod
    def bot_question(text: str) -> bool:
        """Whether the caller asks if they are talking to a machine ("am I talking to a real person?", "are you
        a robot?"). It is a question, not a request: it deserves an honest answer and the way to a human, not a
        transfer (a caller who wants a person says so: "real person, please" still transfers)."""
        return _BOT_QUESTION.search(normalize(text)) is not None

    def operator_phrase(self, text: str) -> str | None:
        """The operator phrase ``text`` asks for, or None. Public so the session can check partial transcripts."""
        words = normalize(text)
        padded = f" {words} "
        for phrase, pattern in self._phrases:
            for found in pattern.finditer(words):
                before = padded[:found.start() + 1].split()[-1:]
                after = padded[found.end() + 1:].split()[:1]
                if not (set(before) & _NOT_AFTER or set(after) & _NOT_BEFORE):
                    return phrase
        named = _NAMED.search(text) or _ROLE.search(text) or _ROLE_FREE.search(text) or _PERSON.search(words)
        return named.group(0) if named else None

    # --- events ----------------------------------------------------------------------------------------------

    def check_transcript(self, text: str) -> Escalation | None:
        """Check one caller turn and record its sentiment; an Escalation if it must go to a human."""
        words = normalize(text)
        if not words:
            return None
        score = self.sentiment(text)
        self.sentiments.append(score)
        self._recent.append(score)
        phrase = None if self.bot_question(text) else self.operator_phrase(text)
        if phrase is not None:
            return self._escalate("operator_request", f"said {phrase!r}")

        confused = _confused(words)
        self._confused.append(confused)
        previous, self._previous = self._previous, None if confused else words

        anger = _ANGER.search(words)
        if anger and score <= 0:
            return self._escalate("frustration", f"angry: {anger.group(0)!r} in {_quote(text, every_number=True)}")
        if sum(self._confused) >= self.config.max_confused_turns:
            return self._escalate("frustration", f"did not understand the bot {sum(self._confused)} times")
        numbers = words_to_digits(words).replace(" ", "").isdigit()  # a PIN or number said again is no complaint
        if (previous is not None and not confused and not numbers and len(words.split()) >= _REPEAT_MIN_WORDS
                and difflib.SequenceMatcher(None, previous, words).ratio() > self.config.repeat_similarity):
            return self._escalate("frustration", f"repeated {_quote(text, every_number=True)}")  # a PIN, again?
        if len(self._recent) >= self.config.sentiment_turns and self.mood < self.config.frustration_threshold:
            return self._escalate("frustration", f"negative over the last {len(self._recent)} turns ({self.mood:+.2f})")
        return None

    @staticmethod
    def asks_again(text: str) -> bool:
        """ "What?", "sorry?", "pardon?", "could you say that again?": the caller did not hear or follow the bot's
        last words, and hears them again (a "please" or "hmm" alone is an answer or a thought, not this)."""
        words = normalize(text)
        return _confused(words) and (_CONFUSED_PHRASE.search(words) is not None
                                     or bool(set(words.split()) & _ASKING_AGAIN))

    def check_dtmf(self, digit: str) -> Escalation | None:
        return self._escalate("dtmf", f"pressed {digit}") if digit == self.config.dtmf_key else None

    def note_no_match(self) -> Escalation | None:
        """The last turn matched nothing (or the model could not use it). The caller will be asked again, so
        saying the same thing next is expected, not a repeat."""
        self._no_match += 1
        self._previous = None
        if self._no_match >= self.config.max_no_match:
            return self._escalate("no_match", f"{self._no_match} answers in a row not understood")
        return None

    @property
    def no_match_left(self) -> int:
        """No-matches in a row still to go before ``note_no_match`` escalates (1: the next one does)."""
        return self.config.max_no_match - self._no_match

    def note_no_input(self) -> Escalation | None:
        self._no_input += 1
        if self._no_input >= self.config.max_no_input:
            return self._escalate("no_input", f"{self._no_input} prompts in a row with no answer")
        return None

    def note_progress(self) -> None:
        """The bot understood the last turn: the no-match and no-input runs are broken."""
        self._no_match = 0
        self._no_input = 0

    def reset(self) -> None:
        """Forget the signals (not ``sentiments``), e.g. after a transfer that could not be completed."""
        self.note_progress()
        self._recent.clear()
        self._confused.clear()
        self._previous = None
        self.last = None

    def _escalate(self, reason: EscalationReason, detail: str) -> Escalation:
        self.last = Escalation(reason, detail, self.mood)
        return self.last

    # --- hand-over -------------------------------------------------------------------------------------------

    def summary(self, turns: Sequence[tuple[str, str]], caller: str | None = None,
                escalation: Escalation | None = None, *, orders: Iterable[str] = ()) -> str:
        """A short note for the operator, built without a model so it is instant and says nothing invented.

        ``turns`` are (role, text) with role "caller" (or "user") for the caller and "bot" for the bot; ``caller``
        is who the CRM says it is, e.g. "Alice Smith (+15550102030), verified"; ``escalation`` defaults to the
        guard's last one; ``orders`` are the order numbers the CRM confirmed on this call (``confirmed_orders``).
        No secret reaches the note: see the module's docstring.
        """
        roles = [("caller" if role in ("caller", "user") else role, text) for role, text in turns]
        said = [mask_secrets(text.strip()) for (role, text), secret in zip(roles, answers_secret_question(roles))
                if role == "caller" and not secret and normalize(text)]
        parts = [f"Caller {caller}." if caller else "Caller not identified."]
        request = next((t for t in said if self._is_request(t)), None)
        if request is None:
            parts.append("No request stated.")
        else:
            everything = " ".join(normalize(t) for t in said)
            topic = _topic(normalize(request)) or _topic(everything)
            numbers = list(dict.fromkeys([*orders, *(n for t in said for n in stated_orders(t))]))[:_MAX_ORDERS]
            about = " ".join(filter(None, [topic or ("order" if numbers else None), ", ".join(numbers)]))
            parts.append(f"Asked about {about}: {_quote(request)}." if about else f"Asked: {_quote(request)}.")
        escalation = escalation or self.last
        if escalation is not None:
            why = {"operator_request": "asked for a person", "dtmf": "pressed the operator key",
                   "frustration": "caller frustrated", "no_match": "bot did not understand",
                   "no_input": "no answer from caller"}[escalation.reason]
            parts.append(f"Escalated: {why} ({escalation.detail}).")
        mood = escalation.sentiment if escalation is not None else self.mood
        if mood <= -0.05:
            parts.append(f"Mood: {'upset' if mood < self.config.frustration_threshold else 'negative'} ({mood:+.2f}).")
        return " ".join(parts)

    def _is_request(self, text: str) -> bool:
        """A turn that says what the caller wants: not a bare operator phrase, "what?", a one-word answer or only
        numbers ("4 8 1 5" answers a question, maybe for a PIN)."""
        words = normalize(text).split()
        if len(words) < 2 or set(words) <= _CONFUSED_WORDS:
            return False
        rest = " ".join(words)
        for _, pattern in self._phrases:
            rest = pattern.sub(" ", rest)
        content = [w for w in rest.split() if w not in _FILLER]
        return len(content) >= 2 and not words_to_digits(" ".join(content)).replace(" ", "").isdigit()


_FILLER = frozenset("i id want to a an the please can could get me speak talk with now just".split())
_MACHINE = r"(a |an )?(real )?(robot|bot|machine|computer|human|human being|real person|person|live person|ai|" \
           r"artificial intelligence|recording|automated|automatic|answering machine|virtual assistant)"
_BOT_QUESTION = re.compile(
    rf"^(?:(?:hi|hello|sorry|wait|excuse me|so|um|uh|hang on) )*(?:"
    rf"(?:are|r) (?:you|u) (?:really |actually |even )?{_MACHINE}|"
    rf"(?:am i|are we) (?:talking|speaking|chatting) (?:to|with) {_MACHINE}|"
    rf"is (?:this|that|it) (?:really |actually )?{_MACHINE}|"
    rf"is this (?:call )?automated|(?:are|r) (?:you|u) real|is (?:this|that) a real (?:person|human)|"
    rf"who (?:are you|am i (?:talking|speaking) (?:to|with))|what (?:are you|is this)|"
    rf"(?:so )?what (?:can|do|could) (?:you|u) (?:actually |even )?(?:do|help (?:me )?with)(?: for (?:me|us))?|"
    rf"how (?:can|could) (?:you|u) help(?: me| us)?|what (?:are you able|is it you can) (?:to )?(?:do|help with))"
    rf"(?: or (?:not|{_MACHINE}))?(?: or what)?$")
"""A whole turn that asks what the bot is or what it can do ("what can you do for me?" was answered with the
password-reset entry, the nearest document); "I want a real person" is not one (it does not start as a question)."""


def _topic(words: str) -> str | None:
    """The topic whose keyword comes first in ``words``."""
    found = [(m.start(), label) for pattern, label in _TOPICS if (m := pattern.search(words))]
    return min(found)[1] if found else None


def stated_orders(text: str) -> list[str]:
    """Order numbers the caller named as such in ``text``: "where is order one oh four five two" -> ["10452"].
    A number said without "order" before it (a PIN, a date, a postcode, a phone number) is not one."""
    return [re.sub(r"\D", "", m.group("number")) for m in _STATED_ORDER.finditer(words_to_digits(text))]


def confirmed_orders(events: Iterable[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """Order numbers the CRM returned on this call, in order: from the call's ``tool_call`` events (kind, data)
    of ``get_order`` and ``list_open_orders`` that succeeded. Typed facts for ``EscalationGuard.summary``."""
    found: list[str] = []
    for kind, data in events:
        if kind != EventKind.TOOL_CALL or data.get("tool") not in _ORDER_TOOLS:
            continue
        result = data.get("result") or {}
        value = result.get("result") if isinstance(result, Mapping) and result.get("ok") else None
        for order in value if isinstance(value, list) else [value]:
            if isinstance(order, Mapping) and order.get("number"):
                found.append(str(order["number"]))
    return list(dict.fromkeys(found))


def _quote(text: str, limit: int = 80, every_number: bool = False) -> str:
    """Caller text for a note, with PINs, dates of birth and card numbers masked (``every_number``: every number
    and date, for text that may answer a question for a PIN: "4 8 1 5", said twice, is a repeat)."""
    text = " ".join(mask_secrets(text, secret_answer=every_number).split())
    return f'"{text}"' if len(text) <= limit else f'"{text[:limit - 1].rstrip()}…"'
