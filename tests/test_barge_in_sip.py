"""Barge-in on a real SIP line: ``voicebot call --over MS`` talks over the bot and measures, in the audio it
receives, how soon after its onset the bot went silent; the bot's side runs the real turn detector (webrtcvad,
Silero, ``speech.overlap``) on the call's frames and pauses, stops and answers as the session's listener does.
pjsua2 on both ends over loopback, ports 24000-24099 (this area's range)."""

from __future__ import annotations

import asyncio

from sip_support import Ports, sip_config
from test_sip_caller import run_caller

from voicebot.audio import AudioFrame
from voicebot.speech.turns import Backchannel, BargeIn, Interruption, TurnDetector, Utterance
from voicebot.telephony.sip import SipCall, SipWorker

RATE = 16000
LONG_REPLY = ("Your order left our warehouse this morning. The driver will bring it to you tomorrow before six, and "
              "you will get a text message with a one hour window when the driver is on the way.")


def test_a_caller_talking_over_the_bot_on_sip_silences_it_at_once_and_is_answered(config, synthesizer):
    from voicebot.components import make_voice_activity

    ports = Ports(24000)
    reply = synthesizer.cached(LONG_REPLY, RATE)
    answer = synthesizer.cached("Your refund was paid on Monday.", RATE)
    seen: list[str] = []
    vad = make_voice_activity(config)

    async def bot(call: SipCall) -> None:
        detector = TurnDetector(vad, config.vad)
        detector.set_bot_speaking(True)
        call.play(reply)
        async for event in call.events():
            if not isinstance(event, AudioFrame):
                continue
            if call.last_played:
                detector.note_playback(AudioFrame(call.last_played, RATE))
            for turn_event in detector.feed(event):
                seen.append(type(turn_event).__name__)
                if isinstance(turn_event, BargeIn):
                    call.pause()
                elif isinstance(turn_event, Backchannel):
                    call.resume()
                elif isinstance(turn_event, Interruption):
                    call.flush()
                    detector.set_bot_speaking(False)
                elif isinstance(turn_event, Utterance) and turn_event.barged_in:
                    call.play(answer)  # the interrupting question is answered

    async def main():
        async with SipWorker(sip_config(ports.sip), bot, rtp_port=ports.rtp, rtp_port_range=ports.rtp_range):
            return await run_caller(f"sip:voicebot@127.0.0.1:{ports.sip}", "--no-wait-greeting", "--over", "1500",
                                    "--say", "Wait, what about my refund?", "--hold", "8", "--rtp-port", "24060",
                                    "--rtp-ports", "20", timeout_s=60)

    code, data, err = asyncio.run(main())
    assert code == 0, err
    (step,) = data["steps"]
    assert step["over"] and step["silent_s"] is not None, (step, seen)
    # silent while the caller was still on their first words (how soon is a benchmark's business, not a test's:
    # 0.32 s here on a loaded machine: 100 ms of speech, the jitter buffers and the audio already sent)
    assert step["silent_s"] < (step["end_s"] - step["start_s"]) / 2, (step, seen)
    # paused, then stopped, then the caller's turn; "Wait," alone may first pass for a backchannel (its own short
    # Utterance, the reply resumed) before "what about my refund?" adds up to an interruption
    last_utterance = len(seen) - 1 - seen[::-1].index("Utterance")
    assert seen.index("BargeIn") < seen.index("Interruption") < last_utterance, seen
    utterances = data["bot_utterances"]
    assert len(utterances) == 2, utterances  # the reply, cut; then the answer
    assert utterances[0]["end_s"] - utterances[0]["start_s"] < len(reply) / 2 / RATE - 2  # cut well before its end
