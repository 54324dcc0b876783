"""A review environment for the export, API and annotation tests: ``review_support.build_env`` plus a call whose
stored words hold a date of birth (as a row written before masking at storage would), and an outbound call the
dialer placed (its row marked outbound, its attempt in the CRM ledger) and a reminder marked in the call store
only."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

from review_support import ReviewEnv, build_env, open_store
from voicebot.store import Outcome, Turn

DOB = "12 March 1980"
PIN = "4821"
PIN_SPOKEN = "4 8 2 1"
CARD_DIGITS = "4111111111111111"
PHONE = "+15550102030"
OUT_PHONE = "+15550109999"
REASON = "my order 10452 is late"
PURPOSE = f"callback · {REASON}"  # the store's purpose, then the ledger's reason


def secrets_in(text: str) -> list[str]:
    """Which of the scenario's secrets (and the full phone number) appear in ``text``."""
    compact = text.replace(" ", "")
    found = [s for s in (DOB, PIN_SPOKEN, "4111 1111 1111 1111", PHONE, OUT_PHONE) if s in text]
    # a whole number only: a duration such as 11.482187 holds the PIN's digits by chance (a CI run met one)
    found += [s for s in (CARD_DIGITS, PIN) if re.search(rf"(?<![\d.]){s}(?![\d])", compact)]
    return found


@contextmanager
def serve_on(app, port: int) -> Iterator[str]:
    """``app`` on uvicorn at 127.0.0.1:``port`` (a port of the calling module's range); yields the base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the review app did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def build_export_env(folder: Path) -> ReviewEnv:
    """The environment, with a config.yaml in ``folder`` naming the same files (for the CLI)."""
    from voicebot.crm.repository import Repository
    from voicebot.dialer.ledger import Attempt, CallbackLedger

    env = build_env(folder, background_calls=12)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    with open_store(env.config) as store:
        store.start_call(PHONE, call_id="dob-call", when=now - timedelta(minutes=50))
        store.add_turn("dob-call", Turn("bot", "Please tell me your date of birth.", 0.5, 2.0))
        store.add_turn("dob-call", Turn("caller", f"My date of birth is {DOB}.", 2.5, 4.0))
        store.add_turn("dob-call", Turn("bot", "Thank you, you are verified.", 4.5, 6.0, tool_calls=(
            {"name": "verify_identity", "arguments": {"date_of_birth": "1980-03-12", "phone": PHONE},
             "result": {"verified": True}},)))
        store.finish_call("dob-call", Outcome.RESOLVED, "caller hung up")
        store.start_call(OUT_PHONE, call_id="out-call", when=now - timedelta(minutes=40))
        store.add_turn("out-call", Turn("bot", "Hello, this is Acme calling back about your order.", 0.2, 3.0))
        store.add_turn("out-call", Turn("caller", "Thanks, please go ahead.", 3.5, 5.0))
        store.update_call("out-call", direction="outbound", purpose="callback", dial_result="answered")
        store.finish_call("out-call", Outcome.ABANDONED, "caller hung up")
        # a reminder the dialer placed: the call store alone says so (no callback reason in the ledger)
        store.start_call(OUT_PHONE, call_id="reminder-call", when=now - timedelta(minutes=30))
        store.add_turn("reminder-call", Turn("bot", "This is a reminder of your visit tomorrow at 10.", 0.2, 3.0))
        store.add_turn("reminder-call", Turn("caller", "[DTMF 1]", 3.5, 3.6))
        store.update_call("reminder-call", direction="outbound", purpose="reminder", dial_result="confirmed")
        store.finish_call("reminder-call", Outcome.RESOLVED, "confirmed")
    repo = Repository.open(env.config.path(env.config.crm.database))
    try:
        callback = repo.request_callback(OUT_PHONE, REASON)
        CallbackLedger(repo, max_attempts=3).record(Attempt(callback.id, now - timedelta(minutes=40), "answered",
                                                            200, "out-call"))
    finally:
        repo.close()
    (folder / "config.yaml").write_text("store:\n  database: calls.db\n  recordings_dir: recordings\n"
                                        "crm:\n  database: crm.db\nreview:\n  database: review.db\n",
                                        encoding="utf-8")
    return env
