"""Which calls the bot placed itself (the dialer's callbacks), with their purpose and result, read from the CRM.

Why the CRM: the dialer records every attempt in ``callback_attempts`` (when, result, SIP status and the call's id
in the call store) next to the callback it served, whose ``reason`` is why the call was placed (see
``voicebot.dialer.ledger``); a call is outbound when an attempt names it. Since schema 4 the call store says so
itself too (``calls.direction``, ``purpose``, ``dial_result``, written by the dialer): ``pages.list_row`` takes
those first, with the ledger's reason beside them; the ledger alone marks calls placed before that. The CRM is
opened read-only; a missing CRM, or one from before the dialer, means no outbound calls rather than an error.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from voicebot.db import open_sqlite
from voicebot.review.redact import redact_text

log = logging.getLogger(__name__)

RESULTS = {"answered": "answered", "opted_out": "opted out", "no_answer": "no answer", "busy": "busy",
           "declined": "declined", "failed": "failed", "voicemail": "message left", "machine": "answering machine",
           "hung_up": "hung up"}  # others (confirmed, cancelled, rescheduled, rated, ...) show as they are


@dataclass(frozen=True)
class Outbound:
    callback_id: int
    purpose: str  # the callback's reason, redacted for the reader's role
    result: str  # the attempt's result (ledger.Attempt.result)
    sip_status: int | None = None


def _query(crm_path: Path, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
    if not crm_path.is_file():
        return []
    try:
        db = open_sqlite(crm_path, readonly=True)
    except (sqlite3.Error, OSError) as exc:
        log.warning("outbound calls: the CRM at %s cannot be opened: %s", crm_path, exc)
        return []
    try:
        db.row_factory = sqlite3.Row
        return db.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # a CRM from before the dialer
            return []
        raise
    finally:
        db.close()


def outbound_calls(crm_path: Path, call_ids: list[str], role: str | None) -> dict[str, Outbound]:
    """call id -> its callback's purpose and the attempt's result, for those of ``call_ids`` the dialer placed."""
    if not call_ids:
        return {}
    rows = _query(crm_path, "SELECT a.call_id, a.result, a.sip_status, c.id, c.reason FROM callback_attempts a "
                  "JOIN callbacks c ON c.id = a.callback_id WHERE a.call_id IN (SELECT value FROM json_each(?))",
                  (json.dumps(call_ids),))
    return {r["call_id"]: Outbound(r["id"], redact_text(r["reason"] or "", role), r["result"], r["sip_status"])
            for r in rows}


def outbound_ids(crm_path: Path) -> list[str]:
    """Every call id the dialer placed (the call list's direction filter)."""
    return [r["call_id"] for r in _query(crm_path, "SELECT DISTINCT call_id FROM callback_attempts "
                                                   "WHERE call_id IS NOT NULL")]
