"""Opening a SQLite database, the one way voicebot does it (the call store, the CRM, the review app's users).

Every connection may be used from any thread (each owner serialises its own use), waits for a busy writer
instead of failing at once, enforces foreign keys, and, for a writable file, runs in WAL mode so readers in
other processes (the review app, the CLI) never block the workers writing. Schemas and row factories stay with
their owners.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

MEMORY = ":memory:"


def open_sqlite(path: str | Path | None, *, readonly: bool = False, autocommit: bool = True,
            busy_timeout_s: float = 5.0, synchronous: Literal["NORMAL", "FULL"] | None = None) -> sqlite3.Connection:
    """A connection to the database file at ``path`` (None or ``":memory:"``: a private in-memory one).

    - ``readonly``: opened read-only (``mode=ro``); the file must exist. Otherwise its folder is created.
    - ``autocommit``: every statement commits unless inside an explicit ``BEGIN`` (``isolation_level=None``);
      False keeps Python's implicit transactions, which sqlite-utils (the CRM) expects.
    - ``busy_timeout_s``: how long a statement waits for another connection's write lock.
    - ``synchronous``: ``PRAGMA synchronous``, when the owner wants it stated (the call store: FULL).

    Raises sqlite3.Error or OSError; the caller wraps them in its own error.
    """
    memory = path is None or str(path) == MEMORY
    isolation = None if autocommit else ""
    if readonly and not memory:
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout_s, isolation_level=isolation,
                               check_same_thread=False)
    else:
        if not memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(MEMORY if memory else str(path), timeout=busy_timeout_s, isolation_level=isolation,
                               check_same_thread=False)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        if not readonly and not memory:
            conn.execute("PRAGMA journal_mode = WAL")
        if synchronous is not None:
            conn.execute(f"PRAGMA synchronous = {synchronous}")
    except BaseException:
        conn.close()
        raise
    return conn
