"""Another company's knowledge folder behind the same code, for the tests that call it as its customers would."""

from __future__ import annotations

from pathlib import Path

from voicebot.knowledge.base import KnowledgeBase


def company_knowledge(folder: Path, embedder, files: dict[str, str]) -> KnowledgeBase:
    """A knowledge base read from ``files`` (name -> text: Markdown entries, ``prices.yaml``, ``hours.yaml``)
    written into ``folder``, checked at every question (an edit is live at once)."""
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return KnowledgeBase(folder, embedder, check_interval_s=0)
