"""The SIP front end: the public names of its layers, and ``run_worker`` (a worker process answering calls with
CallSessions).

The layers, each its own module:
- ``sip_headers``: the caller's number from the INVITE, source and port checks (pure, no pjsua2);
- ``sip_transfer``: blind and warm transfer policy, SipDialError (no pjsua2);
- ``sip_call``: SipCall, one call as a CallTransport, and the CallControl it asks its endpoint through (no pjsua2);
- ``sip_endpoint``: SipWorker, the pjsua2 endpoint; the only module that imports pjsua2.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from voicebot.config import Config
from voicebot.telephony.sip_call import FRAME_BYTES, FRAME_MS, SAMPLE_RATE, CallControl, SipCall
from voicebot.telephony.sip_endpoint import OnCall, SipWorker, WorkerStats
from voicebot.telephony.sip_headers import (caller_id_from_message, caller_id_from_uri, port_free_or_raise,
                                            source_allowed, source_ip)
from voicebot.telephony.sip_transfer import SipDialError

__all__ = ["FRAME_BYTES", "FRAME_MS", "SAMPLE_RATE", "CallControl", "OnCall", "SipCall", "SipDialError", "SipWorker",
           "WorkerStats", "caller_id_from_message", "caller_id_from_uri", "port_free_or_raise", "run_worker",
           "source_allowed", "source_ip"]

log = logging.getLogger(__name__)


async def run_worker(config: Config, worker_name: str = "main", deps: Any = None,
                     stop: asyncio.Event | None = None, rtp_port: int | None = None,
                     drain_timeout_s: float = 30.0,
                     on_ready: Callable[[SipWorker], None] | None = None) -> None:
    """Load the models (unless ``deps`` is given), then answer calls until ``stop`` is set (or forever): each
    call runs ``CallSession(SipCall, deps).run()`` on this loop. When ``stop`` is set the worker drains: new
    calls get 503, live ones have ``drain_timeout_s`` to finish before the bot hangs them up.

    ``on_ready`` is called once the transports are bound and the account takes INVITEs: only then may a
    readiness line be printed, or a script that dials on it races the endpoint's start."""
    from voicebot.session import CallSession

    if deps is None:
        from voicebot.components import load_components, open_session_deps

        parts = await asyncio.to_thread(load_components, config)
        deps = open_session_deps(config, parts, worker=worker_name)

    async def on_call(call: SipCall) -> None:
        outcome = await CallSession(call, deps).run()
        log.info("call %s from %s: %s", call.info.call_id, call.info.caller_id, outcome)

    async with SipWorker(config, on_call, rtp_port=rtp_port) as worker:
        log.info("SIP worker %s listening on %s:%s (%s)", worker_name, config.sip.listen_address,
                 worker.bound_port, ",".join(worker.transports))
        if on_ready is not None:
            on_ready(worker)
        await (stop or asyncio.Event()).wait()
        await worker.drain(drain_timeout_s)
