"""The SIP front end: the public names of its layers.

The layers, each its own module:
- ``sip_headers``: the caller's number from the INVITE, source and port checks (pure, no pjsua2);
- ``sip_transfer``: blind and warm transfer policy, SipDialError (no pjsua2);
- ``sip_call``: SipCall, one call as a CallTransport, and the CallControl it asks its endpoint through (no pjsua2);
- ``sip_endpoint``: SipWorker, the pjsua2 endpoint, with its parts ``sip_pjsua`` (the pjsua2 subclasses),
  ``sip_lifecycle``, ``sip_admission`` and ``sip_media``: the only modules that import pjsua2.

The process that answers calls with it is ``voicebot.worker`` (``run_worker`` is re-exported here).
"""

from __future__ import annotations

from voicebot.telephony.sip_call import FRAME_BYTES, FRAME_MS, SAMPLE_RATE, CallControl, SipCall
from voicebot.telephony.sip_endpoint import OnCall, SipWorker, WorkerStats
from voicebot.telephony.sip_headers import (caller_id_from_message, caller_id_from_uri, port_free_or_raise,
                                            source_allowed, source_ip)
from voicebot.telephony.sip_transfer import SipDialError
from voicebot.worker import run_worker

__all__ = ["FRAME_BYTES", "FRAME_MS", "SAMPLE_RATE", "CallControl", "OnCall", "SipCall", "SipDialError", "SipWorker",
           "WorkerStats", "caller_id_from_message", "caller_id_from_uri", "port_free_or_raise", "run_worker",
           "source_allowed", "source_ip"]
