"""A whole call over SIP from a street: `voicebot serve` answers, `voicebot call` plays a recorded street (traffic
at -30 dBFS, from the moment the call is answered to its end) with a recorded human voice in it dictating an
order number in two groups. Real models, CRM and call store; ports 27000-27199.

Before Silero gated the turn's speech (``speech.turns.VOICE_THRESHOLD``), webrtcvad took the traffic for speech:
the caller's turn never found its silence, and the bot never answered.
"""

from __future__ import annotations

import pytest
from recordings import recording, voice
from serve_support import serving
from test_sip_calls import call, last_call

from voicebot.audio import mix, write_wav

pytestmark = [pytest.mark.models, pytest.mark.timeout(400)]

PORT = 27000
RATE = 8000


def test_a_caller_in_the_street_hears_the_whole_greeting_and_their_dictated_order_number_is_one_turn(tmp_path):
    digits = [voice(*[f"digit-{d}" for d in group], gap_s=0.1) for group in ("104", "52")]
    said = (b"\0\0" * RATE).join(digits)  # "one zero four ... five two", a second's pause between the groups
    lead = b"\0\0" * (RATE * 11)  # the greeting plays first (about 8 s), the street behind it
    audio = lead + said + b"\0\0" * (RATE * 6)
    street = recording("street.ogg", level_dbfs=-30, start_s=3.0, seconds=len(audio) / 2 / RATE)
    write_wav(tmp_path / "street-caller.wav", mix(audio, street), RATE)
    with serving(tmp_path / "bot", PORT) as served:
        report = call(served, PORT, "--no-wait-greeting", "--wav", str(tmp_path / "street-caller.wav"), hold_s=12)
        row = last_call(served)
        turns = served.store().turns(row.id)
    assert served.exit_code == 0, served.text[-3000:]
    caller = [t.text for t in turns if t.role == "caller"]
    assert len(caller) == 1, (caller, turns)  # the order number, and nothing heard in the traffic
    assert "".join(ch for ch in caller[0] if ch.isdigit()) == "10452", caller
    bot = [t for t in turns if t.role == "bot"]
    assert len(bot) >= 2 and bot[-1].idx > next(t.idx for t in turns if t.role == "caller"), turns  # answered
    greeting = report["bot_utterances"][0]["text"].lower()
    assert "operator" in greeting, report["bot_utterances"]  # its last words: the street never paused or stopped it
