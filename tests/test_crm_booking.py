"""Two callers book one slot at the same moment, on one database file: exactly one wins."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from datetime import datetime

import pytest
from crm_support import make_repo

from voicebot.crm.models import Booking, SlotTaken

ROUNDS = 5


def _slots(path, count: int) -> list[int]:
    repo = make_repo(path)
    ids = [repo.add_slot("printer repair", datetime(2026, 3, 3, 9 + i), resource="Sam").id for i in range(count)]
    repo.close()
    return ids


def _book(path, slot_id: int, name: str, barrier) -> str:
    repo = make_repo(path)  # each contender has its own connection, as separate calls or workers would
    try:
        barrier.wait(timeout=30)
        result = repo.book_slot(slot_id, name=name, phone="+15550102030")
    finally:
        repo.close()
    return "won" if isinstance(result, Booking) else "taken" if isinstance(result, SlotTaken) else repr(result)


def _process_worker(path, slot_ids, name, barrier, queue) -> None:
    queue.put([_book(path, slot_id, name, barrier) for slot_id in slot_ids])


def _assert_one_winner_per_slot(path, outcomes: list[list[str]], slot_ids: list[int]) -> None:
    for round_outcomes in zip(*outcomes):
        assert sorted(round_outcomes) == ["taken"] * (len(round_outcomes) - 1) + ["won"], round_outcomes
    repo = make_repo(path)
    per_slot = {r["slot_id"]: r["n"] for r in repo.db.query("select slot_id, count(*) n from bookings group by 1")}
    assert per_slot == {slot_id: 1 for slot_id in slot_ids}


def test_concurrent_bookings_in_threads_one_wins(tmp_path):
    path = tmp_path / "crm.db"
    slot_ids = _slots(path, ROUNDS)
    contenders = 4
    outcomes: list[list[str]] = [[] for _ in range(contenders)]
    barriers = [threading.Barrier(contenders) for _ in slot_ids]

    def run(index: int) -> None:
        for slot_id, barrier in zip(slot_ids, barriers):
            outcomes[index].append(_book(path, slot_id, f"caller {index}", barrier))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    _assert_one_winner_per_slot(path, outcomes, slot_ids)


def test_concurrent_bookings_in_processes_one_wins(tmp_path):
    path = tmp_path / "crm.db"
    slot_ids = _slots(path, ROUNDS)
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_process_worker, args=(path, slot_ids, f"caller {i}", barrier, queue))
               for i in range(2)]
    for worker in workers:
        worker.start()
    outcomes = [queue.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    _assert_one_winner_per_slot(path, outcomes, slot_ids)


def test_the_database_itself_refuses_a_second_booking(tmp_path):
    repo = make_repo(tmp_path / "crm.db")
    slot_id = _slots(tmp_path / "crm.db", 1)[0]
    repo.book_slot(slot_id, name="Alice")
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        repo.db["bookings"].insert({"slot_id": slot_id, "name": "Mallory", "created_at": "2026-03-02T09:00:00"})
