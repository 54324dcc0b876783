"""Helpers for the CRM tests: a fixed clock and fresh databases (in memory, or a file in tmp_path)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from voicebot.crm.repository import Repository
from voicebot.crm.seed import seed_demo

TODAY = date(2026, 3, 2)  # a Monday
NOW = datetime(2026, 3, 2, 9, 30)


def fixed_clock() -> datetime:
    return NOW


def make_repo(path: Path | None = None, region: str = "US") -> Repository:
    """An empty, migrated CRM (in memory unless ``path``), whose clock says NOW."""
    return Repository.open(path, region=region, clock=fixed_clock)


def seeded_repo(path: Path | None = None) -> Repository:
    repo = make_repo(path)
    seed_demo(repo, TODAY)
    return repo


def dump(repo: Repository) -> dict[str, list[dict]]:
    """Every row of every table, to compare a database before and after."""
    return {name: list(repo.db[name].rows) for name in repo.db.table_names()}
