"""``python -m voicebot.cli ...``: the same as the ``voicebot`` command (the supervisor starts its workers so)."""

from voicebot.cli import main

main()
