"""How a call ended, decided from its record: one pure function for the session and the review app.

``decide(steps, ended)`` reads a call's turns and stored events in the order they happened and returns the
``Decision`` (an ``Outcome`` and a short reason saying which evidence decided it). The session calls it when the
call ends (``voicebot.session.ending``), on the records it queued for the store; the review app's dashboard and
KPIs call it on what the store holds (``from_store``), so containment follows the evidence, also for calls stored
before this rule existed.

Definitions (the dashboard states them too):

- **resolved**: the caller's goal was met and the caller did not ask again or escalate afterwards. A goal is met
  by one of these pieces of evidence:

  - a CRM tool succeeded (a ``tool_call`` event, or a tool call on a bot turn, whose result is ok) and a bot turn
    followed it: the answer was given;
  - a knowledge answer was given (a ``knowledge`` event whose answer is ``entry``, ``hours`` or ``price``) and a
    bot turn followed it;
  - a booking, ticket, lead or callback was confirmed: a write tool (``book_appointment``, ``create_ticket``,
    ``create_lead``, ``request_callback``, and ``reschedule_appointment`` or ``cancel_appointment`` for a booking)
    succeeded, which the dialogue only runs after the caller heard the read-back and said yes (a declined
    read-back writes nothing, so it is no evidence).

  After the last such evidence, none of these may follow: an escalation or transfer request, a knowledge question
  left unanswered (``none``/``weak``), a rejected transcript, an error, or a caller turn that is not a closing
  ("thanks, bye") and got no answer with evidence of its own (the caller asked again). Guard firings lower the QA
  score (``voicebot.review.qa``), not the outcome: the grounded part of the answer was still given.
- **abandoned unresolved** (``abandoned``): the call ended without a resolution or a transfer, e.g. the caller
  hung up unhelped, hung up during the greeting, or after a declined read-back.
- **transferred**: a transfer to a person succeeded (a ``transfer_result`` event with ok).
- **transfer failed**: the last transfer did not complete (a callback was created for the caller). A call
  stored as transferred or transfer failed without any ``transfer_result`` event (older rows) keeps that.
- **interrupted**: the process stopped during the call (set by the store at the next start, never decided here);
  **error** and **in progress** are kept as the call was stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from voicebot.events import (Escalated, EventKind, KnowledgeAnswered, StoredEvent, ToolCallMade,
                             TransferEnded, TransferStarted, parse)
from voicebot.store_records import Outcome

WRITE_TOOLS = frozenset({"create_ticket", "create_lead", "request_callback", "book_appointment",
                         "reschedule_appointment", "cancel_appointment"})
ANSWERED_KNOWLEDGE = frozenset({"entry", "hours", "price"})
KEPT = frozenset({Outcome.INTERRUPTED, Outcome.ERROR, Outcome.IN_PROGRESS})
LABELS: dict[str, str] = {
    Outcome.RESOLVED: "resolved", Outcome.ABANDONED: "abandoned unresolved", Outcome.TRANSFERRED: "transferred",
    Outcome.TRANSFER_FAILED: "transfer failed", Outcome.INTERRUPTED: "interrupted", Outcome.ERROR: "error",
    Outcome.IN_PROGRESS: "in progress",
}
DEFINITIONS: dict[str, str] = {
    "resolved": "the caller's goal was met: a CRM lookup succeeded and its answer was given, a knowledge answer "
                "was given, or a booking, ticket, lead or callback was confirmed after a read-back; and the caller "
                "did not ask again or escalate afterwards",
    "abandoned unresolved": "the call ended without that evidence and without a transfer (e.g. the caller hung up "
                            "unhelped, or declined the read-back)",
    "transferred": "a transfer to a person completed",
    "transfer failed": "the transfer did not complete; a callback was created",
    "interrupted": "the bot's process stopped during the call",
}
_CLOSING = frozenset(
    "no nope nah yes yeah yep ok okay thanks thank thankyou you so much very many great perfect alright all right "
    "good fine bye goodbye cheers that's thats that is it everything nothing else got brilliant lovely awesome "
    "wonderful excellent see have a nice day one then i'm im done for your help was helpful cool sure i guess "
    "suppose oh well needed wanted know now understood".split())
_UNMET = {EventKind.ESCALATION, EventKind.TRANSFER_REQUESTED, EventKind.STT_REJECTED, EventKind.ERROR}


@dataclass(frozen=True)
class Step:
    """One thing that happened in a call: a turn (``role`` caller/bot/system, ``text``, its ``tool_calls``) or a
    stored event (``event``)."""

    role: str | None = None
    text: str = ""
    tool_calls: tuple[Mapping[str, Any], ...] = ()
    event: StoredEvent | None = None


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str

    @property
    def label(self) -> str:
        return LABELS[self.outcome]


def tool_ok(result: Any) -> bool:
    """A tool result that is a success: ``{"ok": true, ...}`` (older rows: any value without an ``error``)."""
    if isinstance(result, Mapping):
        return bool(result["ok"]) if "ok" in result else "error" not in result
    return result is not None


def is_closing(text: str) -> bool:
    """A caller turn that only thanks, agrees or says goodbye: not a new request."""
    words = re.sub(r"[^a-z' ]+", " ", text.lower().replace("\u2019", "'")).split()
    return bool(words) and all(w in _CLOSING for w in words)


def _evidence(step: Step) -> str | None:
    """What goal this step shows met, if any (a bot turn must still follow, except for a confirmed write)."""
    event = step.event
    if isinstance(event, ToolCallMade) and tool_ok(event.result):
        return f"{'confirmed' if event.tool in WRITE_TOOLS else 'answered'} {event.tool}"
    if isinstance(event, KnowledgeAnswered) and event.answer in ANSWERED_KNOWLEDGE:
        return f"knowledge answer ({event.answer})"
    return None


def _unmet(step: Step) -> str | None:
    event = step.event
    if isinstance(event, KnowledgeAnswered) and event.answer not in ANSWERED_KNOWLEDGE:
        return f"a question the knowledge base could not answer ({event.answer or 'none'})"
    if isinstance(event, (Escalated, TransferStarted)):
        return f"the caller was escalated ({event.reason or 'unknown reason'})"
    if event is not None and str(getattr(event, "kind", "")) in _UNMET:
        return f"{event.kind} event"
    return None


def decide(steps: Sequence[Step], ended: Outcome | str | None = None) -> Decision:
    """The outcome of a call from its ``steps`` in order. ``ended``: the outcome stored so far; ``interrupted``,
    ``error`` and ``in_progress`` are kept (they are facts about the process, not about the caller's goal)."""
    if ended is not None and Outcome(ended) in KEPT:
        return Decision(Outcome(ended), "as stored")
    transfers = [s.event for s in steps if isinstance(s.event, TransferEnded)]
    if transfers:
        last = transfers[-1]
        if last.ok:
            return Decision(Outcome.TRANSFERRED, "the transfer to a person completed")
        if not any(t.ok for t in transfers):
            status = " ".join(str(v) for v in (last.status, last.reason) if v)
            return Decision(Outcome.TRANSFER_FAILED, f"the transfer did not complete{f' ({status})' if status else ''}")
    elif ended is not None and Outcome(ended) in (Outcome.TRANSFERRED, Outcome.TRANSFER_FAILED):
        return Decision(Outcome(ended), "as stored (no transfer result recorded)")  # older calls
    met: str | None = None  # the latest evidence that counts
    pending: str | None = None  # evidence waiting for the bot turn that gives the answer
    open_request: str | None = None  # a caller turn after the last evidence, not answered with evidence
    unmet: str | None = None
    answered_since_caller = False  # a bot turn came after the caller's last turn
    for step in steps:
        found = _evidence(step)
        if found is not None:
            # the session stores a reply's tool calls and knowledge events once the reply has played, so
            # evidence right after the bot turn that spoke it (no caller turn between) was answered by that turn
            if found.startswith("confirmed") or answered_since_caller:
                met, pending, open_request, unmet = found, None, None, None
            else:
                pending = found
            continue
        if step.role == "bot":
            answered_since_caller = True
            for call in step.tool_calls:  # tool calls stored on the bot turn itself
                if tool_ok(call.get("result")):
                    name = call.get("name")
                    pending = f"{'confirmed' if name in WRITE_TOOLS else 'answered'} {name}"
            if pending is not None:
                met, pending, open_request, unmet = pending, None, None, None
            continue
        if step.role == "caller":
            answered_since_caller = False
            if not is_closing(step.text):
                open_request = step.text
                pending = None
            continue
        why = _unmet(step)
        if why is not None:
            unmet, pending = why, None
    if met is None:
        return Decision(Outcome.ABANDONED, "no evidence the caller's goal was met")
    if unmet is not None:
        return Decision(Outcome.ABANDONED, f"after {met}: {unmet}")
    if open_request is not None:
        return Decision(Outcome.ABANDONED, f"after {met}: the caller asked again or for more, and it was not met")
    return Decision(Outcome.RESOLVED, met)


# -- building the steps -------------------------------------------------------------------------------------------

def from_ops(ops: Iterable[Mapping[str, Any]]) -> list[Step]:
    """Steps from a call's record ops (``voicebot.store_journal``), in the order the session queued them."""
    steps = []
    for op in ops:
        if op.get("op") == "add_turn":
            turn = op["turn"]
            steps.append(Step(turn.get("role"), turn.get("text") or "", tuple(turn.get("tool_calls") or ())))
        elif op.get("op") == "add_event":
            steps.append(Step(event=parse(op["kind"], op.get("data") or {})))
    return steps


def from_rows(turns: Iterable[Mapping[str, Any]], events: Iterable[Mapping[str, Any]]) -> list[Step]:
    """Steps from stored rows of one call (turns: idx, role, text, tool_calls, started_at, recorded_at; events: id,
    kind, data, at, recorded_at; JSON columns as text or decoded). Ordered by the wall clock each was recorded at,
    then by seconds of call audio (turns stored before that column existed: audio time only)."""
    import json

    def _load(value: Any, default: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else (value if value is not None else default)

    turns, events = list(turns), list(events)
    by_clock = all(t["recorded_at"] for t in turns)  # else "" for all: audio time decides
    keyed: list[tuple[str, float, int, int, Step]] = []
    for t in turns:
        audio = t["started_at"] if t["started_at"] is not None else 0.0
        keyed.append((t["recorded_at"] if by_clock else "", audio, 0, t["idx"],
                      Step(t["role"], t["text"], tuple(_load(t["tool_calls"], [])))))
    for e in events:
        audio = e["at"] if e["at"] is not None else 0.0
        keyed.append((e["recorded_at"] if by_clock else "", audio, 1, e["id"],
                      Step(event=parse(e["kind"], _load(e["data"], {})))))
    keyed.sort(key=lambda k: k[:4])  # equal clocks (a backdated or frozen clock): seconds of call audio
    return [k[4] for k in keyed]


def from_store(store: Any, call_ids: Sequence[str]) -> dict[str, list[Step]]:
    """The steps of each call in ``call_ids`` from a ``CallStore``, in two queries."""
    if not call_ids:
        return {}
    out: dict[str, tuple[list, list]] = {cid: ([], []) for cid in call_ids}
    for start in range(0, len(call_ids), 500):  # SQLite's limit on bound parameters
        chunk = list(call_ids[start:start + 500])
        marks = ", ".join("?" * len(chunk))
        for row in store.select("SELECT call_id, idx, role, text, tool_calls, started_at, recorded_at FROM turns "
                                f"WHERE call_id IN ({marks})", chunk):
            out[row["call_id"]][0].append(row)
        for row in store.select(f"SELECT call_id, id, kind, data, at, recorded_at FROM events WHERE call_id IN ({marks})",
                                chunk):
            out[row["call_id"]][1].append(row)
    return {cid: from_rows(turns, events) for cid, (turns, events) in out.items()}


def decide_stored(store: Any, calls: Sequence[Mapping[str, Any]]) -> dict[str, Decision]:
    """The decision for each call row (``id`` and ``outcome``) from what the store holds."""
    steps = from_store(store, [c["id"] for c in calls])
    return {c["id"]: decide(steps[c["id"]], c["outcome"]) for c in calls}
