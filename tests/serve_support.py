"""Run a real `voicebot serve` process in a test's folder (loopback SIP, the pulled models, a seeded CRM)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from typer.testing import CliRunner

from conftest import ROOT, TODAY
from voicebot.cli import app
from voicebot.store import CallStore


@dataclass
class Served:
    process: subprocess.Popen
    folder: Path
    config: Path
    output: list[str] = field(default_factory=list)
    exit_code: int | None = None

    @property
    def text(self) -> str:
        return "".join(self.output)

    def store(self) -> CallStore:
        return CallStore(self.folder / "data" / "calls.db", self.folder / "data" / "recordings")


def last_call(served, timeout_s: float = 30.0):
    """The newest call's row once the bot has finished it (the caller's process may end first: the bot writes
    the outcome when its session ends, a moment later under load)."""
    deadline = time.monotonic() + timeout_s
    while True:
        row = served.store().list_calls(limit=1)[0]
        if row.outcome != "in_progress" or time.monotonic() > deadline:
            return row
        time.sleep(0.2)


def write_config(folder: Path, port: int, extra: str = "", sip_extra: str = "") -> Path:
    cfg = folder / "config.yaml"
    cfg.write_text(f"models:\n  dir: {ROOT / 'models'}\nsip:\n  port: {port}\n  transports: [udp]\n{sip_extra}"
                   f"serve:\n{'' if 'metrics_port:' in extra else '  metrics_port: 0' + chr(10)}{extra}")
    seeded = CliRunner().invoke(app, ["crm", "seed", "--today", TODAY.isoformat(), "--config", str(cfg)])
    assert seeded.exit_code == 0, seeded.output
    return cfg


@contextlib.contextmanager
def serving(folder: Path, port: int, extra: str = "", args: tuple[str, ...] = (), ready: str = "answering calls",
            sip_extra: str = "",
            load_timeout_s: float = 180, stop_timeout_s: float = 60) -> Iterator[Served]:
    """Start `voicebot serve --config <folder>/config.yaml`, wait for ``ready`` in its output, yield; then
    SIGTERM it and record its exit code in ``Served.exit_code`` (None when it had to be killed)."""
    cfg = write_config(folder, port, extra, sip_extra)
    process = subprocess.Popen([sys.executable, "-m", "voicebot.cli", "serve", "--config", str(cfg), *args],
                               cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={"COLUMNS": "200", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    served = Served(process, folder, cfg)
    threading.Thread(target=lambda: served.output.extend(process.stdout), daemon=True).start()
    try:
        deadline = time.monotonic() + load_timeout_s
        while not any(ready in line for line in served.output):
            assert process.poll() is None, f"voicebot serve exited:\n{served.text}"
            assert time.monotonic() < deadline, f"voicebot serve not ready in {load_timeout_s} s:\n{served.text}"
            time.sleep(0.2)
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            served.exit_code = process.wait(timeout=stop_timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serving_two_workers(folder: Path, proxy: int, worker_base: int,
                        extra: str = "") -> contextlib.AbstractContextManager:
    """`voicebot serve --workers 2`: Kamailio on ``proxy``, workers from ``worker_base`` (their RTP ports just
    above, 100 each), a 10 s drain, calls from loopback only; ``extra``: more ``serve`` settings."""
    settings = (f"  worker_base_port: {worker_base}\n  rtp_base_port: {worker_base + 10}\n"
                f"  rtp_ports_per_worker: 100\n  drain_timeout_s: 10\n{extra}")
    return serving(folder, proxy, extra=settings, args=("--workers", "2"), load_timeout_s=400,
                   sip_extra="  allowed_sources: [127.0.0.1/32]\n", stop_timeout_s=90)


BUSY_UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="operator busy">
  <recv request="INVITE"/>
  <send>
    <![CDATA[
      SIP/2.0 486 Busy Here
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK"/>
</scenario>
"""


@dataclass
class Operator:
    """sipp playing the human operator: answers and echoes the audio (``-sn uas -rtp_echo``), or a scenario."""

    process: subprocess.Popen
    log: Path

    def wait(self, timeout_s: float = 30) -> tuple[int | None, str]:
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            code = None
        return code, self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@contextlib.contextmanager
def operator(folder: Path, port: int, scenario_xml: str | None = None, timeout_s: int = 120) -> Iterator[Operator]:
    from sip_support import sipp_binary

    if scenario_xml is None:
        scen = ["-sn", "uas", "-rtp_echo"]
    else:
        path = folder / f"operator-{port}.xml"
        path.write_text(scenario_xml)
        scen = ["-sf", str(path)]
    log = folder / f"operator-{port}.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sipp_binary(), *scen, "-i", "127.0.0.1", "-p", str(port), "-mp", str(port + 2),
                                    "-m", "1", "-nostdin", "-timeout", f"{timeout_s}s", "-timeout_error"],
                                   cwd=folder, stdout=out, stderr=subprocess.STDOUT)
    op = Operator(process, log)
    try:
        yield op
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
