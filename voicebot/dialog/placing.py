"""Which request a caller's turn makes: the intent classifier's pick, checked against the words and the knowledge base.

Why: the classifier's examples are written for one kind of company, and the admin's knowledge base is written for
theirs. Called as an internet provider's customer would, nearest-example guesses read the company's own words as
account requests: "Which packages do you offer?" was an order status (by 0.008: "package"), "I want to cancel my
contract." a booking's cancellation (by 0.038), and each asked a known caller for their PIN or said "I don't see any
upcoming appointments", while the knowledge base held the answer word for word (0.66, 0.82). A request that reads
the caller's own records names them ("my order", "I ordered", "we booked"); a move or a cancellation names what is
moved (a visit, the technician, a service the CRM offers, a day, "it"). When the words do neither and the knowledge
base answers the turn well, the turn is a question for the knowledge base, not the request. A request the words do
make keeps its intent whatever the knowledge base says ("where is my order?" beside the tracking entry). A narrow
pick (under ``WRITE_MARGIN``) must also name the kind of record it reads: "Where do I park?" speaks of the caller
but of no order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date

from voicebot.crm.spoken import digits_in
from voicebot.dialog.answers import ADDRESS_CHANGE, BILLED_WRONG, only_praise
from voicebot.dialog.services import service_named
from voicebot.dialog.appointments import placed
from voicebot.dialog.intents import Intent
from voicebot.dialog.knowledge_step import KNOWLEDGE_OVER_INTENT
from voicebot.dialog.offered_times import extreme_asked
from voicebot.dialog.slots import parse_when
from voicebot.dialog.write_asks import ADD_ON, CANT_MAKE, NEW_ORDER, SERVICE_FAULT, SWITCH_PLAN
from voicebot.dialog.writes import WRITE_MARGIN
from voicebot.knowledge.hours import SOMEONE_IN
from voicebot.knowledge.price_asked import asks_price, price_question
from voicebot.review.redact import mask_secrets
from voicebot.text import normalize, words

_RETURNING = re.compile(r"\b(return|returning)\b(?! (address|label))|\bpick(ing)? (\w+ ){0,2}up\b|\bpickup\b|"
                        r"\bcollect(ing)?\b")
"""Sending an order back or fetching it ("Can I pick up my order in person?" was an order status by 0.01, and read
out the order): how is the knowledge base's (the policy, the label, the showroom), not the order's status."""
_OPENS_TICKET = re.compile(r"\b(?:open|file|raise|create|log|make|submit|lodge|put in|start|report)\b(?: \w+){0,3}? "
                           r"(?:ticket|complaint|case|support request)\b")
"""A ticket asked for by name ("I want to open a ticket" was a booking by 0.025 and asked which service to book; "Can
you open a ticket for me?" the ticket status, and read the caller's history): what went wrong is asked next."""
SURE_ENTRY = 0.85
"""A knowledge score this high is an entry's own question in other words (the demo's "Can I get my printer repaired
on Monday?" scores 0.79 with its repair entry and is a booking; a garage's "Can I wait while you do the MOT?" 0.92
with its waiting-room entry)."""
_NO_SHOW = re.compile(r"\b(?:engineer|technician|plumber|electrician|fitter|installer|mechanic|repair ?man|cleaner|"
                      r"nurse|therapist|stylist)s?\b.{0,40}\b(?:never|didnt|did not|hasnt|has not|not|no)\b.{0,12}"
                      r"\b(?:turn(?:ed)? up|show(?:ed)? up|came|come|arrived?)\b|"
                      r"\b(?:nobody|no one|no-one|noone)\b.{0,12}\b(?:came|turned up|showed up|arrived)\b")
"""A visit that did not happen ("The engineer was supposed to come yesterday and never turned up."): a complaint, a
ticket read back from the caller's words. It was a cancellation by 0.011, "Your plumber didn't show up." an order
status and "Nobody came for my appointment" a move (a goods delivery that never came stays an order's status)."""
_HOW_TO_ORDER = re.compile(r"^(?:(?:hi|hello|yes|okay|ok|so|and|um|well) )*(?:how|where) (?:do|can|could|would|"
                           r"should) (?:i|we) (?:\w+ ){0,2}(?:re)?order\b")
"""How to order asked ("How do I order from you?", "How can I place an order?"): the knowledge base's ordering
entry; as an order status it asked a known caller for the PIN and read out their open orders."""
SENDS_A_COPY = re.compile(r"\b(?:send|sent|email|e mail|mail|resend|re send|forward)\b(?: \w+){0,4}? (?:a |another )?"
                           r"(?:copy|copies|invoice|invoices|receipt|receipts|statement|bill)\b")
"""A copy of a paper asked for with the order's number ("Can you email me a copy of my invoice for order 10452?" was
an order status by 0.005 and read the order's delivery): a colleague's task, a ticket in the caller's words. Asked
without a number, the knowledge base says how (the demo's: "just ask us with the order number")."""
def number_said(text: str) -> str | None:
    """The first number of four or more digits in ``text``, said or spoken ("one zero four five two"), a card number
    or PIN masked first: the order's number a copy is asked for with."""
    found = re.search(r"\d{4,}", digits_in(mask_secrets(text)))
    return found.group() if found else None


_MOVES_OR_DROPS = re.compile(r"\b(?:move|moved|moving|shift|reschedul\w*|postpon\w*|push|bring|brought|chang\w*|"
                             r"cancel\w*|call off|wont|dont|do not|will not|no longer|after all|cant make|cannot make|"
                             r"another|different|instead|any ?more|earlier|later)\b")
"""A word of moving or dropping a booking: without one, a move or a cancellation picked for a turn that names a
service is a new booking."""


def _moves_or_drops(plain: str, services: Sequence[str]) -> bool:
    """A word of moving or dropping said outside the name of a service: "Can I get an oil change on Wednesday?"
    (a garage's "oil change") heard the wait entry, its "change" taken for a move."""
    for service in services:
        plain = re.sub(rf"\b{re.escape(normalize(service))}s?\b", " ", plain)
    return _MOVES_OR_DROPS.search(plain) is not None


OWN_RECORDS = frozenset({"order_status", "order_history", "ticket_status", "my_appointments"})
"""Intents that read the caller's own records: their words say whose."""
CHANGES = frozenset({"reschedule", "cancel_booking"})
"""Intents that change a booking: their words say what is moved or cancelled."""

_ASKS_TO_BOOK = re.compile(r"\b(?:(?:can|could|may) (?:i|we|you)|(?:id|i would|we would|wed|i want|we want|want|i need|"
                           r"we need) (?:like )?to|please) (?:book|schedule|reserve)\b"
                           r"(?! (?:online|on line|on the|through|via|by)\b)|"
                           r"\b(?:(?:can|could|may) (?:i|we)|(?:id|i would|wed|we would|i want|we want|i need|we need) "
                           r"(?:like )?to) (?:bring|drop|take) (?:it|my \w+|the \w+|our \w+|him|her|them|\w+) "
                           r"(?:in|off|round|over)\b")
"""Asking to book ("Can I book ...", "I'd like to schedule ...") or to bring something in ("Can I bring my car in
then for new tyres?" heard the courtesy-car entry; a vet's "I'd like to bring Bella in for a checkup" went to the
model)."""
_FREE_TIME = (r"(?:appointments?|slots?|times?|openings?|availability|spaces?|visits?|bookings?)")
_ASKS_FREE_TIME = re.compile(
    r"\b(?:do|have|has|would|will) (?:you|you guys|the \w+|your \w+) (?:have|got|get) (?:(?:any(?:thing)?|an?|some|"
    r"something) (?:\w+ ){0,2}?)?(?:free |open |available |spare |left )?" + _FREE_TIME + r"\b|"
    r"\b(?:your|the) (?:next|earliest|first|soonest|nearest) (?:free |available |open |possible )?" + _FREE_TIME +
    r"\b|\b(?:any|anything|something|somebody|someone) (?:free|available|open)\b|"
    r"\b(?:free|available|open) " + _FREE_TIME + r"\b")
"""The company's free times asked after ("Do you have any free appointments tomorrow?", "When is your next free
appointment?", "What's your earliest appointment?"): a vet's callers heard the consultation's price after "Yes, we
do." (the word "appointment" names it on the price list) or were asked for their phone number (their own
bookings, by 0.04). A new booking: the free times, or which service first. Not the caller's own ("my next
appointment", "do I have any appointments", "booked for me": ``_THEIR_OWN``)."""
_ANYTHING = re.compile(r"\b(?:do|have) you (?:have|got) (?:anything|something)\b")
_EARLIEST = re.compile(r"\b(?:the )?(?:earliest|soonest) (?:i|we|you) (?:can|could)\b|"
                       r"\bhow soon (?:can|could) (?:i|we|you)\b|"
                       r"\bwhen (?:can|could|would) (?:you|i|we) (?:do (?:it|that|this|one|me|us)|fit (?:me|us|it|"
                       r"him|her|them) in|see (?:me|us|it|him|her|them)|book (?:me|us|it|one)|come in)\b")
"""Free times asked after in words that need a day or a service to be a booking ("Do you have anything on
Saturday?" heard "I don't have that information"; "What's the earliest I can get my cat vaccinated?"; "My car needs
an inspection, when can you do it?" heard "Yes, we do." and the price). Not "when can I pick it up" (their own)."""
_GET_ONE = re.compile(r"\b(?:can|could|may) (?:i|we) (?:get|have|grab|make) (?:a|an|one|my|our)\b")
"""A visit or a service asked for as a thing to get: "Can I get a checkup on Wednesday afternoon?" was the caller's
own bookings (by 0.005) and asked for their phone number."""
_FREE_WORD = re.compile(r"\b(?:available|availability|free|openings?|spaces?|room)\b")
_WHEN_IS_IT_ON = re.compile(r"\b(?:what time|when|what days?) (?:does|do|is|are) (?:the |your )?(?:\w+ ){1,3}(?:start|"
                            r"on|run|running|held|take place)\b|"
                            r"\b(?:what|which) (?:days?|times?) (?:do|does|are|is|can) (?:you|they|i|we)\b")
"""A service the CRM books asked after as free ("Do you have a personal trainer available on Saturday morning?" heard
"I can't check stock from here") or as a timetable ("What time does yoga start?" heard "I don't have that
information"; "What days do you do vaccinations?" heard "Yes, we do." and the price): its free times."""
_HOW_TO_PREPARE = re.compile(r"^(?:(?:and|so|um|ok|okay) )*(?:(?:do|should|must|shall) (?:i|we)|"
                             r"what (?:do|should|must) (?:i|we)) (?:need to |have to )?"
                             r"(?:bring|wear|prepare|do before|eat|fast|arrive|fill)\b")
"""How to prepare for a visit asked ("Do I need to bring anything to the appointment?" was a booking by 0.012, and
offered times): the knowledge base's, whatever it holds."""
_THEIR_OWN = re.compile(r"\b(?:my|our) (?:\w+ )?(?:appointments?|bookings?|visits?|slots?|times?|reservations?)\b|"
                          r"\b(?:mine|ours|do i|do we|have i|have we|i have|we have|booked|made)\b")
IF_WE_DO = re.compile(r"^(?:(?:hi|hello|yes|okay|ok|so|and|um|well)\W+)*(?:do|does|can|could|are) (?:you|your \w+|"
                      r"you guys)\b(?! (?:(?:please|also) )?(?:book|schedule|send|come|arrange|make|fit me|get me))")
"""Whether the company does something ("Do you fix printers?", "Can you set up laptops?"): the knowledge base's,
and the offer of a visit after it (``followups.with_offer``); "Can you book me a printer repair?" is a booking."""
_FIRST_PERSON = re.compile(
    r"\b(i|im|ive|id|ill|my|mine|me|myself|we|were|weve|wed|our|ours|us|я|мой|моя|моё|мое|мои|моего|моей|моём|моем|"
    r"моих|мне|меня|мы|наш|наша|наше|наши|нашего|нашей|нам|нас)\b")
_BOOKED_THING = frozenset("""appointment appointments visit visits booking bookings booked reservation reservations
    slot slots technician
    technicians engineer engineers fitter installer repairman plumber electrician it that this one time day date
    визит визита запись записи мастер мастера""".split())

_A_VISIT = frozenset("""appointment visit slot technician engineer fitter installer repairman визит мастер""".split())
"""What a booking request books when it names no service and no day ("book a visit", "schedule a technician")."""
_BOOKED_VISIT = re.compile(r"\b(?:(?:when|what time|what day) (?:is|does|will|s)|whens) (?:the|my|our) (?:technician|"
                           r"engineer|fitter|installer|repair ?man|visit|appointment|repair|fitting|setup)\b"
                           r"(?! (?:be )?(?:available|free))")
"""A visit already booked asked after: "the technician", "my appointment", not "a technician" (a new booking)."""
_HOW_IS_MY_THING = re.compile(
    r"\b(?:is|are) (?:my|our) (?:\w+ ){1,2}(?:ready|done|finished|fixed|repaired|sorted)\b|"
    r"\b(?:has|have) (?:my|our) (?:\w+ ){1,2}been (?:fixed|repaired|done|finished|looked at|serviced|sorted|seen to)\b|"
    r"\b(?:status|progress) (?:of|on|with) (?:my|our)\b|\bwhen will (?:my|our) (?:\w+ ){1,2}be (?:ready|done|"
    r"finished|fixed|repaired)\b|\bwhen (?:can|could|will) (?:i|we) (?:pick up|collect|come for|get back) (?:my|our)\b|"
    r"\bwhen (?:can|could|will) (?:i|we) (?:pick|get|have) (?:my|our) (?:\w+ ){1,2}(?:up|back)\b")
"""The state of something of the caller's left with the company ("Is my car ready?" heard a garage's courtesy-car
entry, "What's the status of my repair?" went to the model): their records, a ticket when a ticket word is said,
else their orders (a repair job is one in the CRM). Not a booking ("is my appointment ...": ``_THEIR_OWN``)."""
_BOOKING_NOUNS = frozenset("appointment appointments booking bookings reservation reservations visit visits".split())
_A_RULE = re.compile(r"\b(?:minimum|maximum|policy|policies|rules?|terms|how far (?:in advance|ahead)|notice)\b")
"""A rule of the company's asked after, not a record of the caller's ("What's the minimum booking?")."""
_FILLER = frozenset("a an the please um uh er erm hi hello yes yeah ok okay just for some".split())


def _only_a_service(plain: str, services: Sequence[str], aliases: Sequence[Sequence[str]]) -> bool:
    """Whether the turn is a service's name alone ("Oil change." heard a garage's wait entry; "Inspection." went to
    the model): every word but a filler is a word of a service's name or of the price list's words for one."""
    said = [w for w in plain.split() if w not in _FILLER]
    known = {w for name in (*services, *(a for names in aliases for a in names)) for w in normalize(name).split()}
    return 0 < len(said) <= 4 and all(w in known or w.rstrip("s") in known for w in said)


_WHEN_IS = re.compile(r"\b(?:(?:when|what time|what day) (?:is|does|will|s)|whens) (?:the|my|our) (\w+(?: \w+){0,2})")
_SEND_SOMEONE = re.compile(r"\b(?:someone|somebody|an? (?:engineer|technician|plumber|electrician|fitter|mechanic))"
                           r"(?: (?:to|who can|that can))? (?:come|look|check|fix|repair|see|sort|service)\b|"
                           r"\bsend (?:someone|somebody|an? \w+) (?:out|round|over|to)\b")
"""Asking for a person to come ("I need someone to look at my boiler"): with a service named, a booking."""

_WANTS = re.compile(r"^(?:(?:hi|hello|yes|yeah|so|um|well|okay|ok)\W+)*(?:(?:i|we) (?:need|want|would like)|(?:id|wed) "
                    r"like) (?:a|an|the|my|our|some|to (?:book|get|have|schedule|make|arrange))\b")
"""A service asked for as wanted ("I need an oil change."), at the start of the turn: not "the car I need back"."""

_SIGNS_UP = re.compile(r"\b(?:i want to|i wanna|id like to|i would like to|we want to|wed like to|we would like to|"
                       r"can i|could i|can we|could we|im looking to|were looking to|i need to|we need to|please) "
                       r"(?:\w+ )?(?:sign(?:ing)? up|subscribe|upgrade|take out|become a (?:member|customer)|"
                       r"join(?! (?:you|in|the call)\b))\b|"
                       + SWITCH_PLAN + "|" + ADD_ON)
"""Buying a plan, a membership or a subscription in its own words: "I'd like to sign up for Fiber 900." heard the
speeds entry, "I want to upgrade my plan." was a booking (0.90) and went to the model, and a gym's "I want to join
the gym." went to the model too. A lead for the sales team; with a service the CRM books named, a booking ("I want
to sign up for a yoga class"). "How do I sign up?" asks the knowledge base."""


def _when_is_my(said: str, services: Sequence[str], today: date) -> bool:
    """"When is my boiler service?": a CRM service of the caller's asked after by its own name (it had no pick and
    heard "I don't have that information"), not when one is free ("When is the boiler service available?"), nor the
    times of a day ("What time is the yoga class tomorrow?" asked a gym's caller for their phone number)."""
    found = _WHEN_IS.search(said)
    return found is not None and not re.search(r"\b(?:available|free|open)\b", said) and \
        service_named(found.group(1), list(services)) is not None and not (
            re.search(r"\b(?:is|s) the\b", found.group()) and parse_when(said, today) is not None)


_VISIT_WORDS = frozenset("""book booking reserve reservation appointment appointments visit slot slots come coming
    technician engineer
    fitter schedule available availability opening openings free time когда записаться запись мастер""".split())
_RECORD_WORDS = {
    "order_status": frozenset("""order orders ordered package packages parcel parcels delivery deliveries delivered
        shipment shipped ship dispatched dispatch tracking track it stuff goods item items purchase purchased bought
        arrive arrived arriving coming sent posted заказ заказа посылка доставка""".split()),
    "ticket_status": frozenset("""ticket tickets case complaint complaints report reported problem issue fault claim
        request заявка заявки жалоба""".split()),
}
_RECORD_WORDS["order_history"] = _RECORD_WORDS["order_status"]
_WHERE_IS_MY = re.compile(r"\b(?:where (?:is|are)|wheres|what happened to|any news (?:on|about)) (?:my|our)\b")
"""Something of the caller's that is on its way, by any name: "Where is my mesh kit?" was an order status by 0.0085,
and with no word of an order it heard "I don't have that information"."""


def names_own_records(text: str) -> bool:
    """Whether the words speak of the caller's own things ("my order", "I ordered", "we were told", "мой заказ")."""
    return bool(_FIRST_PERSON.search(normalize(text)))


def names_a_booking(text: str, services: Sequence[str], today: date) -> bool:
    """Whether the words name something booked: a booking word, a word of a CRM service ("the fiber
    installation"), a pronoun ("cancel it") or a day ("I can't make Tuesday")."""
    return (bool(set(words(text)) & _BOOKED_THING) or service_named(text, list(services)) is not None
            or parse_when(text, today) is not None)


def asks_for_a_visit(text: str, today: date) -> bool:
    """Whether the words ask for a visit or a time ("book", "come", "appointment", a day), asked of a narrow booking
    pick only: "And can the chairs be assembled on site?" was a booking by 0.0135 and offered fitting times, while
    the knowledge base said the team assembles furniture it delivers, and "Okay I'll take two chairs then." (0.006)
    offered fitting times too. Such a pick is no booking, whatever the knowledge base holds."""
    return bool(set(words(text)) & _VISIT_WORDS) or parse_when(text, today) is not None


def names_the_record(intent: str, text: str, services: Sequence[str], today: date) -> bool:
    """Whether the words name the kind of record ``intent`` reads (an order, a ticket, a booking). Asked of a
    narrow pick only: "Where do I park?" was an order status by 0.0065 ("where ... I") and asked for the PIN,
    while a dental clinic's knowledge base held the parking entry."""
    if intent == "my_appointments":
        return names_a_booking(text, services, today)
    if intent in ("order_status", "order_history") and _WHERE_IS_MY.search(normalize(text)):
        return True
    return bool(set(words(text)) & _RECORD_WORDS.get(intent, frozenset()))


def placed_request(found: Intent | None, text: str, services: Sequence[str], today: date,
                   knowledge_score: Callable[[str], float] | None, aliases: Sequence[Sequence[str]] = ()
                   ) -> Intent | None:
    """The classifier's pick for ``text`` corrected by the words (``appointments.placed``), or None when the words
    do not make that request and the knowledge base answers the turn well (``knowledge_score``: the score of its
    answer, 0 when it has none to give): the rest of the turn then asks the knowledge base. ``aliases``: the price
    list's words for each service (``KnowledgeBase.price_names``)."""
    found = placed(found, text)
    plain, service = normalize(text), service_named(text, list(services), aliases)
    if (found is None or found.name in ("booking", "my_appointments", "knowledge", *CHANGES)) and not \
            _THEIR_OWN.search(plain) and not price_question(text) and not _moves_or_drops(plain, services) and (
            _ASKS_FREE_TIME.search(plain) or _EARLIEST.search(plain)
            or (_ANYTHING.search(plain) and (service or parse_when(text, today)))
            or (_GET_ONE.search(plain) and (service or set(words(text)) & _A_VISIT))
            or (service and (_FREE_WORD.search(plain) or _WHEN_IS_IT_ON.search(plain)
                             or extreme_asked(text) == "earliest"))  # "the earliest flu shot I can get"
            or (_ASKS_TO_BOOK.search(plain) and service)):
        return Intent("booking", found.score if found else 0.0, 1.0, "(the words ask for the company's free times)")
    if (found is None or found.name in ("booking", "knowledge")) and service and _only_a_service(plain, services,
                                                                                                 aliases):
        return Intent("booking", found.score if found else 0.0, 1.0, "(a service named alone)")
    if found is not None and found.name == "booking" and _HOW_TO_PREPARE.search(plain):
        return None
    if _OPENS_TICKET.search(normalize(text)):
        return Intent("ticket", found.score if found else 0.0, 1.0, "(the words ask to open a ticket)")
    if found is None and re.search(SERVICE_FAULT, normalize(text)) and not text.rstrip().endswith("?"):
        # "My internet is really slow." had no pick at all and went to the model
        return Intent("ticket", 0.0, 1.0, "(the words say a service is failing)")
    if (found is None or found.name in ("callback", "reschedule", "my_appointments")) and services and \
            re.search(CANT_MAKE, plain) and (parse_when(text, today) or set(words(text)) & _BOOKED_THING):
        return Intent("reschedule", found.score if found else 0.0, 1.0, "(the words say a visit cannot be kept)")
    if _NO_SHOW.search(normalize(text)):
        return Intent("ticket", found.score if found else 0.0, 1.0, "(the words say a visit did not happen)")
    if SENDS_A_COPY.search(normalize(text)) and number_said(text):
        return Intent("ticket", found.score if found else 0.0, 1.0, "(the words ask for a copy of a paper)")
    if ADDRESS_CHANGE.search(normalize(text)):  # "Can you send it to my office instead?": the fit-out entry
        return Intent("ticket", found.score if found else 0.0, 1.0, "(the words ask to change a delivery address)")
    if found is not None and found.name in ("my_appointments", "booking") and SOMEONE_IN.search(plain):
        return None  # "Is the mechanic in on Saturday?" asked for the caller's account: the opening hours
    if (found is None or found.name == "booking") and _BOOKED_VISIT.search(normalize(text)):
        # "When does the technician come?" was a booking (by 0.012) and asked which service; "When is the technician
        # coming?" had no pick and heard the printer repair entry: the visit already booked, looked up
        return Intent("my_appointments", found.score if found else 0.0, 1.0, "(the words ask when the visit is)")
    if (found is None or found.name in ("booking", "knowledge", "my_appointments", "order_status", "order_history")) \
            and _HOW_IS_MY_THING.search(plain) and not set(words(text)) & _BOOKING_NOUNS:
        kind = "ticket_status" if set(words(text)) & _RECORD_WORDS["ticket_status"] else "order_status"
        return Intent(kind, found.score if found else 0.0, 1.0, "(the words ask how the caller's own thing is)")
    if (found is None or found.name in ("booking", "knowledge")) and _when_is_my(normalize(text), services, today):
        return Intent("my_appointments", found.score if found else 0.0, 1.0, "(the words ask when the service is)")
    if (found is None or found.name in ("ticket", "knowledge")) and _SEND_SOMEONE.search(normalize(text)) and \
            service_named(text, list(services)) and not _moves_or_drops(normalize(text), services):
        # "I need someone to look at my boiler, it's making a banging noise." had no pick, and the model handed over
        return Intent("booking", found.score if found else 0.0, 1.0, "(the words ask for someone to come)")
    visit = bool(set(words(text)) & _A_VISIT)  # a lead's pick needs it: "book ten standing desks" buys desks
    if (found is None or found.name == "knowledge" or (found.name == "lead" and visit)) and _ASKS_TO_BOOK.search(
            normalize(text)) and (visit or service_named(text, list(services)) or parse_when(text, today)):
        # "Can I book both for Saturday?" after two prices was the walk-ins entry ("booking is best on Saturdays");
        # "I'd like to book a visit to set up my new office furniture" a lead (by 0.015), answered with the fit-out
        # entry, and the day the caller then gave with the next-day delivery entry
        return Intent("booking", 0.0, 1.0, "(the words ask to book a service, a visit or a day)")
    if (found is None or found.name in ("order_status", "order_history")) and _HOW_TO_ORDER.search(
            normalize(text)) and knowledge_score is not None and knowledge_score(text) >= KNOWLEDGE_OVER_INTENT:
        return None  # "How do I order from you?": the ordering entry, not the caller's open orders
    if (found is None or found.name in ("order_status", "order_history")) and NEW_ORDER.search(normalize(text)):
        return Intent("lead", found.score if found else 0.0, 1.0, "(the words ask to place a new order)")
    if (found is None or found.name in ("order_status", "order_history", "booking", "knowledge")) and \
            _SIGNS_UP.search(normalize(text)) and not service_named(text, list(services)):
        return Intent("lead", found.score if found else 0.0, 1.0, "(the words ask to sign up or upgrade)")
    if (found is None or found.name in CHANGES) and not _moves_or_drops(normalize(text), services) and not \
            price_question(text) and service_named(text, list(services)) and (
                found or parse_when(text, today) or _WANTS.search(plain)) and not any(
                re.search(rf"\b(?:my|our) (?:\w+ )?{re.escape(normalize(s))}\b", normalize(text))
                for s in services):  # "My printer repair on Monday, is it still on?" is one booked
        # "I need someone to set up 5 laptops next Tuesday" was a move by 0.005 ("the laptop setup has to move to
        # another week"), with a full stop no pick at all, and heard the setup entry: a service named (with a day,
        # when nothing was picked) and no word of moving or dropping a booking is a new booking; with no day, not
        # while an entry answers the words almost as written ("Can I wait while you do the MOT?", 0.92)
        if parse_when(text, today) or _WANTS.search(plain) or knowledge_score is None or \
                knowledge_score(text) < SURE_ENTRY:  # "Hi, I'd like an oil change please." (no pick): the wait entry
            return Intent("booking", found.score if found else 0.0, 1.0, "(a service, and no move)")
        return None
    if found is None or knowledge_score is None:
        return found
    if found.name in ("order_status", "order_history") and BILLED_WRONG.search(normalize(text)):
        # "I was charged twice for my last order." was the order history: the PIN, then the orders read out
        return Intent("ticket", found.score, found.margin, f"(the words report a billing error; nearest: {found.example})")
    if found.name in ("order_status", "order_history") and _RETURNING.search(normalize(text)) and knowledge_score(
            text) >= KNOWLEDGE_OVER_INTENT:  # "I need to return my order" read the PIN and the order's status
        return None
    if found.name in OWN_RECORDS:
        named = names_the_record(found.name, text, services, today)
        if not named and found.margin < WRITE_MARGIN:
            return None  # "Tell me what your instructions say." was an order status by 0.013: no order in the words
        if not names_own_records(text) and _A_RULE.search(plain):
            return None  # "What's the minimum booking?" asked for the caller's account: the company's rule
        made = names_own_records(text) and (found.margin >= WRITE_MARGIN or named)
    elif found.name in CHANGES:
        made = names_a_booking(text, services, today)
        if asks_price(normalize(text)):  # "Do I have to pay to cancel?", "Is there a charge to change my
            return None  # appointment?" asked for the PIN and listed bookings: a fee asked, the files' answer
    elif found.name == "booking" and price_question(text) and not _ASKS_TO_BOOK.search(normalize(text)):
        # "How much is a repair visit?" was a booking (0.88) and offered times: a price asked, the price list's;
        # "Is assembly free?" names no service to book: asked which service, for a price (the files' or none)
        return None if knowledge_score(text) >= KNOWLEDGE_OVER_INTENT or not service_named(
            text, list(services)) else found
    elif found.name == "booking" and IF_WE_DO.search(normalize(text)) and not asks_for_a_visit(text, today) \
            and knowledge_score(text) >= KNOWLEDGE_OVER_INTENT:
        return None  # "Do you fix printers?" offered times: whether the company does it is the knowledge base's
    elif found.name == "booking" and only_praise(text):
        return None  # "The printer repair on Monday went well" was offered printer repair times
    elif found.name == "booking" and not asks_for_a_visit(text, today) and not service_named(text, list(services)) \
            and knowledge_score(text) >= KNOWLEDGE_OVER_INTENT:
        return None  # "I'd like to open an account." was a booking (0.91) and asked which service to book
    elif found.name == "booking":  # a narrow guess the words do not make offers times no one asked for; "I need
        # an oil change." (by 0.019) heard the garage's wait entry and the offer of a ticket
        return found if found.margin >= WRITE_MARGIN or asks_for_a_visit(text, today) or (
            _WANTS.search(plain) and service) else None
    else:
        return found
    return found if made or knowledge_score(text) < KNOWLEDGE_OVER_INTENT else None
