"""Calls with knowledge questions the bot could and could not answer, for the "Unanswered" tests."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from review_support import add_users
from voicebot.config import Config, CrmConfig, KnowledgeConfig, ModelsConfig, ReviewConfig, StoreConfig
from voicebot.events import KnowledgeAnswered, TransferStarted
from voicebot.store import CallStore, Outcome, Turn

ROOT = Path(__file__).resolve().parent.parent
PHONE = "+15550102030"
PHONE_MASKED = "+1 555 ••• 2030"
RETURN_ENTRY = "returns/what-is-your-return-policy"


def unanswered_config(folder: Path) -> Config:
    """Databases and a copy of the demo knowledge folder in ``folder``; the repo's models (the real e5)."""
    knowledge = folder / "knowledge"
    shutil.copytree(ROOT / "knowledge", knowledge)
    config = Config(store=StoreConfig(database="calls.db", recordings_dir="recordings"),
                    crm=CrmConfig(database="crm.db"), review=ReviewConfig(database="review.db"),
                    knowledge=KnowledgeConfig(dir="knowledge"),
                    models=ModelsConfig(dir=str(ROOT / "models"), cache_dir=str(folder / "cache")))
    config.base_dir = folder
    return config


def config_yaml(config: Config) -> Path:
    """The same config as a file, for the CLI."""
    path = config.base_dir / "config.yaml"
    path.write_text(f"""store:
  database: calls.db
  recordings_dir: recordings
crm:
  database: crm.db
review:
  database: review.db
knowledge:
  dir: knowledge
models:
  dir: {ROOT / 'models'}
  cache_dir: {config.base_dir / 'cache'}
""", encoding="utf-8")
    return path


class _Clock:
    def __init__(self, value: datetime):
        self.value = value

    def __call__(self) -> datetime:
        return self.value


@dataclass(frozen=True)
class Seeded:
    config: Config
    calls: dict[str, str]  # name -> call id


# (name, days ago, caller question, knowledge answer kind or None, entry ids, score, then: transfer reason or None)
CALLS = [
    ("cars1", 2, "Do you repair cars?", "none", (), 0.12, None),
    ("cars2", 1, "Can you fix my car?", "none", (), 0.15, None),
    ("cars3", 0.2, "do you do car repairs", "weak", ("services/do-you-repair-printers",), 0.3, None),
    ("gift1", 3, "Do you sell gift cards?", "none", (), 0.18, None),
    ("gift2", 0.5, "Can I buy a gift card?", "none", (), 0.2, None),
    ("returns", 1, "What is your return policy?", "entry", (RETURN_ENTRY,), 0.71, None),
    ("printers", 1.5, "Do you install printers at our office?", None, (), None, "model"),
    ("person", 1.5, "Can I talk to a person please?", None, (), None, "operator_request"),
    ("phone", 0.3, f"Can you text the invoice to {PHONE}?", "none", (), 0.1, None),
    ("old", 120, "Do you have a loyalty program?", "none", (), 0.11, None),
]


def seed(folder: Path) -> Seeded:
    config = unanswered_config(folder)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    clock = _Clock(now)
    store = CallStore(config.path(config.store.database), config.path(config.store.recordings_dir), now=clock)
    ids = {}
    try:
        for name, days, question, kind, entry_ids, score, transfer in CALLS:
            clock.value = now - timedelta(days=days)
            call = store.start_call(PHONE, call_id=f"call-{name}")
            ids[name] = call
            store.add_turn(call, Turn("bot", "Hello, this is the automated assistant of Acme Office. How can I "
                                             "help?", 0.0, 3.0))
            store.add_turn(call, Turn("caller", question, 3.5, 5.5))
            if kind is not None:
                reply = ("You can return unused items within 30 days of delivery for a full refund."
                         if kind == "entry" else "I don't have that information. Would you like me to connect you "
                                                 "with a colleague?")
                store.add_turn(call, Turn("bot", reply, 6.2, 9.0))
                store.add_event(call, KnowledgeAnswered(kind, entry_ids, score, question), at=9.1)
            if transfer is not None:
                store.add_turn(call, Turn("bot", "Let me connect you with a colleague.", 6.2, 8.0))
                store.add_event(call, TransferStarted(transfer, None, "sip:operator@127.0.0.1", "summary"), at=8.1)
            store.finish_call(call, Outcome.TRANSFERRED if transfer else Outcome.RESOLVED, transfer)
    finally:
        store.close()
    add_users(config)
    return Seeded(config, ids)
