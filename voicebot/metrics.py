"""Prometheus metrics of the SIP service: active calls, per-stage latency, transfers, rejections, errors.

One set of metric objects per process. With several worker processes (``voicebot serve --workers N``) the
supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` before it starts the workers; prometheus_client then keeps each
process's values in files there, and the supervisor's ``/metrics`` adds them up (``serve_metrics``). A single
worker serves its own registry.
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client import multiprocess
from prometheus_client.core import CounterMetricFamily

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# delays after the caller stopped speaking, seconds; finer where the 0.5-3 s targets are
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, float("inf"))
STAGES = ("endpointing", "transcript_ready", "first_token", "first_sentence", "first_audio_out")

ACTIVE_CALLS = Gauge("voicebot_active_calls", "Calls answered and not yet ended.", multiprocess_mode="livesum")
CALLS = Counter("voicebot_calls_total", "Calls that ended, by outcome.", ["outcome"])
REJECTED = Counter("voicebot_calls_rejected_total",
                   "INVITEs refused before any speech work, by reason (forbidden, busy, draining).", ["reason"])
STAGE_SECONDS = Histogram("voicebot_turn_stage_seconds",
                          "Delay of each stage of a caller turn after the caller stopped speaking.", ["stage"],
                          buckets=LATENCY_BUCKETS)
TRANSFERS = Counter("voicebot_transfers_total", "Transfers to a human, by mode (blind, warm) and result (ok, failed).",
                    ["mode", "result"])
ERRORS = Counter("voicebot_errors_total",
                 "Errors by kind (session, stt, llm, tts, crm, store, sip, rtp_timeout); each call fault counts once.",
                 ["kind"])
STORE_SPILLED = Counter("voicebot_store_spilled_records_total",
                        "Call records the call store could not take by the end of a call, kept in a spill file "
                        "(or memory) and imported at the next start.")
SIP_REGISTERED = Gauge("voicebot_sip_registered", "1 while the bot is registered at the account's registrar "
                       "(sip.accounts), else 0.", ["account"], multiprocess_mode="livemax")
SIP_REGISTER_FAILURES = Counter("voicebot_sip_register_failures_total",
                                "Failed REGISTERs by account and SIP status (408: no answer).", ["account", "code"])
DIALER_ATTEMPTS = Counter("voicebot_dialer_attempts_total", "Callback calls the dialer placed, by result "
                          "(answered, opted_out, no_answer, busy, declined, failed).", ["result"])
OUTBOUND_CALLS = Gauge("voicebot_dialer_outbound_calls", "Callback calls being dialled or in progress.",
                       multiprocess_mode="livesum")
HOLD_LINES = Counter("voicebot_hold_lines_total", "Hold lines played: nothing was audible faults.hold_after_s "
                     "after a caller's turn (a stage hanging or very slow).")
FAULT_TO_APOLOGY = Histogram("voicebot_fault_to_apology_seconds",
                             "From a fault in a call (an error, or a stage past its time limit) to the apology.",
                             buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, float("inf")))




class _Recycles:
    """``voicebot_worker_recycles_total{reason}``: workers the supervisor retired and started afresh
    (``voicebot.recycle``). Counted in the supervisor's own memory, not in a multiprocess file (its metric objects
    are made before it sets ``PROMETHEUS_MULTIPROC_DIR``), and added to the summed workers' registry."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def inc(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1

    def collect(self):
        family = CounterMetricFamily("voicebot_worker_recycles", "Workers retired once their calls ended and "
                                     "started afresh, by reason (memory, calls).", labels=["reason"])
        for reason, count in sorted(self.counts.items()):
            family.add_metric([reason], count)
        yield family


WORKER_RECYCLES = _Recycles()


def observe_turn(delays: dict[str, float]) -> None:
    """Record one caller turn's stage delays (``TurnClock.marks``: stage -> seconds after end of speech)."""
    for stage, seconds in delays.items():
        if stage in STAGES and seconds is not None:
            STAGE_SECONDS.labels(stage=stage).observe(max(0.0, float(seconds)))


def multiprocess_registry(directory: str | Path) -> CollectorRegistry:
    """A registry that sums the values every worker process wrote under ``directory``, and the supervisor's
    recycle count."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))
    registry.register(WORKER_RECYCLES)
    return registry


def serve_metrics(port: int, address: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` on ``address:port`` from a daemon thread. In a multiprocess setup (the supervisor) the
    registry sums the workers' files; otherwise it is this process's own registry."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        start_http_server(port, addr=address, registry=multiprocess_registry(directory))
    else:
        start_http_server(port, addr=address)


def worker_exited(pid: int) -> None:
    """Tell prometheus_client a worker process is gone, so its live gauges stop counting (multiprocess only)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)
