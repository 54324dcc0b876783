"""``voicebot call``: phone the bot over SIP with a script of steps and report what it said, with timings.

Registered in ``voicebot.cli`` (``app.command("call")(call)``); also runs alone: ``python -m voicebot.call_cli``
(``voicebot/call_cli.py``, which runs this command).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import sys
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Annotated, Optional, TextIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from voicebot.cli.common import get_config
from voicebot.configfile import ConfigError
from voicebot.telephony.call_endpoint import CallerEndpoint, CallerEndpointError, caller_endpoint
from voicebot.telephony.script import WaitIntoBot
from voicebot.tools.caller import DEFAULT_CALLER_ID, Action, CallReport, CallScriptError, describe_dial_failure, \
    dtmf_step, say_step, step_order, wav_step

_err = Console(stderr=True, soft_wrap=True)


def call(
    uri: Annotated[Optional[str], typer.Argument(
        help="SIP URI to call (default: the configured bot, sip:voicebot@{sip.listen_address}:{sip.port}).")] = None,
    say: Annotated[Optional[list[str]], typer.Option(
        "--say", help="Say this (Piper speech). Repeatable; steps run in the order given.")] = None,
    wav: Annotated[Optional[list[Path]], typer.Option(
        "--wav", help="Play this WAV file (16-bit; any rate). Repeatable.")] = None,
    dtmf: Annotated[Optional[list[str]], typer.Option(
        "--dtmf", help="Press these keys (RFC 2833), e.g. 1234#. Repeatable.")] = None,
    over: Annotated[Optional[list[int]], typer.Option(
        "--over", min=0, help="The next step starts this many ms after the bot starts speaking, over it "
        "(barge-in; the report says how soon the bot went silent). Repeatable.")] = None,
    caller_id: Annotated[str, typer.Option("--from", help="Caller ID (the From user).")] = DEFAULT_CALLER_ID,
    config_path: Annotated[Optional[Path], typer.Option(
        "--config", "-c", envvar="VOICEBOT_CONFIG",
        help="Config file (default: ./config.yaml if present, else built-in defaults).")] = None,
    record: Annotated[Optional[Path], typer.Option(
        "--record", help="Save what the caller heard as a mono 16 kHz WAV.")] = None,
    record_sent: Annotated[Optional[Path], typer.Option(
        "--record-sent", help="Save what the caller sent as a mono 16 kHz WAV.")] = None,
    wait_greeting: Annotated[bool, typer.Option(
        "--wait-greeting/--no-wait-greeting", help="Wait for the bot's greeting before the first step.")] = True,
    hold: Annotated[float, typer.Option(
        "--hold", min=0, help="After the script, wait at most this long for the bot's reply, then hang up.")] = 15.0,
    stay: Annotated[float, typer.Option(
        "--stay", min=0, help="Then stay on the line this much longer (e.g. to talk to the operator the bot "
        "put you through to), then hang up.")] = 0.0,
    answer_timeout: Annotated[float, typer.Option(
        "--timeout", min=0.5, help="Seconds to wait for the bot to answer.")] = 20.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    transcribe: Annotated[bool, typer.Option(
        "--transcribe/--no-transcribe", hidden=True, help="Transcribe the bot (Whisper).")] = True,
    register: Annotated[Optional[Path], typer.Option(
        "--register", help="Register first with the account in this YAML file (the keys of one sip.accounts "
        "entry); a call to the registrar's host then goes out on it.")] = None,
    registrar: Annotated[Optional[str], typer.Option(
        "--registrar", help="Register first at this registrar (sip:host[:port]), as --user.")] = None,
    user: Annotated[Optional[str], typer.Option("--user", help="The account to register (with --registrar).")] = None,
    auth_user: Annotated[Optional[str], typer.Option("--auth-user", help="Digest user, when not --user.")] = None,
    password_env: Annotated[Optional[str], typer.Option(
        "--password-env", help="Environment variable holding the account's password.")] = None,
    password_file: Annotated[Optional[Path], typer.Option(
        "--password-file", help="File holding the account's password (first line).")] = None,
    rtp_port: Annotated[int, typer.Option(
        "--rtp-port", min=0, max=65534, help="First RTP port (even; default: any free port).")] = 0,
    rtp_ports: Annotated[int, typer.Option("--rtp-ports", min=2, help="How many RTP ports from --rtp-port.")] = 100,
):
    """Call the bot like a phone would and report what it said: each step runs once the bot has finished
    speaking (its audio above -40 dBFS, then 1 s of quiet); the bot's speech is transcribed with Whisper."""
    config = get_config(config_path)
    target = uri or f"sip:voicebot@{config.sip.listen_address}:{config.sip.port}"
    endpoint = partial(caller_endpoint, target, register, registrar, user, auth_user, password_env, password_file,
                       rtp_port, rtp_ports)
    with _stdout_kept_for_results() as results:
        _call(config, target, say or [], wav or [], dtmf or [], caller_id, record, record_sent, wait_greeting, hold,
              stay, answer_timeout, as_json, transcribe, results, endpoint=endpoint, over=over or [])


@contextlib.contextmanager
def _stdout_kept_for_results() -> Iterator[TextIO]:
    """pjlib prints its start-up lines to file descriptor 1 from C, before any log setting applies. While the
    call runs, fd 1 goes to stderr; the report is written to the real stdout (the yielded stream), so
    ``--json`` output stays one clean line."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    results = open(saved, "w", closefd=False)  # noqa: SIM115 - closed below
    try:
        yield results
    finally:
        results.flush()
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _call(config, target: str, say: list[str], wav: list[Path], dtmf: list[str], caller_id: str,
          record: Path | None, record_sent: Path | None, wait_greeting: bool, hold: float, stay: float,
          answer_timeout: float, as_json: bool, transcribe: bool, results: TextIO,
          endpoint: Callable[[], CallerEndpoint] = CallerEndpoint, over: list[int] | None = None) -> None:
    def fail(message: str, status: int | None = None) -> typer.Exit:
        if as_json:
            print(json.dumps({"error": message, "status": status, "uri": target}), file=results)
        _err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
        return typer.Exit(1)

    if not target.startswith(("sip:", "sips:")):
        raise fail(f"{target!r} is not a SIP URI (sip:user@host[:port])")
    try:
        steps = _build_steps(config, say, wav, dtmf, over or [])
        transcriber_store = _check_transcriber(config) if transcribe else None
        caller = endpoint()
    except (CallScriptError, CallerEndpointError, ConfigError) as exc:
        raise fail(str(exc)) from None

    from voicebot.telephony.sip_transfer import SipDialError

    with _err.status(f"calling {target} ...") as status:
        try:
            report = asyncio.run(_place(config, target, steps, caller_id, wait_greeting, hold, stay,
                                        answer_timeout, status.update, caller))
        except SipDialError as exc:
            raise fail(describe_dial_failure(target, exc.status, exc.reason, answer_timeout), exc.status) from None
        except CallerEndpointError as exc:  # its registration failed
            raise fail(str(exc)) from None
        except RuntimeError as exc:  # the local endpoint could not start
            raise fail(f"the SIP endpoint could not start: {exc}") from None
        # The pjsua2 library is gone now. A pjsua2 object that only a reference cycle still holds would run its
        # C++ destructor against it in whatever later collection frees it: a CI rehearsal's `voicebot call`
        # died with SIGSEGV inside the next import (an allocation, so a collection) right here. What exists now
        # is left to the process's exit, never collected (a collection now would free it just as unsafely); the
        # calls' own objects are disowned by the worker. The CLI ends soon after: what stays costs nothing.
        gc.freeze()
        transcriber = None
        if transcriber_store is not None and report.heard.strip(b"\0"):
            status.update("transcribing the bot ...")
            from voicebot.components import make_transcriber

            transcriber = make_transcriber(config, transcriber_store)
        report.analyse(transcriber)
    from voicebot.audio import write_wav

    if record is not None:
        write_wav(record, report.heard, 16000)
        report.recording = str(record)
    if record_sent is not None:
        write_wav(record_sent, report.sent, 16000)
    if as_json:
        print(json.dumps(report.to_json()), file=results)
    else:
        _print_report(report, Console(file=results))


async def _place(config, target, steps, caller_id, wait_greeting, hold, stay, answer_timeout,
                 update, endpoint: CallerEndpoint | None = None) -> CallReport:
    from voicebot.tools.caller import place_call

    return await place_call(config, target, steps, caller_id=caller_id, wait_greeting=wait_greeting, hold_s=hold,
                            stay_s=stay, answer_timeout_s=answer_timeout, status=update, endpoint=endpoint)


def _build_steps(config, say: list[str], wav: list[Path], dtmf: list[str], over: list[int] = ()) -> list:
    """The steps in command-line order: WAVs read and DTMF checked first, speech synthesized before dialing (so
    it does not compete with the bot for the CPU during the call)."""
    order = step_order(sys.argv[1:], {"say": len(say), "wav": len(wav), "dtmf": len(dtmf), "over": len(over)})
    wavs = [wav_step(path) for path in wav]
    digits = [dtmf_step(d) for d in dtmf]
    spoken: list[Action] = []
    if say:
        from voicebot.components import make_synthesizer
        from voicebot.models import ModelError, ModelStore

        try:
            with _err.status("loading the voice ..."):
                synth = make_synthesizer(config, ModelStore.from_config(config))
                spoken = [say_step(text, synth.cached(text, 16000)) for text in say]
        except ModelError as exc:
            raise CallScriptError(f"{exc} (--say needs the Piper voice: `voicebot models pull`)") from None
    queues = {"say": spoken, "wav": wavs, "dtmf": digits, "over": [WaitIntoBot(ms / 1000) for ms in over]}
    return [queues[kind].pop(0) for kind in order]


def _check_transcriber(config):
    """The model store, once the Whisper model is known to be there (fail before dialing, not after)."""
    from voicebot.models import ModelError, ModelStore

    store = ModelStore.from_config(config)
    try:
        store.locate(config.stt.model)
    except ModelError as exc:
        raise CallScriptError(f"{exc} (transcribing the bot needs Whisper: `voicebot models pull`)") from None
    return store


def _print_report(report: CallReport, out: Console) -> None:
    who = {"caller": "you hung up", "bot": "the bot hung up"}.get(report.ended_by, report.ended_by)
    out.print(f"called [bold]{escape(report.uri)}[/bold] as {escape(report.caller_id)}: answered "
               f"({report.codec or '?'}), {report.duration_s:.1f} s, {who}", highlight=False)
    table = Table(show_edge=False, box=None, pad_edge=False)
    for column, justify in (("at s", "right"), ("who", "left"), ("what", "left"), ("", "left")):
        table.add_column(column, justify=justify)
    rows = [(s.start_s, 1, "you", escape(_step_text(s.kind, s.value)),
             f"[dim]until {s.end_s:.2f} s" + (f"; reply after {s.reply_s:.2f} s" if s.reply_s is not None else
                                              "; no reply") + _over_note(s) + "[/dim]") for s in report.steps]
    rows += [(u.start_s, 0, "[cyan]bot[/cyan]", escape(u.text) if u.text else "[dim](speech)[/dim]",
              f"[dim]until {u.end_s:.2f} s[/dim]") for u in report.bot_utterances]
    for at, _, who_, what, note in sorted(rows, key=lambda r: (r[0], r[1])):
        table.add_row(f"{at:.2f}", who_, what, note)
    out.print(table)
    for target, status in report.transfers:
        verdict = "answered" if 200 <= status < 300 else "failed"
        out.print(f"transferred to {escape(target)}: {status} ({verdict})", highlight=False)
    if report.voice_to_voice_s:
        delays = ", ".join(f"{d:.2f}" for d in report.voice_to_voice_s)
        out.print(f"voice to voice (end of your step to the bot's first sound): {delays} s", highlight=False)
    if report.recording:
        out.print(f"recording: {escape(report.recording)}", highlight=False)


def _over_note(step) -> str:
    if not step.over:
        return ""
    if step.silent_s is None:
        return "; over the bot, it talked on"
    quieter = f"15 dB quieter {step.quieter_s:.2f} s, " if step.quieter_s is not None else ""
    return f"; over the bot, {quieter}silent {step.silent_s:.2f} s after you started"


def _step_text(kind: str, value: str) -> str:
    return {"say": f'"{value}"', "wav": f"(played {value})", "dtmf": f"(pressed {value})"}.get(kind, value)
