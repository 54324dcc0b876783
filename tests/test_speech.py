"""The speech stack through the real models: Piper speaks, the telephone line squeezes, Whisper hears."""

from __future__ import annotations

import pytest

from asr_support import assert_heard, normalize
from voicebot.audio import alaw_decode, alaw_encode, silence, ulaw_decode, ulaw_encode, write_wav
from voicebot.speech.stt import Transcriber
from voicebot.speech.tts import Synthesizer, split_sentences
from voicebot.speech.vad import WebRtcVoiceActivity, speech_regions

SENTENCE = "Your order will arrive on Tuesday."


def test_components_implement_the_protocols(synthesizer, transcriber):
    assert isinstance(synthesizer, Synthesizer)
    assert isinstance(transcriber, Transcriber)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_piper_to_mulaw_line_and_back_to_the_same_words(synthesizer, transcriber, rate, tmp_path):
    speech = b"".join(chunk.pcm for chunk in synthesizer.stream(SENTENCE, rate))
    line = ulaw_encode(speech)  # what travels as PCMU
    assert len(line) == len(speech) // 2
    heard = ulaw_decode(line)
    write_wav(tmp_path / "line.wav", heard, rate)
    transcript = transcriber.transcribe(heard, rate)
    assert_heard(transcript.text, SENTENCE, min_ratio=0.8)  # a word may come back wrong, not the sentence
    assert transcript.language == "en"
    assert transcript.segments and all(s.no_speech_prob < 0.5 for s in transcript.segments)
    assert transcript.avg_logprob > -0.8
    assert normalize(transcript.accepted().text) == normalize(transcript.text)  # confident speech is kept whole


def test_alaw_line_keeps_the_words(synthesizer, transcriber):
    speech = b"".join(chunk.pcm for chunk in synthesizer.stream("Please book an appointment for Friday.", 8000))
    transcript = transcriber.transcribe(alaw_decode(alaw_encode(speech)), 8000)
    assert_heard(transcript.text, "Please book an appointment for Friday.", min_ratio=0.8)


def test_synthesizer_streams_sentence_by_sentence_at_the_asked_rate(synthesizer):
    text = "Thanks for calling. Your order shipped yesterday. Is there anything else?"
    chunks = list(synthesizer.stream(text, 8000))
    assert [c.text for c in chunks] == split_sentences(text) and len(chunks) == 3
    for chunk in chunks:
        assert chunk.sample_rate == 8000
        assert 0.5 < chunk.duration_s < 4.0
    wide = list(synthesizer.stream("Thanks for calling.", 16000))[0]
    assert wide.sample_rate == 16000
    # the same sentence (Piper varies its timing a little from run to run), so about twice the bytes
    assert 1.6 < len(wide.pcm) / len(chunks[0].pcm) < 2.4


def test_fixed_prompts_are_cached_on_disk_by_text_and_voice(synthesizer, tmp_path, monkeypatch):
    monkeypatch.setattr(synthesizer, "cache_dir", tmp_path / "tts")
    prompt = "One moment, let me check that."
    first = synthesizer.cached(prompt, 8000)
    path = synthesizer.cache_path(prompt, 8000)
    assert path.is_file()
    calls = []
    monkeypatch.setattr(synthesizer, "_speak", lambda *a: calls.append(a) or b"")
    assert synthesizer.cached(prompt, 8000) == first  # served from disk
    assert calls == []
    assert synthesizer.cache_path(prompt, 16000) != path
    assert synthesizer.cache_path("Another prompt.", 8000) != path


def test_rates_outside_the_telephone_ones_are_refused(synthesizer, transcriber):
    with pytest.raises(ValueError, match="telephone"):
        list(synthesizer.stream("Hi.", 44100))
    with pytest.raises(ValueError, match="8000 or 16000"):
        transcriber.transcribe(b"\0" * 3200, 44100)


def test_silence_gives_no_accepted_text(transcriber):
    transcript = transcriber.transcribe(silence(2000, 8000), 8000)
    assert transcript.accepted().text == ""


def test_split_sentences():
    assert split_sentences("Hello there. How are you? Fine!") == ["Hello there.", "How are you?", "Fine!"]
    assert split_sentences("It costs 25.99 dollars.") == ["It costs 25.99 dollars."]
    assert split_sentences("  ") == []


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("frame_ms", [10, 20, 30])
def test_webrtcvad_finds_the_speech_inside_silence(synthesizer, rate, frame_ms):
    speech = b"".join(c.pcm for c in synthesizer.stream("I would like to check my order status.", rate))
    speech_ms = len(speech) * 1000 // (2 * rate)
    clip = silence(1000, rate) + speech + silence(1500, rate)
    regions = speech_regions(WebRtcVoiceActivity(2), clip, rate, frame_ms)
    assert len(regions) == 1, regions
    [region] = regions
    # Piper leaves a little quiet at both ends of its audio; the region must sit inside the speech
    assert 1000 - frame_ms <= region.start_ms <= 1250
    assert 1000 + speech_ms - 350 <= region.end_ms <= 1000 + speech_ms + frame_ms


def test_webrtcvad_on_pure_silence_and_bad_frames():
    vad = WebRtcVoiceActivity(3)
    assert speech_regions(vad, silence(2000, 8000), 8000) == []
    with pytest.raises(ValueError, match="not 10, 20 or 30 ms"):
        vad.is_speech(b"\0" * 100, 8000)
    with pytest.raises(ValueError):
        vad.is_speech(b"\0" * 882, 44100)
    with pytest.raises(ValueError):
        WebRtcVoiceActivity(4)
