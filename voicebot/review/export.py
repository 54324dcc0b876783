"""Calls and their turns as records, CSV and JSON, redacted for a role: what ``voicebot review export`` writes and
``/api/v1/calls`` serves.

Why there is no redaction here: every value comes from ``pages.list_row`` (the call list's row) and
``pages.redacted_turns`` (the call page's turns), the one path that masks card numbers, PINs, dates of birth and
phone numbers for a role. An export therefore never shows a supervisor more than the pages do.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from voicebot.review.annotations import Annotations
from voicebot.review.outbound import outbound_calls
from voicebot.review.pages import ListRow, TurnView, list_row, redacted_turns
from voicebot.review.queries import ListFilter, call_row, list_calls
from voicebot.store import CallStore

CALL_COLUMNS = ("id", "started_at", "duration_s", "direction", "purpose", "result", "caller", "customer_id",
                "outcome", "reason", "topic", "sentiment", "qa_score", "flags", "summary", "test", "tags",
                "reviewed", "note")
TURN_COLUMNS = ("call_id", "idx", "role", "started_at", "ended_at", "text", "barged_in", "guard_event", "tools")
BATCH = 200


def call_record(row: ListRow) -> dict[str, Any]:
    """A call as plain JSON values, in ``CALL_COLUMNS`` order."""
    values = asdict(row)
    values["started_at"] = row.started_at.isoformat()
    return {k: values[k] for k in CALL_COLUMNS}


def turn_record(call_id: str, turn: TurnView) -> dict[str, Any]:
    """A turn as plain JSON values; tool arguments and results as the redacted JSON the call page shows."""
    return {"call_id": call_id, "idx": turn.idx, "role": turn.role, "started_at": turn.started_at,
            "ended_at": turn.ended_at, "text": turn.text, "barged_in": turn.barged_in,
            "guard_event": turn.guard_event,
            "tools": [{"name": t.name, "arguments": json.loads(t.arguments), "result": json.loads(t.result)}
                      for t in turn.tools]}


class Exporter:
    """Reads calls through the call list's query (same filters, same role-aware search) and shapes them."""

    def __init__(self, store: CallStore, tz: ZoneInfo, role: str, notes: Annotations | None = None,
                 crm_path: Path | None = None):
        self.store, self.tz, self.role, self.notes, self.crm_path = store, tz, role, notes, crm_path

    def rows(self, filters: ListFilter, limit: int | None = None) -> Iterator[ListRow]:
        """Every call matching ``filters`` (newest first), or the first ``limit``."""
        page, seen = 1, 0
        while True:
            found = list_calls(self.store, replace(filters, page=page), self.tz, BATCH,
                               self.role, self.notes, self.crm_path)
            if found.page != page or not found.rows:
                return
            ids = [r.call.id for r in found.rows]
            marks = self.notes.many(ids) if self.notes else {}
            outbound = outbound_calls(self.crm_path, ids, self.role) if self.crm_path else {}
            for r in found.rows:
                yield list_row(r, self.role, marks.get(r.call.id), outbound.get(r.call.id))
                seen += 1
                if limit is not None and seen >= limit:
                    return
            if page >= found.pages:
                return
            page += 1

    def page(self, filters: ListFilter, page_size: int) -> tuple[list[ListRow], int, int]:
        """One page (the API's paging): rows, total and the page actually returned."""
        found = list_calls(self.store, filters, self.tz, page_size, self.role, self.notes, self.crm_path)
        ids = [r.call.id for r in found.rows]
        marks = self.notes.many(ids) if self.notes else {}
        outbound = outbound_calls(self.crm_path, ids, self.role) if self.crm_path else {}
        return [list_row(r, self.role, marks.get(r.call.id), outbound.get(r.call.id)) for r in found.rows], \
            found.total, found.page

    def row(self, call_id: str) -> ListRow | None:
        """One call (any date, test or not), or None."""
        found = call_row(self.store, call_id)
        if found is None:
            return None
        marks = self.notes.many([call_id]) if self.notes else {}
        outbound = outbound_calls(self.crm_path, [call_id], self.role) if self.crm_path else {}
        return list_row(found, self.role, marks.get(call_id), outbound.get(call_id))

    def turns(self, call_id: str) -> list[dict[str, Any]]:
        return [turn_record(call_id, t) for t in redacted_turns(self.store.turns(call_id), self.role)]

    def call(self, row: ListRow) -> dict[str, Any]:
        """The call with its turns (the JSON form)."""
        return {**call_record(row), "turns": self.turns(row.id)}


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return " ".join(str(v) for v in value) if all(isinstance(v, str) for v in value) else json.dumps(value)
    if isinstance(value, (dict, datetime)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return "" if value is None else value


def write_csv(out: TextIO, records: Iterator[dict[str, Any]], columns: tuple[str, ...]) -> int:
    """One header line and a line per record (lists of words joined by spaces, tool calls as JSON)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    n = 0
    for record in records:
        writer.writerow([_cell(record[c]) for c in columns])
        n += 1
    return n


def write_json(out: TextIO, records: Iterator[dict[str, Any]]) -> int:
    """A JSON array written record by record (a large export is never held in memory as one string)."""
    out.write("[")
    n = 0
    for record in records:
        out.write(",\n" if n else "\n")
        out.write(json.dumps(record, ensure_ascii=False, default=str))
        n += 1
    out.write("\n]\n" if n else "]\n")
    return n


def export(exporter: Exporter, filters: ListFilter, fmt: str, table: str, out: TextIO) -> int:
    """Write the calls matching ``filters``: ``json`` (each call with its turns) or ``csv`` of ``table``
    ("calls" or "turns"); returns how many records were written."""
    rows = exporter.rows(filters)
    if fmt == "json":
        return write_json(out, (exporter.call(r) for r in rows))
    if table == "turns":
        return write_csv(out, (t for r in rows for t in exporter.turns(r.id)), TURN_COLUMNS)
    return write_csv(out, (call_record(r) for r in rows), CALL_COLUMNS)


def export_text(exporter: Exporter, filters: ListFilter, fmt: str, table: str = "calls") -> str:
    buffer = io.StringIO()
    export(exporter, filters, fmt, table, buffer)
    return buffer.getvalue()
