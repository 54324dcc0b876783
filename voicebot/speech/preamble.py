"""Has the caller said what they want yet? A cheap test on the partial transcript, for the open floor.

Why: asked "How can I help you?", callers often set the scene before they ask: "I bought a chair in March, ...
and one of the legs is broken", "The parcel was left at the door, ... but the box was empty", "My order, ... the
one from last week". Each first half is a finished sentence, and the turn model scores it so (0.6-0.96 on an
elderly caller's pace in ``voicebot bench turns``): a slow caller's first turn was cut in 5 of 10 sentences, and
the bot answered the scene instead of the request. A person on the phone hears the difference at once: nothing
has been asked, nothing has gone wrong yet, so they wait (or say "mm-hmm").

So while the floor is open (the caller's first turn, or the bot has just asked "anything else I can help with?":
``invites_request``), a turn whose words carry no request, question, complaint or answer is a *preamble*
(``sounds_like_preamble``) and waits the turn model's "incomplete" limit before it ends. A real finished
preamble ("I called yesterday about my invoice.") costs ~2 s more before the reply; a request said in one go ("I
want to cancel my order", "Where is my order?", "My chair arrived broken") is not slowed.

The cues are words, not grammar: Whisper's punctuation is no guide (many finished turns have none), and a
missed cue costs time, never words.
"""

from __future__ import annotations

import re

_QUESTION_OPENERS = frozenset({
    "what", "where", "when", "why", "how", "who", "whom", "whose", "which", "is", "are", "am", "do", "does", "did",
    "can", "could", "would", "will", "may", "might", "should", "shall", "have", "has", "any", "please",
})
REQUEST_WORDS = frozenset({
    # wanting, asking, trying
    "want", "wanted", "wants", "need", "needs", "needed", "like", "love", "wish", "hoping", "hope", "trying",
    "looking", "calling", "please", "know", "wondering", "possible",
    # what is wrong: negation carries most complaints ("has not arrived", "it doesn't work", "nobody called")
    # (every "...n't" counts too, in ``sounds_like_preamble``; these are Whisper's spellings without the apostrophe)
    "not", "no", "never", "nobody", "nothing", "none", "cannot", "cant", "wont", "dont", "doesnt", "didnt", "isnt",
    "wasnt", "havent", "hasnt", "still", "yet", "only",
    "broken", "broke", "damaged", "missing", "wrong", "late", "lost", "faulty", "cracked", "empty", "stuck",
    "error", "refund", "cancel", "return", "returning", "missed", "charged", "twice", "urgent", "emergency",
    "ridiculous", "unacceptable", "terrible", "awful", "angry", "upset", "frustrated", "disappointed",
    "overcharged", "leaking", "dead", "stopped", "failed", "delayed",
    # the actions a caller names ("check my order", "book a visit", "change the address"); not the nouns that
    # tell a story as often as they ask ("order", "repair": "my husband placed an order on Friday, ...")
    "check", "book", "booking", "schedule", "reschedule", "change", "update", "track", "tracking", "status",
    "buy", "quote", "price", "hours", "pay", "fix", "send", "tell", "give", "connect", "transfer", "speak",
    "talk", "callback",
    # answers and goodbyes (a whole turn on their own)
    "yes", "yeah", "yep", "yup", "nope", "okay", "ok", "sure", "right", "correct", "exactly", "fine", "thanks",
    "thank", "bye", "goodbye",
    "operator", "agent", "human", "person", "someone", "somebody", "representative", "receptionist",
})
"""Words that make a turn something the bot can act on. Not a greeting ("Hello, this is Robert from ...") and not
an announcement ("I have a question", "There is a problem with my account"): the request follows them, and the
dialogue itself answers one said alone with "What can I help you with?" (``prompts.what_about``)."""
SHORT_WORDS = 2
"""A turn this short with no cue is a keyword answer ("Billing.", "Sales department"), said whole, unless it is a
topic ("My order", ``_TOPIC_ONLY``)."""
_TOPIC_ONLY = re.compile(r"^(?:my|our|the|your|this|that) \w+$")


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+(?:'[a-z]+)?|\d+", text.lower())


GREETING_WORDS = frozenset({"hello", "hi", "hey", "hiya", "good", "morning", "afternoon", "evening"})


def sounds_like_preamble(partial: str) -> bool:
    """The words so far set the scene without asking or telling anything the bot can act on: "I bought a chair in
    March", "The parcel was left at the door", "My order", "Hello, this is Robert from the dental clinic"."""
    words = _words(partial)
    if not words:
        return False
    greeted = words[0] in GREETING_WORDS
    while words and (words[0] in GREETING_WORDS or (greeted and words[0] == "there")):  # "hi there", not "there is"
        words = words[1:]
    if not words:
        return not partial.rstrip().endswith("?")  # "Hello," and the request follows; "Hello?": can you hear me?
    if partial.rstrip().endswith("?") or words[0] in _QUESTION_OPENERS:
        return False
    if REQUEST_WORDS.intersection(words) or any(w.endswith("n't") for w in words):
        return False
    if len(words) <= SHORT_WORDS:  # "Billing.": a keyword; "My order": a topic, the rest is coming
        return bool(_TOPIC_ONLY.match(" ".join(words)))
    return True


_INVITES = re.compile(r"\b(help|do for you|assist|anything else|what else|what went wrong|what happened|what seems|"
                      r"what(?: is|'s) (?:the problem|wrong|the issue)|tell me (?:more|what|about)|describe)\b")


def invites_request(bot_said: str) -> bool:
    """The bot's last words open the floor: "How can I help you today?", "Is there anything else?", or ask for a
    story ("What went wrong?", "What happened?"): the caller sets the scene before the point there too."""
    text = bot_said.lower()
    return "?" in text and bool(_INVITES.search(text))


_WH = frozenset({"what", "which", "when", "where", "who", "whom", "whose", "how"})
_AUX = frozenset({"is", "are", "am", "was", "were", "do", "does", "did", "can", "could", "would", "will", "shall",
                  "should", "may", "might", "have", "has", "must"})
_ASKS_FOR = re.compile(r"\b(?:may|can|could) i (?:have|get|take)\b|\b(?:tell|give) me\b|\bprovide\b|\bspell\b|"
                       r"\bname\b|\b(?:number|date|address|e-?mail|pin)\b| or ")


def asks_for_detail(bot_said: str) -> bool:
    """The bot's last question asks for something said in a few words: a name, a day, a number, a choice ("Which
    day suits you?", "May I have your name?", "Morning or afternoon?"). Whatever the caller says first is then the
    answer, however much it sounds like a preamble ("My name is Alice Martin"). A yes-or-no question ("Shall I book
    it?", "Is that right?") or no question at all is not: a caller who does not answer yes or no is starting
    something else ("My husband placed the order on Friday, ... and he ..."), and its scene-setting first half is
    no turn (``TurnDetector.set_answer_expected``)."""
    questions = [q for q in re.split(r"(?<=[.!?])\s+", bot_said.strip()) if q.endswith("?")]
    if not questions:
        return False
    question = questions[-1].lower()
    first = next((w for w in _words(question) if w in _WH or w in _AUX), None)
    return first in _WH or bool(_ASKS_FOR.search(question))


_CLOSED = ("yes|yeah|yep|yup|yes please|no|nope|nah|no thanks|no thank you|sure|okay|ok|alright|all right|right|"
           "correct|exactly|absolutely|definitely|certainly|of course|indeed|please|please do|go ahead|do it|"
           "sounds good|perfect|great|fine|good|thanks|thank you|thank you very much|that's right|that is right|"
           "that's correct|that is correct|that's fine|that's great|that's perfect|that's it|that's all|"
           "that's everything|that's all i need|i'm good|i'm fine|all good|not really|not at all|not now|"
           "not today|it is|it was|it does|it did|i do|i did|i am|i have|we do|we did|it isn't|it is not|it's not|"
           "it wasn't|it doesn't|it didn't|i don't|i didn't|i'm not|i haven't|we don't|we didn't")
_CLOSED_ANSWER = re.compile(rf"(?:{_CLOSED})(?: (?:{_CLOSED}))*")
_NEGATIVE = frozenset({"no", "nope", "nah", "not"})


def closed_answer(partial: str, only_no: bool = False) -> bool:
    """The words are a whole answer to a yes-or-no question and nothing else: "Yes.", "Yeah, sure.", "No, that's
    all.", "Yes, it is." (``only_no``: a no only, as to "Anything else?", where a yes opens what follows).

    Why: the turn model hears many short answers as unfinished, more so when said slowly ("Yes, it is." 0.02,
    "Yeah, sure." 0.04, a slow "No, that's all." 0.02, a slow "Yes." 0.03), so after "Shall I book it?" the
    caller waited the whole 1.6 s limit for a reply a person would give at once. Said after a yes-or-no question,
    such words end the turn whatever the turn model says (``dictation.partial_kind``: ``final``). Only whole
    answers: "Yes, and ..." or "No, it's ..." are not, and a caller who goes on after "Yes." is heard as any
    caller speaking over the bot's next words."""
    text = " ".join(re.findall(r"[a-z]+(?:'[a-z]+)?", partial.lower().replace("\u2019", "'")))
    if not text or not _CLOSED_ANSWER.fullmatch(text):
        return False
    return not only_no or text.split()[0] in _NEGATIVE
