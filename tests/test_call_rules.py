"""The small rules a call is made of, each on its own: backchannels, mixing the call's two sides, the fixed prompts
in the config. The timelines that use them are in test_session.py."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from voicebot.audio import mix
from voicebot.config import Config, ConfigError, load_config
from voicebot.dialog.backchannel import is_backchannel, spoken_words


@pytest.mark.parametrize("text, speech_s, expected", [
    ("Mm-hmm.", 0.4, True),
    ("Mm-hmm, mm-hmm.", 1.5, True),  # two listening words, however long
    ("Uh-huh, okay, sure.", 1.8, True),
    ("Got it.", 1.2, True),
    ("", 0.5, True),  # a cough: nothing Whisper would vouch for
    ("Amen, mom.", 0.6, True),  # Whisper's "mm-hmm": short, at most two words
    ("Amen, mom.", 1.4, False),  # the same words, said for longer: words the caller meant
    ("Okay, okay, okay, okay.", 1.5, False),  # more than three
    ("Stop.", 0.3, False),  # words that take the turn, however short
    ("Wait, okay.", 0.6, False),
    ("No.", 0.2, False),
    ("Sales", 1.2, False),
    ("What about my order?", 0.9, False),
])
def test_backchannel_rules(text, speech_s, expected):
    assert is_backchannel(text, speech_s) is expected


def test_words_are_counted_as_spoken_and_spelled_by_the_one_tokeniser():
    assert spoken_words("Mm-hmm, OKAY... —") == [["mm", "hmm"], ["okay"]]


def test_mix_sums_both_sides_clips_and_keeps_the_longer():
    a = np.array([1000, -2000, 30000, 5], np.int16).tobytes()
    b = np.array([500, 500, 10000], np.int16).tobytes()
    assert np.frombuffer(mix(a, b), np.int16).tolist() == [1500, -1500, 32767, 5]
    assert np.frombuffer(mix(b, a), np.int16).tolist() == [1500, -1500, 32767, 5]
    quieter = np.frombuffer(mix(a, b, -20.0), np.int16).tolist()  # an echo 20 dB down: a tenth of the amplitude
    assert quieter == [1050, -1950, 31000, 5]
    assert mix(b"", b"") == b""


def test_prompts_default_to_the_shipped_text_and_are_checked(tmp_path):
    assert Config().dialog.prompts.transfer == "I'll connect you with a colleague now. Please hold."
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent("""\
        dialog:
          prompts:
            transfer: "  "
            error: Sorry {name}, something broke.
        """))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    found = {(p.line, p.field) for p in info.value.problems}
    assert found == {(3, "dialog.prompts.transfer"), (4, "dialog.prompts.error")}, info.value.problems
    path.write_text("dialog:\n  prompts:\n    lullaby: Bye.\n")  # not a prompt the bot says
    with pytest.raises(ConfigError):
        load_config(path)
