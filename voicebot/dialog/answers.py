"""Fixed matching before the model: the caller's words mapped to a tool call, a closing, a thanks, a slot.

On a 2-core CPU each model pass costs seconds, so the most common requests never wait for one: a few phrase
patterns map straight to a tool call ("where is my order 10452" -> get_order); the results are spoken from
templates (``dialog.rendered``). Everything the patterns do not catch goes to the model, as before.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from collections.abc import Sequence
from typing import Any

from voicebot.crm.spoken import digits_in, words_to_digits
from voicebot.dialog.identity import only_numbers, stated_phone
from voicebot.dialog.services import service_for
from voicebot.dialog.offered_times import near_offered
from voicebot.dialog.slots import parse_when
from voicebot.dialog.write_asks import NEW_ORDER
from voicebot.dialog.writes import answer_to_readback, short_subject
from voicebot.review.redact import mask_secrets
from voicebot.text import normalize

_ORDER_WORDS = re.compile(r"\b(order|package|parcel|delivery|shipment)s?\b|\bordered\b", re.I)
_WHERE_WORDS = re.compile(r"\b(where|status|arriv\w*|track\w*|deliver\w*|come|coming|ship\w*|when|late|delayed|"
                          r"overdue|still waiting|going on|happened|turned up|showed up|(?:is ?n[o']t|not) here)"
                          r"\b", re.I)
"""After an order's words, the words that ask where it is: "Hi, my desk order is late, what's going on?" (a narrow
order status, 0.005 ahead of a ticket) was taken for a question about desks, and "the chair I ordered still isn't
here" for one about chairs: each heard "I don't have that information"."""
_NUMBER = re.compile(r"\b\d{4,8}\b")
_MINE = re.compile(r"\b(my|our|mine|i|we)\b", re.I)
_NO_ORDER_YET = re.compile(r"\b(?:never|not yet|havent|have not|didnt|did not|not) (?:\w+ )?(?:ordered|bought|"
                           r"purchased|order(?:ed)? anything)\b|\bnew customer\b|\bfirst time\b", re.I)
"""A caller with no order yet: "Hi, I never ordered from you before. Do you deliver to Canada?" was asked for the
number of an account to read its open orders from."""
_HISTORY = re.compile(r"\b((last|previous|recent|past|earlier) (order|purchase|delivery)s?|what did (i|we) "
                      r"(order|buy|get)|(my|our) order history|ordered (last|before))\b", re.I)

BILLED_WRONG = re.compile(r"\b((double|over) ?charged|charged (me |us )?(twice|double|too much|the wrong|wrongly)|"
                         r"billed (me |us )?twice|wrong (amount|price) (on|for|charged))\b")
"""A billing error reported ("I was charged twice for my last order."): a ticket, not the order history."""
_ARRIVED_WRONG = re.compile(r"\b(damaged|broken|cracked|scratched|dented|faulty|defective|smashed|the wrong (item|"
                            r"colou?r|size|model|one)|not what i ordered|(box|boxes|item|items|part|parts|piece|pieces"
                            r"|one) (is |are |was |were )?missing|incomplete)\b")
"""What came is wrong ("My order arrived damaged.", "My delivery came but one box is missing"): a problem for the
intent step (a ticket), not where it is."""

_COMPLAINS = re.compile(r"\b(complain|complaining|(make|file|lodge|raise) an? complaint)\b")
"""A complaint made ("I want to complain about the delivery driver." read the PIN, then the order's status, and the
complaint was lost): a ticket for the intent step, not where the order is. "What happened to my complaint?" asks
after one, and is not this."""

_ASKED_OTHER = re.compile(r"\b(pin|phone|birth|post ?code|zip|code|digits|card|account|reference|how (many|much|long)|"
                          r"quantity|(what|which) (time|day)|when|date|year|price|amount)\b", re.I)


_MONTH = re.compile(r"\b(?:jan(?:uary)?|feb(?:ruary)?|march|april|may|june|july|aug(?:ust)?|sept?(?:ember)?|"
                    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b", re.IGNORECASE)


def bare_order_number(text: str, last_said: str) -> str:
    """The order number a turn of digits alone is ("1, 0, 4, 5, 2.", "one zero four five two", "10452"): when the
    bot asked for the order number, or asked for nothing in particular ("How can I help you today?"); "" when the
    bot's question was for another number (a PIN, a phone number, a quantity) or the digits are not an order
    number's 4-8. Said digit by digit at the greeting, the number went to the model, which handed the call over."""
    digits = digits_in(text)
    if not _NUMBER.fullmatch(digits) or not only_numbers(text) or _MONTH.search(text):
        return ""  # "2 November 1979" (a date of birth said unasked) was looked up as order 21979
    return digits if "order number" in last_said.lower() or not _ASKED_OTHER.search(last_said) else ""


def asks_for_number(last_said: str) -> bool:
    """The bot's last words asked for a number of some kind (an order number, a PIN, a quantity, a day): digits
    in the answer are that, not a menu key."""
    return "number" in last_said.lower() or bool(_ASKED_OTHER.search(last_said))


ADDRESS_CHANGE = re.compile(
    r"\b(send|deliver|ship|bring|redirect|drop|take) (it|them|that|this|the order|my order|the parcel|the package|"
    r"the delivery)( off)? (to|at) (my|our|the|a|another|a different|his|her) ?(\w+ )?(office|work|workplace|home|"
    r"house|address|neighbou?rs?|place|flat|apartment)\b|\b(change|update|correct|fix) (the |my |our )?(delivery "
    r"|shipping )?address\b|\bwrong (delivery |shipping )?address\b")
"""A change to where an order goes ("Can you send it to my office instead?" was the office fit-out entry): a
ticket for a colleague (``placing``), who can reach the carrier; never the order's status read out."""


def match_intent(text: str) -> tuple[str, dict[str, Any]] | None:
    """A tool call for the request when a fixed pattern recognises it, else None (the model decides).

    Numbers are read from the text with its secrets masked: "where is my order? my PIN is 1234" must not make
    the PIN an order number (it would be looked up, stored in the tool call and read back to the caller)."""
    if any(p.search(normalize(text)) for p in (BILLED_WRONG, _ARRIVED_WRONG, ADDRESS_CHANGE, _COMPLAINS,
                                                _NO_ORDER_YET)):
        return None
    if _HISTORY.search(text) and not _NUMBER.search(digits_in(mask_secrets(text))):
        return "list_recent_orders", {}
    if _ORDER_WORDS.search(text) and _WHERE_WORDS.search(text) and not NEW_ORDER.search(normalize(text)):
        masked = mask_secrets(stated_phone(text)[1])  # a phone number's tail is no order
        number = _NUMBER.search(masked) or _NUMBER.search(digits_in(masked))
        if number:
            return "get_order", {"order_number": number.group(0)}
        if _MINE.search(text):  # "my order", not "how long does delivery take" (a knowledge question)
            return "list_open_orders", {}
    return None


# The caller is done: "that's all", "no thanks, bye", "nothing else". Whole-turn patterns only (a request that ends
# with "thanks" is still a request), so "no, I want the other one" or "that's all wrong" never end the talk.
_CLOSING = re.compile(
    r"^(?:(?:no|nope|nah|ok(?:ay)?|great|perfect|alright|all right|fine|good|cool|well),?\s*)*"
    r"(?:(?:thank you|thanks|thanks a lot|thank you very much|many thanks|cheers),?\s*(?:so much|very much)?,?\s*)?"
    r"(?:(?:that's|that is|that was|it's|that'll be) (?:all|everything|it)(?: (?:i need(?:ed)?|for (?:now|today)))?"
    r"|(?:nothing|nothing else|no more|i'm (?:good|done|fine|all set)|i am (?:good|done|fine|all set)|all good)"
    r"(?: thanks| thank you| for now| for today)?"
    r"|(?:good)?bye(?: ?bye)?|have a (?:good|nice|great) (?:day|one|evening))?"
    r",?\s*(?:(?:thank you|thanks|thanks again|cheers|(?:good)?bye(?: ?bye)?|have a (?:good|nice|great) "
    r"(?:day|one|evening))[,.!]?\s*)*$", re.I)
_CLOSING_WORDS = re.compile(r"\b(?:all|everything|it|nothing|done|good|fine|set|(?:good)?bye|day|one|evening)\b", re.I)
# (a bare "thank you" is not a goodbye: callers say it after an answer and go on)


_ANYTHING_ELSE = re.compile(r"\b(?:anything else|something else|any other questions?)\b[^.?!]*\?\s*$", re.I)


_MORE = re.compile(r"^(?:(?:yes|yeah|yep|yup|sure|ok|okay|please|actually|well|um|uh|so|there is|i do|i have|"
                   r"one more thing|one more question|something else|another question|just one more) ?)+$")
# a bare "yes" there hears dialog.prompts.anything_more: the model once answered it with "I'm glad to hear that."


_HELP = re.compile(r"^(?:(?:hi|hello|hey|there|yes|yeah|um|uh|so|well|okay|ok|good (?:morning|afternoon|evening)) ?)*"
                   r"(?:(?:i|we) (?:need|want|would like|could use)|id like|wed like|can (?:i|we) (?:get|have)|"
                   r"(?:(?:i was|im|i am|we were|were) (?:wondering|hoping)|i wonder|i hope|maybe) (?:if |whether |"
                   r"that )?(?:you|someone|somebody) (?:can|could|might)|(?:can|could|would) (?:you|someone|somebody)|"
                   r"i have|ive got|i got|please)? ?(?:some |a little |a quick |a )?(?:help|assistance|question|query)"
                   r"(?: me| us)?(?: out)?(?: please)?(?: with (?:something|a few things|a question|an issue|a "
                   r"problem))?(?: please)?$")
# such a turn hears dialog.prompts.what_about: the model once handed "I need help." straight to a person, and a good
# agent first asks what it is about


SECRET_REPLY = ("For your security, I can't tell you a PIN, a password or card details. If you've forgotten your PIN, "
                "I can check who you are with your date of birth and postcode instead.")
_SECRET = re.compile(r"\b(?:what(?:s| is| was| are)?(?= (?:\w+ ){0,3}card number)|what(?:s| is| was| are)|which|"
                     r"tell me|give me|read(?: me)?|remind me(?: of)?|send me|say)\b[^.?!]{0,30}\b(?:pin|pin code|pin number|password|passcode|security code|card number|"
                     r"(?:last|first) (?:four|4|digits)(?: digits)?(?: of)? (?:my |the |our )?(?:credit |debit |bank )?"
                     r"card|cvv|cvc|expiry date)\b")


def asks_for_secret(text: str) -> bool:
    """Whether the caller asks to be told a PIN or a password ("What's the PIN on my account?"): no one is, by
    code (the intent classifier read that one as a ticket's status, and read out the caller's tickets)."""
    return bool(_SECRET.search(normalize(text)))


def asks_only_for_help(text: str) -> bool:
    """Whether the caller's whole turn asks for help, or says they have a question, without saying what about."""
    said = normalize(text)
    return bool(said and _HELP.match(said))


def wants_more(text: str, last_bot: str) -> bool:
    """Whether the caller's whole turn is a bare yes to "anything else?" (``last_bot``): they have more to ask."""
    said = normalize(text)
    return bool(said and _ANYTHING_ELSE.search(last_bot or "") and _MORE.match(said))


_THANKS = re.compile(r"^(?:(?:ok|okay|great|perfect|lovely|brilliant|good|cool|alright|all right|right|fine|"
                     r"i see|got it|excellent|wonderful|fantastic|super|nice|ah|oh),? )*"
                     r"(?:thank you|thanks|thanks a lot|thanks a million|many thanks|cheers|much appreciated)"
                     r"(?: so much| very much| for that| for the information| for your help)*"
                     r"(?:,? (?:thats|that is) (?:great|helpful|perfect|lovely|good))?$")


def only_thanks(text: str) -> bool:
    """Whether the caller's whole turn thanks the bot and asks nothing ("Okay, thanks.", "Great, thank you very
    much."): the model took a second or more to say "You're welcome! If you have any other questions..."."""
    said = normalize(text)
    return bool(said and _THANKS.match(said))


_WENT_WELL = re.compile(r"\b(?:went|was|were|has been|have been) (?:really |very |all )?(?:well|great|fine|good|"
                        r"perfect|excellent|brilliant|smoothly|quick|helpful)\b")
_BUT = re.compile(r"\b(?:but|however|except|though|not|no|still|can|could|would|need|want|book|problem|issue|wrong|"
                  r"broke|broken)\b")
GLAD = "I'm glad to hear it. Is there anything else I can help with?"


def only_praise(text: str) -> bool:
    """Whether the whole turn says something went well and asks nothing ("The printer repair on Monday went well.",
    "The delivery was quick."): it was offered printer repair times, then read the repair entry. "Thank you for your
    help." is thanks (``only_thanks``)."""
    said = normalize(text)
    return bool(_WENT_WELL.search(said)) and "?" not in text and not _BUT.search(said)


def is_closing(text: str, last_bot: str = "") -> bool:
    """Whether the caller's whole turn only closes the conversation ("Thank you, that's all.", "No, that's it,
    bye."), so the bot says goodbye from a template instead of asking the model. After the bot asked "Is there
    anything else I can help with?" (``last_bot``), a bare "no", "no thanks" or "great, thanks" closes too."""
    said = re.sub(r"[.!?]+", " ", text.strip().lower().replace("\N{RIGHT SINGLE QUOTATION MARK}", "'"))
    said = re.sub(r"\s*,\s*", ", ", " ".join(said.split())).strip(" ,")
    if not said or not _CLOSING.match(said):
        return False
    return bool(_CLOSING_WORDS.search(said) and said not in {"no", "ok", "okay", "fine", "good"}
                or _ANYTHING_ELSE.search(last_bot or ""))


# -- the model names a tool and one line of text; code turns the text into the tool's arguments ----------------

TOOL_HINTS = {
    "get_order": "status and delivery of one order (text: the order number)",
    "list_open_orders": "the caller's open orders (text: empty)",
    "get_caller_history": "the caller's earlier calls, tickets and orders (text: empty)",
    "list_recent_orders": "the caller's last orders, delivered ones too (text: empty)",
    "create_ticket": "report a problem, e.g. a damaged or wrong item (text: the problem in a few words)",
    "list_free_slots": "free appointment times for a repair or service visit (text: the service needed)",
    "book_appointment": "book one of the times just offered (text: the day and time the caller chose)",
    "list_my_appointments": "the caller's booked appointments (text: empty)",
    "reschedule_appointment": "move the caller's booked appointment to another time (text: the new day, if said)",
    "cancel_appointment": "cancel the caller's booked appointment (text: which one, if said)",
    "create_lead": "a sales enquiry or quote request (text: what the caller wants to buy)",
    "request_callback": "a colleague calls the caller back later (text: why, and when if said)",
    "identify_caller": "find the caller's account by another phone number (text: the number)",
}
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _hour(text: str) -> int | None:
    match = re.search(r"\b(\d{1,2})(?::(\d{2}))?\s*(a\.?m\.?|p\.?m\.?)?", text.lower())
    if not match:
        return None
    hour = int(match.group(1))
    if match.group(3) and match.group(3).startswith("p") and hour < 12:
        hour += 12
    elif not match.group(3) and 1 <= hour <= 6:
        hour += 12  # "at 2" on a service desk means the afternoon
    return hour


_ONE_AS_PRONOUN = re.compile(r"\b(the|that|this|morning|afternoon|evening|early|late|earlier|later|other|first|"
                             r"second|last|next|same) one\b")


OTHER_TIMES = re.compile(r"\b(?:anything|something|any \w+|nothing|is that|are those|is there) (?:later|earlier)\b|"
                          r"\b(?:later|earlier) (?:than|in the day|that day|on)\b")
"""Times other than those offered asked for ("Anything later?", "Is there anything earlier?"): no pick of one."""


def readback_answer(text: str, tool: str, args: dict[str, Any], offered: list[dict[str, Any]],
                    today: date) -> bool | None:
    """``writes.answer_to_readback``, and a yes to a booking read back is none when it names a day or a clock time
    the slot is not at: "OK, the 3 PM then." to "That's a consultation on Wednesday at 11 AM. Shall I book it?"
    booked 11 AM. None then: the words ask for that time (``appointments``)."""
    answer = answer_to_readback(text, tool)
    slot = next((s for s in offered if s["id"] == args.get("slot_id")), None)
    when = parse_when(text, today) if answer is True and slot is not None else None
    if slot is None or when is None or (when.hour is None and not when.has_day):
        return answer
    start = datetime.fromisoformat(str(slot["starts_at"]))
    return answer if near_offered(when, text, start.hour).matches(start) else None


def pick_slot(text: str, slots: list[dict[str, Any]], today: date | None = None) -> int | None:
    """The offered slot the caller chose ("Tuesday at 10", "the first one", "the day after tomorrow"), or None."""
    if not slots:
        return None
    lowered = text.lower().replace("'s", " is")  # "Eleven's fine."
    if OTHER_TIMES.search(lowered):  # "Anything later?" asks for other times: it picked the second
        return None
    if re.search(r"\b(?:second|last)\b|\b(?:later|other) one\b|\bthe (?:later|other)\b(?! (?:days?|weeks?|times?))|"
                 r"^\W*later\W*(?:please\W*)?$",
                 lowered) and len(slots) > 1:  # not "I'll call back later", "any other times?"
        return slots[1]["id"]
    if re.search(r"\b(first|earliest|earlier|that one)\b|^\W*yes\b" if len(slots) == 1 else
                 r"\b(first|earliest|earlier)\b", lowered) and not re.search(r"\d", lowered):
        return slots[0]["id"]  # "yes" picks the one time offered; to two it picks neither
    when = parse_when(text, today) if today is not None else None
    if when is not None and when.hour is not None:  # "Seven o'clock." to 6 and 7 PM: 7 PM
        when = near_offered(when, text, datetime.fromisoformat(str(slots[0]["starts_at"])).hour)
    if when is not None and (when.has_day or when.hour is not None or when.part is not None):
        fits = [s for s in slots if when.matches(datetime.fromisoformat(str(s["starts_at"])))]
        return fits[0]["id"] if len(fits) == 1 or (fits and when.has_day and when.hour is not None) else None
    day = next((i for i, d in enumerate(_WEEKDAYS) if d in lowered), None)
    lowered = _ONE_AS_PRONOUN.sub(" ", lowered)  # "the morning one" is no 1 o'clock
    hour = _hour(lowered) or _hour(words_to_digits(lowered))  # "Ten is fine."
    for slot in slots:
        start = datetime.fromisoformat(str(slot["starts_at"]))
        if (day is None or start.weekday() == day) and (hour is None or start.hour == hour):
            if day is not None or hour is not None:
                return slot["id"]
    return None


def tool_args(tool: str, text: str, *, caller_name: str | None, services: list[str],
              offered_slots: list[dict[str, Any]], caller_text: str = "", today: date | None = None,
              aliases: Sequence[Sequence[str]] = ()) -> dict[str, Any] | None:
    """Arguments for ``tool`` from the model's one line of text (and the caller's own words, which win where
    they are exact, e.g. "the first one" or "next Tuesday"); None when neither gives them. CRM writes take their
    arguments from voicebot.dialog.writes instead (the caller's words only)."""
    text = (text or "").strip()
    if tool == "get_order":
        number = _NUMBER.search(digits_in(text)) or _NUMBER.search(text)
        return {"order_number": number.group(0)} if number else None
    if tool in ("list_open_orders", "get_caller_history", "list_recent_orders", "list_my_appointments"):
        return {}
    if tool == "create_ticket":
        subject = short_subject(text or "Caller reported a problem")
        return {"subject": subject if len(subject) >= 3 else "Caller reported a problem", "description": text}
    if tool == "list_free_slots":
        args: dict[str, Any] = {"service": service_for(caller_text, text, services, aliases)}
        when = parse_when(caller_text, today) if today is not None else None
        if when is not None and when.has_day:  # the caller's day, computed in code, never the model's
            last = when.last_day or when.first_day
            args["date_from"], args["date_to"] = when.first_day.isoformat(), last.isoformat()
        if when is not None and when.hours is not None:  # "Thursday evening": the evening's times, not the day's first
            args["from_hour"], args["to_hour"] = when.hours
        return args
    if tool == "book_appointment":
        slot = pick_slot(caller_text, offered_slots, today) or pick_slot(text, offered_slots, today)
        return None if slot is None else {"slot_id": slot, "name": caller_name or "Caller", "notes": caller_text[:200]}
    if tool == "create_lead":
        return {"name": caller_name or "Caller", "interest": text or "sales enquiry"}
    if tool == "request_callback":
        return {"reason": text or "callback requested"}
    if tool == "identify_caller":  # the caller's own number: the model wrote "Tom Becker's phone number is
        number = digits_in(caller_text)  # 123-456-7890." for "What's Tom Becker's phone number?"
        return {"phone_number": number} if len(number) >= 7 else None
    return None
