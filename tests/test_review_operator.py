"""The operator's live screen (issue 17, deliverable 3) on a seeded call store: which calls it shows, what it says
about each (caller, verification, intent, what the bot did, the grounded summary, knowledge suggestions for the
open question, by the real e5 retrieval), who may open it, and the server-sent feed on a real uvicorn server that
pushes a change, and only a change, as the store is written.

The Chromium test with a real call over SIP is test_review_operator_browser.py.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from review_support import ADMIN, SUPERVISOR, live_server
from unanswered_support import PHONE, PHONE_MASKED, unanswered_config
from voicebot.config import ModelsConfig
from voicebot.crm.repository import Repository
from voicebot.events import (Escalated, IntentRecognized, KnowledgeAnswered, ToolCallMade, TransferEnded,
                             TransferStarted)
from voicebot.review.app import create_app
from voicebot.review.operator_feed import HEARTBEAT_S, POLL_S
from voicebot.review.operator import KnowledgeSuggester, build_board, open_question, verification
from voicebot.review.users import ReviewDB, UserError
from voicebot.store import CallStore, Outcome, Turn

OPERATOR = ("otto", "operator-pass-77")
HTTP_PORT = 23960  # this module's review server (the test ports: 23500-23999)
TAKE_AWAY = "services/do-you-take-away-old-furniture-or-electronics"
VERIFIED = {"ok": True, "result": {"verified": True, "outcome": "ok", "name": "Alice"}}
WRONG = {"ok": True, "result": {"verified": False, "outcome": "wrong", "message": "That did not match."}}
ORDERS = {"ok": True, "result": {"orders": [{"number": "10452", "status": "shipped", "carrier": "UPS"}]}}


class Seeded:
    def __init__(self, folder: Path):
        self.config = unanswered_config(folder)
        # the knowledge vectors where the bot keeps them (embedding the demo folder again takes half a minute)
        self.config.models.cache_dir = ModelsConfig().cache_dir
        repo = Repository.open(self.config.path(self.config.crm.database))
        self.alice = repo.add_customer("Alice Smith", [PHONE], pin="4821")
        repo.close()
        db = ReviewDB(self.config.path(self.config.review.database))
        db.add_user(*SUPERVISOR, "supervisor")
        db.add_user(*ADMIN, "admin")
        db.add_user(*OPERATOR, "operator")
        db.close()
        self.now = datetime.now(timezone.utc)

    def store(self) -> CallStore:
        c = self.config
        return CallStore(c.path(c.store.database), c.path(c.store.recordings_dir))


def live_call(store: CallStore, now: datetime, customer_id: str) -> str:
    """Alice, verified by PIN, asked for her order (the CRM answered), then a question the base only half knew."""
    call = store.start_call(PHONE, customer_id=customer_id, call_id="live-1", when=now - timedelta(minutes=2))
    store.add_turn(call, Turn("bot", "Hello, you are speaking with the automated assistant.", 0.0, 2.0))
    store.add_turn(call, Turn("caller", "Where is my order?", 3.0, 4.0))
    store.add_event(call, IntentRecognized("order_status", 0.91, 0.2, "where is my order"), at=4.1)
    store.add_turn(call, Turn("bot", "Please tell me your four-digit PIN.", 4.5, 6.0))
    store.add_turn(call, Turn("caller", "My PIN is ••••", 7.0, 8.0))
    store.add_event(call, ToolCallMade("verify_caller", {"pin": "<redacted>"}, VERIFIED, 0.01), at=8.1)
    store.add_event(call, ToolCallMade("list_open_orders", {}, ORDERS, 0.02), at=8.2)
    store.add_turn(call, Turn("bot", "Order 10452 has shipped with UPS.", 8.5, 11.0))
    store.add_turn(call, Turn("caller", "Do you haul away my old office chairs?", 12.0, 14.0))
    store.add_event(call, KnowledgeAnswered("weak", (TAKE_AWAY,), 0.3, "Do you haul away my old office chairs?"),
                    at=14.2)
    store.add_turn(call, Turn("bot", "Do you mean: Do you take away old furniture or electronics?", 14.5, 17.0))
    return call


def seed_calls(seeded: Seeded) -> None:
    now = seeded.now
    with seeded.store() as store:
        live_call(store, now, str(seeded.alice.id))
        # handed to a person a minute ago, caller unknown to the CRM
        x = store.start_call("+442079460958", call_id="xfer-1", when=now - timedelta(minutes=3))
        store.add_turn(x, Turn("caller", "Operator, please.", 2.0, 3.0))
        store.add_event(x, Escalated("operator_request", "the caller asked for a person"), at=3.1)
        store.add_event(x, TransferStarted("operator_request", "", "sip:operator@pbx", "Caller asked for a person."),
                        at=3.2)
        store.add_event(x, TransferEnded(True, 200, "OK", "blind"), at=5.0)
        store.finish_call(x, Outcome.TRANSFERRED, "operator_request", when=now - timedelta(minutes=1))
        # not on the screen: finished long ago, resolved, a test call, and a call a stopped worker left open
        old = store.start_call(PHONE, call_id="old-xfer", when=now - timedelta(hours=2))
        store.finish_call(old, Outcome.TRANSFERRED, "dtmf", when=now - timedelta(hours=1, minutes=50))
        done = store.start_call(PHONE, call_id="done-1", when=now - timedelta(minutes=5))
        store.finish_call(done, Outcome.RESOLVED, when=now - timedelta(minutes=4))
        store.start_call(PHONE, call_id="chat-1", when=now - timedelta(minutes=1), test=True)
        store.start_call(PHONE, call_id="stale-1", when=now - timedelta(hours=5))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    seeded = Seeded(tmp_path_factory.mktemp("operator"))
    seed_calls(seeded)
    return seeded


@pytest.fixture(scope="module")
def suggester(seeded):
    """The real knowledge base over the demo folder (the real e5 model: a failure, never a skip, when missing)."""
    suggester = KnowledgeSuggester(seeded.config)
    suggester.suggest("warm up", 1)
    if suggester.problem:
        pytest.fail(f"{suggester.problem} (scripts/setup.sh pulls every configured model)")
    yield suggester
    suggester.close()


def readonly(seeded: Seeded) -> CallStore:
    c = seeded.config
    return CallStore(c.path(c.store.database), c.path(c.store.recordings_dir), readonly=True)


# -- the board ---------------------------------------------------------------------------------------------------

def test_the_board_shows_live_and_just_transferred_calls_only_transfers_first(seeded):
    with readonly(seeded) as store:
        board = build_board(store, "operator", datetime.now(timezone.utc))
    assert [c.id for c in board.calls] == ["xfer-1", "live-1"]
    assert board.transfers == ["xfer-1"]
    assert [c.state for c in board.calls] == ["transferred", "live"]


def test_a_live_call_says_who_is_calling_what_they_want_and_what_the_bot_did(seeded, suggester):
    from voicebot.review.operator import CustomerNames

    with readonly(seeded) as store:
        board = build_board(store, "operator", datetime.now(timezone.utc), suggester=suggester,
                            names=CustomerNames(seeded.config.path(seeded.config.crm.database)))
    live = next(c for c in board.calls if c.id == "live-1")
    assert (live.name, live.caller) == ("Alice Smith", PHONE_MASKED)
    assert (live.verified, live.verification) == (True, "verified")
    assert live.intent == "order status"
    done = [(a.label, a.ok) for a in live.actions]
    assert done == [("verify caller", True), ("list open orders", True), ("weak match: asked back", False)]
    assert "10452" in live.actions[1].detail and "shipped" in live.actions[1].detail
    assert "4821" not in json.dumps([a.detail for a in live.actions])
    # the summary is built from the events: the request, the CRM calls and the knowledge miss, nothing else
    assert live.summary.startswith("Recognised request: order status. CRM: verify caller succeeded; "
                                   "list open orders succeeded."), live.summary
    assert "asked back" in live.summary and "in progress" in live.summary
    # the open question, and what the knowledge base would answer to it
    assert live.open_question == "Do you haul away my old office chairs?"
    assert TAKE_AWAY in [s.id for s in live.suggestions], live.suggestions
    best = next(s for s in live.suggestions if s.id == TAKE_AWAY)
    assert best.title == "Do you take away old furniture or electronics?" and best.answer and best.score > 0.25
    xfer = board.calls[0]
    assert (xfer.name, xfer.caller, xfer.verified) == (None, "+44 207 ••• 0958", False)
    assert xfer.verification == "not verified (no check yet)"
    assert xfer.transfer_reason == "Asked for a person"
    assert xfer.handover == "Caller asked for a person."
    assert [a.label for a in xfer.actions] == ["escalated", "transfer to a person", "transfer connected"]
    assert xfer.open_question is None and xfer.suggestions == []


def test_an_admin_sees_the_number_as_stored(seeded):
    with readonly(seeded) as store:
        board = build_board(store, "admin", datetime.now(timezone.utc))
    assert [c.caller for c in board.calls] == ["+442079460958", PHONE]


def test_verification_counts_failed_attempts():
    def made(*results):
        from voicebot.store import Event

        return [Event("tool_call", {"tool": "verify_caller", "args": {}, "result": r}, i) for i, r in enumerate(results)]

    assert verification([], made(WRONG, WRONG)) == (False, "not verified (2 failed attempts)", None)
    assert verification([], made(WRONG, VERIFIED)) == (True, "verified", "Alice")
    assert verification([], []) == (False, "not verified (no check yet)", None)
    # older calls keep their tool calls on the bot turn only
    turn = Turn("bot", "Thanks.", tool_calls=({"name": "verify_caller", "arguments": {}, "result": VERIFIED},))
    assert verification([turn], [])[0] is True


def test_the_open_question_is_the_last_one_nobody_answered():
    from voicebot.store import Event

    asked = Turn("caller", "Do you install printers on site?")
    operator = Turn("caller", "Operator, please.")
    assert open_question([asked, Turn("bot", "Let me get you a colleague."), operator], []) == \
        "Do you install printers on site?"
    assert open_question([Turn("caller", "Can I talk to someone?")], []) is None  # asks for a person, not the base
    answered = Event("knowledge", {"answer": "entry", "entry_ids": ["services/x"], "question": asked.text})
    assert open_question([asked, Turn("bot", "Yes, we do."), operator], [answered]) is None
    by_crm = Turn("bot", "It shipped.", tool_calls=({"name": "get_order_status", "result": ORDERS},))
    assert open_question([Turn("caller", "Where is order 10452?"), by_crm, operator], []) is None
    # as a real call stored it: the bot played a filler, asked for the PIN, and only then the CRM answered
    where = Turn("caller", "Where's my order?", 8.9, 10.0)
    later = [Turn("bot", "Sorry, this is taking a moment.", 13.4), Turn("bot", "Please tell me your PIN.", 17.0),
             Turn("caller", "My PIN is ••••.", 17.7)]
    failed = Event("tool_call", {"tool": "list_open_orders", "result": {"ok": False, "error": "verification_required"}},
                   25.9)
    assert open_question([where, *later], [failed]) == "Where's my order?"
    found = Event("tool_call", {"tool": "list_open_orders", "result": ORDERS}, 35.8)
    assert open_question([where, *later], [failed, found]) is None
    missed = Event("knowledge", {"answer": "none", "question": "Do you repair cars?"})
    assert open_question([Turn("caller", "Do you repair cars?")], [answered, missed]) == "Do you repair cars?"


# -- who may open it ---------------------------------------------------------------------------------------------

def login(client, user: tuple[str, str]) -> None:
    client.cookies.clear()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    done = client.post("/login", data={"csrf_token": token, "username": user[0], "password": user[1],
                                       "next": "/operator"})
    assert done.status_code == 303, done.text


def test_without_an_intent_the_card_says_what_the_caller_asked_in_their_words():
    from voicebot.review.operator import operator_call
    from voicebot.store import Call

    call = Call("c1", datetime.now(timezone.utc), PHONE, Outcome.IN_PROGRESS)
    turns = [Turn("bot", "Hello."), Turn("caller", "Hi."),
             Turn("caller", "My card 4111 1111 1111 1111 was charged twice")]
    card = operator_call(call, turns, [], "operator")
    assert (card.intent, card.request) == (None, "My card [card •••• 1111] was charged twice")


def test_operators_see_the_live_calls_and_nothing_else(seeded):
    with TestClient(create_app(seeded.config, redact_logs=False), follow_redirects=False) as client:
        login(client, OPERATOR)
        page = client.get("/operator")
        assert page.status_code == 200
        assert PHONE_MASKED in page.text and PHONE not in page.text and "Alice Smith" in page.text
        assert 'href="/calls"' not in page.text and 'href="/calls/live-1"' not in page.text
        for path in ("/calls", "/calls/live-1", "/dashboard", "/unanswered", "/admin/access"):
            moved = client.get(path)
            assert (moved.status_code, moved.headers.get("location")) == (303, "/operator"), path
        assert client.post("/calls/live-1/played", data={"which": "mixed"}).status_code == 403
        login(client, SUPERVISOR)
        page = client.get("/operator")
        assert page.status_code == 200 and 'href="/calls/live-1"' in page.text and PHONE_MASKED in page.text
        assert client.get("/calls").status_code == 200
        login(client, ADMIN)
        assert PHONE in client.get("/operator").text
        client.cookies.clear()
        assert client.get("/operator/events").status_code == 303  # the stream needs a login like every page


def test_operator_is_a_role_users_can_have(tmp_path):
    db = ReviewDB(tmp_path / "review.db")
    assert db.add_user("otto", "operator-pass-77", "operator").role == "operator"
    with pytest.raises(UserError, match="operator"):
        db.add_user("eve", "operator-pass-77", "owner")
    db.close()


# -- the live feed -----------------------------------------------------------------------------------------------

class Feed:
    """An SSE client on a thread: every ``board`` event, with the time it arrived."""

    def __init__(self, client: httpx.Client):
        self.events: list[tuple[float, dict]] = []
        self.lines: list[str] = []
        self.stopped = threading.Event()
        self.response = client.send(client.build_request("GET", "/operator/events",
                                                         timeout=httpx.Timeout(30, read=60)), stream=True)
        assert self.response.headers["content-type"].startswith("text/event-stream")
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        kind = None
        try:
            for line in self.response.iter_lines():
                self.lines.append(line)
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "board":
                    self.events.append((time.monotonic(), json.loads(line[6:])))
        except httpx.HTTPError:
            if not self.stopped.is_set():
                raise

    def stop(self) -> None:
        self.stopped.set()
        self.response.close()
        self.thread.join(5)

    def wait(self, count: int, timeout_s: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout_s
        while len(self.events) < count:
            assert time.monotonic() < deadline, f"no board event {count} in {timeout_s} s: {self.lines[-5:]}"
            time.sleep(0.02)
        return self.events[count - 1][1]


def test_the_feed_pushes_a_transfer_when_the_bot_writes_it_and_nothing_when_nothing_shows(seeded):
    app = create_app(seeded.config, redact_logs=False)
    with live_server(app, HTTP_PORT) as url, httpx.Client(base_url=url, follow_redirects=False) as client:
        login(client, OPERATOR)
        feed = Feed(client)
        try:
            check_the_feed(seeded, feed)
        finally:
            feed.stop()
        time.sleep(HEARTBEAT_S + 2 * POLL_S)  # the server's next write fails and it ends the stream


def check_the_feed(seeded: Seeded, feed: Feed) -> None:
    """(Runs last in this module: it hands the seeded live call to a person.)"""
    first = feed.wait(1, timeout_s=90)  # the first board loads the embedding model
    assert first["transfers"] == ["xfer-1"] and first["calls"] == 2
    assert 'data-call="live-1"' in first["html"] and PHONE_MASKED in first["html"]
    with seeded.store() as store:
        # a change the screen does not show (a call finished long ago): the board is rebuilt, nothing is sent
        store.add_event("old-xfer", Escalated("dtmf", "late row"), at=1.0)
        time.sleep(1.5)
        assert len(feed.events) == 1
        # the bot hands the live call to a person: it is pushed at once
        written = time.monotonic()
        store.add_turn("live-1", Turn("caller", "Operator, please.", 18.0, 19.0))
        store.add_event("live-1", TransferStarted("operator_request", "", "sip:operator@pbx",
                                                  "Alice Smith (+15550102030), verified."), at=19.2)
    update = feed.wait(2)
    arrived = feed.events[1][0]
    assert update["transfers"] == ["live-1", "xfer-1"]  # newest first
    assert 'data-call="live-1" data-state="transferring"' in update["html"]
    assert "Alice Smith (+1 555 ••• 2030), verified." in update["html"]  # the handover note, redacted
    print(f"store write -> board event: {arrived - written:.3f} s")


class NoSuggestions:
    def suggest(self, question: str, top: int) -> list:
        return []


def test_open_screens_share_one_board_per_role_and_store_change(seeded):
    from voicebot.review.operator_feed import OperatorHelpers

    app = create_app(seeded.config, redact_logs=False)
    helpers = OperatorHelpers(app.state.review, suggester=NoSuggestions())  # this test is about the cache
    token = helpers.watch.token()
    first = helpers.board_for("operator", token)
    assert helpers.board_for("operator", token) is first  # a second screen: no second build
    assert helpers.board_for("admin", token) is not first  # redacted for another role
    with seeded.store() as store:
        store.add_event("done-1", Escalated("dtmf", "a row"), at=1.0)
    moved = helpers.watch.token()
    assert moved != token
    assert helpers.board_for("operator", moved) is not first
    app.state.review.store.close()
    app.state.review.users.close()
