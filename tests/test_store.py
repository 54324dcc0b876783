"""The call store: durability settings, crash survival, outcomes, recordings, migrations, errors."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
import wave
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from voicebot.audio import read_wav
from voicebot.store import (
    MIGRATIONS,
    CallFilter,
    CallStore,
    Outcome,
    StoreError,
    Turn,
    TurnTimings,
)
from voicebot.store_scrub import scrub_secrets


@pytest.fixture
def store(tmp_path: Path) -> CallStore:
    with CallStore(tmp_path / "calls.db", tmp_path / "recordings") as s:
        yield s


def test_wal_and_synchronous_full_are_set(store: CallStore, tmp_path: Path) -> None:
    assert store.pragma("journal_mode") == "wal"
    assert store.pragma("synchronous") == 2  # FULL
    assert store.pragma("foreign_keys") == 1
    # WAL is a property of the file: a plain sqlite3 connection sees it too
    with sqlite3.connect(tmp_path / "calls.db") as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_call_and_turns_survive_a_killed_process(tmp_path: Path) -> None:
    db, recordings = tmp_path / "calls.db", tmp_path / "rec"
    child = textwrap.dedent(f"""
        import os, signal
        from voicebot.store import CallStore, Turn, TurnTimings
        store = CallStore({str(db)!r}, {str(recordings)!r})
        call = store.start_call("+15551234567", worker="w1")
        store.add_turn(call, Turn("caller", "Where is my order?", 1.0, 2.4,
                                  TurnTimings(end_of_speech=2.4, transcript_ready=2.9), stt_confidence=0.91))
        store.add_turn(call, Turn("bot", "Your order 10452 ships today.", 3.1, 5.0,
                                  TurnTimings(first_token=3.0, first_audio_out=3.1),
                                  tool_calls=({{"name": "order_status", "arguments": {{"order": "10452"}},
                                               "result": {{"status": "shipped"}}}},)))
        print(call, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == -9, result.stderr
    call_id = result.stdout.strip()

    with CallStore(db, recordings) as store:
        call = store.get_call(call_id)
        assert call.outcome is Outcome.IN_PROGRESS and call.caller_id == "+15551234567"
        turns = store.turns(call_id)
        assert [(t.idx, t.role, t.text) for t in turns] == [
            (0, "caller", "Where is my order?"), (1, "bot", "Your order 10452 ships today.")]
        assert turns[0].timings == TurnTimings(end_of_speech=2.4, transcript_ready=2.9)
        assert turns[0].stt_confidence == 0.91
        assert turns[1].tool_calls[0]["result"] == {"status": "shipped"}

        assert store.mark_interrupted(worker="other-worker") == 0  # another worker's start leaves it alone
        assert store.mark_interrupted(worker="w1") == 1
        assert store.get_call(call_id).outcome is Outcome.INTERRUPTED
        assert store.mark_interrupted() == 0


def test_outcome_turn_fields_and_events_round_trip(store: CallStore) -> None:
    call_id = store.start_call("+15550001111", worker="w1")
    stored = store.add_turn(call_id, Turn("caller", "my card is 4111 1111 1111 1111", 0.5, 2.0,
                                          sentiment=-0.6, barged_in=True, guard_event="frustration",
                                          stt_avg_logprob=-0.3, stt_no_speech_prob=0.01))
    assert (stored.call_id, stored.idx) == (call_id, 0)
    store.add_event(call_id, "guard", {"reason": "operator phrase", "phrase": "operator"}, at=2.1)
    store.add_event(call_id, "transfer", {"target": "sip:operator@127.0.0.1:5070", "when": datetime(2024, 1, 1)})
    store.update_call(call_id, customer_id="C-17", summary="asked for a human")
    store.finish_call(call_id, Outcome.TRANSFERRED, "caller asked for an operator",
                      transfer_target="sip:operator@127.0.0.1:5070")

    call = store.get_call(call_id)
    assert call.outcome is Outcome.TRANSFERRED
    assert call.outcome_reason == "caller asked for an operator"
    assert call.transfer_target == "sip:operator@127.0.0.1:5070"
    assert (call.customer_id, call.summary) == ("C-17", "asked for a human")
    assert call.ended_at is not None and call.ended_at >= call.started_at
    turn = store.turns(call_id)[0]
    assert turn.text == "my card is 4111 1111 1111 1111"  # raw: the review app redacts by role
    assert (turn.sentiment, turn.barged_in, turn.guard_event) == (-0.6, True, "frustration")
    events = store.events(call_id)
    assert [e.kind for e in events] == ["guard", "transfer"]
    assert events[0].at == 2.1 and events[0].data["phrase"] == "operator"
    assert events[1].data["when"] == "2024-01-01 00:00:00"  # non-JSON values are kept as text

    with pytest.raises(StoreError, match="already ended"):
        store.finish_call(call_id, "resolved")
    assert store.get_call(call_id).outcome is Outcome.TRANSFERRED
    with pytest.raises(StoreError, match="no call"):
        store.add_turn("no-such-call", Turn("bot", "hello"))
    with pytest.raises(ValueError):
        store.finish_call(call_id, "in_progress")
    with pytest.raises(ValueError):
        store.add_turn(call_id, Turn("operator", "hi"))  # type: ignore[arg-type]


def test_list_and_count_calls_filter_and_page(tmp_path: Path) -> None:
    clock = [datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)]

    def now() -> datetime:
        clock[0] += timedelta(minutes=1)
        return clock[0]

    with CallStore(tmp_path / "c.db", tmp_path / "r", now=now) as store:
        ids = [store.start_call(f"+1555000{i}", worker="w1" if i % 2 else "w2") for i in range(5)]
        store.finish_call(ids[0], "resolved")
        store.finish_call(ids[1], "abandoned", "caller hung up")
        store.finish_call(ids[2], "error", "stt crashed")
        assert [c.id for c in store.list_calls()] == ids[::-1]
        assert [c.id for c in store.list_calls(limit=2, offset=1)] == [ids[3], ids[2]]
        assert [c.id for c in store.list_calls(CallFilter(outcome="in_progress"))] == [ids[4], ids[3]]
        assert {c.id for c in store.list_calls(CallFilter(outcome=["resolved", Outcome.ERROR]))} == {ids[0], ids[2]}
        assert [c.id for c in store.list_calls(CallFilter(worker="w1"))] == [ids[3], ids[1]]
        assert [c.id for c in store.list_calls(CallFilter(caller_id="+15550002"))] == [ids[2]]
        assert store.count_calls(CallFilter(since=datetime(2025, 3, 1, 9, 3, tzinfo=timezone.utc))) == 3
        assert store.count_calls(CallFilter(until=datetime(2025, 3, 1, 9, 3, tzinfo=timezone.utc))) == 2


def test_recordings_are_readable_wav_files(store: CallStore, tmp_path: Path) -> None:
    call_id = store.start_call("+15550002222")
    pcm = bytes(range(256)) * 32  # 8192 bytes = 4096 samples
    path = store.save_recording(call_id, "caller", pcm, 8000)
    assert path == tmp_path / "recordings" / call_id / "caller.wav"
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()) == (1, 2, 8000, 4096)
    assert read_wav(path) == (pcm, 8000)
    store.save_recording(call_id, "bot", pcm[:100], 16000)
    call = store.get_call(call_id)
    assert store.recording_file(call, "caller") == path
    assert store.recording_file(call, "bot").is_file()
    assert store.recording_file(call, "mixed") is None
    assert not list(path.parent.glob("*.tmp"))


def test_recording_io_error_is_a_store_error(store: CallStore, tmp_path: Path) -> None:
    call_id = store.start_call(None)
    (tmp_path / "recordings").write_text("a file where the folder should be")
    with pytest.raises(StoreError, match="recording"):
        store.save_recording(call_id, "mixed", b"\0\0" * 10, 8000)
    assert store.get_call(call_id).mixed_recording is None


def test_full_disk_raises_store_error_and_keeps_committed_rows(store: CallStore) -> None:
    call_id = store.start_call("+15550003333")
    store.add_turn(call_id, Turn("caller", "first"))
    pages = store.pragma("page_count")
    store._db.execute(f"PRAGMA max_page_count = {pages}")  # the database file may not grow: "disk full"
    with pytest.raises(StoreError, match="add turn"):
        store.add_turn(call_id, Turn("bot", "x" * 200_000))
    assert [t.text for t in store.turns(call_id)] == ["first"]
    store.finish_call(call_id, "error", "disk full")  # small writes into free pages still work
    assert store.get_call(call_id).outcome is Outcome.ERROR


def test_reopening_keeps_data_and_version(tmp_path: Path) -> None:
    with CallStore(tmp_path / "c.db", tmp_path / "r") as store:
        call_id = store.start_call("+1")
        assert store.schema_version == len(MIGRATIONS)
    with CallStore(tmp_path / "c.db", tmp_path / "r") as store:
        assert store.schema_version == len(MIGRATIONS)
        assert store.get_call(call_id).caller_id == "+1"


def test_migration_adds_a_column_in_place(tmp_path: Path) -> None:
    with CallStore(tmp_path / "c.db", tmp_path / "r", migrations=MIGRATIONS[:1]) as store:
        call_id = "c1"  # rows as the first schema's code wrote them (today's code writes later columns)
        with store._write("old rows") as db:
            db.execute("INSERT INTO calls (id, started_at, outcome) VALUES (?, ?, 'in_progress')",
                       (call_id, "2026-01-01T00:00:00.000000+00:00"))
            db.execute("INSERT INTO turns (call_id, idx, role, text) VALUES (?, 0, 'caller', 'hello')", (call_id,))
        assert store.schema_version == 1
    newer = [*MIGRATIONS, ("ALTER TABLE turns ADD COLUMN language TEXT",)]
    with CallStore(tmp_path / "c.db", tmp_path / "r", migrations=newer) as store:
        assert store.schema_version == len(newer)
        assert [t.text for t in store.turns(call_id)] == ["hello"]  # unknown columns are ignored
        columns = [row[1] for row in store._db.execute("PRAGMA table_info(turns)")]
        assert "language" in columns
        assert store.get_call(call_id).test is False  # an old call is no test call
    with pytest.raises(StoreError, match="newer than this code"):
        CallStore(tmp_path / "c.db", tmp_path / "r", migrations=MIGRATIONS[:1])


def test_upgrading_an_old_store_masks_the_secrets_it_holds_in_clear(tmp_path: Path) -> None:
    """Versions before masking at write time stored PINs, dates of birth and card numbers as said: the scrub
    migration masks them in turns, tool calls, summaries, analysis and events, and keeps everything else."""
    before_scrub = MIGRATIONS[:next(i for i, m in enumerate(MIGRATIONS) if scrub_secrets in m)]
    with CallStore(tmp_path / "c.db", tmp_path / "r", migrations=before_scrub) as store:
        with store._write("old rows") as db:
            db.execute("INSERT INTO calls (id, started_at, outcome, summary) VALUES "
                       "('c1', '2026-01-01T00:00:00.000000+00:00', 'resolved', "
                       "'Caller gave PIN 4417 and asked about order 10452.')")
            for idx, role, text, tools in [
                    (0, "bot", "Please tell me your four digit PIN.", "[]"),
                    (1, "caller", "It is 4 4 1 7", "[]"),
                    (2, "caller", "My card number is 4111 1111 1111 1111 and I was born on 12 March 1980", "[]"),
                    (3, "bot", "Order 10452 shipped on May 3.",
                     json.dumps([{"name": "verify_pin", "arguments": {"pin": "4417"}, "result": {"ok": True}}])),
            ]:
                db.execute("INSERT INTO turns (call_id, idx, role, text, tool_calls) VALUES ('c1', ?, ?, ?, ?)",
                           (idx, role, text, tools))
            db.execute("INSERT INTO events (call_id, at, recorded_at, kind, data) VALUES ('c1', 1.0, "
                       "'2026-01-01T00:00:01.000000+00:00', 'transfer', ?)",
                       (json.dumps({"reason": "pin 4417 failed", "pin": "4417"}),))
            db.execute("INSERT INTO call_analysis (call_id, analyzed_at, summary) VALUES ('c1', "
                       "'2026-01-01T00:01:00.000000+00:00', 'Verified with PIN 4417; card 4111 1111 1111 1111.')")
    with CallStore(tmp_path / "c.db", tmp_path / "r") as store:
        assert store.schema_version == len(MIGRATIONS)
        dump = "\n".join(str(tuple(row)) for table in ("calls", "turns", "events", "call_analysis")
                         for row in store._db.execute(f"SELECT * FROM {table}"))
    for secret in ("4417", "4 4 1 7", "4111 1111 1111 1111", "1980"):
        assert secret not in dump, secret
    assert "10452" in dump and "May 3" in dump  # order numbers and other dates are kept
    assert "Please tell me your four digit PIN." in dump


def test_readonly_reader_sees_writes_of_another_connection(tmp_path: Path) -> None:
    with CallStore(tmp_path / "c.db", tmp_path / "r") as writer:
        call_id = writer.start_call("+1")
        with CallStore(tmp_path / "c.db", tmp_path / "r", readonly=True) as reader:
            writer.add_turn(call_id, Turn("caller", "hi"))
            assert [t.text for t in reader.turns(call_id)] == ["hi"]
            with pytest.raises(StoreError):
                reader.start_call("+2")


def test_writes_from_several_threads(store: CallStore) -> None:
    call_id = store.start_call("+1")

    def write(n: int) -> None:
        for i in range(20):
            store.add_turn(call_id, Turn("system", f"{n}-{i}"))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    turns = store.turns(call_id)
    assert [t.idx for t in turns] == list(range(80))


# -- spilled records (store_journal): what a failing database could not take --------------------------------------


def test_spill_goes_beside_the_database_then_to_the_second_place_then_memory(tmp_path: Path) -> None:
    from voicebot.store_journal import Spill, start_op

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where a folder should be")  # nothing can be created under it, even by root
    spill = Spill(tmp_path / "calls.db", blocked / "spill")
    assert spill.write([start_op("a", "+1555", "w1")]).parent == tmp_path  # beside the database first

    spill = Spill(blocked / "calls.db", tmp_path / "second")
    assert spill.write([start_op("b", "+1555", "w1")]).parent == tmp_path / "second"  # then the second place

    spill = Spill(blocked / "calls.db", blocked / "spill")
    assert spill.write([start_op("c", "+1555", "w1")]) is None
    assert [op["call_id"] for op in spill.unwritten] == ["c"]  # then memory, retried at the next write
    spill.second = tmp_path / "later"
    path = spill.write([start_op("d", "+1555", "w1")])
    assert path.parent == tmp_path / "later" and spill.unwritten == []
    assert [json.loads(line)["call_id"] for line in path.read_text().splitlines()] == ["c", "d"]


def test_imported_records_keep_their_times_replace_an_interrupted_mark_and_are_not_imported_twice(
        tmp_path: Path) -> None:
    from voicebot.events import ErrorOccurred
    from voicebot.store_journal import event_op, finish_op, start_op, turn_op

    db = tmp_path / "calls.db"
    store = CallStore(db, tmp_path / "rec")
    store.apply(start_op("c1", "+15550102030", "w1"))  # the call row made it; the rest did not
    ops = [start_op("c1", "+15550102030", "w1"), turn_op("c1", Turn(role="caller", text="my PIN is 1234")),
           event_op("c1", ErrorOccurred(stage="stt", error="boom"), 3.5),
           finish_op("c1", Outcome.TRANSFERRED, "error: stt failed", transfer_target="sip:op@x", summary="s")]
    store.spill.write(ops)
    assert store.mark_interrupted(worker="w1") == 1  # a restart before the import
    store.close()

    reopened = CallStore(db, tmp_path / "rec")
    assert reopened.imported == 4 and reopened.spill.files() == []
    call = reopened.get_call("c1")
    assert (call.outcome, call.outcome_reason, call.transfer_target) == (
        Outcome.TRANSFERRED, "error: stt failed", "sip:op@x")
    assert call.ended_at == datetime.fromisoformat(ops[-1]["at"])
    assert [t.text for t in reopened.turns("c1")] == ["my PIN is 1234"]  # (the session masks before it queues)
    [event] = reopened.events("c1")
    assert (event.kind, event.at, event.data["stage"]) == ("error", 3.5, "stt")
    reopened.close()
    again = CallStore(db, tmp_path / "rec")
    assert again.imported == 0 and len(again.turns("c1")) == 1
    again.close()
