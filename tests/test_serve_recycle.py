"""Recycling through the real parts: `voicebot serve --workers 2` (Kamailio, two workers with their models) with
``serve.recycle_after_calls: 1``. The worker that took a call is retired (SIGUSR1) and started afresh; a call placed
while it reloads is answered by the other worker; the other is retired only once the first is ready again (one at a
time, never the only worker up); SIGTERM meanwhile still stops everything with exit 0.

Ports 26100-26339: Kamailio 26100, workers 26110-26111, their RTP 26120-26319, sipp 26330 and 26334 (media +2).
"""

from __future__ import annotations

import re

import pytest

from serve_support import serving_two_workers
from sip_support import run_sipp, scenario, via_proxy
from test_sip_hygiene_workers import wait_for

pytestmark = [pytest.mark.models, pytest.mark.timeout(600)]

PROXY = 26100
RECYCLED = re.compile(r"worker (w\d) \(pid (\d+)\) recycled: 1 call since ready \(limit 1\)")


def test_a_worker_is_recycled_after_its_call_and_the_other_answers_meanwhile(tmp_path):
    with serving_two_workers(tmp_path, PROXY, 26110, extra="  recycle_after_calls: 1\n") as served:
        assert "2 workers behind Kamailio" in served.text and "no answer to OPTIONS" not in served.text
        call = via_proxy(scenario(hold_ms=2000))  # answered, on the line for 2 s, BYE answered: sipp exits 0
        assert run_sipp(tmp_path, call, PROXY, 26330, 26332, timeout_s=60).returncode == 0
        wait_for(lambda: RECYCLED.search(served.text), 30, "the first worker recycled:\n" + served.text[-3000:])
        first, pid = RECYCLED.search(served.text).groups()
        other = "w1" if first == "w0" else "w0"

        reloading = "ready again" not in served.text
        # answered by the other worker (or by it after a 503 from the retiring one)
        assert run_sipp(tmp_path, call, PROXY, 26334, 26336, timeout_s=60).returncode == 0
        wait_for(lambda: f"worker {first} ready again" in served.text, 300, f"{first} ready again:\n"
                 + served.text[-3000:])
        text = served.text
        assert f"worker {first} retired (pid {pid}) once its calls ended; started again" in text
        assert "exited with code" not in text and "restarting it in" not in text  # no crash, no restart delay

        # the other took the second call: recycled in turn, but only once the first is back
        wait_for(lambda: len(RECYCLED.findall(served.text)) == 2, 60, "the second recycle:\n" + served.text[-3000:])
        text = served.text
        second = RECYCLED.findall(text)[1][0]
        assert second == other
        assert text.index(f"worker {first} ready again") < text.index(f"worker {second} (pid")
        store = served.store()
        calls = store.list_calls()
        assert len(calls) == 2 and all(c.outcome != "in_progress" for c in calls), calls
        if reloading:  # the second call really came while the first worker reloaded
            assert {c.worker for c in calls} == {first, other}
    print("\n".join(line for line in served.text.splitlines() if not line.startswith("[w")))  # the supervisor's
    # SIGTERM while the second worker retires or reloads: everything stops, exit 0
    assert served.exit_code == 0, served.text[-3000:]
    assert "stopped." in served.text
