"""What the bot says it can do, when a caller asks ("Am I talking to a robot?", "What can you do?").

Why computed: the built-in answer named "orders, repair visits and quotes", true of the demo shop and false of a
dental clinic or an internet provider that left ``dialog.prompts.bot_question`` unset. Unless the admin wrote their
own, the answer lists what this company's data lets the bot do: questions when there is a knowledge base, orders
when the CRM holds any, appointments when it has bookable services, and always a problem noted for the team and a
callback. Asked rarely, so it reads the CRM each time (two indexed queries).
"""

from __future__ import annotations

from voicebot.config import PromptsConfig
from voicebot.crm.repository import Repository


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
