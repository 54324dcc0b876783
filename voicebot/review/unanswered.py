"""The "Unanswered" page: what callers asked that the knowledge base could not answer, grouped, and the admin's
answer form (issue 15's learning loop).

Everyone logged in sees the groups (questions redacted by role, as every page: a supervisor sees phone numbers
masked; PINs, cards and dates of birth were masked before storage). Only an admin answers: the form appends an
entry to ``knowledge.dir``/learned.md (``voicebot.knowledge.learn``: checked first, written atomically, nothing
written on any problem) and marks the group's questions answered in the review database (``AnsweredMarks``), so
the group moves to "Answered". The bot's knowledge base reads the changed file on its next question.

Grouping uses the knowledge base's embedding model when this process can load it (``voicebot models pull``
placed it), loaded once on the first view; otherwise shared words, and the page says which
(``voicebot.knowledge.unanswered``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from voicebot.db import open_sqlite
from voicebot.knowledge.learn import LEARNED_FILE, EntryError, append_entry, parse_tags
from voicebot.knowledge.unanswered import Group, Grouping, QuestionVectors, collect, group_questions, split_answered
from voicebot.review.state import render
from voicebot.review.redact import redact_text
from voicebot.store import CallStore

log = logging.getLogger(__name__)

DAYS = (7, 30, 90, 365, 0)  # 0: all time
DEFAULT_DAYS = 30
MAX_GROUPS = 200  # per section: the most asked; `voicebot kb unanswered --json` lists them all
_SCHEMA = """CREATE TABLE IF NOT EXISTS unanswered_marks (
    question_key TEXT PRIMARY KEY, entry_id TEXT NOT NULL, file TEXT NOT NULL, answered_by TEXT,
    answered_at TEXT NOT NULL)"""


class AnsweredMarks:
    """Which unanswered questions an admin answered, and with which entry: a table in the review database."""

    def __init__(self, path: str | Path, readonly: bool = False):
        self._lock = threading.Lock()
        self._db = open_sqlite(path, readonly=readonly)
        if not readonly:
            self._db.execute(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def marks(self) -> dict[str, str]:
        """question key -> entry id."""
        with self._lock:
            try:
                rows = self._db.execute("SELECT question_key, entry_id FROM unanswered_marks").fetchall()
            except sqlite3.OperationalError as exc:  # opened read-only (the CLI) before any answer made the table
                if "no such table" in str(exc):
                    return {}
                raise
        return {key: entry for key, entry in rows}

    def mark(self, keys: list[str], entry_id: str, file: str, user: str | None) -> None:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO unanswered_marks VALUES (?, ?, ?, ?, ?) ON CONFLICT (question_key) DO UPDATE SET "
                    "entry_id = excluded.entry_id, file = excluded.file, answered_by = excluded.answered_by, "
                    "answered_at = excluded.answered_at", [(k, entry_id, file, user, now) for k in keys])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise


class Grouper:
    """Groups the store's unanswered questions; the embedding model is loaded on first use, or the reason it
    could not be is kept and shared words are used instead."""

    def __init__(self, config: Any, embedder: Any = None):
        self.config = config
        self._vectors = QuestionVectors(embedder) if embedder is not None else None
        self._note = ""
        self._tried = embedder is not None
        self._lock = threading.Lock()

    def vectors(self) -> tuple[QuestionVectors | None, str]:
        with self._lock:
            if not self._tried:
                self._tried = True
                from voicebot.knowledge.embed import EmbeddingError, load_embedder
                from voicebot.models import ModelError

                try:
                    self._vectors = QuestionVectors(load_embedder(self.config))
                except (ModelError, EmbeddingError, OSError) as exc:
                    self._note = f"the embedding model is not available here ({exc})"
                    log.warning("unanswered questions are grouped by shared words: %s", self._note)
            return self._vectors, self._note

    def grouping(self, store: CallStore, marks: dict[str, str], days: int) -> Grouping:
        since = datetime.now(timezone.utc) - timedelta(days=days) if days else None
        vectors, note = self.vectors()
        with self._lock:  # the vector cache is not for two threads at once
            return group_questions(collect(store, since), vectors, marks, note=note)


@dataclass(frozen=True)
class GroupView:
    key: str
    title: str
    wordings: list[str]
    count: int
    open_count: int
    first_seen: datetime | None
    last_seen: datetime | None
    calls: list[tuple[str, datetime | None]]  # (call id, when asked), newest first
    sources: dict[str, int]
    answered_by: tuple[str, ...]


def _view(group: Group, marks: dict[str, str], role: str) -> GroupView:
    return GroupView(group.key, redact_text(group.title, role), [redact_text(w, role) for w in group.wordings[:6]],
                     group.count, len(group.open_questions(marks)), group.first_seen, group.last_seen,
                     group.call_times[:12], group.sources, group.answered_by)


def entry_titles(state) -> dict[str, str]:
    """Entry id -> title of the knowledge folder as it is now (read again only when a file changed), for the call
    page's knowledge lines; empty when the folder cannot be read."""
    from voicebot.knowledge.files import folder_stamp, load_folder

    folder = state.config.path(state.config.knowledge.dir)
    stamp = folder_stamp(folder)
    cached = state.extras.get("entry_titles")
    if cached is None or cached[0] != stamp:
        cached = (stamp, {e.id: e.title for e in load_folder(folder).entries})
        state.extras["entry_titles"] = cached
    return cached[1]


def _state(request: Request):
    return request.app.state.review


def _helpers(state) -> tuple[Grouper, AnsweredMarks]:
    extras = state.extras
    if "unanswered" not in extras:
        extras["unanswered"] = (Grouper(state.config), AnsweredMarks(state.config.path(state.config.review.database)))
    return extras["unanswered"]


def _days(raw: str | None) -> int:
    try:
        value = int(raw or DEFAULT_DAYS)
    except ValueError:
        return DEFAULT_DAYS
    return value if value in DAYS else DEFAULT_DAYS


def _render(request: Request, days: int, *, status: int = 200, error: str | None = None,
            form: dict[str, str] | None = None) -> Response:
    state = _state(request)
    role = request.state.user.role
    grouper, marks_db = _helpers(state)
    marks = marks_db.marks()
    grouping = grouper.grouping(state.store, marks, days)
    open_, done = split_answered(grouping.groups, marks)
    return render(request, "unanswered.html", {
        "nav": "unanswered", "days": days, "choices": DAYS, "method": grouping.method, "note": grouping.note,
        "open_groups": [_view(g, marks, role) for g in open_[:MAX_GROUPS]], "open_total": len(open_),
        "answered_groups": [_view(g, marks, role) for g in done[:MAX_GROUPS]], "answered_total": len(done),
        "error": error, "form": form or {},
        "error_on_top": bool(error) and not any(g.key == (form or {}).get("group") for g in open_), "added": request.query_params.get("added", ""),
        "learned_file": LEARNED_FILE}, status)


def unanswered_page(request: Request) -> Response:
    return _render(request, _days(request.query_params.get("days")))


async def unanswered_answer(request: Request) -> Response:
    """An admin's answer to one group: a new entry in learned.md, and the group's questions marked answered."""
    user = request.state.user
    if not user.is_admin:
        raise HTTPException(403, "Only an admin writes answers into the knowledge base.")
    state = _state(request)
    form = await request.form()
    values = {name: str(form.get(name, ""))[:4000] for name in ("group", "title", "answer", "tags", "days")}
    days = _days(values["days"])
    grouper, marks_db = _helpers(state)

    def write() -> tuple[str | None, str | None]:
        marks = marks_db.marks()
        group = next((g for g in grouper.grouping(state.store, marks, days).groups if g.key == values["group"]), None)
        if group is None:
            return None, "That group of questions is not in the list any more: reload the page and try again."
        try:
            entry = append_entry(state.config.path(state.config.knowledge.dir), values["title"], values["answer"],
                                 parse_tags(values["tags"]))
        except EntryError as exc:
            return None, f"Nothing was written: {exc}."
        marks_db.mark([q.key for q in group.questions], entry.id, entry.file, user.username)
        state.users.log(user, "knowledge_answer", detail=entry.id, client=request.client.host if request.client else None)
        return entry.id, None

    entry_id, error = await run_in_threadpool(write)
    if error is not None:
        return await run_in_threadpool(_render, request, days, status=400, error=error, form=values)
    return RedirectResponse("/unanswered?" + urlencode({"days": days, "added": entry_id}), 303)
