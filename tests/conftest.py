"""Shared fixtures. Model-backed fixtures load the real weights from models/ once per session.

A missing model is a failure with the fix in its message, never a skip: the setup command pulls them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from voicebot.config import Config, load_config
from voicebot.models import ModelError, ModelStore

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def words(text: str) -> list[str]:
    """Lower-case words without punctuation, for comparing transcripts."""
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


@pytest.fixture(scope="session")
def config() -> Config:
    return load_config(ROOT / "config.yaml")


@pytest.fixture(scope="session")
def model_store(config: Config) -> ModelStore:
    return ModelStore.from_config(config)


def _load(build):
    try:
        return build()
    except ModelError as exc:
        pytest.fail(f"{exc} (scripts/setup.sh pulls every configured model)")


@pytest.fixture(scope="session")
def synthesizer(config, model_store):
    from voicebot.components import make_synthesizer

    return _load(lambda: make_synthesizer(config, model_store))


@pytest.fixture(scope="session")
def transcriber(config, model_store):
    from voicebot.components import make_transcriber

    return _load(lambda: make_transcriber(config, model_store))


@pytest.fixture(scope="session")
def chat_model(config, model_store):
    from voicebot.components import make_chat_model

    return _load(lambda: make_chat_model(config, model_store))
