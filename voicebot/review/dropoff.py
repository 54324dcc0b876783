"""Where callers who left unhelped were: by menu node, by the last step of the call and by intent.

"Left unhelped" is the outcome ``abandoned`` as ``voicebot.outcomes.decide_stored`` decides it from the record
(the dashboard's own rule), so these counts add up to the dashboard's "abandoned unresolved".

How each is read from the stored record (the store has no "current node" column, so it is derived):

- **menu node**: the node whose prompt or reprompt the bot said last (the flow speaks a node's prompt on arrival
  and its reprompt after a no-match, see ``dialog.flow.MenuFlow``); a call that heard none was still at the
  menu's ``start`` node, where every call begins;
- **last step**: the last thing the record holds before the hang-up (turns and events merged by the time they
  were recorded): no input, speech not understood, a knowledge question without an answer, a tool call, a guard,
  an error, a reprompt, the bot's answer, or the caller speaking with no reply yet;
- **intent**: the last intent recognised in code (``intent`` events), else the analysis topic, else unknown.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

from voicebot.dialog.flow import MenuConfig
from voicebot.events import EventKind
from voicebot.outcomes import decide_stored
from voicebot.review.analysis import TOPICS
from voicebot.review.kpis import Bar
from voicebot.review.queries import day_bounds, utc_iso
from voicebot.store import CallStore, Outcome
from voicebot.text import normalize

NO_REPLY = "spoke, hung up before the reply"
STEP_LABELS = {
    EventKind.NO_INPUT: "no input after a prompt", EventKind.STT_REJECTED: "speech not understood",
    EventKind.GUARD_UNGROUNDED: "a reply held back by the guard",
    EventKind.GUARD_INSTRUCTIONS_LEAK: "a reply held back by the guard", EventKind.ERROR: "an error",
    EventKind.BARGE_IN: "talked over the bot", EventKind.FILLER: "waiting for the bot (filler played)",
    EventKind.INTENT: NO_REPLY, EventKind.ESCALATION: "asked for a person",
}
KNOWLEDGE_STEPS = {"none": "knowledge: no answer", "weak": "knowledge: asked back"}


@dataclass(frozen=True)
class DropOff:
    abandoned: int
    by_node: list[Bar]
    by_step: list[Bar]
    by_intent: list[Bar]
    examples: dict[str, list[str]] = field(default_factory=dict)  # node -> a few call ids, newest first


@dataclass(frozen=True)
class _Item:
    at: str  # recorded_at (text, UTC)
    audio: float  # seconds of call audio (ties of recorded_at: rows written in one go)
    order: int  # then turns before events, each by row
    kind: str  # "turn:<role>" or the event kind
    text: str
    data: dict


def _node_phrases(menu: MenuConfig | None, not_heard: str) -> tuple[list[tuple[str, str]], set[str]]:
    """(normalized prompt, node) for every prompt and reprompt, and the normalized reprompts."""
    phrases, reprompts = [], {normalize(not_heard)} if not_heard else set()
    for name, node in (menu.nodes.items() if menu else ()):
        phrases.append((normalize(node.prompt), name))
        if node.reprompt:
            phrases.append((normalize(node.reprompt), name))
            reprompts.add(normalize(node.reprompt))
    return [(p, n) for p, n in phrases if p], reprompts


def _step(last: _Item | None, reprompts: set[str], prompts: set[str]) -> str:
    if last is None:
        return "before any words"
    if last.kind == "turn:caller":
        return NO_REPLY
    if last.kind == "turn:bot":
        said = normalize(last.text)
        if any(r and r in said for r in reprompts):
            return "reprompted after a no-match"
        return "heard a menu prompt" if any(p in said for p in prompts) else "after the bot's answer"
    if last.kind == EventKind.KNOWLEDGE:
        return KNOWLEDGE_STEPS.get(last.data.get("answer"), "after a knowledge answer")
    if last.kind == EventKind.TOOL_CALL:
        return f"tool {last.data.get('tool') or '?'}"
    return STEP_LABELS.get(last.kind, last.kind.replace("_", " "))


def compute_dropoff(store: CallStore, first_day: date, last_day: date, tz: ZoneInfo, *,
                    menu: MenuConfig | None = None, not_heard: str = "", tests: bool = False) -> DropOff:
    """The drop-off counts for calls started ``first_day``..``last_day`` (days in ``tz``); test calls only with
    ``tests`` (as the dashboard)."""
    start, end = day_bounds(first_day, last_day, tz)
    rows = store.select("SELECT c.id, c.outcome, c.started_at, a.topic FROM calls c LEFT JOIN call_analysis a "
                        "ON a.call_id = c.id WHERE c.started_at >= ? AND c.started_at < ?"
                        + ("" if tests else " AND c.test = 0") + " ORDER BY c.started_at DESC",
                        (utc_iso(start), utc_iso(end)))
    decided = decide_stored(store, rows)
    gone = [r for r in rows if decided[r["id"]].outcome == Outcome.ABANDONED]
    ids = json.dumps([r["id"] for r in gone])
    items: dict[str, list[_Item]] = defaultdict(list)
    for t in store.select("SELECT call_id, idx, role, text, COALESCE(recorded_at, '') AS at, "
                          "COALESCE(started_at, 0) AS audio FROM turns "
                          "WHERE call_id IN (SELECT value FROM json_each(?))", (ids,)):
        items[t["call_id"]].append(_Item(t["at"], t["audio"], t["idx"], f"turn:{t['role']}", t["text"], {}))
    for e in store.select("SELECT call_id, id, kind, data, recorded_at AS at, COALESCE(at, 0) AS audio FROM events "
                          "WHERE call_id IN (SELECT value FROM json_each(?))", (ids,)):
        items[e["call_id"]].append(_Item(e["at"], e["audio"], 1_000_000 + e["id"], e["kind"], "",
                                         json.loads(e["data"])))
    phrases, reprompts = _node_phrases(menu, not_heard)
    prompts = {p for p, _ in phrases} - reprompts
    nodes, steps, intents = Counter(), Counter(), Counter()
    examples: dict[str, list[str]] = defaultdict(list)
    for call in gone:
        record = sorted(items[call["id"]], key=lambda i: (i.at, i.audio, i.order))
        node = menu.start if menu else "(no menu)"
        intent = None
        for item in record:
            if item.kind == "turn:bot":
                said = normalize(item.text)
                node = next((n for p, n in phrases if p in said), node)
            elif item.kind == EventKind.INTENT and item.data.get("intent"):
                intent = str(item.data["intent"])
        nodes[node] += 1
        steps[_step(record[-1] if record else None, reprompts, prompts)] += 1
        topic = call["topic"]
        intents[intent or (f"topic: {TOPICS.get(topic, topic)}" if topic else "unknown")] += 1
        if len(examples[node]) < 5:
            examples[node].append(call["id"])
    bars = lambda counts: [Bar(k, k.replace("_", " "), n) for k, n in counts.most_common()]  # noqa: E731
    return DropOff(len(gone), bars(nodes), bars(steps), bars(intents), dict(examples))
