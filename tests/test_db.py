"""The one way voicebot opens SQLite: foreign keys on, WAL for writable files, read-only when asked."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from voicebot.db import open_sqlite


def test_a_file_opens_in_wal_with_foreign_keys_and_its_folder_made(tmp_path: Path) -> None:
    path = tmp_path / "data" / "x.db"
    db = open_sqlite(path, synchronous="FULL")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    db.execute("CREATE TABLE a (id INTEGER PRIMARY KEY)")
    db.execute("CREATE TABLE b (a_id INTEGER REFERENCES a (id))")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO b VALUES (7)")
    assert not db.in_transaction  # autocommit: nothing waits for a commit
    db.close()


def test_read_only_and_implicit_transactions(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    writer = open_sqlite(path, autocommit=False)
    writer.execute("CREATE TABLE t (v)")
    writer.execute("INSERT INTO t VALUES (1)")
    assert writer.in_transaction  # Python's implicit BEGIN, as sqlite-utils expects
    writer.commit()
    reader = open_sqlite(path, readonly=True)
    assert reader.execute("SELECT v FROM t").fetchall() == [(1,)]
    with pytest.raises(sqlite3.OperationalError):
        reader.execute("INSERT INTO t VALUES (2)")
    with pytest.raises(sqlite3.OperationalError):
        open_sqlite(tmp_path / "missing.db", readonly=True)
    assert open_sqlite(None).execute("PRAGMA foreign_keys").fetchone()[0] == 1
