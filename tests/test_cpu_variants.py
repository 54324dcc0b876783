"""The int8 models on another x86 CPU: the same end-of-turn verdicts on a CPU without VNNI.

Machines of this kind differ: one CI machine had AVX2 but no VNNI (an AMD EPYC), and there ONNX Runtime's
u8*s8 kernel, which adds pairs of products in 16 bits, saturated inside Smart Turn's int8 layers: a sentence cut
off mid-word scored 0.91 'complete' and the end-of-turn tests failed. ``SmartTurnModel`` turns on ONNX
Runtime's exact u8*u8 kernel for such CPUs (``session.x64quantprecision``).

The test runs the real model under ``qemu-x86_64 -cpu EPYC-Milan`` (AVX2, no AVX-512, no VNNI; qemu-user is
installed by scripts/setup.sh), on Piper speech made natively, and checks two things: that a plain session there
really scores differently (so the emulated CPU takes the saturating path and the test means something), and that
the bot's own ``SmartTurnModel`` scores the same as on this machine, on 8 kHz clips (the phone line's; a 16 kHz
set doubled the time and tested no other kernel). About a minute: qemu emulates every instruction.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

from voicebot.speech.turn_model import SmartTurnModel

pytestmark = pytest.mark.timeout(600)

CPU = "EPYC-Milan"  # Zen 3: AVX2 and FMA, no AVX-512, no VNNI
SENTENCE = "I would like to check the status of my order."

EMULATED = """
import json, pickle, sys
import onnxruntime as ort
from voicebot.speech.turn_model import SmartTurnModel, model_input
clips = pickle.load(open(sys.argv[1], "rb"))
model = SmartTurnModel(sys.argv[2])
options = ort.SessionOptions()
options.intra_op_num_threads = options.inter_op_num_threads = 1
plain = ort.InferenceSession(str(model.path), sess_options=options, providers=["CPUExecutionProvider"])
print(json.dumps({name: {"bot": model.score(pcm, rate).probability,
                         "plain": float(plain.run(None, {"input_features": model_input(pcm, rate)})[0].reshape(-1)[0])}
                  for name, (pcm, rate) in clips.items()}))
"""


def test_the_turn_model_judges_alike_on_a_cpu_without_vnni(config, model_store, caller_voice, tmp_path):
    qemu = shutil.which("qemu-x86_64")
    assert qemu, "qemu-x86_64 is missing: scripts/setup.sh installs Debian's qemu-user"
    clips = {}
    for rate in (8000,):  # the phone line's rate (upsampled to 16 kHz for the model: its kernels run either way)
        whole = b"".join(chunk.pcm for chunk in caller_voice.stream(SENTENCE, rate))
        pause = b"\0\0" * (rate // 5)
        clips[f"whole {rate}"] = (whole + pause, rate)
        clips[f"cut {rate}"] = (whole[:len(whole) * 3 // 10 // 2 * 2] + pause, rate)  # "I would like t-"
    (tmp_path / "clips.pkl").write_bytes(pickle.dumps(clips))
    folder = model_store.locate(config.turns.model)
    native = SmartTurnModel(folder)
    here = {name: native.score(pcm, rate).probability for name, (pcm, rate) in clips.items()}
    assert here["whole 8000"] >= 0.5 > here["cut 8000"], here

    run = subprocess.run([qemu, "-cpu", CPU, sys.executable, "-c", EMULATED, str(tmp_path / "clips.pkl"),
                          str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=540,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr[-2000:]
    there = json.loads(run.stdout.strip().splitlines()[-1])
    # the emulated CPU takes ONNX Runtime's saturating path: a plain session's scores move
    assert max(abs(there[name]["plain"] - here[name]) for name in clips) > 0.1, (there, here)
    # the bot's session does not: the same verdicts, the same scores to rounding
    for name in clips:
        assert abs(there[name]["bot"] - here[name]) < 0.01, (name, there, here)
