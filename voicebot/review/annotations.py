"""Supervisors' marks on a call: tags, a note and a "reviewed" status, in the review database.

Why the review database and not the call store: the app opens the call store read-only (the bot is its only
writer), and these marks are the reviewers' own work, like the users and the access log beside them.

Why the note is masked before it is stored: a reviewer may copy a caller's words into it, and PINs, card numbers
and dates of birth are never stored in clear (``redact.mask_secrets``, the same rule as for caller turns); it is
shown through ``redact_text`` by role like every other text. Tags are short words chosen from a small alphabet so
they are safe in URLs and filters.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from voicebot.db import open_sqlite
from voicebot.review.redact import mask_secrets

MAX_TAGS = 10
MAX_NOTE = 2000
_TAG = re.compile(r"[a-z0-9][a-z0-9_-]{0,29}")
_BUILD_LOCK = threading.Lock()
_SCHEMA = """CREATE TABLE IF NOT EXISTS call_annotations (
    call_id TEXT PRIMARY KEY, tags TEXT NOT NULL DEFAULT '[]', note TEXT NOT NULL DEFAULT '',
    reviewed INTEGER NOT NULL DEFAULT 0, reviewed_by TEXT, reviewed_at TEXT, updated_by TEXT, updated_at TEXT)"""


class AnnotationError(ValueError):
    """A tag or note that cannot be saved; the message says why."""


@dataclass(frozen=True)
class Annotation:
    call_id: str
    tags: list[str] = field(default_factory=list)
    note: str = ""  # secrets masked at storage
    reviewed: bool = False
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None


def parse_tags(raw: str) -> list[str]:
    """"Refund, follow-up  vip" -> ["refund", "follow-up", "vip"]: split on commas and spaces, lower case, each
    checked against the tag alphabet, duplicates dropped, at most ``MAX_TAGS``."""
    tags: list[str] = []
    for part in re.split(r"[,\s]+", raw.strip().lower()):
        if not part:
            continue
        if not _TAG.fullmatch(part):
            raise AnnotationError(f"tag {part[:40]!r}: use letters, digits, - and _ (up to 30 characters)")
        if part not in tags:
            tags.append(part)
    if len(tags) > MAX_TAGS:
        raise AnnotationError(f"at most {MAX_TAGS} tags per call")
    return tags


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class Annotations:
    """The ``call_annotations`` table; safe to share between request threads (one connection, one lock)."""

    def __init__(self, path: str | Path, now=lambda: datetime.now(timezone.utc)):
        self._lock = threading.Lock()
        self._now = now
        self._db = open_sqlite(path)
        self._db.row_factory = sqlite3.Row
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _rows(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    @staticmethod
    def _from_row(row: sqlite3.Row) -> Annotation:
        return Annotation(row["call_id"], json.loads(row["tags"]), row["note"], bool(row["reviewed"]),
                          row["reviewed_by"], _time(row["reviewed_at"]), row["updated_by"], _time(row["updated_at"]))

    def get(self, call_id: str) -> Annotation:
        rows = self._rows("SELECT * FROM call_annotations WHERE call_id = ?", (call_id,))
        return self._from_row(rows[0]) if rows else Annotation(call_id)

    def many(self, call_ids: list[str]) -> dict[str, Annotation]:
        """The marks of these calls (calls without any are left out)."""
        if not call_ids:
            return {}
        rows = self._rows("SELECT * FROM call_annotations WHERE call_id IN (SELECT value FROM json_each(?))",
                          (json.dumps(call_ids),))
        return {r["call_id"]: self._from_row(r) for r in rows}

    def save(self, call_id: str, *, tags: list[str], note: str, reviewed: bool, user: str | None) -> Annotation:
        """Replace the call's marks. ``reviewed_by``/``reviewed_at`` keep who first marked it reviewed and when
        (cleared when the mark is taken off)."""
        if len(tags) > MAX_TAGS or any(not _TAG.fullmatch(t) for t in tags):
            raise AnnotationError("tags must come from parse_tags")
        note = note.strip()
        if len(note) > MAX_NOTE:
            raise AnnotationError(f"the note is longer than {MAX_NOTE} characters")
        note = mask_secrets(note)
        now = self._now().isoformat(timespec="seconds")
        before = self.get(call_id)
        by, at = (before.reviewed_by, before.reviewed_at.isoformat(timespec="seconds") if before.reviewed_at
                  else None) if before.reviewed else (user, now)
        with self._lock:
            self._db.execute(
                "INSERT INTO call_annotations VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (call_id) DO UPDATE SET "
                "tags = excluded.tags, note = excluded.note, reviewed = excluded.reviewed, "
                "reviewed_by = excluded.reviewed_by, reviewed_at = excluded.reviewed_at, "
                "updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                (call_id, json.dumps(tags), note, int(reviewed), by if reviewed else None,
                 at if reviewed else None, user, now))
        return self.get(call_id)

    def ids_tagged(self, tag: str) -> list[str]:
        rows = self._rows("SELECT a.call_id FROM call_annotations a, json_each(a.tags) t WHERE t.value = ?", (tag,))
        return [r["call_id"] for r in rows]

    def ids_reviewed(self) -> list[str]:
        return [r["call_id"] for r in self._rows("SELECT call_id FROM call_annotations WHERE reviewed = 1")]

    def all_tags(self) -> list[str]:
        """Every tag in use, most used first (the filter's choices)."""
        rows = self._rows("SELECT t.value AS tag, COUNT(*) AS n FROM call_annotations a, json_each(a.tags) t "
                          "GROUP BY t.value ORDER BY n DESC, t.value")
        return [r["tag"] for r in rows]


def annotations_of(state) -> Annotations:
    """The app's ``Annotations`` (built on first use, closed with the app: ``state.extras``)."""
    with _BUILD_LOCK:  # request threads: one connection per app, not one per first request
        if "annotations" not in state.extras:
            state.extras["annotations"] = Annotations(state.config.path(state.config.review.database))
        return state.extras["annotations"]
