"""Call records the database could not take (a full disk, a locked database): kept, spilled, re-imported.

Why: a call must go on when its store fails, and no record of it may be lost. So a call's writes are plain
JSON-ready *ops* (``start_call``, ``add_turn``, ``add_event``, ``update_call``, ``finish_call``), each carrying the
wall-clock time it happened, which ``CallStore.apply`` writes. The session queues them and retries them in order
(``voicebot.session.records``); what is still unwritten when the call ends goes into a small spill file: first
beside the database (``calls.db.spill-<id>.jsonl``), else in a second folder (``store.spill_dir``, ideally
another disk), else it stays in this process's memory and is retried at the next spill. ``CallStore`` opened
read-write re-imports every spill file at start, so the records reach the database once it can take them.

What is spilled is what the database would have held: caller turns as the session stores them (secrets
masked), events as ``events.to_row`` writes them (masked). A file is claimed for import by renaming it, so two
workers starting at once never import it twice; an op the database still refuses is written back to a new file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from voicebot.events import StoredEvent, to_row
from voicebot.store_records import Outcome, Turn, TurnTimings

log = logging.getLogger(__name__)

Op = dict[str, Any]  # {"op": name, "call_id": ..., "at": ISO time, ...}: JSON-ready


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def start_op(call_id: str, caller_id: str | None, worker: str | None, customer_id: str | None = None,
             test: bool = False) -> Op:
    return {"op": "start_call", "call_id": call_id, "caller_id": caller_id, "worker": worker,
            "customer_id": customer_id, "test": test, "at": _now()}


def turn_op(call_id: str, turn: Turn) -> Op:
    values = {k: v for k, v in asdict(turn).items() if k not in ("call_id", "idx")}
    values["tool_calls"] = [dict(t) for t in turn.tool_calls]
    return {"op": "add_turn", "call_id": call_id, "turn": values, "at": _now()}


def event_op(call_id: str, event: StoredEvent, at: float | None) -> Op:
    kind, data = to_row(event)  # masked here: a spilled event holds what the database would
    return {"op": "add_event", "call_id": call_id, "kind": kind, "data": data, "audio_at": at, "at": _now()}


def update_op(call_id: str, **values: str | None) -> Op:
    return {"op": "update_call", "call_id": call_id, "values": values, "at": _now()}


def finish_op(call_id: str, outcome: Outcome | str, reason: str | None, *, transfer_target: str | None = None,
              summary: str | None = None) -> Op:
    return {"op": "finish_call", "call_id": call_id, "outcome": str(outcome), "reason": reason,
            "transfer_target": transfer_target, "summary": summary, "at": _now()}


def turn_from(values: Mapping[str, Any]) -> Turn:
    names = {f.name for f in fields(Turn)}
    kept = {k: v for k, v in values.items() if k in names}
    kept["timings"] = TurnTimings(**(values.get("timings") or {}))
    kept["tool_calls"] = tuple(values.get("tool_calls") or ())
    return Turn(**kept)


def when(op: Op) -> datetime:
    return datetime.fromisoformat(op["at"])


class Spill:
    """The spill files of one database: beside it, or in ``second`` (a folder), or, when neither can be written,
    this process's memory (retried at every later ``write``)."""

    def __init__(self, db_path: str | Path, second: str | Path | None = None):
        db = Path(db_path)
        self.beside = db.parent
        self.prefix = f"{db.name}.spill-"  # beside the database
        self.second = Path(second).expanduser() if second is not None else None
        self.second_prefix = hashlib.sha256(str(db.resolve()).encode()).hexdigest()[:12] + ".spill-"
        self.unwritten: list[Op] = []  # neither place could take them
        self._lock = threading.Lock()

    def _places(self) -> list[tuple[Path, str]]:
        places = [(self.beside, self.prefix)]
        if self.second is not None:
            places.append((self.second, self.second_prefix))
        return places

    def write(self, ops: Iterable[Op]) -> Path | None:
        """Append ``ops`` (and any held in memory) to a new spill file; its path, or None when only memory holds
        them now."""
        with self._lock:
            ops = self.unwritten + list(ops)
            if not ops:
                return None
            data = "".join(json.dumps(op, ensure_ascii=False) + "\n" for op in ops).encode()
            for folder, prefix in self._places():
                path = folder / f"{prefix}{uuid.uuid4().hex[:12]}.jsonl"
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    try:
                        if os.write(fd, data) != len(data):
                            raise OSError(f"{path}: short write")
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                except OSError as exc:
                    log.warning("call store spill: cannot write %s (%s)", folder, exc.strerror or exc)
                    try:
                        path.unlink(missing_ok=True)  # a file cut short by a full disk
                    except OSError:
                        pass
                    continue
                self.unwritten = []
                return path
            self.unwritten = ops
            log.error("call store spill: %d record(s) kept in memory only; no spill place can be written", len(ops))
            return None

    def files(self) -> list[Path]:
        found: list[Path] = []
        for folder, prefix in self._places():
            if folder.is_dir():
                found += sorted(p for p in folder.glob(f"{prefix}*.jsonl"))
        return found

    def _reclaim(self) -> None:
        """A file claimed by an import that died before it ended (its process is gone) is a spill file again."""
        for folder, prefix in self._places():
            for claimed in folder.glob(f"{prefix}*.jsonl.importing-*") if folder.is_dir() else ():
                pid = claimed.name.rsplit("-", 1)[-1]
                if pid.isdigit() and int(pid) != os.getpid() and not Path(f"/proc/{pid}").exists():
                    try:
                        claimed.rename(claimed.with_name(claimed.name.rsplit(".importing-", 1)[0]))
                    except OSError:
                        pass

    def import_into(self, apply: Callable[[Op], None]) -> int:
        """Replay every spill file through ``apply`` (``CallStore.apply``); returns the number of ops written.
        An op that still fails, and every op after it in its file, is written back to a new spill file."""
        done = 0
        self._reclaim()
        for path in self.files():
            claimed = path.with_name(f"{path.name}.importing-{os.getpid()}")
            try:
                path.rename(claimed)  # another worker importing now got it first: skip it
            except OSError:
                continue
            ops: list[Op] = []
            for n, line in enumerate(claimed.read_text(encoding="utf-8").splitlines(), 1):
                try:
                    ops.append(json.loads(line))
                except ValueError:  # a line cut by a crash while it was written
                    log.warning("call store spill %s:%d: not a record, skipped", path.name, n)
            for i, op in enumerate(ops):
                try:
                    apply(op)
                except Exception as exc:  # noqa: BLE001 - the database still refuses: keep the rest
                    log.warning("call store spill %s: %s not imported yet (%s)", path.name, op.get("op"), exc)
                    if self.write(ops[i:]) is None and self.unwritten:
                        claimed.rename(path)  # nowhere to write the rest: keep the file as it was
                        self.unwritten = []
                        return done
                    break
                done += 1
            claimed.unlink(missing_ok=True)
        if done:
            log.info("call store: %d spilled record(s) imported", done)
        return done
