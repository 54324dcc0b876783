"""The barge-in part of ``voicebot bench turns``: speech over the bot, measured in the audio the caller receives.

Why in audio time and not over SIP: the question is how fast the bot goes quiet after the caller starts speaking
and how long a "mm-hmm" silences it; both are decided frame by frame (``speech.overlap``), so a replay through
the real detector, webrtcvad and Piper speech on an 8 kHz mu-law line measures them exactly, in seconds, with no
model server. What it leaves out is the SIP path itself: the RTP packet (20 ms) and the far end's jitter buffer
(typically 20-60 ms) come on top. ``voicebot call --over MS`` measures the same on a real SIP line.

The bot "speaks" a long Piper reply; 1 s in, the caller says an interruption (a question) or a backchannel
("mm-hmm", "okay", "yes", "right"), at their own level or 10 dB softer (after a first turn that set their
level), with the bot's own voice leaking back 25 dB down. The replay ducks, pauses, resumes and stops the reply as
the session does. Rows: the caller's onset to the bot's voice ``DOWN_DB`` under its median level (ducked or
silent) and to its silence (the first 100 ms under -40 dBFS in what the caller receives), the silence a
backchannel added to the bot's speech (the time the reply was held paused), and how many of each went wrong.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from voicebot.audio import AudioFrame, gained, mix, phone_line, split_frames
from voicebot.bench import Row
from voicebot.components import make_voice_activity
from voicebot.config import Config
from voicebot.speech.turns import Backchannel, BargeIn, Duck, Interruption, TurnDetector
from voicebot.speech.vad import WebRtcVoiceActivity
from voicebot.tools.caller import FRAME_S, barge_in_latency, frame_levels
from voicebot.tools.levels import DOWN_DB, quieter_latency

RATE = 8000
BOT_SAYS = ("Your order left our warehouse this morning. The driver will bring it to you tomorrow before six, and "
            "you will get a text message with a one hour window when the driver is on the way.")
INTERRUPTIONS = ("Wait, what about my refund?", "Sorry, can I change the address?", "No, that's the wrong order.",
                 "Hold on, I need to speak to someone.", "Where is my other parcel?")
BACKCHANNELS = ("Mm-hmm.", "Okay.", "Yes.", "Right.")
OVER_AT_S = 1.0


def replay(config: Config, vad: WebRtcVoiceActivity, bot: bytes, caller: bytes, first_turn: bytes,
           ducks: list[float] | None = None) -> tuple[bytes, bytes, bool, float]:
    """The caller's ``first_turn`` (sets their level), then the bot's reply with ``caller`` said ``OVER_AT_S``
    into it; returns what the caller sent and received (8 kHz s16le, from the reply's start), whether the
    reply was stopped, and for how long (s) it was held paused: the silence the caller's speech added to it.
    ``ducks`` gets the time (s into the reply) of every duck."""
    detector = TurnDetector(vad, config.vad)
    for frame in split_frames(first_turn + b"\0\0" * RATE, RATE, 20):
        detector.feed(AudioFrame(frame.pcm, RATE))
    size = RATE * 20 // 1000 * 2
    lead = b"\0\0" * round(OVER_AT_S * RATE)
    sent = phone_line(lead + caller + b"\0\0" * RATE, RATE, "PCMU", RATE)
    sent += b"\0" * (len(bot) + RATE - len(sent) if len(bot) + RATE > len(sent) else 0)
    received = bytearray()
    position, paused, stopped, held, gain = 0, False, False, 0, 0.0
    detector.set_bot_speaking(True)
    for offset in range(0, len(sent) - size + 1, size):
        out = b"" if paused or stopped else bot[position:position + size]
        held += paused and position < len(bot)
        position += len(out)
        out = gained(out, gain).ljust(size, b"\0")
        received += out
        detector.note_playback(AudioFrame(out, RATE))
        heard = mix(sent[offset:offset + size], out, -25.0)  # the bot's voice leaking back, 25 dB down
        for event in detector.feed(AudioFrame(heard, RATE)):
            if isinstance(event, Duck):
                gain = -event.db
                if ducks is not None:
                    ducks.append(offset / 2 / RATE)
            elif isinstance(event, BargeIn):
                paused = True
            elif isinstance(event, Backchannel):
                paused, gain = False, 0.0
            elif isinstance(event, Interruption):
                stopped = True
        if position >= len(bot) and not paused:
            detector.set_bot_speaking(False)
    return sent, bytes(received), stopped, held * size / 2 / RATE


def bench_barge_in(config: Config, speak: Callable[[str, float], bytes], runs: int = 1,
                   log: Callable[[str], None] = print) -> list[Row]:
    """``speak(text, gain_db)``: Piper speech at 8 kHz. Returns the barge-in and backchannel rows."""
    log("speech over the bot ...")
    vad = make_voice_activity(config)  # webrtcvad, with Silero as the second opinion when configured
    alone = WebRtcVoiceActivity(config.vad.aggressiveness)
    bot = speak(BOT_SAYS, 0.0)
    first = speak("My parcel has not arrived yet.", 0.0)
    silent: list[float] = []
    lowered: list[float] = []
    talked_on = 0
    rows_noise: list[Row] = []
    gaps: dict[str, list[float]] = {}
    stopped: dict[str, int] = {}
    for _ in range(runs):
        for text in INTERRUPTIONS:
            sent, received, _, _ = replay(config, vad, bot, speak(text, 0.0), first)
            heard, said = frame_levels(received, FRAME_S, RATE), frame_levels(sent, FRAME_S, RATE)
            latency = barge_in_latency(heard, said, OVER_AT_S - 0.1, len(sent) / 2 / RATE)
            if latency is None:
                talked_on += 1
            else:
                silent.append(latency)
            down = quieter_latency(heard, said, OVER_AT_S - 0.1, len(sent) / 2 / RATE)
            if down is not None:
                lowered.append(down)
        for label, gain in (("at the caller's level", 0.0), ("10 dB softer", -10.0)):
            for text in BACKCHANNELS:
                _, received, cut, held = replay(config, vad, bot, speak(text, gain), first)
                gaps.setdefault(label, []).append(held)
                stopped[label] = stopped.get(label, 0) + int(cut)
    for name, v in (("webrtcvad + Silero", vad), ("webrtcvad alone", alone)):
        paused, ducked = [], []
        for seed in range(4 * runs):
            ducks: list[float] = []
            _, received, cut, held = replay(config, v, bot, noise_bursts(seed, len(bot)), first, ducks)
            paused.append(int(cut or held > 0))
            ducked.append(int(bool(ducks)))
        rows_noise.append(Row("noise", f"noise bursts over the bot ({name}): paused or stopped it {sum(paused)} of "
                              f"{len(paused)}", "count", (float(sum(paused)),)))
        rows_noise.append(Row("noise", f"noise bursts over the bot ({name}): ducked it ({config.vad.duck_db:.0f} dB, "
                              f"then full voice again) {sum(ducked)} of {len(ducked)}", "count", (float(sum(ducked)),)))
    rows = [Row("barge-in", f"interruption: caller's onset to the bot {DOWN_DB:.0f} dB down (ducked), as received "
                "(sim line)", "s", tuple(lowered)),
            Row("barge-in", "interruption: caller's onset to the bot silent (under -40 dBFS), as received (sim line)",
                "s", tuple(silent)),
            Row("barge-in", f"interruptions the bot talked on through: {talked_on} of "
                f"{len(INTERRUPTIONS) * runs}", "count", (float(talked_on),))]
    for label, values in gaps.items():
        rows.append(Row("backchannel", f"mm-hmm/okay/yes/right {label}: silence it added to the bot's speech", "s",
                        tuple(values)))
        rows.append(Row("backchannel", f"{label}: stopped the bot {stopped[label]} of {len(values)}", "count",
                        (float(stopped[label]),)))
    return rows + rows_noise


def noise_bursts(seed: int, length: int) -> bytes:
    """Street-like noise at the caller's end: 0.4-1.2 s bursts of low-passed noise (traffic rumble, wind) at
    -30..-18 dBFS, 8 kHz s16le, ``length`` bytes. Synthetic, so the benchmark needs nothing else; the tests also play
    recorded street, train and crowd noise (``tests/test_real_recordings.py``)."""
    rng = np.random.default_rng(seed)
    out = np.zeros(length // 2, np.float32)
    t = int(0.5 * RATE)
    while t < len(out) - RATE:
        n = int(rng.uniform(0.4, 1.2) * RATE)
        burst = np.cumsum(rng.normal(0, 1, n)).astype(np.float32)  # brown noise: most energy low, like traffic
        burst -= np.convolve(burst, np.ones(200) / 200, mode="same")  # no DC drift
        burst *= 10 ** (rng.uniform(-30, -18) / 20) * 32768 / (np.sqrt(np.mean(burst ** 2)) + 1e-9)
        out[t:t + n] += burst[:len(out) - t]
        t += n + int(rng.uniform(0.3, 1.0) * RATE)
    return np.clip(out, -32768, 32767).astype(np.int16).tobytes()
