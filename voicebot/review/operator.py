"""The operator's live screen (issue 17, deliverable 3): the calls in progress and those just handed to a person,
so whoever picks up a transfer knows at that moment who is calling, whether they are verified, what they want,
what the bot already did, and what the knowledge base would answer to the question left open.

Everything on it comes from the call store, which the bot writes turn by turn while this app reads it:

- **caller**: the CRM's name for the call's customer (or the name ``verify_caller`` returned) and the number, masked
  by role as on every page (an operator sees ``+1 555 ••• 2030`` like a supervisor; an admin the number);
- **verified**: a ``verify_caller`` tool call whose result says ``verified``; failed attempts are counted;
- **intent**: what the intent matcher recognised (``intent`` events), and why a transfer was asked for;
- **what the bot did**: CRM tool calls with their results, knowledge answers, escalations and transfers, in order;
- **summary**: ``qa.record_summary``, built from the events only (no model: nothing the record does not hold),
  and the handover note the bot wrote into the transfer (the escalation guard's typed facts);
- **suggestions**: the caller's open question (``open_question``) run through the knowledge base's own retrieval
  (``voicebot.knowledge``), the top entries with their answers, for the operator to read out or adapt.

Live updates are server-sent events (``operator_feed``); this module builds the board, one pure function of the
store, so tests check it on a seeded store without a browser.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from voicebot.events import (Escalated, IntentRecognized, KnowledgeAnswered, ToolCallMade, TransferEnded,
                             TransferStarted)
from voicebot.knowledge.unanswered import UNANSWERED_KINDS, _ASKS_FOR_PERSON, _norm, looks_like_question
from voicebot.outcomes import ANSWERED_KNOWLEDGE, tool_ok
from voicebot.review.format import reason as reason_label
from voicebot.review.qa import record_summary, signals
from voicebot.review.redact import mask_phone, redact_data, redact_text
from voicebot.store import Call, CallStore, Event, Outcome, Turn

log = logging.getLogger(__name__)

LIVE_MAX_AGE = timedelta(hours=3)  # an older call still "in progress" is a stopped worker's, not a live call
RECENT = timedelta(minutes=15)  # a transferred call stays on the screen this long after it ended
MAX_CALLS = 30
TRANSCRIPT_TURNS = 6  # the last turns shown with each call
SUGGESTIONS = 3
_KNOWLEDGE = {"entry": "answered from the knowledge base", "hours": "answered from the opening hours",
              "price": "answered from the price list", "weak": "weak match: asked back",
              "none": "no answer in the knowledge base"}
STATE_LABELS = {"live": "with the bot", "transferring": "transfer to a person", "transferred": "transferred",
                "transfer_failed": "transfer failed"}


@dataclass(frozen=True)
class Suggestion:
    """A knowledge entry that may answer the open question (``score``: the retrieval's fused score, 0..1)."""

    id: str
    title: str
    answer: str
    score: float


class Suggester(Protocol):
    """What the board asks for suggestions; ``KnowledgeSuggester`` is the real one."""

    def suggest(self, question: str, top: int) -> list[Suggestion]: ...


@dataclass(frozen=True)
class Action:
    """One thing the bot did: a tool call and its result, a knowledge answer, an escalation or a transfer."""

    kind: str  # tool | knowledge | escalation | transfer
    label: str
    detail: str
    ok: bool | None = None  # None: neither success nor failure (an escalation)


@dataclass(frozen=True)
class OperatorCall:
    """One call as the operator sees it; every string already redacted for the viewer's role."""

    id: str
    started_at: datetime
    ended_at: datetime | None
    state: str  # live | transferring | transferred | transfer_failed
    caller: str  # the number, masked by role ("unknown" without caller ID)
    name: str | None
    verified: bool
    verification: str
    intent: str | None
    request: str | None  # the caller's first request in their words, when no intent was recognised
    transfer_reason: str | None
    actions: list[Action]
    summary: str
    handover: str
    transcript: list[tuple[str, str]]
    open_question: str | None
    suggestions: list[Suggestion] = field(default_factory=list)

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]

    @property
    def handed_over(self) -> bool:
        """A transfer was asked for: the call pops up for the operator."""
        return self.state != "live"


@dataclass(frozen=True)
class Board:
    calls: list[OperatorCall]  # handed-over calls first, then live ones; newest first in each
    note: str = ""  # why there are no suggestions (no knowledge model here, ...)

    @property
    def transfers(self) -> list[str]:
        return [c.id for c in self.calls if c.handed_over]


# -- from the store --------------------------------------------------------------------------------------------------

def board_calls(store: CallStore, now: datetime) -> list[Call]:
    """Calls in progress (started within ``LIVE_MAX_AGE``) and calls transferred, or whose transfer failed, that
    ended within ``RECENT``; test calls (chat, simulate, bench) left out."""
    from voicebot.store_records import _iso

    rows = store.select(
        "SELECT * FROM calls WHERE test = 0 AND ((outcome = ? AND started_at >= ?) OR (outcome IN (?, ?) AND "
        "ended_at >= ?)) ORDER BY started_at DESC LIMIT ?",
        (Outcome.IN_PROGRESS.value, _iso(now - LIVE_MAX_AGE), Outcome.TRANSFERRED.value,
         Outcome.TRANSFER_FAILED.value, _iso(now - RECENT), MAX_CALLS))
    return [store.call_from_row(r) for r in rows]


def _tool_calls(turns: Sequence[Turn], events: Sequence[Event]) -> list[tuple[str, Any, Any]]:
    """(tool, arguments, result) in order: the ``tool_call`` events, or, for older calls, the bot turns' lists."""
    made = [(t.tool, t.args, t.result) for t in (e.parsed for e in events) if isinstance(t, ToolCallMade) and t.tool]
    return made or [(str(c.get("name")), c.get("arguments"), c.get("result")) for turn in turns
                    for c in turn.tool_calls if c.get("name")]


def verification(turns: Sequence[Turn], events: Sequence[Event]) -> tuple[bool, str, str | None]:
    """(verified, how it reads, the name ``verify_caller`` returned) from the call's ``verify_caller`` results."""
    results = [r for name, _, r in _tool_calls(turns, events) if name == "verify_caller"]
    inner = [r.get("result") if isinstance(r, dict) and isinstance(r.get("result"), dict) else r for r in results]
    passed = [r for r in inner if isinstance(r, dict) and r.get("verified") is True]
    if passed:
        return True, "verified", passed[-1].get("name")
    if not results:
        return False, "not verified (no check yet)", None
    return False, f"not verified ({len(results)} failed attempt{'s' if len(results) > 1 else ''})", None


def _answered_after(turn: Turn, later: Sequence[Turn], events: Sequence[Event]) -> bool:
    """Whether something answered after ``turn``: a CRM tool that succeeded or a knowledge answer (events timed
    at or after the turn's start), or a tool call on a later bot turn (older calls)."""
    for e in events:
        event = e.parsed
        answered = (isinstance(event, ToolCallMade) and tool_ok(event.result)) or \
            (isinstance(event, KnowledgeAnswered) and event.answer in ANSWERED_KNOWLEDGE)
        if answered and e.at is not None and turn.started_at is not None and e.at >= turn.started_at:
            return True
    return any(t.role == "bot" and t.tool_calls for t in later)


def open_question(turns: Sequence[Turn], events: Sequence[Event]) -> str | None:
    """The caller's question nobody has answered yet, as stored (secrets masked at storage): the last knowledge
    question left ``none``/``weak`` when no knowledge answer came after it; else the last of the caller's last two
    turns that reads as a question, does not ask for a person, and was followed by neither a knowledge answer nor
    a CRM tool that succeeded (what ``knowledge.unanswered`` counts before a transfer)."""
    knowledge = [t for t in (e.parsed for e in events) if isinstance(t, KnowledgeAnswered)]
    if knowledge and knowledge[-1].answer in UNANSWERED_KINDS and (knowledge[-1].question or "").strip():
        return str(knowledge[-1].question).strip()
    asked = {_norm(k.question or "") for k in knowledge}
    caller = [i for i, t in enumerate(turns) if t.role == "caller"]
    for i in reversed(caller[-2:]):
        text = turns[i].text.strip()
        if _ASKS_FOR_PERSON.search(text) or not looks_like_question(text):
            continue
        if _norm(text) in asked or _answered_after(turns[i], turns[i + 1:], events):
            return None
        return text
    return None


def first_request(turns: Sequence[Turn]) -> str | None:
    """The caller's first words that are not a greeting or a request for a person: what they called about, when no
    intent was recognised."""
    for t in turns:
        if t.role == "caller" and t.text.strip() and not _ASKS_FOR_PERSON.search(t.text) and \
                len(t.text.split()) >= 3:
            return t.text.strip()
    return None


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def actions(turns: Sequence[Turn], events: Sequence[Event], role: str,
            titles: dict[str, str] | None = None) -> list[Action]:
    """What the bot did, in the order it happened, redacted for ``role``."""
    titles = titles or {}
    out: list[Action] = []
    typed = [e.parsed for e in events]
    if not any(isinstance(t, ToolCallMade) for t in typed):  # older calls: tool calls on the bot turns only
        out += [Action("tool", name.replace("_", " "), _tool_detail(args, result, role), tool_ok(result))
                for name, args, result in _tool_calls(turns, ())]
    for t in typed:
        if isinstance(t, ToolCallMade) and t.tool:
            out.append(Action("tool", t.tool.replace("_", " "), _tool_detail(t.args, t.result, role),
                              tool_ok(t.result)))
        elif isinstance(t, KnowledgeAnswered):
            entries = ", ".join(titles.get(i, i) for i in t.entry_ids or ())
            out.append(Action("knowledge", _KNOWLEDGE.get(t.answer or "", "knowledge"),
                              redact_text(f"“{t.question or ''}”" + (f": {entries}" if entries else ""), role),
                              t.answer in ANSWERED_KNOWLEDGE))
        elif isinstance(t, Escalated):
            out.append(Action("escalation", "escalated", redact_text(
                f"{reason_label(t.reason)}" + (f": {t.detail}" if t.detail else ""), role)))
        elif isinstance(t, TransferStarted):
            out.append(Action("transfer", "transfer to a person", reason_label(t.reason)))
        elif isinstance(t, TransferEnded):
            status = " ".join(str(v) for v in (t.status, t.reason) if v)
            out.append(Action("transfer", "transfer connected" if t.ok else "transfer failed", status, bool(t.ok)))
    return out


def _tool_detail(args: Any, result: Any, role: str) -> str:
    shown = redact_data(args or {}, role)
    given = ", ".join(f"{k} {v}" for k, v in shown.items()) if isinstance(shown, dict) else _short(shown)
    inner = result.get("result", result) if isinstance(result, dict) and "ok" in result else result
    if isinstance(result, dict) and result.get("ok") is False:
        inner = result.get("error") or result.get("message") or result
    return (f"{given} → " if given else "") + _short(redact_data(inner, role))


def _state(call: Call, events: Sequence[Event]) -> str:
    typed = [e.parsed for e in events]
    ended = [t for t in typed if isinstance(t, TransferEnded)]
    if call.outcome == Outcome.TRANSFERRED or (ended and ended[-1].ok):
        return "transferred"
    if call.outcome == Outcome.TRANSFER_FAILED or (ended and ended[-1].ok is False):
        return "transfer_failed"
    if any(isinstance(t, TransferStarted) for t in typed):
        return "transferring"
    return "live"


def operator_call(call: Call, turns: Sequence[Turn], events: Sequence[Event], role: str, *,
                  name: str | None = None, suggester: Suggester | None = None,
                  titles: dict[str, str] | None = None) -> OperatorCall:
    """One call's card for ``role``. ``name``: the CRM's name for the call's customer, when known."""
    verified, how, verified_name = verification(turns, events)
    typed = [e.parsed for e in events]
    intents = [t.intent for t in typed if isinstance(t, IntentRecognized) and t.intent]
    started = [t for t in typed if isinstance(t, (TransferStarted, Escalated))]
    question = open_question(turns, events)
    found = suggester.suggest(question, SUGGESTIONS) if suggester is not None and question else []
    handover = next((t.summary for t in reversed(typed) if isinstance(t, TransferStarted) and t.summary), "")
    recent = [(t.role, redact_text(t.text, role)) for t in turns[-TRANSCRIPT_TURNS:] if t.text]
    return OperatorCall(
        call.id, call.started_at, call.ended_at, _state(call, events),
        mask_phone(call.caller_id, role) if call.caller_id else "unknown", name or verified_name, verified, how,
        intents[-1].replace("_", " ") if intents else None,
        None if intents or not (asked := first_request(turns)) else redact_text(asked, role),
        reason_label(started[0].reason) if started and started[0].reason else None,
        actions(turns, events, role, titles), redact_text(record_summary(call, turns, events,
                                                                          signals(call, turns, events)), role),
        redact_text(handover, role), recent, redact_text(question, role) if question else None,
        [Suggestion(s.id, s.title, redact_text(s.answer, role), s.score) for s in found])


def build_board(store: CallStore, role: str, now: datetime, *, suggester: Suggester | None = None,
                names: CustomerNames | None = None, titles: dict[str, str] | None = None, note: str = "") -> Board:
    """The board for ``role`` at ``now``: transfers first (newest first), then live calls."""
    cards = []
    for call in board_calls(store, now):
        name = names.name(call.customer_id) if names is not None else None
        cards.append(operator_call(call, store.turns(call.id), store.events(call.id), role, name=name,
                                   suggester=suggester, titles=titles))
    cards.sort(key=lambda c: (not c.handed_over, -c.started_at.timestamp()))
    return Board(cards, note)


# -- the CRM's names and the knowledge base's suggestions --------------------------------------------------------

class CustomerNames:
    """Customer id -> name from the CRM, cached (a name rarely changes during a call); None when unknown."""

    def __init__(self, crm_path: Path):
        self.crm_path = crm_path
        self._cache: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def name(self, customer_id: str | None) -> str | None:
        if not customer_id or not re.fullmatch(r"\d+", customer_id):
            return None
        with self._lock:
            if customer_id not in self._cache:
                if len(self._cache) > 5000:
                    self._cache.clear()
                self._cache[customer_id] = self._lookup(int(customer_id))
            return self._cache[customer_id]

    def _lookup(self, customer_id: int) -> str | None:
        if not self.crm_path.is_file():
            return None
        from voicebot.crm.models import NotFound
        from voicebot.crm.repository import Repository

        try:
            repo = Repository.open(self.crm_path)
            try:
                customer = repo.get_customer(customer_id)
            finally:
                repo.close()
        except (sqlite3.Error, OSError, ValueError) as exc:
            log.warning("CRM lookup of customer %s failed: %s", customer_id, exc)
            return None
        return None if isinstance(customer, NotFound) else customer.name


class KnowledgeSuggester:
    """Suggestions from the configured knowledge base (the bot's own hybrid retrieval over the same folder, reread
    when a file changes). The embedding model is loaded on first use; when it cannot be, ``problem`` says why and
    there are no suggestions."""

    def __init__(self, config: Any, knowledge: Any = None):
        self.config = config
        self._kb = knowledge
        self._tried = knowledge is not None
        self.problem = ""
        self._lock = threading.Lock()
        self._cache: dict[tuple[int, str, int], list[Suggestion]] = {}  # every board rebuild asks again

    def _base(self) -> Any:
        with self._lock:
            if not self._tried:
                self._tried = True
                from voicebot.knowledge.base import KnowledgeBase
                from voicebot.knowledge.embed import EmbeddingError
                from voicebot.models import ModelError

                try:
                    self._kb = KnowledgeBase.from_config(self.config)
                except (ModelError, EmbeddingError, OSError) as exc:
                    self.problem = f"no knowledge suggestions: the embedding model is not available here ({exc})"
                    log.warning("%s", self.problem)
            return self._kb

    def suggest(self, question: str, top: int) -> list[Suggestion]:
        from voicebot.knowledge.files import plain_text

        kb = self._base()
        if kb is None or not question.strip():
            return []
        with self._lock:  # the index's query path is not for two threads at once
            kb.refresh()
            key = (id(kb.index), question, top)  # a reload builds a new index: older answers are not reused
            if key in self._cache:
                return self._cache[key]
            hits = kb.index.search(question, top=top + 2)
        out = []
        for hit in hits:
            if hit.score < kb.weak:
                continue
            entry = kb.entry(hit.doc.id) if hit.doc.kind == "entry" else None
            if entry is not None:
                out.append(Suggestion(entry.id, entry.title, plain_text(entry.answer), round(hit.score, 2)))
            elif hit.doc.kind == "hours" and kb.hours is not None:
                out.append(Suggestion(hit.doc.id, "Opening hours", kb.hours.summary(), round(hit.score, 2)))
        with self._lock:
            if len(self._cache) > 500:
                self._cache.clear()
            self._cache[key] = out[:top]
        return out[:top]

    def close(self) -> None:
        close = getattr(getattr(self._kb, "embedder", None), "close", None)
        if close is not None:
            close()
