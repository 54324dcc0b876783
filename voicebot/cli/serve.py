"""``voicebot serve``: load and warm every model, report readiness, then answer SIP calls (one worker, or a
supervisor in front of several)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from voicebot.cli.common import ConfigOption, console, default_config_path, err_console, fail, get_config
from voicebot.models import ModelError


def serve(config_path: ConfigOption = None,
          ready_only: Annotated[bool, typer.Option(help="Load and warm the models, report, and exit.")] = False,
          workers: Annotated[Optional[int], typer.Option(
              min=1, max=16, help="Worker processes (default: serve.workers). More than 1 puts Kamailio on "
                                  "sip.port in front of them, 4 calls each.")] = None,
          worker_index: Annotated[Optional[int], typer.Option(
              hidden=True, min=0, max=15, help="Run as worker i under `serve --workers N` (internal).")] = None):
    """Start the bot: load and warm every model, report readiness, then answer SIP calls until stopped.

    SIGTERM (or Ctrl-C) drains: new calls get 503, live calls get serve.drain_timeout_s to finish. SIGUSR1 retires:
    the same, but live calls end in their own time (how --workers recycles a worker: serve.recycle_*)."""
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

    from voicebot.worker import Worker

    signal.signal(signal.SIGHUP, _reload_later)  # not the default (the process ends) while the models load
    # the only worker, or one of the supervisor's (its own port, INVITEs from the proxy only)
    worker = Worker(config) if worker_index is None else Worker.for_slot(config, worker_index)
    if worker_index is None and not ready_only:
        try:  # before loading the models: a port clash fails at once
            worker.expose_metrics()
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
            parts = worker.load(on_stage=lambda s: status.update(f"{s.name} ready ..."))
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
        worker.start()
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    from voicebot.memory import install_probe

    install_probe()  # debugging only: VOICEBOT_HEAP_PROBE (what `bench soak` compares), else nothing

    def announce(endpoint) -> None:
        """Printed only once the SIP transports are bound and INVITEs are taken: scripts dial on it."""
        _reload_on_sighup(worker, config_path or default_config_path())
        if worker.slot is not None:
            from voicebot.supervisor import ready_line

            print(ready_line(worker.slot, os.getpid()), flush=True)  # the supervisor waits for this line
            return
        sip = config.sip
        console.print(f"[green]answering calls[/green] on sip:{sip.listen_address}:{endpoint.bound_port} "
                      f"({', '.join(sip.transports)}); allowed sources: {', '.join(sip.allowed_sources)}; "
                      "Ctrl-C or SIGTERM drains and stops", highlight=False)
        for reg in getattr(endpoint, "registrations", []):  # their results follow in the log (and /metrics)
            console.print(f"registering {reg.name} at {reg.account.registrar}: {reg.state}", highlight=False)
        if sip.auth_users_file:
            console.print(f"direct callers authenticate (digest, realm {sip.auth_realm})", highlight=False)
        from voicebot.telephony.sip_tls import describe

        if describe(sip):
            console.print(describe(sip), highlight=False)
        if config.dialer.enabled:
            from voicebot.dialer.service import describe

            console.print(describe(config), highlight=False)

    try:
        worker.run(on_ready=announce, watch_parent=worker_index is not None)
    finally:
        worker.close()
    console.print("stopped.")
    if worker.model_busy:
        _exit_leaving_the_model()


def _exit_leaving_the_model() -> None:
    """Exit 0 at once, without the interpreter's teardown: the after-call analysis thread is still inside
    llama.cpp (a prompt evaluation cannot be interrupted), and freeing the model under it would crash the process
    or hang it. The databases are closed already; the abandoned analysis runs again at the next start."""
    import logging
    import sys

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


def _reload_later(signum: int, frame: object) -> None:
    err_console.print("SIGHUP while loading: send it again once the bot answers calls", highlight=False)


def _reload_on_sighup(worker, path: Path | None) -> None:
    """From now on (on the worker's loop) SIGHUP reloads ``path`` into the worker (``voicebot.reload``)."""
    import asyncio

    from voicebot.reload import reload_worker

    loop = asyncio.get_running_loop()
    reloading: set[asyncio.Task] = set()

    def on_hup() -> None:
        task = loop.create_task(reload_worker(worker, path))
        reloading.add(task)
        task.add_done_callback(reloading.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
