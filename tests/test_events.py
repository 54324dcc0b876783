"""The one event vocabulary: stored events round-trip through the store in the on-disk form the store always had,
secrets are masked on the way in, and rows this code does not know are read back as they are, never an error."""

from __future__ import annotations

import json

import pytest

from voicebot.events import (BackchannelHeard, BargedIn, CallbackCreated, ErrorOccurred, Escalated, EventKind,
                             FillerPlayed, GuardFired, NoInputTimedOut, OtherEvent, ToolCallMade, TransferEnded,
                             TransferReason, TransferResult, TransferStarted, guard_fired, parse, to_row)
from voicebot.store import CallStore

EVERY_KIND = [
    (NoInputTimedOut(), "no_input", {}),
    (BackchannelHeard("mm-hmm", 0.3), "backchannel", {"text": "mm-hmm", "speech_s": 0.3}),
    (BargedIn("sales", 1.2), "barge_in", {"text": "sales", "speech_s": 1.2}),
    (FillerPlayed(), "filler", {}),
    (ToolCallMade("get_order", {"order_number": "10452"}, {"ok": True, "result": {"number": "10452"}}, 0.012),
     "tool_call", {"tool": "get_order", "args": {"order_number": "10452"},
                   "result": {"ok": True, "result": {"number": "10452"}}, "elapsed_s": 0.012}),
    (guard_fired("ungrounded", "It arrives on March 9.", ("March 9",)), "guard_ungrounded",
     {"original": "It arrives on March 9.", "items": ["March 9"]}),
    (guard_fired("instructions_leak", "My instructions say"), "guard_instructions_leak",
     {"original": "My instructions say", "items": []}),
    (Escalated(TransferReason.FRUSTRATION, "angry: 'ridiculous'", -0.7), "escalation",
     {"reason": "frustration", "detail": "angry: 'ridiculous'", "sentiment": -0.7}),
    (TransferStarted(TransferReason.MENU, "option", "sip:operator@127.0.0.1:5070", "Caller not identified."),
     "transfer_requested", {"reason": "menu", "detail": "option", "target": "sip:operator@127.0.0.1:5070",
                            "summary": "Caller not identified."}),
    (TransferEnded.of(TransferResult("sip:op@x", False, 486, "Busy Here", ((100, "Trying"), (486, "Busy Here"))),
                      "blind"), "transfer_result",
     {"ok": False, "status": 486, "reason": "Busy Here", "mode": "blind",
      "progress": [[100, "Trying"], [486, "Busy Here"]]}),
    (CallbackCreated(12), "callback_created", {"id": 12}),
    (ErrorOccurred(stage="dialogue", error="RuntimeError('x')"), "error",
     {"stage": "dialogue", "error": "RuntimeError('x')"}),
    (ErrorOccurred(error="RuntimeError('x')"), "error", {"error": "RuntimeError('x')"}),
]


@pytest.fixture
def store(tmp_path):
    with CallStore(tmp_path / "calls.db", tmp_path / "recordings") as store:
        yield store


@pytest.mark.parametrize("event, kind, data", EVERY_KIND, ids=[row[1] for row in EVERY_KIND])
def test_every_kind_is_written_in_the_stores_old_form_and_read_back_typed(store, event, kind, data):
    assert to_row(event) == (kind, data)
    call_id = store.start_call("+15550102030")
    store.add_event(call_id, event, at=1.5)
    [row] = store.events(call_id)
    raw = store.select("SELECT kind, data FROM events")[0]
    assert (raw["kind"], json.loads(raw["data"])) == (kind, data)
    assert list(json.loads(raw["data"])) == list(data)  # same key order as before: the call page lists them so
    assert (row.kind, row.data, row.at) == (kind, data, 1.5)
    assert row.parsed == event


def test_a_kind_and_its_data_are_parsed_too_so_old_callers_write_the_same_rows(store):
    call_id = store.start_call(None)
    store.add_event(call_id, "transfer_result", {"ok": False, "status": 486, "reason": "Busy Here"}, 19.0)
    [row] = store.events(call_id)
    assert row.parsed == TransferEnded(ok=False, status=486, reason="Busy Here")  # older rows lack mode, progress
    assert row.data == {"ok": False, "status": 486, "reason": "Busy Here"}
    with pytest.raises(TypeError):
        store.add_event(call_id, FillerPlayed(), {"extra": 1})


@pytest.mark.parametrize("kind, data", [
    ("guard", {"reason": "operator phrase"}),  # a kind no code writes any more
    ("escalation", {"reason": "dtmf", "new_field": 1}),  # a newer row: a field this code does not know
    ("transfer_result", {"ok": True, "progress": [1, 2]}),  # progress entries that are not pairs
    ("guard_shouting", {"original": "HEY"}),
])
def test_rows_that_do_not_fit_are_kept_as_they_are(store, kind, data):
    event = parse(kind, data)
    assert event == OtherEvent(kind, data)
    assert to_row(event) == (kind, data)
    call_id = store.start_call(None)
    store.add_event(call_id, kind, data)
    assert store.events(call_id)[0].data == data


def test_an_unknown_guard_keeps_its_kind():
    assert guard_fired("shouting", "HEY") == OtherEvent("guard_shouting", {"original": "HEY", "items": ()})
    assert to_row(guard_fired("shouting", "HEY")) == ("guard_shouting", {"original": "HEY", "items": []})


def test_secrets_are_masked_whoever_writes_the_event(store):
    event = ToolCallMade("verify_caller", {"pin": "4815", "date_of_birth": "1980-02-01"},
                         {"ok": True, "note": "card 4111 1111 1111 1111 on file"}, 0.01)
    kind, data = to_row(event)
    assert "4815" not in json.dumps(data) and "1980" not in json.dumps(data) and "4111 1111" not in json.dumps(data)
    call_id = store.start_call(None)
    store.add_event(call_id, "barge_in", {"text": "my PIN is 4815", "speech_s": 1.0})
    assert "4815" not in store.events(call_id)[0].data["text"]


def test_kinds_are_plain_strings_on_disk():
    assert {k.value for k in EventKind} >= {"no_input", "tool_call", "guard_ungrounded", "transfer_result"}
    assert GuardFired(EventKind.GUARD_UNGROUNDED).kind == "guard_ungrounded"
    assert parse("no_input", None) == NoInputTimedOut()
