"""The operator's screen as a page and as a live feed: ``GET /operator`` renders the board; ``GET /operator/events``
is a server-sent event stream that pushes the board again whenever the call store changes.

Why this shape:

- **The bot writes, this app reads.** The call store is SQLite in WAL mode, opened read-only here; the bot commits
  every turn and event as it happens. Watching it costs one tiny query per poll (``StoreWatch.token``: SQLite's
  ``data_version``, which moves on every commit by another connection, and the highest row ids of calls, turns
  and events, which SQLite reads from the end of each b-tree). Only when the token moves is the board rebuilt, and
  only when the rendered board differs is it sent. Polling every ``POLL_S`` (0.25 s) puts a transfer on the
  operator's screen well inside a second or two of the bot writing it.
- **Server-rendered.** The event carries the board's HTML, rendered by the same Jinja template as the page and
  redacted for the viewer's role, so the browser never builds markup from data (``static/operator.js`` swaps it
  in, and pops up calls newly handed to a person).
- **Streams end.** A stream closes after ``STREAM_S``; the browser's EventSource reconnects (``retry``) through the
  login check again, so a session that expired or was ended stops getting calls within that time.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from voicebot.review.operator import RECENT, Board, CustomerNames, KnowledgeSuggester, build_board
from voicebot.review.state import ReviewState, render, review_state
from voicebot.store import CallStore

POLL_S = 0.25
REFRESH_S = 10.0  # rebuild even without a change: calls age out of the "just transferred" window
HEARTBEAT_S = 2.0  # a comment line: a closed connection shows up as a failed write (see ``operator_events``)
STREAM_S = 120.0
RETRY_MS = 1000


class StoreWatch:
    """A token that changes whenever the call store does."""

    def __init__(self, store: CallStore):
        self.store = store

    def token(self) -> tuple[Any, ...]:
        row = self.store.select("SELECT (SELECT max(rowid) FROM calls), (SELECT max(rowid) FROM turns), "
                                "(SELECT max(id) FROM events)")[0]
        return (*tuple(row), self.store.pragma("data_version"))


class OperatorHelpers:
    """What every operator page and stream of this app shares: the store watch, CRM names, suggestions."""

    def __init__(self, state: ReviewState, suggester: Any = None):
        from voicebot.review.unanswered import entry_titles

        self.state = state
        self.watch = StoreWatch(state.store)
        self.names = CustomerNames(state.crm_path)
        self.suggester = suggester if suggester is not None else KnowledgeSuggester(state.config)
        self._titles = lambda: entry_titles(state)
        self._boards: dict[str, tuple[Any, float, Board]] = {}  # role -> (store token, built at, board)
        self._lock = threading.Lock()

    def board_for(self, role: str, token: Any) -> Board:
        """The board at store ``token``: built once per role and change, however many screens are open."""
        with self._lock:
            cached = self._boards.get(role)
            if cached and cached[0] == token and time.monotonic() - cached[1] < REFRESH_S:
                return cached[2]
        board = self.board(role)
        with self._lock:
            self._boards[role] = (token, time.monotonic(), board)
        return board

    def board(self, role: str) -> Board:
        try:
            titles = self._titles()
        except OSError:
            titles = {}
        board = build_board(self.state.store, role, datetime.now(timezone.utc), suggester=self.suggester,
                            names=self.names, titles=titles)
        note = getattr(self.suggester, "problem", "")
        return Board(board.calls, note) if note else board

    def close(self) -> None:
        getattr(self.suggester, "close", lambda: None)()


def helpers(state: ReviewState) -> OperatorHelpers:
    if "operator" not in state.extras:
        state.extras["operator"] = OperatorHelpers(state)
    return state.extras["operator"]


def operator_page(request: Request) -> Response:
    state = review_state(request)
    board = helpers(state).board(request.state.user.role)
    return render(request, "operator.html", {"nav": "operator", "board": board,
                                             "recent_minutes": int(RECENT.total_seconds() // 60)})


def render_board(state: ReviewState, board: Board, user: Any) -> str:
    return state.templates.get_template("operator_board.html").render(board=board, user=user)


def board_event(html: str, board: Board) -> str:
    """One SSE message: the board's HTML and the ids of calls handed to a person (JSON: one line)."""
    payload = json.dumps({"html": html, "transfers": board.transfers, "calls": len(board.calls)})
    return f"event: board\ndata: {payload}\n\n"


async def operator_events(request: Request) -> Response:
    """The board as server-sent events. A browser that went away is noticed when the next write fails: behind
    ``BaseHTTPMiddleware`` the request never sees the disconnect itself, so a comment line goes out every
    ``HEARTBEAT_S`` (which also keeps proxies from closing a quiet stream)."""
    state = review_state(request)
    user = request.state.user
    shared = helpers(state)

    async def stream() -> AsyncIterator[str]:
        yield f"retry: {RETRY_MS}\n\n"
        token: Any = None
        html = None
        started = built = sent = time.monotonic()
        built -= REFRESH_S
        while True:
            now = time.monotonic()
            current = await run_in_threadpool(shared.watch.token)
            if current != token or now - built >= REFRESH_S:
                token, built = current, now
                board = await run_in_threadpool(shared.board_for, user.role, current)
                rendered = render_board(state, board, user)
                if rendered != html:
                    html, sent = rendered, now
                    yield board_event(rendered, board)
            if now - sent >= HEARTBEAT_S:
                sent = now
                yield ":\n\n"
            if now - started >= STREAM_S:
                return
            await asyncio.sleep(POLL_S)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
