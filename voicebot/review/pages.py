"""What the call page shows, built per role: every string that reaches a template has passed redaction here,
so a template cannot forget it."""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from voicebot.events import Escalated, EventKind, GuardFired, KnowledgeAnswered, TransferEnded
from datetime import datetime

from voicebot.review.analysis import FLAGS, RUBRIC, TOPICS, CallAnalysis
from voicebot.review.annotations import Annotation
from voicebot.review.outbound import Outbound
from voicebot.review.queries import CallRow
from voicebot.review.redact import answers_secret_question, mask_phone, redact_data, redact_text
from voicebot.store import RECORDINGS, Call, Event, Turn

log = logging.getLogger(__name__)

STAGES = (("transcript_ready", "transcript"), ("first_token", "first token"), ("first_sentence", "first sentence"),
          ("first_audio_out", "first audio"))
EVENT_LABELS = {
    EventKind.ESCALATION: "Escalation", EventKind.TRANSFER_REQUESTED: "Transfer requested",
    EventKind.TRANSFER_RESULT: "Transfer result", EventKind.CALLBACK_CREATED: "Callback created",
    EventKind.GUARD_UNGROUNDED: "Grounding guard", EventKind.NO_INPUT: "No input",
    EventKind.GUARD_INSTRUCTIONS_LEAK: "Prompt-leak guard", EventKind.TOOL_CALL: "Tool call", EventKind.ERROR: "Error",
    EventKind.FILLER: "Filler", EventKind.BACKCHANNEL: "Backchannel", EventKind.BARGE_IN: "Barge in",
    EventKind.KNOWLEDGE: "Knowledge",
}
KNOWLEDGE_LABELS = {"entry": "Answered from the knowledge base", "hours": "Computed from the opening hours",
                    "price": "Computed from the price list", "weak": "Weak knowledge match: asked back",
                    "none": "No answer in the knowledge base"}
_BAD = {EventKind.ERROR, EventKind.GUARD_UNGROUNDED, EventKind.GUARD_INSTRUCTIONS_LEAK}
_WARN = {EventKind.ESCALATION, EventKind.NO_INPUT, EventKind.TRANSFER_REQUESTED}


@dataclass(frozen=True)
class ToolView:
    name: str
    arguments: str
    result: str


@dataclass(frozen=True)
class EventView:
    kind: str
    label: str
    at: float | None
    detail: str
    severity: str  # "info", "warn" or "bad": the badge colour
    knowledge: KnowledgeView | None = None  # a knowledge event: which entry answered, shown on its bot turn


@dataclass(frozen=True)
class KnowledgeView:
    """What answered a knowledge question: the entries (id, title when the file still has it) and the score."""

    answer: str  # entry | hours | price | weak | none
    label: str
    entries: list[tuple[str, str | None]]
    score: float | None
    question: str


@dataclass(frozen=True)
class TurnView:
    idx: int
    role: str
    text: str
    started_at: float | None
    ended_at: float | None
    latency_s: float | None
    stages: list[tuple[str, float]]  # (stage, seconds after the caller's end of speech)
    tools: list[ToolView]
    barged_in: bool
    guard_event: str | None
    sentiment: float | None
    events: list[EventView] = field(default_factory=list)


@dataclass(frozen=True)
class CustomerView:
    name: str | None = None
    phones: list[str] = field(default_factory=list)
    email: str | None = None
    open_orders: list[str] = field(default_factory=list)
    tickets: list[str] = field(default_factory=list)
    bookings: list[str] = field(default_factory=list)
    callbacks: list[str] = field(default_factory=list)
    interactions: list[str] = field(default_factory=list)
    problem: str | None = None  # why nothing is shown


@dataclass(frozen=True)
class RubricView:
    name: str
    description: str
    score: int
    reason: str


@dataclass(frozen=True)
class CallPage:
    call: Call
    caller: str
    outcome_reason: str
    handover: str
    turns: list[TurnView]
    early_events: list[EventView]  # before the first turn
    recordings: list[str]
    analysis: CallAnalysis | None
    summary: str
    topic: str | None
    flags: list[tuple[str, str]]
    rubric: list[RubricView]
    customer: CustomerView | None
    generated_summary: str = ""  # the model's words (labelled as generated on the page)


@dataclass(frozen=True)
class ListRow:
    """One call as the call list, the export and the API show it, already redacted for the reader's role."""

    id: str
    started_at: datetime
    caller: str
    customer_id: str | None
    duration_s: float | None
    outcome: str
    reason: str
    topic: str | None
    sentiment: float | None
    qa_score: float | None
    flags: list[str]
    summary: str
    test: bool = False
    direction: str = "in"  # "out": placed by the dialer (outbound.py)
    purpose: str = ""  # an outbound call's reason
    result: str = ""  # an outbound call's attempt result
    tags: list[str] = field(default_factory=list)
    reviewed: bool = False
    note: str = ""


def list_row(r: CallRow, role: str, note: Annotation | None = None, outbound: Outbound | None = None) -> ListRow:
    """``r`` as ``role`` may see it, with the reviewers' marks and, for a call the dialer placed, its purpose and
    result: the call store's ``direction``/``purpose``/``dial_result`` (schema 4), with the CRM ledger's reason for
    the callback (``outbound``), which is also what marks calls placed before the store recorded a direction."""
    c = r.call
    out = c.direction == "outbound" or outbound is not None
    purpose = " · ".join(p for p in (c.purpose or ("callback" if outbound else ""),
                                     outbound.purpose if outbound else "") if p)
    return ListRow(c.id, c.started_at, mask_phone(c.caller_id, role) if c.caller_id else "unknown", c.customer_id,
                   r.duration_s, c.outcome.value, redact_text(c.outcome_reason, role),
                   TOPICS.get(r.topic or "", r.topic), r.sentiment, r.qa_score, [FLAGS.get(f, f) for f in r.flags],
                   redact_text(r.summary, role), c.test, "out" if out else "in", redact_text(purpose, role),
                   (c.dial_result or (outbound.result if outbound else "")) if out else "",
                   list(note.tags) if note else [], bool(note and note.reviewed),
                   redact_text(note.note, role) if note else "")


def redacted_turns(turns: list[Turn], role: str) -> list[TurnView]:
    """The turns as ``role`` may see them (the call page, the export and the API all take them from here)."""
    secret = answers_secret_question([(t.role, t.text) for t in turns])
    return [_turn_view(t, role, answer) for t, answer in zip(turns, secret)]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _event_view(row: Event, role: str, titles: dict[str, str] | None = None) -> EventView:
    titles = titles or {}
    event = row.parsed
    severity = "info"
    if event.kind in _BAD or (isinstance(event, TransferEnded) and event.ok is False):
        severity = "bad"
    elif event.kind in _WARN:
        severity = "warn"
    if isinstance(event, KnowledgeAnswered):
        view = KnowledgeView(event.answer or "?", KNOWLEDGE_LABELS.get(event.answer or "", "Knowledge"),
                             [(i, titles.get(i)) for i in event.entry_ids or ()], event.score,
                             redact_text(event.question, role))
        severity = {"weak": "warn", "none": "bad"}.get(view.answer, "info")
        entries = ", ".join(i + (f" “{t}”" if t else "") for i, t in view.entries)
        detail = (f"{view.label}{': ' + entries if entries else ''}"
                  f"{f' (score {view.score:.2f})' if view.score is not None else ''}")
        return EventView(row.kind, "Knowledge", row.at, redact_text(detail, role), severity, view)
    if isinstance(event, Escalated):
        detail = f"{event.reason or ''}: {event.detail or ''}".strip(": ")
    elif isinstance(event, TransferEnded):
        detail = ("connected" if event.ok else "failed") + \
                 "".join(f" {v}" for v in (event.status, event.reason) if v is not None)
    elif isinstance(event, GuardFired) and event.kind == EventKind.GUARD_UNGROUNDED:
        detail = f"held back: “{event.original or ''}” (not in tool results: {', '.join(event.items or ())})"
    else:  # the row as stored: every field, in order
        detail = ", ".join(f"{k}={_json(v)}" for k, v in row.data.items())
    return EventView(row.kind, EVENT_LABELS.get(row.kind, row.kind.replace("_", " ").capitalize()), row.at,
                     redact_text(detail, role), severity)


def _turn_view(turn: Turn, role: str, secret_answer: bool) -> TurnView:
    t = turn.timings
    stages = []
    if t.end_of_speech is not None:
        stages = [(label, getattr(t, name) - t.end_of_speech) for name, label in STAGES
                  if getattr(t, name) is not None]
    latency = (t.first_audio_out - t.end_of_speech) if t.first_audio_out is not None and \
        t.end_of_speech is not None and turn.role == "bot" else None
    tools = [ToolView(str(tc.get("name", "?")), _json(redact_data(tc.get("arguments", {}), role)),
                      _json(redact_data(tc.get("result"), role))) for tc in turn.tool_calls]
    text = redact_text(turn.text, role, secret_answer=secret_answer)
    return TurnView(turn.idx or 0, turn.role, text, turn.started_at, turn.ended_at, latency,
                    stages if turn.role == "bot" else [], tools, turn.barged_in, turn.guard_event, turn.sentiment)


def _place_events(turns: list[TurnView], events: list[tuple[EventView, datetime | None]],
                  turn_recorded: list[datetime | None] | None = None) -> list[EventView]:
    """Attach each event to the turn it belongs to; returns those before every turn.

    With call audio times (a phone call: turns start at different seconds), an event goes to the last turn that
    started at or before its ``at``; a turn without a start time (the session does not time fixed prompts) counts
    as starting with the turn before it, so an event lands on the bot turn that answered the caller turn it
    followed. Without them (a console or chat call, where every time is 0, or an event without ``at``), the
    order the rows were written decides (``recorded_at`` of turns and events, schema 3): the session writes a
    reply's tool calls and guard events right after the reply, so they land on it rather than piling up on the
    last turn."""
    starts: list[float] = []
    for turn in turns:
        starts.append(turn.started_at if turn.started_at is not None else (starts[-1] if starts else 0.0))
    timed = len({t.started_at for t in turns if t.started_at is not None}) > 1
    recorded = turn_recorded if turn_recorded and len(turn_recorded) == len(turns) and any(turn_recorded) else None
    early = []
    for event, written in events:
        if recorded is not None and written is not None and (not timed or event.at is None):
            hosts = [turn for turn, at in zip(turns, recorded) if at is not None and at <= written]
        else:
            hosts = [turn for turn, start in zip(turns, starts) if event.at is None or start <= event.at]
        if hosts:
            hosts[-1].events.append(event)
        else:
            early.append(event)
    return early


def _wall_times(turns: list[TurnView], call_started: datetime, recorded: list[datetime | None] | None,
                ) -> list[TurnView]:
    """A console or chat call has no call audio, so every turn is at 0:00: show instead when each turn was written,
    counted from the call's start (a phone call keeps its audio times, which the recordings seek to)."""
    if not recorded or len(recorded) != len(turns) or any(t.started_at for t in turns):
        return turns
    return [t if at is None else replace(t, started_at=max((at - call_started).total_seconds(), 0.0))
            for t, at in zip(turns, recorded)]


def build_call_page(call: Call, turns: list[Turn], events: list[Event], analysis: CallAnalysis | None,
                    recordings: list[str], customer: CustomerView | None, role: str,
                    knowledge_titles: dict[str, str] | None = None,
                    turn_recorded: list[datetime | None] | None = None) -> CallPage:
    """``knowledge_titles``: entry id -> title of the knowledge files as they are now (for knowledge events);
    ``turn_recorded``: when each turn was written (``turns.recorded_at``), to place events without audio times."""
    turn_views = redacted_turns(turns, role)
    early = _place_events(turn_views, [(_event_view(e, role, knowledge_titles), e.recorded_at) for e in events],
                          turn_recorded)
    turn_views = _wall_times(turn_views, call.started_at, turn_recorded)
    rubric = [RubricView(name, RUBRIC[name], r.score, redact_text(r.reason, role))
              for name, r in (analysis.qa.items() if analysis else []) if name in RUBRIC]
    flags = [(FLAGS.get(k, k), redact_text(v, role)) for k, v in (analysis.flags.items() if analysis else [])]
    return CallPage(
        call, mask_phone(call.caller_id, role) if call.caller_id else "unknown", redact_text(call.outcome_reason, role),
        redact_text(call.summary, role), turn_views, early, [r for r in RECORDINGS if r in recordings], analysis,
        redact_text((analysis.summary if analysis else None) or "", role),
        TOPICS.get(analysis.topic, analysis.topic) if analysis and analysis.topic else None, flags, rubric, customer,
        redact_text((analysis.generated_summary if analysis else None) or "", role))


def crm_customer(crm_path: Path, customer_id: str | None, role: str) -> CustomerView | None:
    """The CRM's view of the caller, read-only in effect; a missing or broken CRM is a note, not an error."""
    if not customer_id:
        return None
    if not crm_path.is_file():
        return CustomerView(problem=f"no CRM database at {crm_path}")
    try:
        number = int(customer_id)
    except ValueError:
        return CustomerView(problem=f"customer id {customer_id!r} is not a CRM id")
    from voicebot.crm.models import NotFound
    from voicebot.crm.repository import Repository

    try:
        repo = Repository.open(crm_path)
        try:
            profile = repo.caller_profile(number)
        finally:
            repo.close()
    except (sqlite3.Error, OSError, ValueError) as exc:
        log.warning("CRM lookup of customer %s failed: %s", customer_id, exc)
        return CustomerView(problem=f"the CRM could not be read: {exc}")
    if isinstance(profile, NotFound):
        return CustomerView(problem=f"customer {customer_id} is not in the CRM")
    c = profile.customer
    return CustomerView(
        c.name, [mask_phone(p, role) for p in c.phones], c.email,
        [f"{o.number}: {o.status.replace('_', ' ')}" + (f", ETA {o.eta:%d %b}" if o.eta else "")
         for o in profile.open_orders],
        [redact_text(f"#{t.id} {t.subject} ({t.status}, {t.priority})", role) for t in profile.open_tickets],
        [f"{b.slot.service} on {b.slot.starts_at:%a %d %b %H:%M}" for b in profile.upcoming_bookings],
        [redact_text(f"{cb.reason} ({cb.status})", role) for cb in profile.pending_callbacks],
        [redact_text(f"{i.started_at:%d %b}: {i.summary} ({i.outcome})", role) for i in profile.recent_interactions])
