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

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


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
