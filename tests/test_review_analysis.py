"""After-call analysis: sentiment and flags computed from the store, summary/topic/QA from a (fake or real) model."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from fakes import ScriptedChat
from review_support import CARD, GOOD_REPLY, review_config
from voicebot.config import ReviewConfig
from voicebot.review.analysis import RUBRIC, TOPICS, analysis_schema, analyze_call, load_analysis
from voicebot.review.app import open_store
from voicebot.review.demo import write_demo_call
from voicebot.store import MIGRATIONS, CallStore, StoreError, Turn, TurnTimings


@pytest.fixture
def store(tmp_path):
    with CallStore(":memory:", tmp_path / "recordings") as s:
        yield s


def _upset_call(store: CallStore) -> str:
    call_id = store.start_call("+15550102030")
    store.add_turn(call_id, Turn("bot", "Hello, you are speaking with the automated assistant.", 0.4, 3.0))
    store.add_turn(call_id, Turn("caller", "My order never came. This is ridiculous and useless!", 4.0, 8.0,
                                 TurnTimings(end_of_speech=8.0, transcript_ready=8.9)))
    store.add_turn(call_id, Turn("bot", "I'm sorry. Let me get you to a person.", 15.5, 18.0,
                                 TurnTimings(8.0, 8.9, 9.2, 9.4, 15.5)))
    store.add_event(call_id, "guard_ungrounded", {"original": "It arrives on March 9.", "items": ["March 9"]}, 12.0)
    store.add_event(call_id, "transfer_result", {"ok": False, "status": 486, "reason": "Busy Here"}, 19.0)
    store.finish_call(call_id, "transfer_failed", "frustration; callback 3")
    return call_id


def test_the_migration_adds_the_analysis_table_to_an_old_store(tmp_path):
    path, recordings = tmp_path / "calls.db", tmp_path / "recordings"
    CallStore(path, recordings, migrations=MIGRATIONS[:1]).close()  # a store written before this table existed
    with pytest.raises(StoreError, match="open it once read-write"):
        CallStore(path, recordings, readonly=True)
    config = review_config(tmp_path)
    with open_store(config) as store:  # the app migrates once, then reads only
        assert store.schema_version == len(MIGRATIONS)
        assert store.select("SELECT COUNT(*) FROM call_analysis")[0][0] == 0
        with pytest.raises(StoreError):
            store.save_analysis("x", summary="read-only")


def test_select_refuses_writes(store):
    call_id = store.start_call("+15550102030")
    with pytest.raises(ValueError):
        store.select("DELETE FROM calls")
    with pytest.raises(StoreError):
        store.select("WITH x AS (SELECT 1) DELETE FROM calls")
    assert store.count_calls() == 1 and store.get_call(call_id)


def test_deterministic_part_sentiment_and_flags(store):
    call_id = _upset_call(store)
    result = analyze_call(store, call_id)
    assert [p.turn for p in result.sentiment] == [1]  # caller turns only
    assert result.sentiment_min is not None and result.sentiment_min <= -0.5
    assert set(result.flags) == {"upset_caller", "grounding_guard", "transfer_failed", "long_silence"}
    assert result.flags["long_silence"] == "7.5 s of silence at 0:08"
    assert result.flags["transfer_failed"] == "transfer not completed (486 Busy Here)"
    assert result.model is None and result.generated_summary is None
    # the summary states what the events show, and nothing else
    assert result.summary == "Outcome: transfer failed (the transfer did not complete (486 Busy Here))."
    assert set(result.qa) == set(RUBRIC) and result.qa["handoff"].score == 2  # computed without any model
    assert load_analysis(store, call_id) == result


def test_a_calm_call_has_no_flags(store):
    call_id = store.start_call("+15550102030")
    store.add_turn(call_id, Turn("bot", "Hello, how can I help?", 0.4, 2.0))
    store.add_turn(call_id, Turn("caller", "Where is my order? Thanks so much.", 3.0, 5.0, TurnTimings(5.0, 5.8)))
    store.add_turn(call_id, Turn("bot", "It has shipped.", 6.3, 7.5, TurnTimings(5.0, 5.8, 6.0, 6.2, 6.3)))
    store.finish_call(call_id, "resolved")
    result = analyze_call(store, call_id)
    assert result.flags == {}
    assert result.sentiment_mean is not None and result.sentiment_mean > 0


def test_thresholds_come_from_the_config(store):
    call_id = _upset_call(store)
    result = analyze_call(store, call_id, config=ReviewConfig(long_silence_s=10, upset_sentiment=-1))
    assert "long_silence" not in result.flags and "upset_caller" not in result.flags


def test_model_part_with_a_fake_model(store):
    """The model writes the topic and a generated summary only; the QA comes from the record."""
    call_id = store.start_call("+15550102030")
    store.add_turn(call_id, Turn("bot", "Please tell me your PIN.", 0.5, 2.0))
    store.add_turn(call_id, Turn("caller", "4 8 2 1", 3.0, 4.0))
    store.add_turn(call_id, Turn("caller", f"And pay with {CARD}.", 5.0, 8.0))
    store.add_turn(call_id, Turn("bot", "Order 10452 has shipped.", 9.0, 10.0, tool_calls=(
        {"name": "verify_pin", "arguments": {"pin": "4821"}, "result": {"verified": True}},)))
    store.finish_call(call_id, "resolved")
    chat = ScriptedChat([GOOD_REPLY], repeat=True)
    result = analyze_call(store, call_id, chat)
    assert (result.generated_summary, result.topic, result.model) == (GOOD_REPLY["summary"], "order_status",
                                                                      chat.name)
    assert set(result.qa) == set(RUBRIC) and result.qa_score is not None
    assert "empathy" not in result.qa  # the model's own scores are not asked for, nor kept
    assert chat.schemas == [analysis_schema()] and analysis_schema()["required"] == ["topic", "summary"]
    assert analysis_schema()["properties"]["topic"]["enum"] == list(TOPICS)
    prompt = chat.calls[0].messages[-1].content
    assert "[card •••• 1111]" in prompt and "4111" not in prompt  # the model never reads a secret
    assert "4 8 2 1" not in prompt and "4821" not in prompt
    assert "Order 10452 has shipped." in prompt and "Outcome: resolved" in prompt


def test_model_topic_out_of_range_is_coerced(store):
    call_id = _upset_call(store)
    result = analyze_call(store, call_id, ScriptedChat([dict(GOOD_REPLY, topic="weather")], repeat=True))
    assert result.topic == "other"


def test_a_model_failure_is_stored_and_keeps_what_was_there(store):
    call_id = _upset_call(store)
    analyze_call(store, call_id, ScriptedChat([GOOD_REPLY], repeat=True))
    result = analyze_call(store, call_id, ScriptedChat(["this is not json"], repeat=True))
    assert "invalid JSON" in result.error
    assert result.generated_summary == GOOD_REPLY["summary"]  # the earlier model analysis stays
    assert "upset_caller" in result.flags and result.qa  # and the part from the record is fresh


def test_a_summary_cut_off_by_the_token_limit_keeps_the_topic_and_its_full_sentences(store):
    call_id = _upset_call(store)
    cut = ('{"topic": "order_status", "summary": "The caller asked where their order was. The bot said it had '
           'shipped and the caller asked about the \\"delivery\\" window, then')
    result = analyze_call(store, call_id, ScriptedChat([cut], repeat=True))
    assert result.error is None and result.topic == "order_status"
    assert result.generated_summary == "The caller asked where their order was."
    compact = '{"topic":"order_status","summary":"The caller asked about their \\"order\\". The bot said it had'
    result = analyze_call(store, call_id, ScriptedChat([compact], repeat=True))  # Ollama writes no spaces
    assert (result.error, result.topic) == (None, "order_status")
    assert result.generated_summary == 'The caller asked about their "order".'
    nothing = analyze_call(store, call_id, ScriptedChat(['{"topic": "order_status", "summary": "The caller'],
                                                        repeat=True))
    assert "invalid JSON" in nothing.error  # no full sentence: nothing is made up of half of one


def test_an_unknown_call_is_a_store_error(store):
    with pytest.raises(StoreError, match="no call"):
        analyze_call(store, "nope")


@pytest.mark.models
def test_the_real_model_summarises_and_scores_a_call(store, chat_model):
    """One analysis through the embedded model: the schema holds it to the shape; the content is plausible."""
    call_id = write_demo_call(store, "late delivery", datetime(2026, 3, 3, 10, tzinfo=timezone.utc), call_id="real",
                              recording=False)
    result = analyze_call(store, call_id, chat_model)
    assert result.model == chat_model.name
    assert result.topic in {"delivery_problem", "order_status", "complaint"}
    # kept only when it names nothing the record lacks; else the error says what it named
    assert (result.error is None and len(result.generated_summary.split()) >= 5) or \
        "not kept" in (result.error or ""), result.error
    assert set(result.qa) == set(RUBRIC)
    for score in result.qa.values():
        assert 1 <= score.score <= 5 and score.reason
    assert load_analysis(store, call_id).generated_summary == result.generated_summary
