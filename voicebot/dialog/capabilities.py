"""What the bot says it can do, when a caller asks ("Am I talking to a robot?", "What can you do?").

Why computed: the built-in answer named "orders, repair visits and quotes", true of the demo shop and false of a
dental clinic or an internet provider that left ``dialog.prompts.bot_question`` unset. Unless the admin wrote their
own, the answer lists what this company's data lets the bot do: questions when there is a knowledge base, orders
when the CRM holds any, appointments when it has bookable services, and always a problem noted for the team and a
callback. Asked rarely, so it reads the CRM each time (two indexed queries).

What it cannot do is said as plainly: "Set the price of chairs to 1 dollar." was read back as a lead in the
caller's words ("I'll pass to our sales team: Set the price of chairs to 1 dollar"), which sounds like agreement.
A caller who tells the bot to set, change or cut a price, or to grant a discount, hears that it cannot
(``PRICE_CHANGE_REPLY``); asking what a discount or a price is stays a question for the price list.

Nor does the CRM hold what a customer owes: "What's the balance on my account?" asked for the PIN, then the model
read the caller's history and said "I don't see any open tickets on your account". A question for a balance, an
amount owed or due, or a credit limit hears that the bot cannot see it, and the offer of a person
(``BALANCE_REPLY``); a question for an order's total stays the order's (its record has one).
"""

from __future__ import annotations

import re

from voicebot.config import PromptsConfig
from voicebot.crm.repository import Repository
from voicebot.text import normalize

PRICE_CHANGE_REPLY = ("I can't change prices or agree a discount. I can tell you our prices, or pass a request to "
                      "our sales team.")
BALANCE_REPLY = ("I can't see account balances or what is owed on this line. Would you like me to connect you with a "
                 "colleague who can?")
_BALANCE = re.compile(
    r"\b(my|our|account|current|outstanding|remaining|open) balance\b(?! (ball|board|chair|stool|bike|cushion))|"
    r"\bbalance (on|of|for) (my|our|the) (account|bill|invoice)|"
    r"\bhow much (do|did|does|will) (i|we|my company|the company) (still )?owe\b|\bwhat (do|does) (i|we|my company)"
    r" (still )?owe\b|\b(amount|sum|payment) (due|owed|outstanding|overdue)\b|\b(outstanding|overdue|unpaid) "
    r"(amount|sum|invoices?|bills?|payments?)\b|\bcredit limit\b")
ACCOUNT_CHANGE_REPLY = ("I can't change account details such as a phone number or an email address on this line. Would "
                        "you like me to connect you with a colleague who can?")
_ACCOUNT_CHANGE = re.compile(
    r"\b(change|update|correct|edit|fix|add|remove)\b( \w+){0,2} (phone number|telephone number|mobile( number)?|"
    r"email( address)?|e ?mail|contact details|account details|name on (my|our|the) account|billing address|"
    r"password|(my|our) details)\b")
_PRICE_CHANGE = re.compile(
    r"\b(set|change|make|lower|drop|reduce|cut|update|adjust|put) (the |your |its |their |that )?(price|cost|rate)s?\b"
    r"( of [\w ]{1,30})? (to|down|at)\b|\b(give|grant|apply|approve|add) (me |us )?(a |an )?(\d+ ?(%|percent)|"
    r"\w+ percent|big|special|staff|full|huge) (discount|price cut|price reduction)\b|\b(apply|approve|grant) (me |us"
    r" )?(a |the )?discount (now|right now|to my|to our)\b|\b(make|sell) (it|them|that|those|the \w+) (free|for free|"
    r"cheaper|for \$?\d+)\b")


def bot_answer(prompts: PromptsConfig, repo: Repository | None, has_knowledge: bool) -> str:
    """The admin's ``bot_question`` if they wrote one, else an honest list of what this company's data allows."""
    if "bot_question" in prompts.model_fields_set or repo is None:
        return prompts.bot_question
    things = ["answer questions about us"] if has_knowledge else []
    if repo.db.execute("select exists(select 1 from orders)").fetchone()[0]:
        things.append("check on your orders")
    if repo.services():
        things.append("book or change an appointment")
    things += ["note a problem for our team", "arrange a callback"]
    listed = f"{', '.join(things[:-1])} or {things[-1]}"
    return (f"I'm an automated assistant. I can {listed}, and if you'd rather talk to a person, just say operator "
            "or press zero at any time.")


def asks_to_change_a_price(text: str) -> bool:
    """Whether the caller tells the bot to change a price or grant a discount (module docstring)."""
    return bool(_PRICE_CHANGE.search(normalize(text)))


def asks_for_a_balance(text: str) -> bool:
    """Whether the caller asks what they owe: a balance, an amount due or unpaid, a credit limit (module docstring)."""
    return bool(_BALANCE.search(normalize(text)))


def asks_to_change_account_details(text: str) -> bool:
    """Whether the caller asks to change their phone number, email or other account details: no tool writes them
    ("Can you change the phone number on my account?" heard the entry on changing an order)."""
    return bool(_ACCOUNT_CHANGE.search(normalize(text)))
