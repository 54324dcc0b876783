"""Another company's knowledge folder behind the same code, for the tests that call it as its customers would."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

from fakes import ScriptedChat

from voicebot.crm.repository import Repository
from voicebot.crm.verification import CallerContext
from voicebot.dialog.agent import DialogueAgent, Sentence, ToolCalled
from voicebot.dialog.knowledge_step import KnowledgeStep
from voicebot.knowledge.base import KnowledgeBase


def company_knowledge(folder: Path, embedder, files: dict[str, str]) -> KnowledgeBase:
    """A knowledge base read from ``files`` (name -> text: Markdown entries, ``prices.yaml``, ``hours.yaml``)
    written into ``folder``, checked at every question (an edit is live at once)."""
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return KnowledgeBase(folder, embedder, check_interval_s=0)


def add_daily_slots(repo: Repository, today: date, services: dict[str, tuple[tuple[int, ...], int]], days: int = 13,
                    weekdays_only: bool = False) -> None:
    """Free slots for the next ``days`` days: ``services`` maps a service to (its start hours, minutes each)."""
    for day in (today + timedelta(days=i) for i in range(1, days + 1)):
        if weekdays_only and day.weekday() >= 5:
            continue
        for service, (hours, minutes) in services.items():
            for hour in hours:
                repo.add_slot(service, datetime.combine(day, time(hour)), resource=service, duration_min=minutes)


def company_agent(repo: Repository, caller: str, company: str, today: date, intents, kb: KnowledgeBase
                  ) -> DialogueAgent:
    """A call to the company from ``caller``, answered without the model (``ScriptedChat()`` fails on any call)."""
    return DialogueAgent(ScriptedChat(), CallerContext.start(repo, caller), company, today=today, intents=intents,
                         knowledge=KnowledgeStep(kb))


def said_in(events) -> str:  # noqa: ANN001 - a turn's events
    """What the bot said in a turn's events, as one string."""
    return " ".join(e.text for e in events if isinstance(e, Sentence))


def tools_in(events) -> list[ToolCalled]:  # noqa: ANN001 - a turn's events
    """The tools a turn called, in order."""
    return [e for e in events if isinstance(e, ToolCalled)]
