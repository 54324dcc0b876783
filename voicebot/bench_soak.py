"""The soak benchmark (`voicebot bench soak`): hundreds of short real SIP calls against one `voicebot serve`, and
what the process keeps from them.

Why: a leak of a media port, a file descriptor or a thread per call does not show in a ten-call test, but it
stops a bot that answers a few thousand calls a day within a week. sipp places the calls (INVITE with PCMU, the
bot's greeting plays, BYE after ``hold_s``), ``concurrency`` at a time, while the server's memory (RSS), open
file descriptors and threads are sampled from /proc after a warm-up and after each batch. The report gives the
drift per 100 calls after the warm-up, the calls the call store recorded (none may be lost), and how the server
ended on SIGTERM afterwards (a clean drain exits 0; a crash at shutdown once exited 134).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from voicebot.bench import Row
from voicebot.bench_sip import _bench_config, _Server
from voicebot.config import Config

UAC = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="soak call">
  <send retrans="500"><![CDATA[
      INVITE sip:voicebot@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Soak" <sip:+15550102030@[local_ip]:[local_port]>;tag=[pid]soak[call_number]
      To: <sip:voicebot@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:soak@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=soak 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
      ACK sip:voicebot@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Soak" <sip:+15550102030@[local_ip]:[local_port]>;tag=[pid]soak[call_number]
      To: <sip:voicebot@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:soak@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  <pause milliseconds="{hold_ms}"/>
  <send retrans="500"><![CDATA[
      BYE sip:voicebot@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Soak" <sip:+15550102030@[local_ip]:[local_port]>;tag=[pid]soak[call_number]
      To: <sip:voicebot@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: sip:soak@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  <recv response="200" crlf="true"/>
</scenario>
"""


def _proc_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a worker process under the supervisor)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            children = []
        todo.extend(int(c) for c in children)
    return out


def sample(pid: int) -> tuple[float, int, int]:
    """(RSS in MB, open file descriptors, threads) of ``pid`` and its children."""
    rss_kb = fds = threads = 0
    for p in _proc_tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text().splitlines()
            fds += len(list(Path(f"/proc/{p}/fd").iterdir()))
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status if ":" in line)
        rss_kb += int(fields.get("VmRSS", "0 kB").split()[0])
        threads += int(fields.get("Threads", "0").strip())
    return rss_kb / 1024, fds, threads


def _sipp(folder: Path, port: int, local_port: int, calls: int, concurrency: int, hold_ms: int) -> str:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise RuntimeError("sipp is not installed: run scripts/setup.sh (it installs sip-tester)")
    scenario = folder / "soak.xml"
    scenario.write_text(UAC.replace("{hold_ms}", str(hold_ms)))
    cmd = [sipp, f"127.0.0.1:{port}", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(local_port),
           "-mp", str(local_port + 2), "-m", str(calls), "-l", str(concurrency), "-r", str(concurrency),
           "-timeout", f"{max(60, calls * 2)}s", "-timeout_error", "-nostdin", "-trace_err",
           "-error_file", str(folder / "sipp-errors.log")]
    done = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=max(120, calls * 3))
    if done.returncode not in (0, 1):  # 1: some calls failed (reported from the call store)
        raise RuntimeError(f"sipp failed ({done.returncode}): {done.stderr[-1500:]}")
    return done.stdout


def bench_soak(config: Config, calls: int = 300, concurrency: int = 2, hold_s: float = 1.5, batch: int = 50,
               log: Callable[[str], None] = print, port: int = 25160) -> list[Row]:
    """Run ``calls`` short SIP calls in batches of ``batch`` and report the server's drift and lost records."""
    from voicebot.crm.repository import Repository
    from voicebot.crm.seed import seed_demo
    from voicebot.store import CallStore

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="voicebot-bench-soak-") as tmp:
        folder = Path(tmp)
        cfg = _bench_config(config, folder, port)
        repo = Repository.open(folder / "crm.db", region=config.crm.default_region)
        seed_demo(repo, today=date.today())
        repo.close()
        log(f"starting voicebot serve on 127.0.0.1:{port} ...")
        server = _Server(cfg, folder)
        pid = server.proc.pid
        samples: list[tuple[int, float, int, int]] = []
        started = time.monotonic()
        try:
            warmup = min(20, calls)
            _sipp(folder, port, port + 10, warmup, concurrency, int(hold_s * 1000))
            time.sleep(2)
            samples.append((warmup, *sample(pid)))
            log(f"after {warmup} warm-up calls: RSS {samples[-1][1]:.0f} MB, {samples[-1][2]} fds, "
                f"{samples[-1][3]} threads")
            done = warmup
            while done < calls:
                n = min(batch, calls - done)
                _sipp(folder, port, port + 10, n, concurrency, int(hold_s * 1000))
                done += n
                time.sleep(2)  # let the last calls end and their records be written
                samples.append((done, *sample(pid)))
                log(f"after {done} calls: RSS {samples[-1][1]:.0f} MB, {samples[-1][2]} fds, "
                    f"{samples[-1][3]} threads ({time.monotonic() - started:.0f} s)")
        finally:
            server.stop()
        exit_code = server.proc.returncode
        store = CallStore(folder / "calls.db", folder / "recordings", readonly=True)
        recorded = store.count_calls()
        ended = store.select("select count(*) as n from calls where ended_at is not null")[0]["n"]
        store.close()
    first, last = samples[0], samples[-1]
    per100 = 100 / max(last[0] - first[0], 1)
    rows.append(Row("soak", f"RSS drift per 100 calls after warm-up ({first[1]:.0f} -> {last[1]:.0f} MB)", "MB",
                    ((last[1] - first[1]) * per100,)))
    rows.append(Row("soak", f"fd drift per 100 calls ({first[2]} -> {last[2]})", "fds",
                    ((last[2] - first[2]) * per100,)))
    rows.append(Row("soak", f"thread drift per 100 calls ({first[3]} -> {last[3]})", "threads",
                    ((last[3] - first[3]) * per100,)))
    rows.append(Row("soak", f"calls recorded in the call store (of {calls})", "calls", (float(recorded),)))
    rows.append(Row("soak", "of them ended with an outcome", "calls", (float(ended),)))
    rows.append(Row("soak", "serve exit code after SIGTERM (0: clean drain)", "code", (float(exit_code),)))
    return rows
