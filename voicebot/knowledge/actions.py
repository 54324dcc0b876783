"""Does a knowledge entry speak of the action the caller asks about? Selling is not repairing.

Why: the embedding hears "Do you sell laser printers?" as close to "Do you repair printers?" (0.55 fused, above
``knowledge.confident``), and "Do you sell laptops?" as "Do you set up laptops and computers?" (0.78). Read out, the
entry answers a question nobody asked, and the caller takes "Our technicians repair office printers" for a no, or
a yes. When the question names one action (selling, repairing, setting up, delivering, taking away, renting) and
the entry's title names only others, the match is made weak: the caller hears "Just to check, is your question:
do you repair printers? If not, I can connect you with a colleague.", as for any unsure match. A question or a
title that names no action is never judged: "How long does delivery take?" has nothing to contradict.
"""

from __future__ import annotations

import re

ACTIONS: dict[str, re.Pattern[str]] = {name: re.compile(rf"\b({words})\b", re.IGNORECASE) for name, words in {
    "sell": r"sell|sells|selling|sold|stock|stocks|carry|carries|buy|buying",
    "repair": r"repair|repairs|repairing|fix|fixes|fixing|mend",
    "set up": r"set ?up|sets up|setting up|install|installs|installing|installation|configure",
    "deliver": r"deliver|delivers|delivery|ship|ships|shipping",
    "take away": r"take away|takes away|dispose|disposal|haul away",
    "rent": r"rent|rents|renting|rental|lease|leasing|hire",
}.items()}


def actions(text: str) -> frozenset[str]:
    """The actions ``text`` names."""
    return frozenset(name for name, pattern in ACTIONS.items() if pattern.search(text))


def other_action(question: str, title: str) -> bool:
    """The question asks about one action and the entry's title names only others ("Do you sell laser printers?"
    against "Do you repair printers?")."""
    asked, offered = actions(question), actions(title)
    return bool(asked) and bool(offered) and not asked & offered
