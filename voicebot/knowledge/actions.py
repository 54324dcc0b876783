"""Does a knowledge entry speak of the action the caller asks about? Selling is not repairing.

Why: the embedding hears "Do you sell laser printers?" as close to "Do you repair printers?" (0.55 fused, above
``knowledge.confident``), and "Do you sell laptops?" as "Do you set up laptops and computers?" (0.78). Read out, the
entry answers a question nobody asked, and the caller takes "Our technicians repair office printers" for a no, or
a yes. When the question names one action (selling, repairing, setting up, delivering, taking away, renting,
restarting) and the entry's title names only others, the match is made weak: the caller hears "Just to check, is
your question: do you repair printers? If not, I can connect you with a colleague.", as for any unsure match
("Do you install routers?" had the router restart steps read out). A question or a title that names no action is
never judged: "How long does delivery take?" has nothing to contradict.

The same action on another thing is no answer either: "Can you repair my laptop?" heard "Do you repair printers?"
read out. When the words after the question's action (its object: "my laptop", "an old sofa") name nothing the
entry says anywhere (title, tags, answer, other askings) while another entry names them, the match is made weak the
same way; an object that is a pronoun, a thing the base never names (maybe its own word for the entry's thing), or
a question with no object ("Do you deliver on Saturdays?") is never judged. ``dialog.services`` uses the same
reading so that "repair my laptop" picks neither "printer repair" nor "laptop setup".
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from voicebot.knowledge.files import Entry

ACTIONS: dict[str, re.Pattern[str]] = {name: re.compile(rf"\b({words})\b", re.IGNORECASE) for name, words in {
    "sell": r"sell|sells|selling|sold|stock|stocks|carry|carries|buy|buying",
    "repair": r"repair|repairs|repairing|repaired|fix|fixes|fixing|fixed|mend|mended",
    "set up": r"set ?up|sets up|setting up|install|installs|installing|installed|installation|configure|configured",
    "deliver": r"deliver|delivers|delivered|delivery|ship|ships|shipping|shipped",
    "take away": r"take away|takes away|dispose|disposal|haul away",
    "rent": r"rent|rents|renting|rental|lease|leasing|hire",
    "restart": r"restart|restarts|restarting|reboot|reboots|rebooting|reset|resets|resetting|power cycle",
}.items()}


def actions(text: str) -> frozenset[str]:
    """The actions ``text`` names."""
    return frozenset(name for name, pattern in ACTIONS.items() if pattern.search(text))


def other_action(question: str, title: str) -> bool:
    """The question asks about one action and the entry's title names only others ("Do you sell laser printers?"
    against "Do you repair printers?")."""
    asked, offered = actions(question), actions(title)
    return bool(asked) and bool(offered) and not asked & offered


_SKIPPED = frozenset("my our your his her their the a an this that these those some any old new broken out off away "
                     "also".split())
_VAGUE = frozenset("something anything everything stuff thing things lot lots more one ones few bit".split())
_ENDS = frozenset("""to for on in at by with from of and or but if when please it them me us you today tomorrow
    there here is are was be take takes cost costs usually normally work works visit visits appointment service
    services technician technicians engineer guy man person team job request booking slot time date quote price
    fee""".split())
"""Where the object ends; the nouns among them follow an action said as a noun ("a repair visit", "the delivery
guy"): no thing the action is done to."""
_NOUNS = frozenset({"delivery", "installation", "rental", "disposal"})  # "delivery of ...": no object after them
OBJECT_WORDS = 3
_BEFORE_STOP = frozenset("""i we you they he she can could would will need needs want wants get got have has had be
    been being is are was were do does did just still please book""".split())
"""Where a thing said before the action ("my laptop fixed") stops, going back."""


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 2 and word.endswith("s") and not word.endswith("ss") else word


def object_words(question: str) -> frozenset[str]:
    """What the question's action is done to: up to ``OBJECT_WORDS`` words after the action word, past "my", "the",
    "old"..., to the first preposition or pronoun ("Can you repair my laptop?" -> laptop; "Do you sell laser
    printers?" -> laser, printer); when none follows the action, up to two words just before it ("I need my laptop
    fixed", "a laptop repair" -> laptop); empty when neither."""
    found: set[str] = set()
    lowered = question.lower()
    for pattern in ACTIONS.values():
        for match in pattern.finditer(lowered):
            if match.group(0) in _NOUNS:
                continue
            following = re.findall(r"[a-z]+", lowered[match.end():].split("?")[0].split(".")[0].split(",")[0])
            while following and following[0] in _SKIPPED:
                following = following[1:]
            before = found.copy()
            for word in following[:OBJECT_WORDS]:
                if word in _ENDS or word in _SKIPPED or word in _VAGUE:
                    break
                found.add(_stem(word))
            if found == before and not following:  # "I need my laptop fixed", "a laptop repair": the thing before
                preceding = re.findall(r"[a-z]+", re.split(r"[?.,!]", lowered[:match.start()])[-1])
                for word in reversed(preceding[-2:]):
                    if word in _ENDS or word in _SKIPPED or word in _VAGUE or word in _BEFORE_STOP:
                        break
                    found.add(_stem(word))
    return frozenset(found)


def said_words(text: str) -> set[str]:
    """The words of ``text``, lower case, a plural's s dropped: what ``object_words`` is compared with."""
    return {_stem(w) for w in re.findall(r"[a-z]+", text.lower())}


def other_object(question: str, entry_text: str, elsewhere: str = "") -> bool:
    """The question's action is done to something ``entry_text`` (all the entry says) never names and
    ``elsewhere`` (the rest of the knowledge base) does: "Can you repair my laptop?" against the printer repair
    entry, when another entry speaks of laptops. A thing the base never names may be another word for the entry's
    own ("our new notebooks" to the laptop set-up entry): not judged."""
    wanted = object_words(question)
    return bool(wanted) and not wanted & said_words(entry_text) and bool(wanted & said_words(elsewhere))


def off_subject(question: str, entry: Entry, entries: Mapping[str, Entry]) -> bool:
    """The entry answers another action (``other_action``) or the same one on another thing (``other_object``)."""
    if other_action(question, entry.title):
        return True
    if not object_words(question):
        return False

    def text(e: Entry) -> str:
        return " ".join((e.search_text, *e.asked))
    return other_object(question, text(entry), " ".join(text(e) for e in entries.values() if e is not entry))
