"""The CRM: customers, orders, tickets, appointments, leads, callbacks and call history on SQLite.

What the dialogue uses:

- ``Repository.from_config(config)`` / ``Repository.open(path)``: typed lookups and actions.
- ``CallerContext.start(repo, caller_id, max_attempts=...)``: one per call; holds the verification state.
- ``CRM_TOOLS.specs()`` for the prompt and ``CRM_TOOLS.call(name, args, context)`` for the model's tool calls.
- ``find_ungrounded(reply, tool_results, caller_words)``: figures in a reply that nothing backs.
"""

from voicebot.crm.grounding import Ungrounded, find_ungrounded
from voicebot.crm.models import NotFound, SlotTaken
from voicebot.crm.repository import Repository
from voicebot.crm.tools import CRM_TOOLS
from voicebot.crm.verification import CallerContext, Verification

__all__ = ["CRM_TOOLS", "CallerContext", "NotFound", "Repository", "SlotTaken", "Ungrounded", "Verification",
           "find_ungrounded"]
