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


def write_config(folder: Path, port: int, extra: str = "") -> Path:
    cfg = folder / "config.yaml"
    cfg.write_text(f"models:\n  dir: {ROOT / 'models'}\nsip:\n  port: {port}\n  transports: [udp]\n"
                   f"serve:\n  metrics_port: 0\n{extra}")
    seeded = CliRunner().invoke(app, ["crm", "seed", "--today", TODAY.isoformat(), "--config", str(cfg)])
    assert seeded.exit_code == 0, seeded.output
    return cfg


@contextlib.contextmanager
def serving(folder: Path, port: int, extra: str = "", args: tuple[str, ...] = (), ready: str = "answering calls",
            load_timeout_s: float = 180, stop_timeout_s: float = 60) -> Iterator[Served]:
    """Start `voicebot serve --config <folder>/config.yaml`, wait for ``ready`` in its output, yield; then
    SIGTERM it and record its exit code in ``Served.exit_code`` (None when it had to be killed)."""
    cfg = write_config(folder, port, extra)
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
