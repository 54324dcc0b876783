"""`voicebot bench stt`: Whisper's encoder window, full (30 s) against short, on the same caller phrasings.

Why a benchmark of its own: a short encoder window (``stt.window_s``) is the largest single saving in a turn's
delay on two cores, and it must be paid for in no accuracy. The table gives the wall and CPU time of both per
utterance (median and p95), and every phrasing whose words differ between them, so an admin can see what the
setting changes on their machine before they turn it on. The same phrasings on a quiet line (26 dB down: a weak
mobile, a caller far from the phone) give a row of their own, and every phrasing heard differently there: a quiet
word is what Whisper is least sure of, and its decoding fallback is where a turn's time once ran away (36 s).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from voicebot.audio import gained, phone_line, silence
from voicebot.bench import Row
from voicebot.components import make_synthesizer
from voicebot.config import Config
from voicebot.models import ModelStore
from voicebot.speech.stt import WhisperTranscriber

PHRASINGS = [
    "Where is my order?", "Any news on my shipment?", "My parcel is late.", "Could you list my past orders?",
    "My printer keeps jamming, can a technician visit?", "I need somebody to install my new desk.",
    "Can I move my appointment to Friday?", "Please cancel my visit tomorrow.", "The desk I received has a cracked leg.",
    "I would like a quote for ten standing desks.", "What are your opening hours on Saturday?", "Is delivery free?",
    "Could your team phone me tomorrow morning?", "Let me talk to a real person.", "Are you a robot?",
    "Yes.", "No thanks.", "The first one please.", "Repairs.", "Sales.",
    "My PIN is four four one nine.", "My PIN is one two three four.", "Order number one oh four five two.",
    "Three six nine five two.", "My phone number is five five five, zero one zero two.",
    "I was born on the twelfth of March nineteen eighty.", "Next Tuesday morning, please.",
    "The day after tomorrow at ten.",
]


QUIET = ", line 26 dB down"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def bench_stt(config: Config, runs: int = 1, log: Callable[[str], None] = print, window_s: float = 10.0) -> list[Row]:
    store = ModelStore.from_config(config)
    c = config.stt
    log("loading Whisper twice (full and short window) and Piper for the caller's voice ...")
    full = WhisperTranscriber(str(store.locate(c.model)), language=c.language, beam_size=c.beam_size,
                              threads=c.threads, window_s=30)
    short = WhisperTranscriber(str(store.locate(c.model)), language=c.language, beam_size=c.beam_size,
                               threads=c.threads, window_s=window_s)
    synth = make_synthesizer(config, store)
    rate = 8000
    said = [silence(200, rate) + b"".join(ch.pcm for ch in synth.stream(text, rate)) + silence(300, rate)
            for text in PHRASINGS]
    lines = {"": [phone_line(pcm, rate) for pcm in said], QUIET: [phone_line(gained(pcm, -26.0), rate) for pcm in said]}
    rows, heard = [], {}
    for label, transcriber in (("window 30 s (Whisper's own)", full), (f"window {window_s:g} s", short)):
        for line, clips in lines.items():
            walls, cpus = [], []
            for _ in range(runs):
                for text, clip in zip(PHRASINGS, clips):
                    wall, cpu = time.perf_counter(), time.process_time()
                    heard.setdefault(label + line, {})[text] = transcriber.transcribe(clip, rate).text
                    walls.append(time.perf_counter() - wall)
                    cpus.append(time.process_time() - cpu)
            rows.append(Row("speech to text", f"{label}{line}: wall per utterance", "s", tuple(walls)))
            rows.append(Row("speech to text", f"{label}{line}: CPU per utterance", "s", tuple(cpus)))
    full_label, short_label = list(heard)[0], list(heard)[2]
    for (one, other) in ((full_label, short_label), (full_label, full_label + QUIET), (short_label, short_label + QUIET)):
        differ = [t for t in PHRASINGS if _words(heard[one][t]) != _words(heard[other][t])]
        log(f"{len(differ)} of {len(PHRASINGS)} phrasings heard differently by {one!r} and {other!r}:")
        for text in differ:
            log(f"  {text!r}: {heard[one][text]!r}, {heard[other][text]!r}")
    return rows
