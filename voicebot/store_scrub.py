"""A one-time scrub of call-store rows written before secrets were masked at write time.

Why a migration and not a script: a call store is upgraded in place the first time new code opens it read-write
(``CallStore._migrate``), so every installation that ever stored a PIN, a date of birth or a card number in clear
(caller turns, summaries, event data, tool arguments and results, from versions before the masking) loses them
at its first start, without an admin having to know. The masks are the ones used at write time today
(``voicebot.review.redact``): a caller turn that answers a bot question for a PIN, a date of birth or a card
number has every number masked; other text has PINs, dates of birth and card numbers masked; JSON values have
secret keys (``pin``, ``card_number``, ``date_of_birth``) masked whole. The masks are idempotent, so running
the scrub on rows that were already masked changes nothing.

Recordings are audio and are not rewritten here: the review app silences turns that held secrets at playback.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from voicebot.review.redact import answers_secret_question, mask_secret_data, mask_secrets


def scrub_secrets(db: sqlite3.Connection) -> dict[str, int]:
    """Mask secrets in every stored text and JSON value, inside the caller's transaction; returns how many rows
    of each table changed (for the log and the tests)."""
    changed = {"turns": 0, "calls": 0, "call_analysis": 0, "events": 0}
    calls = [row[0] for row in db.execute("SELECT id FROM calls")]
    for call_id in calls:
        rows = db.execute("SELECT idx, role, text, tool_calls FROM turns WHERE call_id = ? ORDER BY idx",
                          (call_id,)).fetchall()
        secret = answers_secret_question([(row[1], row[2] or "") for row in rows])
        for (idx, role, text, tool_calls), answer in zip(rows, secret):
            new_text = mask_secrets(text, secret_answer=answer) if role == "caller" else mask_secrets(text)
            new_tools = _masked_json(tool_calls)
            if new_text != (text or "") or new_tools != tool_calls:
                db.execute("UPDATE turns SET text = ?, tool_calls = ? WHERE call_id = ? AND idx = ?",
                           (new_text, new_tools, call_id, idx))
                changed["turns"] += 1
    for call_id, summary in db.execute("SELECT id, summary FROM calls WHERE summary IS NOT NULL").fetchall():
        if (masked := mask_secrets(summary)) != summary:
            db.execute("UPDATE calls SET summary = ? WHERE id = ?", (masked, call_id))
            changed["calls"] += 1
    for column in ("summary", "generated_summary"):
        for call_id, text in db.execute(f"SELECT call_id, {column} FROM call_analysis "  # noqa: S608 - fixed names
                                        f"WHERE {column} IS NOT NULL").fetchall():
            if (masked := mask_secrets(text)) != text:
                db.execute(f"UPDATE call_analysis SET {column} = ? WHERE call_id = ?", (masked, call_id))
                changed["call_analysis"] += 1
    for event_id, data in db.execute("SELECT id, data FROM events").fetchall():
        if (masked := _masked_json(data)) != data:
            db.execute("UPDATE events SET data = ? WHERE id = ?", (masked, event_id))
            changed["events"] += 1
    return changed


def _masked_json(text: str | None) -> str | None:
    """``text`` (stored JSON) with its secrets masked; unchanged when it is not JSON (never lose a row over it)."""
    if not text:
        return text
    try:
        value: Any = json.loads(text)
    except ValueError:
        return mask_secrets(text)
    masked = mask_secret_data(value)
    return text if masked == value else json.dumps(masked, ensure_ascii=False, default=str)
