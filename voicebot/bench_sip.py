"""The SIP line benchmark (`voicebot bench sip`): voice-to-voice latency heard by real SIP callers, and capacity.

It runs the real thing end to end on loopback: a `voicebot serve` process (on a copy of the config with its own
port, CRM and call store in a temporary folder) answers calls from scripted callers, each a `voicebot call`
process (pjsua2) that plays Piper-voiced WAVs and measures, in the audio it receives, the delay from the end
of each of its utterances to the onset of the bot's reply. With ``concurrency`` N, N callers call at once.
The server's own per-stage timings of the same turns (from the call store) are reported next to it.

Barge-in under load: at each level, one more round per script set in which one caller of the N asks a question
with a long answer and talks over it (``voicebot call --over``), twice, while the others go through their scripts:
the delay from the interrupting caller's onset to the bot's voice 15 dB quieter and to silence, measured in the
audio that caller received (``tools.caller``), so the jitter buffers and the machine's load are in it.

Caller audio is synthesised once, up front, so caller processes only play WAVs and do no model work.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import yaml

from voicebot.knowledge.hours import company_clock
from voicebot.audio import write_wav
from voicebot.bench import CALL_SCRIPTS, STAGES, Row
from voicebot.config import Config

CALLER = "+15550102030"  # the demo CRM's known caller
INTERRUPTER = ["What is your return policy?", "Sorry, how long does delivery usually take?",
               "And are you open on Saturday?"]
"""Knowledge questions with answers of a few seconds each; the second and third are said over those answers."""
OVER_MS = 1000  # how far into the bot's answer the interrupter starts talking
READY_LINE = "answering calls"


def _bench_config(config: Config, folder: Path, port: int) -> Path:
    """A copy of ``config`` that keeps the models and caches but has its own SIP port, CRM and call store."""
    data = config.model_dump(mode="json")
    data["models"]["dir"] = str(config.path(config.models.dir))
    data["models"]["cache_dir"] = str(config.path(config.models.cache_dir))
    data["tts"]["cache_dir"] = str(config.path(config.tts.cache_dir))
    data["sip"].update(port=port, listen_address="127.0.0.1", transports=["udp"], allowed_sources=["127.0.0.0/8"])
    data["crm"]["database"] = str(folder / "crm.db")
    data["store"].update(database=str(folder / "calls.db"), recordings_dir=str(folder / "recordings"))
    data["review"]["database"] = str(folder / "review.db")
    if "serve" in data:
        data["serve"].update(workers=1, metrics_port=0, run_dir=str(folder / "run"))
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _caller_wavs(config: Config, folder: Path, log: Callable[[str], None]) -> list[list[Path]]:
    from voicebot.components import make_synthesizer
    from voicebot.models import ModelStore

    log("synthesising the callers' utterances ...")
    voice = make_synthesizer(config, ModelStore.from_config(config))
    scripts = []
    for n, lines in enumerate([*CALL_SCRIPTS, INTERRUPTER]):
        paths = []
        for i, text in enumerate(lines):
            pcm = b"".join(chunk.pcm for chunk in voice.stream(text, 16000))
            path = folder / f"caller-{n}-{i}.wav"
            write_wav(path, pcm, 16000)
            paths.append(path)
        scripts.append(paths)
    return scripts


class _Server:
    """`voicebot serve` in a child process, started and stopped with the benchmark."""

    def __init__(self, cfg: Path, folder: Path, load_timeout_s: float = 300):
        self.output: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "voicebot.cli", "serve", "--config", str(cfg)],
                                     cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, "COLUMNS": "200"})
        threading.Thread(target=lambda: self.output.extend(self.proc.stdout), daemon=True).start()
        deadline = time.monotonic() + load_timeout_s
        while not any(READY_LINE in line for line in self.output):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("voicebot serve did not start:\n" + "".join(self.output)[-3000:])
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _call(uri: str, cfg: Path, wavs: list[Path], timeout_s: float, over_ms: int | None = None) -> dict:
    """One `voicebot call` with ``wavs`` in turn; with ``over_ms``, every WAV after the first starts that long
    after the bot's reply began (over it)."""
    cmd = [sys.executable, "-m", "voicebot.cli", "call", uri, "--config", str(cfg), "--from", CALLER, "--json",
           "--no-transcribe"]
    for i, wav in enumerate(wavs):
        cmd += ["--over", str(over_ms)] if over_ms is not None and i else []
        cmd += ["--wav", str(wav)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"voicebot call failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return json.loads(done.stdout[done.stdout.index("{"):])


def _round(uri: str, cfg: Path, chosen: list[list[Path]], interrupter: list[Path] | None = None) -> list[dict]:
    """One call per script in ``chosen`` at once (the reports in that order); with ``interrupter``, one more
    call that talks over the bot (``OVER_MS``), placed once the others are into their first turns."""
    results: dict[int, dict] = {}
    errors: list[str] = []
    calls = [(wavs, None) for wavs in chosen] + ([(interrupter, OVER_MS)] if interrupter else [])

    def one(index: int, wavs: list[Path], over_ms: int | None) -> None:
        try:
            results[index] = _call(uri, cfg, wavs, timeout_s=300, over_ms=over_ms)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(str(exc))

    threads = [threading.Thread(target=one, args=(i, *call)) for i, call in enumerate(calls)]
    for i, thread in enumerate(threads):
        if interrupter and i == len(threads) - 1 and len(threads) > 1:
            time.sleep(3.0)  # the others have heard the greeting and are talking: the models are busy
        thread.start()
        time.sleep(0.3)  # callers ring a little apart, as real ones do
    for thread in threads:
        thread.join()
    if errors:  # the bot is not answering as it should: measuring on would only repeat the error
        raise RuntimeError(f"{len(errors)} call(s) failed; first:\n{errors[0]}")
    return [results[i] for i in range(len(calls))]


def _run_level(uri: str, cfg: Path, scripts: list[list[Path]], concurrency: int, runs: int,
               log: Callable[[str], None]) -> tuple[list[float], list[float]]:
    """The voice-to-voice delays of every caller turn, and each call's answer-to-greeting time, at the caller."""
    delays: list[float] = []
    greetings: list[float] = []
    for run in range(runs):
        for first in range(0, len(scripts)):
            results = _round(uri, cfg, [scripts[(first + k) % len(scripts)] for k in range(concurrency)])
            got = [d for r in results for d in r.get("voice_to_voice_s", []) if d is not None]
            delays += got
            greetings += [r["greeting_s"] for r in results if r.get("greeting_s") is not None]
            log(f"  {concurrency} concurrent, run {run + 1}, script set {first + 1}: {len(got)} turns, "
                f"median so far {sorted(delays)[len(delays) // 2] if delays else float('nan'):.2f} s")
    return delays, greetings


def _barge_level(uri: str, cfg: Path, scripts: list[list[Path]], interrupter: list[Path], concurrency: int,
                 runs: int, log: Callable[[str], None]) -> tuple[list[float], list[float]]:
    """Onset -> bot 15 dB quieter, and onset -> bot silent, at the interrupting caller, with ``concurrency`` - 1
    other calls going through their scripts meanwhile."""
    quieter: list[float] = []
    silent: list[float] = []
    for run in range(runs):
        for first in range(0, len(scripts)):
            others = [scripts[(first + k) % len(scripts)] for k in range(concurrency - 1)]
            steps = [st for st in _round(uri, cfg, others, interrupter)[-1]["steps"] if st.get("over")]
            quieter += [st["quieter_s"] for st in steps if st.get("quieter_s") is not None]
            silent += [st["silent_s"] for st in steps if st.get("silent_s") is not None]
            said = ", ".join(str(st.get("silent_s")) for st in steps)
            log(f"  {concurrency} concurrent, barge-in run {run + 1}, script set {first + 1}: silent after {said} s")
    return quieter, silent


def _server_stages(folder: Path, since_call: int) -> dict[str, list[float]]:
    """Per-stage delays after end of speech that the bot recorded for caller turns of calls after ``since_call``."""
    from voicebot.store import CallStore

    store = CallStore(folder / "calls.db", folder / "recordings")
    stages: dict[str, list[float]] = {}
    try:
        for call in store.list_calls(limit=10_000)[::-1][since_call:]:
            seen = set()
            for turn in store.turns(call.id):  # a bot turn carries the timings of the caller turn it answers
                t = turn.timings
                if turn.role != "bot" or t.end_of_speech is None or t.end_of_speech in seen:
                    continue
                seen.add(t.end_of_speech)
                for stage in STAGES[1:]:
                    at = getattr(t, stage)
                    if at is not None:
                        stages.setdefault(stage, []).append(at - t.end_of_speech)
    finally:
        store.close()
    return stages


def bench_sip(config: Config, runs: int = 1, concurrency: tuple[int, ...] = (1, 2, 3, 4),
              log: Callable[[str], None] = print, port: int = 25060) -> list[Row]:
    """Voice-to-voice delay on the SIP line for each concurrency level (median/p95), and the bot's own stage
    timings for the same turns."""
    from voicebot.crm.repository import Repository
    from voicebot.crm.seed import seed_demo

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="voicebot-bench-sip-") as tmp:
        folder = Path(tmp)
        cfg = _bench_config(config, folder, port)
        repo = Repository.open(folder / "crm.db", region=config.crm.default_region)
        seed_demo(repo, today=company_clock(config)().date())  # the served CRM's clock
        repo.close()
        *scripts, interrupter = _caller_wavs(config, folder, log)
        log(f"starting voicebot serve on 127.0.0.1:{port} ...")
        server = _Server(cfg, folder)
        uri = f"sip:voicebot@127.0.0.1:{port}"
        try:
            calls_before = 0
            for level in concurrency:
                delays, greetings = _run_level(uri, cfg, scripts, level, runs, log)
                row = Row(f"SIP line, {level} concurrent call{'s' if level > 1 else ''}",
                          "voice to voice (caller stops -> bot audio heard)", "s", tuple(delays))
                rows.append(row)
                rows.append(Row(row.stage, "answered -> greeting heard (at the caller)", "s",
                                tuple(greetings) or (float("nan"),)))
                log(f"{row.stage}: voice to voice median {row.median:.2f} s, p95 {row.p95:.2f} s, "
                    f"{len(delays)} turns")
                stages = _server_stages(folder, calls_before)
                calls_before += 2 * level * runs * len(scripts)  # and the barge-in rounds' calls, next
                quieter, silent = _barge_level(uri, cfg, scripts, interrupter, level, runs, log)
                rows.append(Row(row.stage, "barge-in: caller's onset -> bot 15 dB quieter (at the caller)", "s",
                                tuple(quieter) or (float("nan"),)))
                rows.append(Row(row.stage, "barge-in: caller's onset -> bot silent (at the caller)", "s",
                                tuple(silent) or (float("nan"),)))
                for stage in STAGES[1:]:
                    if stages.get(stage):
                        rows.append(Row(f"  bot side, {level} concurrent", f"{stage.replace('_', ' ')} "
                                        "(after end of speech)", "s", tuple(stages[stage])))
        except Exception as exc:
            alive = "still running" if server.proc.poll() is None else f"exited with {server.proc.returncode}"
            raise RuntimeError(f"{exc}\n--- voicebot serve ({alive}), last output ---\n"
                               + "".join(server.output)[-4000:]) from exc
        finally:
            server.stop()
    return rows
