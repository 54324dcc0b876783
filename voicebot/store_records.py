"""The call store's records: calls, turns, timings, events, outcomes, the filter for listing calls, and the
schema migrations. Plain typed values with no database handle, so the review app, the session and the tests can
use them without opening a store (``voicebot.store.CallStore`` reads and writes them).

Wall-clock times are ISO 8601 UTC text; times inside a call (turns, events) are seconds of call audio.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, Literal

from voicebot.events import StoredEvent, parse
from voicebot.store_scrub import scrub_secrets


class StoreError(Exception):
    """The store could not do what was asked (disk full, I/O error, unknown call, ...).

    Rows committed before the failure are never lost: a failed write is rolled back on its own.
    """


class Outcome(StrEnum):
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    TRANSFERRED = "transferred"
    TRANSFER_FAILED = "transfer_failed"
    ABANDONED = "abandoned"
    ERROR = "error"
    INTERRUPTED = "interrupted"


Role = Literal["caller", "bot", "system"]
Recording = Literal["caller", "bot", "mixed"]
ROLES = ("caller", "bot", "system")
RECORDINGS = ("caller", "bot", "mixed")


@dataclass(frozen=True)
class TurnTimings:
    """Seconds of call audio at which each stage of a turn happened (None when it did not)."""

    end_of_speech: float | None = None
    transcript_ready: float | None = None
    first_token: float | None = None
    first_sentence: float | None = None
    first_audio_out: float | None = None


@dataclass(frozen=True)
class Turn:
    """One turn. Pass it to ``add_turn`` without ``call_id``/``idx``; the store fills them in."""

    role: Role
    text: str
    started_at: float | None = None  # seconds of call audio
    ended_at: float | None = None
    timings: TurnTimings = field(default_factory=TurnTimings)
    tool_calls: tuple[Mapping[str, Any], ...] = ()  # each e.g. {"name", "arguments", "result"}
    sentiment: float | None = None
    barged_in: bool = False
    guard_event: str | None = None
    stt_confidence: float | None = None
    stt_avg_logprob: float | None = None
    stt_no_speech_prob: float | None = None
    call_id: str | None = None
    idx: int | None = None


@dataclass(frozen=True)
class Event:
    """A stored event row: a guard event, transfer, error, ... ``at`` is seconds of call audio; ``recorded_at`` the
    wall clock. ``kind`` and ``data`` are as stored; ``parsed`` is the typed event of ``voicebot.events``."""

    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)
    at: float | None = None
    call_id: str | None = None
    id: int | None = None
    recorded_at: datetime | None = None

    @property
    def parsed(self) -> StoredEvent:
        return parse(self.kind, self.data)


@dataclass(frozen=True)
class Call:
    id: str
    started_at: datetime
    caller_id: str | None
    outcome: Outcome
    ended_at: datetime | None = None
    customer_id: str | None = None
    worker: str | None = None
    outcome_reason: str | None = None
    transfer_target: str | None = None
    summary: str | None = None
    caller_recording: str | None = None  # relative to recordings_dir; see CallStore.recording_file
    bot_recording: str | None = None
    mixed_recording: str | None = None
    test: bool = False  # a test call (chat, simulate, bench): hidden by default in the review app
    direction: str = "inbound"  # outbound: placed by the dialer (issue 18), with its purpose and dial_result
    purpose: str | None = None
    dial_result: str | None = None
    rating: int | None = None  # a check-in's rating, 1-5


@dataclass(frozen=True)
class CallFilter:
    """Filters for ``list_calls``/``count_calls``; unset fields do not filter. ``until`` is exclusive."""

    outcome: Outcome | str | Sequence[Outcome | str] | None = None
    caller_id: str | None = None
    customer_id: str | None = None
    worker: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def sql(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.outcome is not None:
            outcomes = [self.outcome] if isinstance(self.outcome, str) else list(self.outcome)
            clauses.append(f"outcome IN ({', '.join('?' * len(outcomes))})")
            params += [Outcome(o).value for o in outcomes]
        for name in ("caller_id", "customer_id", "worker"):
            if getattr(self, name) is not None:
                clauses.append(f"{name} = ?")
                params.append(getattr(self, name))
        for name, op in (("since", ">="), ("until", "<")):
            if getattr(self, name) is not None:
                clauses.append(f"started_at {op} ?")
                params.append(_iso(getattr(self, name)))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


# MIGRATIONS[i] takes the schema from version i to i + 1; append, never edit a released entry. An entry holds SQL
# statements and, for data migrations, functions given the open transaction's connection.
Migration = str | Callable[[sqlite3.Connection], Any]
MIGRATIONS: list[Sequence[Migration]] = [
    (
        """CREATE TABLE calls (
            id TEXT PRIMARY KEY, started_at TEXT NOT NULL, ended_at TEXT, caller_id TEXT, customer_id TEXT,
            worker TEXT, outcome TEXT NOT NULL, outcome_reason TEXT, transfer_target TEXT, summary TEXT,
            caller_recording TEXT, bot_recording TEXT, mixed_recording TEXT)""",
        "CREATE INDEX calls_started ON calls (started_at)",
        "CREATE INDEX calls_outcome ON calls (outcome)",
        """CREATE TABLE turns (
            call_id TEXT NOT NULL REFERENCES calls (id), idx INTEGER NOT NULL, role TEXT NOT NULL,
            text TEXT NOT NULL, started_at REAL, ended_at REAL, timings TEXT NOT NULL DEFAULT '{}',
            tool_calls TEXT NOT NULL DEFAULT '[]', sentiment REAL, barged_in INTEGER NOT NULL DEFAULT 0,
            guard_event TEXT, stt_confidence REAL, stt_avg_logprob REAL, stt_no_speech_prob REAL,
            PRIMARY KEY (call_id, idx))""",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY, call_id TEXT NOT NULL REFERENCES calls (id), at REAL,
            recorded_at TEXT NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL DEFAULT '{}')""",
        "CREATE INDEX events_call ON events (call_id, id)",
    ),
    (
        # After-call analysis (voicebot.review.analysis): one row per call, written in two steps (the
        # deterministic part at once, the model's part later), so each column may still be NULL.
        """CREATE TABLE call_analysis (
            call_id TEXT PRIMARY KEY REFERENCES calls (id), analyzed_at TEXT NOT NULL, model TEXT,
            summary TEXT, topic TEXT, sentiment_mean REAL, sentiment_min REAL,
            sentiment_trajectory TEXT NOT NULL DEFAULT '[]', qa_score REAL, qa TEXT NOT NULL DEFAULT '{}',
            flags TEXT NOT NULL DEFAULT '{}', error TEXT)""",
        "CREATE INDEX call_analysis_topic ON call_analysis (topic)",
    ),
    (
        # Test calls (``voicebot chat``, ``simulate``, benchmarks) are kept but hidden by default in the review
        # app; a turn's wall-clock time orders turns and events of a call exactly (audio time may be 0 on a
        # console line); the model's summary is kept apart from the one built from the record.
        "ALTER TABLE calls ADD COLUMN test INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE turns ADD COLUMN recorded_at TEXT",
        "ALTER TABLE call_analysis ADD COLUMN generated_summary TEXT",
    ),
    (
        # Calls the bot placed (voicebot.dialer): ``direction`` outbound, ``purpose`` (callback, reminder,
        # checkin, message) and ``dial_result`` (answered, confirmed, cancelled, rescheduled, rated, voicemail,
        # machine, opted_out, ...), so the review app can list them apart from inbound calls.
        "ALTER TABLE calls ADD COLUMN direction TEXT NOT NULL DEFAULT 'inbound'",
        "ALTER TABLE calls ADD COLUMN purpose TEXT",
        "ALTER TABLE calls ADD COLUMN dial_result TEXT",
    ),
    (
        # The rating (1-5) a callee gave on a next-morning check-in (voicebot.dialer.checkin), for the dashboard;
        # the CRM's checkin_results keeps the comment and whether they asked for a call.
        "ALTER TABLE calls ADD COLUMN rating INTEGER",
    ),
    (
        # Rows stored by versions that did not mask secrets at write time lose their PINs, dates of birth and
        # card numbers in clear (voicebot.store_scrub; idempotent on rows already masked).
        scrub_secrets,
    ),
]

_TIMING_NAMES = frozenset(f.name for f in fields(TurnTimings))
ANALYSIS_COLUMNS = ("analyzed_at", "model", "summary", "topic", "sentiment_mean", "sentiment_min",
                    "sentiment_trajectory", "qa_score", "qa", "flags", "error", "generated_summary")
_ANALYSIS_JSON = frozenset({"sentiment_trajectory", "qa", "flags"})
_UPDATABLE = ("customer_id", "summary", "transfer_target", "outcome_reason", "direction", "purpose", "dial_result",
              "rating")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _json(value: Any) -> str:
    # default=str: a tool result holding a date or Decimal must never cost the turn
    return json.dumps(value, ensure_ascii=False, default=str)


def _iso(moment: datetime) -> str:
    """Fixed-width UTC text, so comparing strings in SQL compares times."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
