"""The ``voicebot`` command. Each sub-command is thin: it loads the config and calls into the package.

``app`` is the root; this module only assembles it from the command modules, which share ``common`` and never
import one another: ``models`` (check-config and the weights), ``serve``, ``chat`` (chat and simulate), ``bench``,
``call`` (the scripted SIP caller), ``crm``, ``kb`` (the knowledge files) and ``review``. Run as ``voicebot`` (``main``) or
``python -m voicebot.cli``.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from voicebot.cli import bench, call, chat, crm, dialer, kb, models, review, serve

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


# the order of --help: commands as registered, then the groups
app.command("check-config")(models.check_config)
app.command("serve")(serve.serve)
app.command("chat")(chat.chat)
app.command("simulate")(chat.simulate)
app.command("call")(call.call)
app.command("dial")(dialer.dial)
app.add_typer(models.models_app, name="models")
app.add_typer(bench.bench_app, name="bench")
app.add_typer(crm.crm_app, name="crm")
app.add_typer(kb.kb_app, name="kb")
app.add_typer(review.review_app, name="review")
app.add_typer(dialer.campaign_app, name="campaign")


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


__all__ = ["app", "main"]
