"""The dialer (issue 18): calls that the bot places itself: due callbacks, reminders, check-ins, campaigns.

One job per module:

- ``policy``: whether a callback may be dialled now (calling hours in the company's zone, preferred time,
  attempts, spacing, do-not-call) and how many calls may go out (the cap, and the lines kept for inbound
  callers). Pure code, no I/O: the rules are what the tests pin down.
- ``ledger``: the CRM side: due callbacks in, every attempt and its result out (``callbacks`` columns and the
  ``callback_attempts`` history, migration m007).
- ``dnc``: the do-not-call list file, which opt-outs are appended to.
- ``callback_call``: one answered callback: the opening (who calls and why, in the caller's own words), then the
  normal dialogue; an opt-out said or pressed ends it.
- ``loop``: the loop that works the callbacks through the worker's SIP endpoint.
- ``service``: which process owns the loop (``voicebot serve``: the single worker, or worker 0) and its assembly.
- ``amd``: answering-machine detection on the callee's first seconds; ``answered``: what an answered call gets
  (the check, then the conversation of the row's purpose, or the message on a machine).
- ``scripted``: short key-or-voice conversations; ``reminders`` (the day before a booking) and ``checkin`` (the
  morning after a visit or a resolved ticket) queue their rows and script their calls.
- ``campaigns``: what ``voicebot campaign`` and ``voicebot dial`` queue (the serving dialer alone dials).
"""

from voicebot.dialer.policy import CallingHours, DialPolicy, DueCallback, Lines

__all__ = ["CallingHours", "DialPolicy", "DueCallback", "Lines"]
