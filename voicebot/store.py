"""The call store: every call, turn, event, outcome and recording, in SQLite.

Durability is the point: the database runs in WAL mode with ``synchronous=FULL`` and every write is its own
committed transaction, so when the process dies mid-call the call row and every finished turn are on disk.
At the next start ``mark_interrupted()`` turns calls left ``in_progress`` into ``interrupted``.

The schema is versioned with ``PRAGMA user_version``: ``MIGRATIONS[i]`` takes a database from version ``i`` to
``i + 1``, so a later change appends a migration (``ALTER TABLE ... ADD COLUMN``) and old databases are upgraded
in place. Enumerations (outcome, role) are checked in Python, not with SQL CHECK constraints, because SQLite
cannot alter a constraint without rebuilding the table.

Events are written and read through ``voicebot.events`` (``to_row`` masks PINs, dates of birth and card numbers;
``Event.parsed`` gives the typed event). Other values are stored as given: redaction by role is the review app's
job.
Wall-clock times are ISO 8601 UTC text; times inside a call (turns, events) are seconds of call audio.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from voicebot.db import open_sqlite
from voicebot.events import StoredEvent, parse, to_row
from voicebot.fileio import write_wav_atomic
from voicebot.store_journal import Op, Spill, turn_from, when
from voicebot.store_records import (  # noqa: F401 - the records are part of the store's interface
    _ANALYSIS_JSON, _TIMING_NAMES, _UPDATABLE, ANALYSIS_COLUMNS, MIGRATIONS, RECORDINGS, Migration, ROLES, Call, CallFilter,
    Event, Outcome, Recording, Role, StoreError, Turn, TurnTimings, _iso, _json, _time, _utc_now)


class CallStore:
    """The call store on one SQLite file; safe to share between threads (one connection behind a lock).

    Readers in other processes (the review app) may open the same file, with ``readonly=True``; WAL lets them
    read while a worker writes. Several workers may share one database: each passes its own ``worker`` name
    to ``start_call`` and to ``mark_interrupted`` so one worker's start never ends another's live calls.
    """

    def __init__(self, path: str | Path, recordings_dir: str | Path, *, readonly: bool = False,
                 migrations: Sequence[Sequence[Migration]] = MIGRATIONS, now: Callable[[], datetime] = _utc_now,
                 spill_dir: str | Path | None = None):
        self.path = str(path)
        self.recordings_dir = Path(recordings_dir)
        self._now = now
        self._lock = threading.RLock()
        try:
            self._db = open_sqlite(self.path, readonly=readonly, synchronous="FULL")
            self._db.row_factory = sqlite3.Row
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"call store {self.path}: cannot open: {exc}") from exc
        self._migrate(migrations, readonly)
        self.spill = Spill(self.path, spill_dir)  # records a failing database could not take (store_journal)
        self.imported = 0 if readonly else self.spill.import_into(self.apply)

    # -- plumbing ---------------------------------------------------------------------------------------

    @contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        """One committed transaction; any failure rolls back this write only and raises StoreError."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                if self._db.in_transaction:  # SQLite may already have rolled back (e.g. after an I/O error)
                    try:
                        self._db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"call store {self.path}: {what}: {exc}") from exc
                raise

    def _read(self, what: str, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"call store {self.path}: {what}: {exc}") from exc

    @property
    def schema_version(self) -> int:
        return self._read("schema version", "PRAGMA user_version")[0][0]

    def pragma(self, name: str) -> Any:
        """One PRAGMA value, e.g. ``pragma("journal_mode")`` -> "wal" (for checks and `voicebot` diagnostics)."""
        if not name.isidentifier():
            raise ValueError(f"not a pragma name: {name!r}")
        return self._read("pragma", f"PRAGMA {name}")[0][0]

    def _migrate(self, migrations: Sequence[Sequence[Migration]], readonly: bool) -> None:
        target = len(migrations)
        current = self.schema_version
        if current > target:
            raise StoreError(f"call store {self.path}: schema version {current} is newer than this code "
                             f"(knows up to {target}); upgrade voicebot")
        if current == target:
            return
        if readonly:
            raise StoreError(f"call store {self.path}: schema version {current}, needs {target}; "
                             "open it once read-write to migrate")
        with self._write("migrate") as db:
            # read again inside the write lock: another worker may have migrated in the meantime
            current = db.execute("PRAGMA user_version").fetchone()[0]
            for version in range(current, target):
                for statement in migrations[version]:
                    if callable(statement):
                        statement(db)  # a data migration in Python (e.g. store_scrub.scrub_secrets)
                    else:
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {target}")

    def close(self) -> None:
        if getattr(self, "spill", None) is not None and self.spill.unwritten:
            self.spill.write([])  # records only memory held: a last try to keep them in a spill file
        with self._lock:
            self._db.close()

    def __enter__(self) -> CallStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes -----------------------------------------------------------------------------------------

    def start_call(self, caller_id: str | None, *, customer_id: str | None = None, worker: str | None = None,
                   call_id: str | None = None, when: datetime | None = None, test: bool = False) -> str:
        """Create the call row (outcome ``in_progress``) and return its id (a new UUID unless given). ``test``:
        a test call (chat, simulate, bench), hidden by default in the review app."""
        call_id = call_id or str(uuid.uuid4())
        with self._write("start call") as db:
            db.execute("INSERT INTO calls (id, started_at, caller_id, customer_id, worker, outcome, test) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (call_id, _iso(when or self._now()), caller_id, customer_id, worker, Outcome.IN_PROGRESS,
                        int(test)))
        return call_id

    def _require_call(self, db: sqlite3.Connection, call_id: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM calls WHERE id = ?", (call_id,)).fetchone()
        if row is None:
            raise StoreError(f"call store {self.path}: no call {call_id!r}")
        return row

    def add_turn(self, call_id: str, turn: Turn, when: datetime | None = None) -> Turn:
        """Commit one finished turn now; returns it with ``call_id`` and ``idx`` (0, 1, ... per call) set.
        ``when`` (wall clock, default now) orders it among the call's events (``voicebot.outcomes.timeline``)."""
        if turn.role not in ROLES:
            raise ValueError(f"turn role {turn.role!r}: one of {ROLES}")
        timings = {f.name: getattr(turn.timings, f.name) for f in fields(TurnTimings)}
        with self._write("add turn") as db:
            self._require_call(db, call_id)
            idx = db.execute("SELECT COALESCE(MAX(idx), -1) + 1 FROM turns WHERE call_id = ?",
                             (call_id,)).fetchone()[0]
            db.execute(
                "INSERT INTO turns (call_id, idx, role, text, started_at, ended_at, timings, tool_calls, "
                "sentiment, barged_in, guard_event, stt_confidence, stt_avg_logprob, stt_no_speech_prob, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (call_id, idx, turn.role, turn.text, turn.started_at, turn.ended_at, _json(timings),
                 _json([dict(t) for t in turn.tool_calls]), turn.sentiment, int(turn.barged_in),
                 turn.guard_event, turn.stt_confidence, turn.stt_avg_logprob, turn.stt_no_speech_prob,
                 _iso(when or self._now())))
        return replace(turn, call_id=call_id, idx=idx)

    def add_event(self, call_id: str, event: StoredEvent | str, data: Mapping[str, Any] | None = None,
                  at: float | None = None, when: datetime | None = None) -> Event:
        """Commit one event (``at``: seconds of call audio, if known): a ``voicebot.events`` stored event, or a kind
        and its data, which are parsed into one first. Either way the row is ``events.to_row``'s: secrets masked."""
        if isinstance(event, str):
            event = parse(event, data)
        elif data is not None:
            raise TypeError("add_event: data goes with a kind, not with a typed event")
        kind, values = to_row(event)
        recorded = when or self._now()
        with self._write("add event") as db:
            self._require_call(db, call_id)
            cur = db.execute("INSERT INTO events (call_id, at, recorded_at, kind, data) VALUES (?, ?, ?, ?, ?)",
                             (call_id, at, _iso(recorded), kind, _json(values)))
        return Event(kind, values, at, call_id, cur.lastrowid, recorded)

    def update_call(self, call_id: str, **values: str | None) -> None:
        """Set fields known only during the call: ``customer_id``, ``summary``, ``transfer_target``, ..."""
        unknown = set(values) - set(_UPDATABLE)
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}; updatable: {_UPDATABLE}")
        if not values:
            return
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._write("update call") as db:
            self._require_call(db, call_id)
            db.execute(f"UPDATE calls SET {assignments} WHERE id = ?", (*values.values(), call_id))

    def finish_call(self, call_id: str, outcome: Outcome | str, reason: str | None = None, *,
                    transfer_target: str | None = None, summary: str | None = None, when: datetime | None = None,
                    after_interruption: bool = False) -> None:
        """Record how the call ended. Finishing a call twice is an error (the first outcome stays); with
        ``after_interruption`` (a spilled record imported) an ``interrupted`` mark made at a restart is replaced."""
        outcome = Outcome(outcome)
        if outcome in (Outcome.IN_PROGRESS, Outcome.INTERRUPTED):
            raise ValueError(f"outcome {outcome.value!r} is set by the store, not by finish_call")
        open_outcomes = (Outcome.IN_PROGRESS, Outcome.INTERRUPTED) if after_interruption else (Outcome.IN_PROGRESS,)
        with self._write("finish call") as db:
            row = self._require_call(db, call_id)
            if row["outcome"] not in open_outcomes:
                raise StoreError(f"call store {self.path}: call {call_id} already ended ({row['outcome']})")
            db.execute("UPDATE calls SET outcome = ?, outcome_reason = ?, ended_at = ?, "
                       "transfer_target = COALESCE(?, transfer_target), summary = COALESCE(?, summary) "
                       "WHERE id = ?",
                       (outcome, reason, _iso(when or self._now()), transfer_target, summary, call_id))

    def apply(self, op: Op) -> None:
        """Write one record op of ``voicebot.store_journal`` (live from a call's queue, or from a spill file) with
        the time it happened. Replaying is safe where it matters: a call row that exists is not created again, a
        finished call is not finished again, an ``interrupted`` mark gives way to the outcome the call had."""
        name, call_id = op["op"], op["call_id"]
        if name == "start_call":
            if not self._read("find call", "SELECT 1 FROM calls WHERE id = ?", (call_id,)):
                self.start_call(op.get("caller_id"), customer_id=op.get("customer_id"), worker=op.get("worker"),
                                call_id=call_id, when=when(op), test=bool(op.get("test")))
        elif name == "add_turn":
            self.add_turn(call_id, turn_from(op["turn"]), when=when(op))
        elif name == "add_event":
            self.add_event(call_id, op["kind"], op.get("data") or {}, at=op.get("audio_at"), when=when(op))
        elif name == "update_call":
            self.update_call(call_id, **op["values"])
        elif name == "finish_call":
            row = self._read("find call", "SELECT outcome FROM calls WHERE id = ?", (call_id,))
            if row and row[0][0] in (Outcome.IN_PROGRESS, Outcome.INTERRUPTED):
                self.finish_call(call_id, op["outcome"], op.get("reason"), transfer_target=op.get("transfer_target"),
                                 summary=op.get("summary"), when=when(op), after_interruption=True)
        else:
            raise ValueError(f"unknown record op {name!r}")

    def mark_interrupted(self, worker: str | None = None,
                         reason: str = "the worker stopped before the call ended") -> int:
        """At start-up: calls still ``in_progress`` (of this ``worker``, or all when None) become interrupted."""
        sql = "UPDATE calls SET outcome = ?, outcome_reason = ? WHERE outcome = ?"
        params: list[Any] = [Outcome.INTERRUPTED, reason, Outcome.IN_PROGRESS]
        if worker is not None:
            sql += " AND worker = ?"
            params.append(worker)
        with self._write("mark interrupted calls") as db:
            return db.execute(sql, params).rowcount

    def save_recording(self, call_id: str, which: Recording, pcm: bytes, sample_rate: int) -> Path:
        """Write mono s16le PCM as ``recordings_dir/<call_id>/<which>.wav`` and note it on the call.

        The file is written to a temporary name, synced and renamed, so a crash never leaves half a WAV.
        """
        if which not in RECORDINGS:
            raise ValueError(f"recording {which!r}: one of {RECORDINGS}")
        if sample_rate <= 0 or len(pcm) % 2:
            raise ValueError("a recording is mono 16-bit PCM at a positive sample rate")
        self.get_call(call_id)  # an unknown call is an error before anything is written
        path = self.recordings_dir / call_id / f"{which}.wav"
        try:
            write_wav_atomic(path, pcm, sample_rate, sync=True)
        except OSError as exc:
            raise StoreError(f"call store: cannot save the {which} recording of {call_id}: {exc}") from exc
        with self._write("save recording") as db:
            db.execute(f"UPDATE calls SET {which}_recording = ? WHERE id = ?", (f"{call_id}/{which}.wav", call_id))
        return path

    # -- reads ------------------------------------------------------------------------------------------

    @staticmethod
    def _call(row: sqlite3.Row) -> Call:
        values = {f.name: row[f.name] for f in fields(Call) if f.name in row.keys()}
        values.update(started_at=_time(row["started_at"]), ended_at=_time(row["ended_at"]),
                      outcome=Outcome(row["outcome"]))
        if "test" in values:
            values["test"] = bool(values["test"])
        return Call(**values)

    def get_call(self, call_id: str) -> Call:
        rows = self._read("get call", "SELECT * FROM calls WHERE id = ?", (call_id,))
        if not rows:
            raise StoreError(f"call store {self.path}: no call {call_id!r}")
        return self._call(rows[0])

    def recording_file(self, call: Call, which: Recording) -> Path | None:
        """The absolute path of a call's recording, or None when none was saved."""
        relative = getattr(call, f"{which}_recording")
        return self.recordings_dir / relative if relative else None

    def list_calls(self, filters: CallFilter | None = None, limit: int = 50, offset: int = 0) -> list[Call]:
        """Calls matching every set field of ``filters``, newest first."""
        where, params = (filters or CallFilter()).sql()
        rows = self._read("list calls", f"SELECT * FROM calls{where} ORDER BY started_at DESC, id "
                          "LIMIT ? OFFSET ?", (*params, limit, offset))
        return [self._call(row) for row in rows]

    def count_calls(self, filters: CallFilter | None = None) -> int:
        """How many calls ``list_calls`` pages through with the same filters."""
        where, params = (filters or CallFilter()).sql()
        return self._read("count calls", f"SELECT COUNT(*) FROM calls{where}", params)[0][0]

    def turns(self, call_id: str) -> list[Turn]:
        rows = self._read("read turns", "SELECT * FROM turns WHERE call_id = ? ORDER BY idx", (call_id,))
        names = {f.name for f in fields(Turn)}
        out = []
        for row in rows:
            values = {k: row[k] for k in row.keys() if k in names}
            timings = {k: v for k, v in json.loads(row["timings"]).items() if k in _TIMING_NAMES}
            values.update(timings=TurnTimings(**timings),
                          tool_calls=tuple(json.loads(row["tool_calls"])), barged_in=bool(row["barged_in"]))
            out.append(Turn(**values))
        return out

    def events(self, call_id: str) -> list[Event]:
        rows = self._read("read events", "SELECT * FROM events WHERE call_id = ? ORDER BY id", (call_id,))
        return [Event(row["kind"], json.loads(row["data"]), row["at"], row["call_id"], row["id"],
                      _time(row["recorded_at"])) for row in rows]

    # -- after-call analysis (written by voicebot.review.analysis, read by the review app) ---------------------

    def save_analysis(self, call_id: str, **values: Any) -> None:
        """Insert or update the call's analysis row; only the given columns change (see ANALYSIS_COLUMNS).

        JSON columns (``sentiment_trajectory``, ``qa``, ``flags``) take Python lists/dicts.
        """
        unknown = set(values) - set(ANALYSIS_COLUMNS)
        if unknown:
            raise ValueError(f"unknown analysis columns {sorted(unknown)}; known: {ANALYSIS_COLUMNS}")
        values.setdefault("analyzed_at", _iso(self._now()))
        names = list(values)
        params = [_json(v) if k in _ANALYSIS_JSON else v for k, v in values.items()]
        updates = ", ".join(f"{name} = excluded.{name}" for name in names)
        with self._write("save analysis") as db:
            self._require_call(db, call_id)
            db.execute(f"INSERT INTO call_analysis (call_id, {', '.join(names)}) "
                       f"VALUES (?, {', '.join('?' * len(names))}) ON CONFLICT (call_id) DO UPDATE SET {updates}",
                       (call_id, *params))

    def get_analysis(self, call_id: str) -> dict[str, Any] | None:
        """The call's analysis row as a dict (JSON columns decoded), or None before any analysis."""
        rows = self._read("get analysis", "SELECT * FROM call_analysis WHERE call_id = ?", (call_id,))
        if not rows:
            return None
        return {k: json.loads(rows[0][k]) if k in _ANALYSIS_JSON else rows[0][k] for k in rows[0].keys()}

    def add_function(self, name: str, fn: Callable[[Any], Any]) -> None:
        """Make ``fn`` callable by name in ``select`` queries (one argument, deterministic): the review app searches
        text as the reader's role sees it."""
        with self._lock:
            self._db.create_function(name, 1, fn, deterministic=True)

    def select(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Rows of one read-only query (``SELECT``/``WITH``), for reports over the store: the review app's
        filters and KPIs join calls, turns and analysis in ways the methods above do not offer."""
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            raise ValueError("select() runs SELECT queries only; writes go through the store's methods")
        with self._lock:
            self._db.execute("PRAGMA query_only = ON")  # a WITH ... DELETE fails instead of writing
            try:
                return self._read("query", sql, params)
            finally:
                self._db.execute("PRAGMA query_only = OFF")

    @staticmethod
    def call_from_row(row: sqlite3.Row) -> Call:
        """A Call from a ``calls`` row returned by ``select`` (extra columns are ignored)."""
        return CallStore._call(row)
