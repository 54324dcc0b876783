"""Helpers for the review app's tests: a config in a temporary folder, a model reply, a live server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from voicebot.config import Config, CrmConfig, ReviewConfig, StoreConfig
from voicebot.store import CallStore

SUPERVISOR = ("sue", "supervisor-pass-1")
ADMIN = ("ada", "admin-pass-12345")
CARD = "4111 1111 1111 1111"


def review_config(folder: Path, **review: Any) -> Config:
    """The default config with every database and folder inside ``folder``."""
    config = Config(store=StoreConfig(database="calls.db", recordings_dir="recordings"),
                    crm=CrmConfig(database="crm.db"), review=ReviewConfig(database="review.db", **review))
    config.base_dir = folder
    return config


def open_store(config: Config) -> CallStore:
    return CallStore(config.path(config.store.database), config.path(config.store.recordings_dir))


def add_users(config: Config) -> None:
    from voicebot.review.users import ReviewDB

    db = ReviewDB(config.path(config.review.database))
    db.add_user(*SUPERVISOR, "supervisor")
    db.add_user(*ADMIN, "admin")
    db.close()


GOOD_REPLY = {
    "summary": "The caller asked about an order; the bot gave the status.",
    "topic": "order_status",
    "structure": {"score": 4, "reason": "Clear steps."},
    "clarity": {"score": 5, "reason": "Short sentences."},
    "empathy": {"score": 3, "reason": "Polite but brief."},
    "grounding": {"score": 5, "reason": "Only tool facts."},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(app, port: int | None = None) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 and ``port`` (default: a free one) in a background thread; yields
    the base URL. Open event streams (the operator screen's) get 2 s to end at shutdown."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, name="review-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the review app did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class Clock:
    """A settable clock for session-expiry tests."""

    def __init__(self, start: datetime | None = None):
        self.value = start or datetime(2026, 3, 3, 9, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.value


@dataclass(frozen=True)
class ReviewEnv:
    config: Config
    card_call: str  # a caller reads a card number; the caller is CRM customer Alice Smith
    pin_call: str  # a caller says a PIN
    order_call: str  # nothing secret
    customer_id: str


def build_env(folder: Path, background_calls: int = 30) -> ReviewEnv:
    """A call store with demo calls (three known ones with recordings), a CRM with their customer, two users."""
    from voicebot.crm.models import OrderItem
    from voicebot.crm.repository import Repository
    from voicebot.review.demo import DemoCustomer, seed_calls, write_demo_call

    config = review_config(folder)
    repo = Repository.open(config.path(config.crm.database))
    alice = repo.add_customer("Alice Smith", ["+15550102030"], email="alice@example.com", pin="4821")
    repo.add_order("10452", alice.id, "shipped", date(2026, 3, 1),
                   [OrderItem("CHR-1", "Ergonomic chair", 1, Decimal("249.00"))], carrier="UPS", eta=date(2026, 3, 5))
    repo.close()
    customer = DemoCustomer(str(alice.id), "+15550102030", "Alice")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    with open_store(config) as store:
        seed_calls(store, background_calls, end=now - timedelta(hours=3), days=10, recordings=0)
        order = write_demo_call(store, "order status", now - timedelta(hours=2), call_id="order-call")
        pin = write_demo_call(store, "pin", now - timedelta(hours=1, minutes=30), call_id="pin-call")
        card = write_demo_call(store, "card number", now - timedelta(hours=1), call_id="card-call", customer=customer)
    add_users(config)
    return ReviewEnv(config, card, pin, order, str(alice.id))


# -- Chromium (Debian's, driven by pytest-playwright): shared by every *_browser.py module ------------------
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright's launch arguments plus the system Chromium (no browser download on these machines)."""
    if not CHROMIUM.is_file():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run scripts/setup.sh "
                    "(or `apt-get install -y chromium`); the browser tests need it")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM),
            "args": [*browser_type_launch_args.get("args", []), *FLAGS]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1440, "height": 1000}}
