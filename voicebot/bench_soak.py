"""The soak benchmark (`voicebot bench soak`): hundreds of short real SIP calls against one `voicebot serve`, and
what the process keeps from them.

Why: a leak of a media port, a file descriptor or a thread per call does not show in a ten-call test, but it
stops a bot that answers a few thousand calls a day within a week. sipp places the calls (INVITE with PCMU, the
bot's greeting plays, the caller speaks into it, BYE after ``hold_s``), ``concurrency`` at a time, while the
server's memory (RSS), open file descriptors and threads are sampled from /proc after a warm-up and after each
batch. RTP flows both ways: sipp plays the caller's audio (Piper speech, or quiet line noise with
``caller_says=""``) as a pcap of G.711 RTP (``voicebot.tools.rtp_pcap``; sipp sends it on a raw socket, so it
needs root or CAP_NET_RAW), and the report proves from the bot's own recordings that it heard the caller and
spoke. The report gives the drift per 100 calls after the warm-up, the calls the call store recorded (none may be
lost), and how the server ended on SIGTERM afterwards (a clean drain exits 0; a crash at shutdown once exited 134).

Why RSS is reported as two halves, and its anonymous part apart: a step is not a climb. Before the worker gave
freed memory back after each call (``voicebot.memory.trim``), the server's RSS rose by tens of MB once, within
the first 50 or so calls after the warm-up, as executor threads first ran Whisper or an ONNX model and the
memory their calls freed stayed in those threads' malloc arenas, then by 1 to 3 MB per 50 calls (420 calls 4 at
a time: 2432 -> 2465 by call 70 -> 2475 MB); a straight line over the whole run called that a drift of 10 to 17
MB per 100 calls. A leak climbs in the second half as in the first; a heap that levels off does not. With the
trim, RSS stays within about 20 MB of its warm-up figure (2410 -> 2414 MB). The anonymous part leaves out the
pages of llama.cpp's mapped model file. To see what the heap holds, run with ``VOICEBOT_HEAP_PROBE=<folder>``
(``voicebot.memory``): the server writes a snapshot at every sample and the report ends with what grew between
the first and the last. Against `serve --workers N` behind Kamailio, with recycling: ``voicebot.bench_soak_workers``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import NamedTuple

import numpy as np

from voicebot.knowledge.hours import company_clock
from voicebot.bench import Row
from voicebot.bench_soak_store import audio_rows, stored_calls
from voicebot.bench_sip import _bench_config, _Server
from voicebot.config import Config
from voicebot.memory import PROBE_ENV, PROBE_SIGNAL, heap_report
from voicebot.tools.rtp_pcap import write_rtp_pcap

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
  <pause milliseconds="{lead_ms}"/>
  {play}
  <pause milliseconds="{rest_ms}"/>
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


def _openmp_threads(pid: int) -> int:
    """Threads of ``pid`` parked in an OpenMP runtime (libgomp: llama.cpp's and CTranslate2's workers), found
    without stopping the process: a blocked thread's program counter (/proc/.../syscall, last field) lies in
    libgomp's code, which does its futex calls itself. A thread running at that moment is not counted."""
    ranges = []
    try:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 6 and "libgomp" in fields[5] and "x" in fields[1]:
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                ranges.append((lo, hi))
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0
    count = 0
    for task in tasks:
        try:
            fields = (task / "syscall").read_text().split()
        except OSError:
            continue
        if len(fields) > 2 and fields[0].isdigit():
            pc = int(fields[-1], 16)
            count += any(lo <= pc < hi for lo, hi in ranges)
    return count


class Usage(NamedTuple):
    rss_mb: float
    anon_mb: float  # of rss_mb: the heap's (malloc, Python, native libraries), not pages of mapped model files
    fds: int
    threads: int
    openmp: int  # of threads: OpenMP's workers (see ``sample``)


def sample(pid: int, tree: bool = True) -> Usage:
    """RSS, open file descriptors, threads and OpenMP worker threads of ``pid`` and its children (``tree``; else
    of ``pid`` alone: a supervisor whose children are sampled one by one).

    Why anonymous memory apart: llama.cpp maps its GGUF file, and RSS counts the pages of it read so far, which
    grow as prompts reach parts of the model not touched before; those pages belong to the file (the kernel drops
    them under pressure), so a leak shows in the anonymous part (``RssAnon``).

    Why the OpenMP workers are counted apart: llama.cpp runs on OpenMP, and libgomp keeps a team of
    ``llm.threads - 1`` workers for every thread that ever called the model, for that thread's lifetime. The
    agent's prefills used to run on the event loop's default executor, so these teams grew during the first
    couple of hundred calls as executor threads first happened to run one (`gdb thread apply all bt` on a soak's
    server after 160 calls: every thread that appeared after the first 20 was a llama.cpp worker in libgomp, 6
    of at most 8); the prefills now have one thread of their own (``voicebot.session.prefill``) and the count is
    flat. CTranslate2 (Whisper) keeps 2 more from the start. A thread running at the moment of the sample is not
    recognised, so the two counts can trade one. The drift of the other threads is what must be zero.
    """
    rss_kb = anon_kb = fds = threads = openmp = 0
    for p in _proc_tree(pid) if tree else [pid]:
        try:
            status = Path(f"/proc/{p}/status").read_text().splitlines()
            fds += len(list(Path(f"/proc/{p}/fd").iterdir()))
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status if ":" in line)
        rss_kb += int(fields.get("VmRSS", "0 kB").split()[0])
        anon_kb += int(fields.get("RssAnon", "0 kB").split()[0])
        threads += int(fields.get("Threads", "0").strip())
        openmp += _openmp_threads(p)
    return Usage(rss_kb / 1024, anon_kb / 1024, fds, threads, openmp)


def _described(u: Usage) -> str:
    return (f"RSS {u.rss_mb:.0f} MB ({u.anon_mb:.0f} anonymous), {u.fds} fds, {u.threads} threads "
            f"({u.openmp} OpenMP workers)")


def caller_pcap(config: Config, folder: Path, says: str, seconds: float) -> tuple[Path, int]:
    """The caller's side of every call as a PCMU RTP pcap no longer than ``seconds`` (sipp keeps sending a pcap
    after its BYE otherwise): Piper saying ``says``, or, when empty, quiet line noise (about -45 dBFS) that needs
    no model. Returns the file and its packet count (what sipp sends per call)."""
    rate = 8000
    if says:
        from voicebot.components import make_synthesizer
        from voicebot.models import ModelStore

        rate = 16000
        voice = make_synthesizer(config, ModelStore.from_config(config))
        pcm = b"".join(chunk.pcm for chunk in voice.stream(says, rate))
    else:
        noise = np.random.default_rng(7).normal(0, 180, int(seconds * rate))
        pcm = noise.clip(-32768, 32767).astype("<i2").tobytes()
    pcm = pcm[:int(seconds * rate) * 2]
    path = folder / "caller.pcap"
    return path, write_rtp_pcap(pcm, rate, path, codec="PCMU")


def failed_calls(sipp_stdout: str, kind: str = "Failed") -> int:
    """Calls sipp counted as failed (its final screen's cumulative "Failed call"; 0 when absent); ``kind``
    "Successful": the calls it completed (answered, on the line, BYE answered)."""
    found = re.findall(kind + r" call\s*\|\s*\d+\s*\|\s*(\d+)", sipp_stdout)
    return int(found[-1]) if found else 0


def lead_ms_for(hold_ms: int) -> int:
    """When the caller starts speaking: once the greeting is audible (a caller who speaks at once barges in
    before the bot said anything, and no audio would go the bot's way), at most halfway through the call."""
    return min(800, hold_ms // 2)


def uac_scenario(hold_ms: int, pcap: Path | None = None) -> str:
    """The soak's call as a sipp scenario: INVITE, ``hold_ms`` on the line, BYE; the caller's ``pcap`` (None: no
    caller audio) played from ``lead_ms_for(hold_ms)`` on."""
    lead_ms = lead_ms_for(hold_ms) if pcap is not None else hold_ms
    play = f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>' if pcap is not None else ""
    return (UAC.replace("{lead_ms}", str(lead_ms)).replace("{rest_ms}", str(hold_ms - lead_ms))
            .replace("{play}", play))


def _sipp(folder: Path, port: int, local_port: int, calls: int, concurrency: int, hold_ms: int,
          pcap: Path, scenario_of: Callable[[str], str] = str) -> str:
    """Place ``calls`` soak calls; ``scenario_of`` adapts the scenario (through a proxy: ``bench_soak_workers``)."""
    sipp = shutil.which("sipp")
    if sipp is None:
        raise RuntimeError("sipp is not installed: run scripts/setup.sh (it installs sip-tester)")
    scenario = folder / "soak.xml"
    scenario.write_text(scenario_of(uac_scenario(hold_ms, pcap)))
    budget_s = 60 + int(calls * (hold_ms / 1000 + 2) / concurrency)  # a call in a row takes hold + ~0.5 s
    cmd = [sipp, f"127.0.0.1:{port}", "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(local_port),
           "-mp", str(local_port + 2), "-m", str(calls), "-l", str(concurrency), "-r", str(concurrency),
           "-timeout", f"{budget_s}s", "-timeout_error", "-nostdin", "-trace_err",
           "-error_file", str(folder / "sipp-errors.log")]
    done = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=budget_s + 60)
    if done.returncode not in (0, 1):  # 1: some calls failed (reported from the call store)
        raise RuntimeError(f"sipp failed ({done.returncode}): {done.stderr[-1500:]}")
    return done.stdout


def rss_slopes(samples: list[tuple[int, float]]) -> tuple[float, float]:
    """RSS drift per 100 calls over the first and the second half of the soak after the warm-up, from ``samples``
    of (calls so far, RSS in MB). Why both: a process whose RSS levels off (a heap filling its arenas once) has a
    second half near 0, while a leak climbs at the same rate in both; one figure over the whole run cannot tell
    them apart. The halves meet at the sample nearest the middle (both are the whole run's slope with 2 samples)."""
    if len(samples) < 3:
        whole = _slope(samples[0], samples[-1])
        return whole, whole
    middle = samples[0][0] + (samples[-1][0] - samples[0][0]) / 2
    mid = min(samples[1:-1], key=lambda s: abs(s[0] - middle))
    return _slope(samples[0], mid), _slope(mid, samples[-1])


def _slope(a: tuple[int, float], b: tuple[int, float]) -> float:
    return (b[1] - a[1]) * 100 / max(b[0] - a[0], 1)


def last_words(output: str) -> str:
    """What a dead server printed that says why: faulthandler's report with the crashing thread first and the
    line just before it (a glibc or pjlib assertion, "double free"), rather than the output's tail, which is the
    other threads' stacks and its list of extension modules."""
    at = output.rfind("Fatal Python error")
    return output[max(at - 1500, 0):at + 4000] if at >= 0 else output[-3000:]


def _heap_snapshot(pid: int, probe: Path, taken: int) -> int:
    """With ``VOICEBOT_HEAP_PROBE`` set (``voicebot.memory``), have the server write its next heap snapshot and
    wait for it; returns the snapshots taken so far."""
    os.kill(pid, PROBE_SIGNAL)
    done = probe / f"heap-{taken + 1:03d}.json"
    deadline = time.monotonic() + 120
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    return taken + 1


def prepare(config: Config, folder: Path, port: int, caller_says: str, hold_s: float) -> tuple[Path, Path, int]:
    """The soak's folder: the bench config (``_bench_config``), a seeded CRM, the caller's pcap; returns the
    config file, the pcap and its packet count."""
    from voicebot.crm.repository import Repository
    from voicebot.crm.seed import seed_demo

    cfg = _bench_config(config, folder, port)
    repo = Repository.open(folder / "crm.db", region=config.crm.default_region)
    seed_demo(repo, today=company_clock(config)().date())  # the served CRM's clock
    repo.close()
    return (cfg, *caller_pcap(config, folder, caller_says,
                              max(hold_s - lead_ms_for(int(hold_s * 1000)) / 1000 - 0.2, 0.1)))


def bench_soak(config: Config, calls: int = 300, concurrency: int = 2, hold_s: float = 1.5, batch: int = 50,
               log: Callable[[str], None] = print, port: int = 25160, caller_says: str = "Hello?",
               warmup: int = 20) -> list[Row]:
    """Run ``calls`` short SIP calls in batches of ``batch`` after ``warmup`` calls and report the server's
    drift, the RTP that went each way, and lost records. The bot takes ``port`` and RTP ports port+2..port+102;
    sipp takes port+110 (SIP) and port+112 (media)."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="voicebot-bench-soak-") as tmp:
        folder = Path(tmp)
        cfg, pcap, packets = prepare(config, folder, port, caller_says, hold_s)
        local = port + 110  # above the bot's RTP ports (port+2 .. port+102)
        log(f"starting voicebot serve on 127.0.0.1:{port} ...")
        server = _Server(cfg, folder)
        pid = server.proc.pid
        samples: list[tuple[int, Usage]] = []  # (calls so far, the server's usage then)
        started = time.monotonic()
        probe = Path(os.environ[PROBE_ENV]) if os.environ.get(PROBE_ENV) else None  # debugging only
        snapshots = 0
        try:
            warmup = min(warmup, calls)
            failed = failed_calls(_sipp(folder, port, local, warmup, concurrency, int(hold_s * 1000), pcap))
            time.sleep(2)
            samples.append((warmup, sample(pid)))
            if probe is not None:
                snapshots = _heap_snapshot(pid, probe, snapshots)
            log(f"after {warmup} warm-up calls: {_described(samples[-1][1])}")
            done = warmup
            while done < calls:
                n = min(batch, calls - done)
                failed += failed_calls(_sipp(folder, port, local, n, concurrency, int(hold_s * 1000), pcap))
                done += n
                time.sleep(2)  # let the last calls end and their records be written
                samples.append((done, sample(pid)))
                if probe is not None:
                    snapshots = _heap_snapshot(pid, probe, snapshots)
                log(f"after {done} calls: {_described(samples[-1][1])}, {failed} failed call(s) "
                    f"({time.monotonic() - started:.0f} s)")
                if server.proc.poll() is not None:
                    raise RuntimeError(f"voicebot serve died (exit {server.proc.returncode}) after {done} calls:\n"
                                       + last_words("".join(server.output)))
        finally:
            server.stop()
        exit_code = server.proc.returncode
        recorded, ended, heard, spoke, _, greeted = stored_calls(folder, calls)
    (n0, first), (n1, last) = samples[0], samples[-1]
    per100 = 100 / max(n1 - n0, 1)
    for name, field in (("RSS", "rss_mb"), ("anonymous RSS (the heap)", "anon_mb")):
        mb = [(n, getattr(u, field)) for n, u in samples]
        first_half, second_half = rss_slopes(mb)
        rows.append(Row("soak", f"{name} drift per 100 calls after warm-up ({mb[0][1]:.0f} -> {mb[-1][1]:.0f} MB)",
                        "MB", ((mb[-1][1] - mb[0][1]) * per100,)))
        rows.append(Row("soak", f"  first half ({' -> '.join(f'{v:.0f}' for _, v in mb)} MB every {batch} calls)",
                        "MB", (first_half,)))
        rows.append(Row("soak", "  second half (about 0: it levels off; as the first: it climbs)", "MB",
                        (second_half,)))
    if probe is not None and snapshots >= 2:
        for line in heap_report(probe, 1, snapshots):
            log(line)
    rows.append(Row("soak", f"fd drift per 100 calls ({first.fds} -> {last.fds})", "fds",
                    ((last.fds - first.fds) * per100,)))
    rows.append(Row("soak", f"thread drift per 100 calls ({first.threads} -> {last.threads})", "threads",
                    ((last.threads - first.threads) * per100,)))
    rows.append(Row("soak", f"  of which OpenMP workers ({first.openmp} -> {last.openmp}; bounded, see sample())",
                    "threads", ((last.openmp - first.openmp) * per100,)))
    others = first.threads - first.openmp, last.threads - last.openmp
    rows.append(Row("soak", f"  other threads ({others[0]} -> {others[1]}; must stay)", "threads",
                    ((others[1] - others[0]) * per100,)))
    rows.append(Row("soak", f"calls sipp counted as failed (of {calls})", "calls", (float(failed),)))
    rows.append(Row("soak", f"calls recorded in the call store (of {calls})", "calls", (float(recorded),)))
    rows.append(Row("soak", "of them ended with an outcome", "calls", (float(ended),)))
    rows += audio_rows("soak", caller_says, packets, heard, spoke, greeted)
    rows.append(Row("soak", "serve exit code after SIGTERM (0: clean drain)", "code", (float(exit_code),)))
    return rows
