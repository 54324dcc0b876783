"""The company's own words as Whisper's hotwords (``components.company_words``), through the real Whisper and Piper.

Callers of an internet provider say its plan names, a garage's say "MOT": words Whisper's base model does not know.
"I'd like to upgrade to Fiber 500." was heard as "I'd like to upgrade to 5 or 500." and could not be placed."""

from __future__ import annotations

from voicebot.components import company_words
from voicebot.config import load_config
from voicebot.speech.stt import WhisperTranscriber

PRICES = """currency: GBP
items:
  - {id: f500, name: Fiber 500, aliases: [standard plan], price: 55.00, unit: month}
  - {id: f1000, name: Fiber 1000, aliases: [gigabit], price: 79.00, unit: month}
"""


def _config(tmp_path, config):
    (tmp_path / "knowledge").mkdir()
    (tmp_path / "knowledge" / "prices.yaml").write_text(PRICES, encoding="utf-8")
    (tmp_path / "config.yaml").write_text(
        f"dialog:\n  company: Brightwave Broadband\nknowledge:\n  dir: {tmp_path / 'knowledge'}\n"
        f"crm:\n  database: {tmp_path / 'missing.db'}\n", encoding="utf-8")
    return load_config(tmp_path / "config.yaml")


def test_the_company_name_services_and_price_items_are_the_words(tmp_path, config):
    words = company_words(_config(tmp_path, config))  # no CRM file: no services, and no error
    assert words == "Brightwave Broadband, Fiber 500, Fiber 1000"
    demo = company_words(config)
    assert demo is not None and demo.startswith("Northwind Supplies, furniture fitting, laptop setup, printer repair")
    assert demo.lower().count("laptop setup") == 1  # the CRM's and the price list's spelling are one word


def test_a_plan_name_is_heard_with_the_company_words(tmp_path, config, model_store, caller_voice):
    pcm = b"".join(chunk.pcm for chunk in caller_voice.stream("I'd like to upgrade to Fiber 500.", 8000))
    folder = str(model_store.locate(config.stt.model))
    plain = WhisperTranscriber(folder, threads=1).transcribe(pcm, 8000).text
    hinted = WhisperTranscriber(folder, threads=1, hotwords=company_words(_config(tmp_path, config)))
    assert "Fiber 500" in hinted.transcribe(pcm, 8000).text, plain
