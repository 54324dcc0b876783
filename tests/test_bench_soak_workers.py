"""`voicebot bench soak --workers 2` through the real parts: sipp placing short calls with RTP on Kamailio, `voicebot
serve --workers 2` with its models, ``serve.recycle_after_calls`` low enough that a worker is recycled during the
run. No answered call may be lost, the replacement must start back at a fresh worker's size, and SIGTERM must end
the service with exit 0. The helpers (the proxied scenario, finding the workers) are checked without a server.

Ports 26400-26629: Kamailio 26400, sipp 26402 (media 26404), /metrics 26409, workers 26410-26411, their RTP
26430-26629.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from voicebot.bench_soak import failed_calls, uac_scenario
from voicebot.bench_soak_workers import proxied, soak_workers, supervised

PORT = 26400


def test_the_soak_call_goes_through_the_proxy_for_its_ack_and_bye():
    """ACK and BYE go to the answering worker's Contact along the 200 OK's Record-Route set."""
    xml = proxied(uac_scenario(1500, Path("/tmp/caller.pcap")))
    assert '<recv response="200" rtd="true" rrs="true"/>' in xml
    assert xml.count("[next_url] SIP/2.0\n      [routes]\n") == 2  # ACK and BYE
    assert "ACK sip:voicebot@" not in xml and "BYE sip:voicebot@" not in xml
    assert "INVITE sip:voicebot@[remote_ip]:[remote_port]" in xml  # the INVITE still goes to Kamailio


def test_workers_are_found_among_the_supervisors_children_by_their_worker_index():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "serve", "--worker-index", "3"])
    other = subprocess.Popen(["sleep", "30"])
    try:
        workers, kamailio = supervised(os.getpid())
        assert workers.get(child.pid) == "w3" and other.pid not in workers and kamailio is None
    finally:
        for proc in (child, other):
            proc.kill()
            proc.wait()


def test_sipps_final_screen_gives_the_completed_and_the_failed_calls():
    screen = ("  Successful call        |        0                  |        28                \n"
              "  Failed call            |        0                  |        2                 \n")
    assert failed_calls(screen, "Successful") == 28 and failed_calls(screen) == 2


@pytest.mark.models
@pytest.mark.timeout(900)
def test_a_soak_with_two_workers_recycles_one_and_loses_no_call(config):
    for binary in ("sipp", "kamailio", "kamcmd"):
        if shutil.which(binary) is None:
            pytest.fail(f"{binary} is not installed: scripts/setup.sh installs sip-tester and kamailio")
    if os.geteuid() != 0:
        pytest.fail("sipp plays the caller's RTP on a raw socket: run this test as root (or with CAP_NET_RAW)")
    # limit 8: the first worker past it retires during the 30 calls (2 at a time, about half each); the run then
    # waits for its replacement to be ready and stops (a second recycle, if one starts, is cut by SIGTERM)
    soak = soak_workers(config, workers=2, calls=30, concurrency=2, batch=12, warmup=6, port=PORT, caller_says="",
                        recycle_after_calls=8, settle_quiet_s=0, expect_recycles=1)
    table = "\n".join(f"{r.stage:20s} {r.metric:100s} {r.median:9.1f} {r.unit}" for r in soak.rows())
    print(table)

    assert soak.exit_code == 0, table  # SIGTERM drained and stopped everything
    assert soak.crashes == 0, table
    assert soak.failed == 0 and soak.answered == soak.calls == 30, table  # the retiring worker's 503 rerouted
    assert soak.recorded == soak.answered and soak.ended == soak.recorded, table  # no answered call lost
    assert sum(soak.by_worker.values()) == soak.recorded and set(soak.by_worker) == {"w0", "w1"}, table
    assert soak.recycles >= 1 and sum(soak.recycles_metric.values()) >= soak.recycles, table
    retired = [life for life in soak.lives if life.retired]
    assert retired and all(life.calls >= 8 for life in retired), table

    pairs = soak.replacements()
    assert pairs, table
    for first, old, new in pairs:
        assert new.pid != old.pid and new.fresh is not None and old.last is not None
        # back near a fresh worker: the models' memory and no more (the first worker's at ready, within 5 %)
        assert abs(new.fresh.rss_mb - first.fresh.rss_mb) < 0.05 * first.fresh.rss_mb, table
        assert abs(new.fresh.anon_mb - first.fresh.anon_mb) < 0.05 * first.fresh.anon_mb, table
        assert new.fresh.rss_mb <= 1.02 * old.peak_mb, table  # never bigger than the one it replaced got
        assert new.fresh.threads <= old.last.threads + 2 and new.fresh.fds <= old.last.fds, table
