"""`voicebot serve` answering real SIP calls over loopback, with the real models, CRM and call store."""

from __future__ import annotations

import pytest

from asr_support import assert_heard_any
from conftest import words
from serve_support import serving
from sip_support import run_sipp, scenario
from voicebot.audio import rms_dbfs
from voicebot.tools.rtp_pcap import write_rtp_pcap

PORT = 17600  # sipp on PORT+1, RTP from PORT+10

pytestmark = [pytest.mark.models, pytest.mark.timeout(300)]


def test_sipp_caller_speaks_a_piper_pcap_and_the_bot_answers(tmp_path, caller_voice):
    """(a) sipp plays an RTP pcap made from Piper speech; the bot greets, transcribes it and replies."""
    speech = b"".join(chunk.pcm for chunk in caller_voice.stream("Sales, please.", 16000))
    pcap = tmp_path / "caller.pcap"
    assert write_rtp_pcap(speech, 16000, pcap, codec="PCMA") > 25
    with serving(tmp_path, PORT) as served:
        # the caller listens to the greeting, speaks, listens to the reply, then hangs up
        xml = scenario(pcaps=[(str(pcap), 6000)], hold_ms=0)
        first_audio = '  <nop><action><exec play_pcap_audio'
        xml = xml.replace(first_audio, '  <pause milliseconds="9000"/>\n' + first_audio, 1)
        result = run_sipp(tmp_path, xml, target_port=PORT, local_port=PORT + 1, media_port=PORT + 10, timeout_s=60)
        assert result.returncode == 0, result.stdout
    assert served.exit_code == 0, served.text
    # the caller hung up first: no "ERROR voicebot.pjsip: ... INVITE session already terminated" for asking pjsua
    # the ended call's state, as after every such call before
    assert "already terminated" not in served.text, served.text
    store = served.store()
    [call] = store.list_calls()
    assert call.outcome not in ("in_progress", "interrupted")
    assert call.caller_id == "+15550102030"
    turns = store.turns(call.id)
    assert turns[0].role == "bot" and "automated assistant" in turns[0].text
    spoken = [i for i, t in enumerate(turns) if t.role == "caller"]
    assert spoken, [(t.role, t.text) for t in turns]  # the caller's speech reached turn-taking and Whisper
    caller_turn = turns[spoken[0]]
    assert_heard_any(caller_turn.text, "sales", "please")  # Whisper's text of "Sales, please."
    replies = [t for t in turns[spoken[0] + 1:] if t.role == "bot"]
    assert replies and "sales" in words(replies[0].text), [t.text for t in replies]  # the sales menu's prompt
    timings = replies[0].timings
    assert timings.end_of_speech == caller_turn.ended_at
    assert timings.end_of_speech < timings.transcript_ready <= timings.first_audio_out < timings.end_of_speech + 5
    caller, bot = (store.recording_file(call, which).read_bytes()[44:] for which in ("caller", "bot"))
    assert sum(rms_dbfs(bot[i:i + 640]) > -35 for i in range(0, len(bot), 640)) > 150  # greeting and reply went out
    assert sum(rms_dbfs(caller[i:i + 640]) > -40 for i in range(0, len(caller), 640)) > 25  # speech came in
