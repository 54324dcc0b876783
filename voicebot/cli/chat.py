"""``voicebot chat`` and ``voicebot simulate``: calls without a phone line, against the real dialogue core, CRM
and models (typed lines, or a recording played through the simulated line)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from voicebot.cli.common import ConfigOption, console, fail, get_config
from voicebot.models import ModelError


def _print_turn(role: str, text: str, timings) -> None:
    if role == "caller":
        return
    delay = ""
    if timings is not None and timings.first_audio_out is not None and timings.end_of_speech is not None:
        delay = f"  [first audio {timings.first_audio_out - timings.end_of_speech:.2f} s after end of speech]"
    console.print(f"[bold cyan]bot:[/bold cyan] {text}[dim]{delay}[/dim]", highlight=False)


def _runtime(config_path: Path | None):
    """A worker with its models loaded and its databases open, the after-call analysis running: for a command
    that handles calls on a line of its own."""
    from voicebot.llm.base import LlmError
    from voicebot.worker import Worker

    config = get_config(config_path)
    worker = Worker(config)
    try:
        with console.status("loading models ..."):
            worker.load()
        worker.start().test_calls = True  # marked as tests in the store; summary, QA, flags off the call path
    except (ModelError, LlmError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    return config, worker


def _finish_analysis(worker) -> None:
    with console.status("analysing the call for the review app ..."):
        worker.finish_analysis(timeout_s=180)


def chat(
    caller_id: Annotated[str, typer.Option(help="The caller's number, as the CRM knows it.")] = "+15550102030",
    audio_dir: Annotated[Optional[Path], typer.Option(help="Save each spoken reply as a WAV file here.")] = None,
    speak: Annotated[bool, typer.Option(help="Also play the replies (needs aplay and a sound device).")] = False,
    config_path: ConfigOption = None,
):
    """Type as the caller against the real dialogue core and CRM (/dtmf 0 presses a key, /quit hangs up)."""
    import asyncio

    from voicebot.telephony.console import ConsoleLine

    config, worker = _runtime(config_path)

    def read_line() -> str | None:
        try:
            return console.input("[bold green]you:[/bold green] ")
        except EOFError:
            return None

    line = ConsoleLine(read_line, caller_id=caller_id, sample_rate=config.audio.sample_rate, audio_dir=audio_dir,
                       play_audio=speak)
    with worker:
        outcome = asyncio.run(worker.run_call(line, on_turn=_print_turn))
        console.print(f"[dim]call {line.info.call_id} ended: {outcome}[/dim]")
        _finish_analysis(worker)


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
    config, worker = _runtime(config_path)
    script, presses = script_from_wav(pcm, rate, presses, tail_s=tail)
    line = SimulatedLine(script, caller_id=caller_id, dtmf_at=presses, sample_rate=config.audio.sample_rate,
                         speed=1.0 if realtime else float("inf"))
    with worker:
        outcome = asyncio.run(worker.run_call(line))
        _finish_analysis(worker)
        turns = worker.deps.store.turns(line.info.call_id)
    table = Table(title=f"call {line.info.call_id}: {outcome}")
    for column in ("at s", "who", "text", "transcript", "first token", "first sentence", "first audio"):
        table.add_column(column)
    for turn in turns:
        t = turn.timings
        rel = (lambda v: "" if v is None or t.end_of_speech is None else f"{v - t.end_of_speech:.2f}")
        table.add_row(f"{turn.started_at or 0:.1f}", turn.role, turn.text, rel(t.transcript_ready),
                      rel(t.first_token), rel(t.first_sentence), rel(t.first_audio_out))
    console.print(table)
    console.print("[dim]stage columns: seconds after the caller stopped speaking[/dim]")
