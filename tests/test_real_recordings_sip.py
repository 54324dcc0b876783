"""A whole call over SIP from a street: `voicebot serve` answers, `voicebot call` plays a recorded street (traffic
at -30 dBFS, from the moment the call is answered to its end) with a recorded human voice in it dictating an
order number in two groups. Real models, CRM and call store; ports 27000-27199.

Before Silero gated the turn's speech (``speech.voice_gate.VOICE_THRESHOLD``), webrtcvad took the traffic for speech:
the caller's turn never found its silence, and the bot never answered.
"""

from __future__ import annotations

import re

import pytest
from recordings import recording, voice
from serve_support import serving
from test_sip_calls import call, last_call

from voicebot.audio import mix, write_wav
from voicebot.crm.spoken import UNITS

pytestmark = [pytest.mark.models, pytest.mark.timeout(400)]

PORT = 27000
RATE = 8000


def test_a_caller_in_the_street_hears_the_whole_greeting_and_their_dictated_order_number_is_one_turn(tmp_path):
    digits = [voice(*[f"digit-{d}" for d in group], gap_s=0.1) for group in ("104", "52")]
    said = (b"\0\0" * RATE).join(digits)  # "one zero four ... five two", a second's pause between the groups
    lead = b"\0\0" * (RATE * 11)  # the greeting plays first (about 8 s), the street behind it
    audio = lead + said + b"\0\0" * (RATE * 10)  # then ten seconds more of the street
    street = recording("street.ogg", level_dbfs=-30, start_s=3.0, seconds=len(audio) / 2 / RATE)
    write_wav(tmp_path / "street-caller.wav", mix(audio, street), RATE)
    (tmp_path / "bot").mkdir()
    with serving(tmp_path / "bot", PORT) as served:
        report = call(served, PORT, "--no-wait-greeting", "--wav", str(tmp_path / "street-caller.wav"), hold_s=12)
        row = last_call(served)
        turns = served.store().turns(row.id)
    assert served.exit_code == 0, served.text[-3000:]
    caller = [t for t in turns if t.role == "caller"]
    assert len(caller) == 1, turns  # the order number, and nothing heard in the traffic
    heard = "".join(str(UNITS.get(w, w)) for w in re.findall(r"\d|[a-z]+", caller[0].text.lower()))
    assert heard == "10452", caller
    # the turn ended in the street, not when the street went quiet (before: at the end of the recording, 21.4 s,
    # and "Sorry, I did not get that." 2.5 s later); the number is looked up, so the PIN comes first (on these busy
    # cores, with the caller's own Whisper beside the bot's, "Sorry, this is taking a moment." may come before it)
    street_ends = len(audio) / 2 / RATE
    assert caller[0].ended_at is not None and caller[0].ended_at < street_ends - 5, caller
    replies = [t for t in turns if t.role == "bot" and t.idx > caller[0].idx]
    assert replies and replies[0].started_at < street_ends, replies
    assert any("PIN" in t.text for t in replies), replies
    greeting = report["bot_utterances"][0]["text"].lower()
    assert "operator" in greeting, report["bot_utterances"]  # its last words: the street never paused or stopped it
