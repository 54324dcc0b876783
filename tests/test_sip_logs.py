"""pjsip's own log lines go through Python logging and its redaction: no caller number in clear in a log."""

from __future__ import annotations

import asyncio
import logging

from sip_support import Ports, run_sipp, scenario, sip_config
from test_sip import Recorder
from voicebot.review.redact import RedactingFilter, install_log_redaction
from voicebot.telephony.sip import SipWorker


class ListHandler(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")
        self.records.append(record)


def test_pjsip_log_lines_are_redacted(tmp_path):
    ports = Ports.block(39)
    handler = ListHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    pj_logger = logging.getLogger("voicebot.pjsip")  # only pjsip's lines: DEBUG records of other modules carry
    old_level = pj_logger.level                       # tracebacks that would outlive the endpoint in pytest
    pj_logger.setLevel(logging.DEBUG)
    install_log_redaction()
    try:
        async def main():
            config = sip_config(ports.sip)
            async with SipWorker(config, Recorder(), rtp_port=ports.rtp, rtp_port_range=ports.rtp_range,
                                 log_level=5):
                return await asyncio.to_thread(run_sipp, tmp_path, scenario(hold_ms=300), ports.sip,
                                               ports.sipp(), ports.media())

        result = asyncio.run(main())
    finally:
        root.removeHandler(handler)
        pj_logger.setLevel(old_level)
        for f in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(f)
    assert result.returncode == 0, result.stdout
    pj_lines = [line for line in handler.lines if line.startswith("voicebot.pjsip")]
    assert any("INVITE sip:" in line for line in pj_lines), pj_lines[:5]  # whole SIP messages were logged
    assert not [line for line in handler.lines if "5550102030" in line], "a caller number in clear in a log"


class HangsUpAfter(Recorder):
    """A session ends every call with a hang-up, also one the caller has already left."""

    async def __call__(self, call):
        await super().__call__(call)
        await call.hangup()


def test_hanging_up_a_call_the_caller_left_logs_no_error(tmp_path):
    """Each call the caller ended logged "ERROR voicebot.pjsip: ... pjsua_call_get_info ... INVITE session already
    terminated": the bot asked pjsua for a finished call's state before hanging it up."""
    ports = Ports.block(33)
    handler = ListHandler()
    pj_logger = logging.getLogger("voicebot.pjsip")
    pj_logger.addHandler(handler)
    recorder = HangsUpAfter()
    try:
        async def main():
            async with SipWorker(sip_config(ports.sip), recorder, rtp_port=ports.rtp, rtp_port_range=ports.rtp_range):
                result = await asyncio.to_thread(run_sipp, tmp_path, scenario(hold_ms=300), ports.sip,
                                                 ports.sipp(), ports.media())
                await asyncio.wait_for(recorder.done.wait(), 10)
                await asyncio.sleep(0.5)
                return result

        result = asyncio.run(main())
    finally:
        pj_logger.removeHandler(handler)
    assert result.returncode == 0, result.stdout
    assert recorder.calls, "the call never reached the bot"
    errors = [r for r in handler.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
