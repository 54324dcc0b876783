"""``python -m voicebot.call_cli ...``: the scripted SIP caller alone (``voicebot call`` without the other commands'
help); the command itself is ``voicebot.cli.call``."""

import typer

from voicebot.cli.call import call

if __name__ == "__main__":  # pragma: no cover
    typer.run(call)
