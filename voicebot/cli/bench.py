"""``voicebot bench models / calls / faults / stt / turns / sip / soak / kb``: benchmarks that print tables of timings (median and p95)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from voicebot.cli.common import ConfigOption, console, fail, get_config
from voicebot.models import ModelError

bench_app = typer.Typer(help="Benchmarks: print tables of timings (median and p95).", no_args_is_help=True)


def _bench(run, runs: int, config_path: Path | None, title: str) -> None:
    config = get_config(config_path)
    try:
        rows = run(config, runs=runs, log=lambda line: console.print(line, highlight=False))
    except ModelError as exc:
        raise fail(str(exc)) from None
    _print_rows(title, rows)


@bench_app.command("models")
def bench_models_cmd(runs: Annotated[int, typer.Option(min=1, help="Repetitions per measurement.")] = 5,
                     config_path: ConfigOption = None):
    """Load time of each model; STT on 2 s and 6 s phone audio; LLM first token and tok/s; TTS first audio."""
    from voicebot.bench import bench_models

    _bench(bench_models, runs, config_path, f"model benchmark ({runs} runs each)")


@bench_app.command("calls")
def bench_calls_cmd(runs: Annotated[int, typer.Option(min=1, help="Times to run the set of scripted calls.")] = 1,
                    config_path: ConfigOption = None):
    """Whole scripted calls at line pace: per-turn stage timings (median and p95), fixed turns vs model turns."""
    from voicebot.bench import bench_calls

    _bench(bench_calls, runs, config_path, f"call benchmark ({runs} run(s) of the scripted calls, line pace)")


@bench_app.command("faults")
def bench_faults_cmd(runs: Annotated[int, typer.Option(min=1, help="Calls per fault kind.")] = 3,
                     hang_limit: Annotated[float | None, typer.Option(min=3.0, help="Stage limit (s) for the "
                                                              "hung STT, TTS and model (default: the config's "
                                                              "faults.*_timeout_s, 12-25 s).")] = None,
                     config_path: ConfigOption = None):
    """Faults never mean silence: a simulated call per fault kind (STT, TTS or model raising or hanging, Ollama
    500, hung or down, CRM locked, store full, no operator) through the real session, Whisper and Piper; the time
    from the fault to the caller hearing audio (median and p95), and how each call ended."""
    from voicebot.bench_faults import bench_faults

    limit = f", hang limit {hang_limit:g} s" if hang_limit is not None else ""
    _bench(lambda config, runs, log: bench_faults(config, runs, log, hang_limit), runs, config_path,
           f"fault benchmark ({runs} call(s) per fault kind, line pace from the caller's question{limit})")


@bench_app.command("stt")
def bench_stt_cmd(runs: Annotated[int, typer.Option(min=1, help="Times to transcribe the phrasings.")] = 1,
                  window: Annotated[float, typer.Option(min=5, max=29, help="The short encoder window in seconds "
                                                        "(stt.window_s) to set against the full 30 s.")] = 10.0,
                  config_path: ConfigOption = None):
    """Whisper's encoder window: full 30 s against short, on the same caller phrasings over the phone line: wall
    and CPU time per utterance, and every phrasing heard differently."""
    from voicebot.bench_stt import bench_stt

    _bench(lambda config, runs, log: bench_stt(config, runs, log, window), runs, config_path,
           f"speech to text benchmark ({runs} run(s), encoder window 30 s vs {window:g} s)")


@bench_app.command("turns")
def bench_turns_cmd(runs: Annotated[int, typer.Option(min=1, help="Times to run the utterance sets.")] = 1,
                    config_path: ConfigOption = None):
    """End of turn with real speech, webrtcvad and the turn model (no Whisper, no LLM): false cuts over slow
    speech and dictated numbers with pauses, and the delay after finished turns; turn model vs fixed silence."""
    from voicebot.bench_turns import bench_turns

    _bench(bench_turns, runs, config_path, f"turn-taking benchmark ({runs} run(s), 8 kHz)")


@bench_app.command("sip")
def bench_sip_cmd(runs: Annotated[int, typer.Option(min=1, help="Times to run the script set per level.")] = 1,
                  concurrency: Annotated[str, typer.Option(help="Concurrent calls to measure, comma-separated "
                                                                "(at most 4: one worker).")] = "1,2,3,4",
                  port: Annotated[int, typer.Option(help="SIP port of the benchmark's own bot.")] = 25060,
                  config_path: ConfigOption = None):
    """Real SIP calls on loopback: voice-to-voice delay heard by `voicebot call` callers at each concurrency
    level (median and p95), with the bot's per-stage timings of the same turns."""
    from voicebot.bench_sip import bench_sip

    try:
        levels = tuple(int(n) for n in concurrency.split(","))
    except ValueError:
        raise fail(f"--concurrency must be numbers separated by commas, not {concurrency!r}") from None
    if not levels or min(levels) < 1 or max(levels) > 4:
        raise fail("--concurrency levels must be between 1 and 4 (one worker answers at most 4 calls)")
    _bench(lambda config, runs, log: bench_sip(config, runs, levels, log, port), runs, config_path,
           f"SIP line benchmark ({runs} run(s) of {len(levels)} concurrency levels)")


@bench_app.command("soak")
def bench_soak_cmd(calls: Annotated[int, typer.Option(min=20, help="Short calls to place in all.")] = 300,
                   concurrency: Annotated[int, typer.Option(min=1, max=4, help="Calls at once.")] = 2,
                   hold: Annotated[float, typer.Option(min=0.5, help="Seconds each call lasts.")] = 1.5,
                   port: Annotated[int | None, typer.Option(help="SIP port of the benchmark's own bot (default "
                                                            "25160; RTP on the next 100 ports, sipp on port+110 "
                                                            "and port+112). With --workers: Kamailio's (default "
                                                            "25400; sipp port+2, /metrics port+9, workers "
                                                            "port+10.., RTP port+30..).")] = None,
                   caller_says: Annotated[str, typer.Option(help="What the caller says in each call (Piper, as "
                                                            "RTP); empty: quiet line noise.")] = "Hello?",
                   warmup: Annotated[int, typer.Option(min=1, help="Calls before the baseline sample (the "
                                                       "server's thread pools fill up in the first ones).")] = 20,
                   workers: Annotated[int, typer.Option(min=0, max=16, help="0: one `voicebot serve` process. "
                                                        "2 or more: `serve --workers N` behind Kamailio, every "
                                                        "worker, the supervisor and Kamailio sampled, recycles "
                                                        "counted.")] = 0,
                   recycle_growth_mb: Annotated[int | None, typer.Option(min=0, help="With --workers: "
                                                                         "serve.recycle_growth_mb for the run "
                                                                         "(default: the config's).")] = None,
                   recycle_after_calls: Annotated[int | None, typer.Option(min=0, help="With --workers: "
                                                                           "serve.recycle_after_calls for the run "
                                                                           "(default: the config's).")] = None,
                   config_path: ConfigOption = None):
    """Hundreds of short real SIP calls (sipp) with RTP both ways against one `voicebot serve`: drift of its
    memory, file descriptors and threads per 100 calls after the warm-up, the audio each side got, calls
    recorded, and its exit code on SIGTERM. With --workers N: against `serve --workers N` behind Kamailio, each
    worker's RSS (at ready, baseline, peak, last), fds and threads, the recycles, calls placed, answered and
    recorded. sipp plays the caller's audio on a raw socket: run it as root."""
    if workers == 1:
        raise fail("--workers 1 is one process with no Kamailio and no recycling: use 0 (the single process) "
                   "or 2 and more")
    if workers == 0 and (recycle_growth_mb is not None or recycle_after_calls is not None):
        raise fail("--recycle-growth-mb and --recycle-after-calls need --workers 2 or more (a single process "
                   "is never recycled)")
    if workers:
        from voicebot.bench_soak_workers import bench_soak_workers

        limits = ", ".join(f"{name} {value}" for name, value in (("recycle after", recycle_after_calls),
                                                                  ("recycle at +MB", recycle_growth_mb))
                           if value is not None)
        _bench(lambda config, runs, log: bench_soak_workers(
            config, workers, calls=calls, concurrency=concurrency, hold_s=hold, log=log,
            port=port if port is not None else 25400, caller_says=caller_says, warmup=warmup,
            recycle_growth_mb=recycle_growth_mb, recycle_after_calls=recycle_after_calls), 1, config_path,
            f"Soak: {calls} SIP calls, {concurrency} at a time, RTP both ways, {workers} workers behind Kamailio"
            + (f" ({limits})" if limits else ""))
        return
    from voicebot.bench_soak import bench_soak

    _bench(lambda config, runs, log: bench_soak(config, calls, concurrency, hold, log=log,
                                                port=port if port is not None else 25160,
                                                caller_says=caller_says, warmup=warmup), 1,
           config_path, f"Soak: {calls} SIP calls, {concurrency} at a time, RTP both ways")


@bench_app.command("kb")
def bench_kb_cmd(runs: Annotated[int, typer.Option(min=1, help="Times to ask every question.")] = 1,
                 failures: Annotated[bool, typer.Option("--failures", help="Also list every question the bot "
                                                        "answered wrongly or did not answer.")] = False,
                 entries: Annotated[int, typer.Option(min=0, help="Also time the answers on a base of this many "
                                                      "entries (the demo's and generated ones; 0: no).")] = 500,
                 split: Annotated[str, typer.Option(help="Questions: tune (the even ones, what the thresholds "
                                                    "were tuned on), test (the odd ones) or all.")] = "all",
                 config_path: ConfigOption = None):
    """Knowledge retrieval over the demo base: top-1 accuracy on 100 paraphrased questions, the abstain rate on
    20 it cannot answer, and answer latency (median and p95), also on a base of 500 entries. Uses the config's
    thresholds."""
    from voicebot.knowledge.bench import bench_kb
    from voicebot.knowledge.embed import EmbeddingError

    config = get_config(config_path)
    try:
        result = bench_kb(config, runs=runs, log=lambda line: console.print(line, highlight=False),
                          entries=entries, split=split)
    except (ModelError, EmbeddingError, ValueError) as exc:
        raise fail(str(exc)) from None
    table = Table(title=f"knowledge benchmark ({split} questions, {runs} run(s); "
                        f"confident {config.knowledge.confident}, "
                        f"margin {config.knowledge.margin}, weak {config.knowledge.weak})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for metric, value in result.figures():
        table.add_row(metric, value)
    console.print(table)
    if failures:
        for o in result.failures():
            console.print(f"  {o.kind:5s} {o.score:.2f} got {o.top or '-'}, expected "
                          f"{' or '.join(o.case.expect) or 'no answer'}: {o.case.question}", highlight=False,
                          soft_wrap=True)


def _print_rows(title: str, rows) -> None:
    table = Table(title=title)
    for column in ("part", "stage", "median", "p95", "n"):
        table.add_column(column, justify="right" if column in ("median", "p95", "n") else "left")
    for row in rows:
        table.add_row(row.stage, row.metric, f"{row.median:.3f} {row.unit}", f"{row.p95:.3f} {row.unit}",
                      str(len(row.values)))
    console.print(table)
