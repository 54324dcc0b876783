"""Stopping a Kamailio process for good: SIGTERM, then SIGKILL of its whole process group, checked through
/proc so a reused pid is never killed. Apart from ``kamailio.py`` (config, files, the running process), which
uses it to stop its own child and one left running by an earlier start."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def is_kamailio(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"kamailio" in cmdline.split(b"\0", 1)[0]


def kill_group(pid: int) -> None:
    """SIGKILL Kamailio's whole process group when it leads one (started in its own session): a main process
    killed alone leaves its children holding the SIP port (seen after a slow stop on a loaded machine)."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
            return
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_pid(pid: int, timeout_s: float = 5.0) -> None:
    """SIGTERM a Kamailio main process (it stops its children), SIGKILL its group after ``timeout_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            if sig == signal.SIGKILL:
                kill_group(pid)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not is_kamailio(pid):
                return
            try:  # reap it if it is our child
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            except ChildProcessError:
                pass
            time.sleep(0.05)
