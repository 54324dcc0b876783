"""The review demo asks the company's knowledge (issue 15): `voicebot review seed-demo` writes calls whose turns
were answered from the demo knowledge base, each knowledge event naming the entry (or hours / price item) that
answered, with the bot saying exactly what the knowledge code says; and questions it could not answer, which
the "Unanswered" list groups with counts. Real SQLite store, real demo knowledge folder, no model."""

from __future__ import annotations

import random
from datetime import datetime, timezone

from typer.testing import CliRunner

from voicebot.cli import app
from voicebot.events import EventKind, KnowledgeAnswered
from voicebot.knowledge.base import HOURS_ID, spoken
from voicebot.knowledge.files import load_folder
from voicebot.knowledge.hours import OpeningHours
from voicebot.knowledge.unanswered import collect, group_questions
from voicebot.review.demo import seed_calls
from voicebot.review.demo_knowledge import DEMO_KNOWLEDGE, UNANSWERED, knowledge_scenarios
from voicebot.store import CallStore

END = datetime(2026, 11, 27, 22, tzinfo=timezone.utc)


def _knowledge_turns(store: CallStore, call_id: str) -> list[tuple[KnowledgeAnswered, str, str]]:
    """(event, the caller's question before it, the bot's line it was recorded with) for each knowledge event."""
    turns = store.turns(call_id)
    out = []
    for row in store.events(call_id):
        event = row.parsed
        if not isinstance(event, KnowledgeAnswered):
            continue
        before = [t for t in turns if t.started_at is not None and t.started_at <= row.at + 1e-6]
        bot_line = [t for t in before if t.role == "bot"][-1].text
        asked = [t for t in before if t.role == "caller"][-1].text
        out.append((event, asked, bot_line))
    return out


def test_seeded_demo_calls_name_the_entry_that_answered_and_fill_the_unanswered_list(tmp_path):
    files = load_folder(DEMO_KNOWLEDGE)
    entries = {e.id: e for e in files.entries}
    items = {f"price:{i.id}" for i in files.prices.items}
    with CallStore(tmp_path / "calls.db", tmp_path / "rec") as store:
        ids = seed_calls(store, 60, end=END, days=14, recordings=0)
        seen: dict[str, int] = {}
        for call_id in ids:
            for event, asked, said in _knowledge_turns(store, call_id):
                seen[event.answer] = seen.get(event.answer, 0) + 1
                assert event.question == asked  # the event keeps the caller's words of that turn
                if event.answer == "entry":
                    [entry_id] = event.entry_ids
                    assert said == spoken(entries[entry_id].answer)  # spoken from the entry it names
                elif event.answer == "hours":
                    assert list(event.entry_ids) == [HOURS_ID]
                    assert "open" in said or "closed" in said, said
                elif event.answer == "price":
                    assert event.entry_ids[0] in items and "estimate" in said
                else:  # weak / none: not answered, on the Unanswered list
                    assert event.answer in ("weak", "none")
        assert {"entry", "hours", "price", "none"} <= set(seen), seen
        assert seen["entry"] >= 5

        questions = collect(store)
        grouping = group_questions(questions)  # word overlap: no model here
    texts = {q.text for q in questions}
    asked_wordings = {w for group in UNANSWERED for w in group}
    assert texts & asked_wordings, texts
    assert {q.source for q in questions} >= {"none"}
    assert sum(g.count for g in grouping.groups) == len(questions)
    assert any(g.count > 1 for g in grouping.groups), [(g.title, g.count) for g in grouping.groups]
    assert not texts & {"Yes, please.", "Great, that's all I needed. Bye."}  # replies are no questions


def test_hours_in_a_demo_call_are_computed_for_that_calls_own_time():
    files = load_folder(DEMO_KNOWLEDGE)
    saturday_noon = datetime(2026, 11, 28, 20, tzinfo=timezone.utc)  # 12:00 in Seattle, open 9-13
    sunday = datetime(2026, 11, 29, 20, tzinfo=timezone.utc)  # closed
    for when in (saturday_noon, sunday):
        for seed in range(12):
            for scenario in knowledge_scenarios(files, when, random.Random(seed)):
                for line in scenario.lines:
                    kinds = [data.get("answer") for kind, data in line.events if kind == EventKind.KNOWLEDGE]
                    if kinds == ["hours"]:
                        question = next(data["question"] for kind, data in line.events)
                        assert line.text == OpeningHours(files.hours).answer(question, when)
    assert OpeningHours(files.hours).answer("Are you open right now?", saturday_noon).startswith("Yes")
    assert OpeningHours(files.hours).answer("Are you open right now?", sunday).startswith("No")


def test_seed_demo_command_writes_knowledge_calls(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(f"store:\n  database: {tmp_path / 'calls.db'}\n  recordings_dir: {tmp_path / 'rec'}\n",
                      encoding="utf-8")
    result = CliRunner().invoke(app, ["review", "seed-demo", "--calls", "40", "--recordings", "0",
                                      "--config", str(config)])
    assert result.exit_code == 0, result.output
    with CallStore(tmp_path / "calls.db", tmp_path / "rec") as store:
        rows = store.select("SELECT data FROM events WHERE kind = ?", (EventKind.KNOWLEDGE.value,))
        assert len(rows) >= 5
        assert collect(store)


def test_bench_calls_tells_knowledge_turns_from_crm_turns(tmp_path):
    """`voicebot bench calls` reports the issue's "knowledge turn" figure apart: the caller turns an entry, the
    hours or a price answered (a weak or no match is not one)."""
    from voicebot.bench import _knowledge_turns
    from voicebot.store import Turn, TurnTimings

    with CallStore(tmp_path / "calls.db", tmp_path / "rec") as store:
        store.start_call("+15550102030", call_id="c1")
        for start, end, said, answer in ((1.0, 2.5, "What is your return policy?", "entry"),
                                         (6.0, 7.25, "Where is my order?", None),
                                         (11.0, 12.125, "Do you rent projectors?", "none"),
                                         (15.0, 16.5, "Are you open on Saturday?", "hours")):
            store.add_turn("c1", Turn("caller", said, start, end, TurnTimings(end_of_speech=end)))
            store.add_turn("c1", Turn("bot", "...", end + 0.8, end + 3.0))
            if answer:
                store.add_event("c1", EventKind.KNOWLEDGE, {"answer": answer, "entry_ids": [], "question": said},
                                at=end + 3.0)
        assert _knowledge_turns(store, "c1") == {2.5, 16.5}
