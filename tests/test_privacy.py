"""No PIN, date of birth or card number in clear anywhere (issue 13, item 6).

Before this, every call summary took each 3+ digit number the caller said as an order number, so a PIN went into
the transfer event, the spoken warm-transfer brief, the callback, the call store and the CRM's call history (which
the model reads on the caller's next call); caller turns were stored as heard. Now caller turns and event data are
masked before they are stored, summaries are built from typed facts (order numbers the CRM confirmed or the caller
named as an order), and the CRM masks free text when it is written and call history when it is read.

The last two tests run a whole call through the simulated line, once on the fakes of fakes.py (milliseconds, no
models) and once with the real models: the caller gives a wrong PIN, a date of birth and the right PIN, asks for a
person (a warm transfer to a busy operator: a spoken brief, then a callback); then every text column of both
databases, every log record, every sentence synthesised (the brief included) and the process output are scanned
for them.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sqlite3
from datetime import date

import pytest
from conftest import morning_of

from voicebot.config import EscalationConfig
from voicebot.crm.repository import Repository
from voicebot.crm.schema import connect, migrate
from voicebot.crm.seed import DEMO_CALLERS, seed_demo
from voicebot.crm.spoken import digits_in
from voicebot.dialog.guard import EscalationGuard, confirmed_orders, stated_orders
from voicebot.review.redact import (MASK, has_secrets, mask_caller_turn, mask_secret_data, mask_secrets,
                                    redact_text)

TODAY = date(2026, 11, 22)
ALICE = DEMO_CALLERS[0]  # PIN 1234, born 1985-03-14, orders 10452 and 10398
assert ALICE.pin == "1234" and ALICE.date_of_birth == date(1985, 3, 14)
WRONG_PIN = "4815"
PIN_PROMPT = "For your security, please tell me your four-digit PIN."
HIDDEN = MASK + "•"


def digit_pattern(digits: str) -> re.Pattern[str]:
    """``digits`` as Whisper or a person may write them: "4815", "4 8 1 5", "4, 8, 1, 5", "4-8-1-5", "four eight
    one five"; not inside a longer number or a decimal ("0.4815")."""
    names = "zero one two three four five six seven eight nine".split()
    as_digits = r"[\s,-]{0,2}".join(digits)
    as_words = r"[\s,-]+".join(rf"(?:{names[int(d)]}|{'oh|' if d == '0' else ''}{d})" for d in digits)
    return re.compile(rf"(?<![\d.])(?:{as_digits}|{as_words})(?![\d.])", re.IGNORECASE)


DOB_PATTERNS = [re.compile(p, re.IGNORECASE) for p in (
    r"(?<![\d.])1985(?![\d.])", r"march\s+(?:the\s+)?14", r"\b14(?:st|nd|rd|th)?\s+(?:of\s+)?march", r"fourteenth",
    r"nineteen\s+eighty", r"(?<!\d)0?3/14/(?:19)?85", r"14/0?3/(?:19)?85")]


IDS = re.compile(r"(?<![0-9a-z])(?=[0-9a-f-]*[a-f])[0-9a-f][0-9a-f-]{11,}(?![0-9a-z])", re.IGNORECASE)


def without_ids(text: str) -> str:
    """Text without random identifiers: a call's UUID, a SIP Call-ID or a journal file's hex name may hold "1234"
    by chance (one CI run's call id did). An identifier here has a hex letter in it; a card or PIN has none."""
    return IDS.sub("", text or "")


def found(text: str, patterns) -> list[str]:
    return [m.group(0) for p in patterns for m in p.finditer(text or "")]


# -- masking before storage ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, stored", [
    ("My PIN is 4 8 1 5.", "My PIN is ••••."),
    ("my pin is four eight one five", "my pin is ••••"),
    ("PIN: 4, 8, 1, 5 and order 10452", "PIN: •••• and order 10452"),
    ("My date of birth is March 14th, 1985.", "My date of birth is ••••."),
    ("I was born on the fourteenth of March nineteen eighty-five", "I was born on the ••••"),
    ("DOB 03/14/1985, zip 98101", "DOB ••••, zip 98101"),
    ("card 4111 1111 1111 1111 please", "card [card •••• 1111] please"),
    ("Where is order 10452? Call me on +15550102030 on March 3rd.",
     "Where is order 10452? Call me on +15550102030 on March 3rd."),  # not secrets: kept for the operator
    ("born in London", "born in London"),
    # a whole date long past is a date of birth, keyword or not (it went into a ticket's text in clear)
    ("I want a refund for my desk. 2 November 1979.", "I want a refund for my desk. ••••."),
    ("November 2nd, 1979, SW1A 1AA", "••••, SW1A 1AA"), ("02/11/1979", "••••"),
    ("It was delivered on 2 November 2026.", "It was delivered on 2 November 2026."),
])
def test_secrets_are_masked_before_storage_and_other_numbers_kept(text, stored):
    assert mask_secrets(text) == stored
    assert has_secrets(stored) == (stored != text)  # the review app still silences that part of the recording


def test_an_answer_to_a_question_for_a_secret_is_masked_whole():
    history = [("bot", "Hello."), ("caller", "where is my order"), ("bot", PIN_PROMPT)]
    assert mask_caller_turn("4 8 1 5", history) == HIDDEN
    assert mask_caller_turn("it's four oh one five", history) == f"it's {HIDDEN}"
    assert mask_caller_turn("March 14 1985", [("bot", "What is your date of birth?")]) == HIDDEN
    assert mask_caller_turn("1 2 3 4", [("bot", "Hello.")], asked=True) == HIDDEN  # the dialogue awaits a PIN
    assert mask_caller_turn("order 10452 please", [("bot", "Which order?")]) == "order 10452 please"


def test_event_data_is_masked_by_key_and_content():
    data = {"tool": "verify_caller", "args": {"pin": "4815", "date_of_birth": "March 14, 1985"},
            "result": {"ok": True, "result": {"number": "10452", "shipping": "UPS"}},
            "text": "my PIN is 4815", "summary": "Caller said PIN 4815.", "elapsed_s": 0.4815, "n": 3}
    assert mask_secret_data(data) == {
        "tool": "verify_caller", "args": {"pin": HIDDEN, "date_of_birth": HIDDEN},
        "result": {"ok": True, "result": {"number": "10452", "shipping": "UPS"}},
        "text": f"my PIN is {HIDDEN}", "summary": f"Caller said PIN {HIDDEN}.", "elapsed_s": 0.4815, "n": 3}


def test_supervisors_see_dates_of_birth_masked_too():
    assert redact_text("my date of birth is March 14, 1985", "supervisor") == f"my date of birth is {HIDDEN}"
    assert redact_text("it's March 14, 1985", "supervisor", secret_answer=True) == f"it's {HIDDEN}"


# -- the summary: typed facts only ------------------------------------------------------------------------------

@pytest.fixture
def guard():
    return EscalationGuard(EscalationConfig())


CALL = [
    ("bot", "Hello Alice, you are speaking with the automated assistant of Northwind Supplies."),
    ("caller", "Hi, where is my order? My date of birth is March 14th, 1985."),
    ("bot", PIN_PROMPT),
    ("caller", "4 8 1 5"),
    ("bot", "That did not match. 2 attempts left. Please tell me your four-digit PIN again."),
    ("caller", "My PIN is one two three four."),
    ("bot", "Thank you. What else can I do for you?"),
    ("caller", "My card is 4111 1111 1111 1111, can I pay the invoice for order 10 452?"),
]


def test_the_summary_takes_no_pin_or_date_of_birth_for_an_order_number(guard):
    """Before: "Asked about order 1985, 4815, 10452" (every 3+ digit number), and the request quoted with its DOB."""
    summary = guard.summary(CALL, caller="Alice Johnson (+15550102030), verified")
    assert summary.startswith("Caller Alice Johnson (+15550102030), verified. Asked about order 10452: "), summary
    assert f"My date of birth is {HIDDEN}" in summary, summary
    for secret in (digit_pattern(WRONG_PIN), digit_pattern("1234"), digit_pattern("4111111111111111"),
                   *DOB_PATTERNS):
        assert not found(summary, [secret]), (secret.pattern, summary)


def test_order_numbers_in_the_summary_come_from_the_crm_or_are_named_as_orders(guard):
    turns = [("caller", "4 8 1 5"), ("caller", "I have a question about my delivery of 250 chairs")]
    assert guard.summary(turns) == 'Caller not identified. Asked about order: "I have a question about my delivery ' \
                                   'of 250 chairs".'  # before: "Asked about order 4815, 250"
    events = [("tool_call", {"tool": "get_order", "args": {"order_number": "10398"},
                             "result": {"ok": True, "result": {"number": "10398", "status": "delivered"}}}),
              ("tool_call", {"tool": "list_open_orders", "args": {},
                             "result": {"ok": True, "result": [{"number": "10452"}, {"number": "10398"}]}}),
              ("tool_call", {"tool": "get_order", "args": {"order_number": "4815"},
                             "result": {"ok": False, "error": "not_found"}}),
              ("escalation", {"reason": "dtmf"})]
    assert confirmed_orders(events) == ["10398", "10452"]
    assert "Asked about order 10398, 10452:" in guard.summary(turns, orders=confirmed_orders(events))
    assert stated_orders("order number one oh four five two, my PIN is 4815") == ["10452"]
    assert stated_orders("order #10452 and 4815") == ["10452"]


def test_a_pin_said_twice_is_not_quoted_in_the_escalation(guard):
    assert guard.check_transcript("4 8 1 5 6") is None
    assert guard.check_transcript("4 8 1 5 6") is None  # a number said again answers a question again
    said = "I told you, it is 4 8 1 5 6"
    guard.check_transcript(said)
    escalation = guard.check_transcript(said)
    assert escalation is not None and escalation.detail == f'repeated "I told you, it is {HIDDEN}"'
    asked = ("bot", "For your security, please tell me your four-digit PIN.")
    summary = guard.summary([asked, ("caller", said)] * 2, escalation=escalation)
    assert "4 8 1 5 6" not in summary and "48156" not in summary and HIDDEN in summary


# -- the CRM ----------------------------------------------------------------------------------------------------

def test_the_crm_masks_free_text_when_written_and_call_history_when_read():
    repo = Repository.open(None, clock=morning_of(TODAY))
    seed_demo(repo, today=TODAY)
    alice = repo.find_customer_by_phone(ALICE.phone)
    first = {table: repo.db[table].count + 1 for table in ("interactions", "callbacks", "tickets", "leads")}
    repo.add_interaction("Caller gave PIN 4815; date of birth March 14, 1985.", "resolved", customer_id=alice.id)
    repo.request_callback(ALICE.phone, "Transfer failed. My PIN is 4 8 1 5.", customer_id=alice.id)
    repo.create_ticket("Card 4111 1111 1111 1111 charged twice", "pin 4815", customer_id=alice.id)
    repo.create_lead("Dana", "chairs", notes="born on 14 March 1985")
    # a row from before the fix, written straight into the table: the model must not read it either
    repo.db["interactions"].insert({"customer_id": alice.id, "started_at": "2026-11-21T10:00:00",
                                    "summary": "Asked about order 4815, PIN 4815.", "outcome": "resolved"})
    history = [i.summary for i in repo.recent_interactions(alice.id, limit=100)]
    assert f"Caller gave PIN {HIDDEN}; date of birth {HIDDEN}." in history
    assert f"Asked about order 4815, PIN {HIDDEN}." in history  # masked on the way to the model
    legacy = repo.db["interactions"].count
    stored = " ".join(str(v) for table, start in first.items() for row in repo.db[table].rows_where("id >= ?", [start])
                      if not (table == "interactions" and row["id"] == legacy) for v in row.values())
    assert "PIN" in stored and not found(stored, [digit_pattern(WRONG_PIN), *DOB_PATTERNS]), stored
    assert "4111 1111" not in stored and "[card •••• 1111]" in stored
    assert [c.reason for c in repo.pending_callbacks(alice.id)][0] == f"Transfer failed. My PIN is {HIDDEN}."


def test_an_upgrade_masks_secrets_already_in_the_crm(tmp_path):
    old = connect(tmp_path / "crm.db")
    migrate(old, stop_before="m005_mask_secrets_in_free_text")
    old["interactions"].insert({"started_at": "2026-11-21T10:00:00", "outcome": "resolved",
                                "summary": "Caller Alice. Asked about order 4815, 10452: \"my PIN is 4815\"."})
    old["callbacks"].insert({"phone": "+15550102030", "reason": "date of birth March 14, 1985", "status": "pending",
                             "created_at": "2026-11-21T10:00:00"})
    old.close()
    repo = Repository.open(tmp_path / "crm.db")
    [interaction] = list(repo.db["interactions"].rows)
    assert interaction["summary"] == f"Caller Alice. Asked about order: \"my PIN is {HIDDEN}\"."  # any was a PIN
    [callback] = list(repo.db["callbacks"].rows)
    assert callback["reason"] == f"date of birth {HIDDEN}"
    repo.close()


def test_a_pin_said_with_the_request_is_not_taken_for_an_order_number():
    from voicebot.dialog.answers import match_intent

    assert match_intent("Where is my order? My PIN is 1234.") == ("list_open_orders", {})
    assert match_intent("My PIN is 4 8 1 5, where is my order?") == ("list_open_orders", {})
    assert match_intent("Where is order 10452? My PIN is 1234.") == ("get_order", {"order_number": "10452"})


# -- whole calls ---------------------------------------------------------------------------------------------------

SCRIPT = ["Hi, where is my order?", "My PIN is 4 8 1 5.", "My date of birth is March 14th, 1985.", "1 2 3 4."]
LATER = "Also my date of birth is March 14th, 1985, can you update my account?"  # not an answer: keyword-masked
LATER_REPLY = {"action": "reply", "text": "I can't change account details, but a colleague can help with that."}

class Recording:
    """Wraps a model and keeps what went through it: the texts synthesised, the transcripts heard."""

    def __init__(self, inner, kind: str):
        self.inner, self.kind, self.texts = inner, kind, []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def stream(self, text, sample_rate):
        self.texts.append(text)
        return self.inner.stream(text, sample_rate)

    def cached(self, text, sample_rate):
        self.texts.append(text)
        return self.inner.cached(text, sample_rate)

    def transcribe(self, pcm, sample_rate, **kwargs):
        transcript = self.inner.transcribe(pcm, sample_rate, **kwargs)
        self.texts.append(transcript.text)
        return transcript


def text_values(connection) -> list[tuple[str, str, str]]:
    """(table, column, text) for every text value in every table of a SQLite database."""
    out = []
    tables = [r[0] for r in connection.execute("select name from sqlite_master where type = 'table'")]
    for table in tables:
        cursor = connection.execute(f'select * from "{table}"')
        names = [d[0] for d in cursor.description]
        for row in cursor:
            out += [(table, name, value) for name, value in zip(names, row) if isinstance(value, str)]
    return out


def database_file(connection) -> str:
    return next(r[2] for r in connection.execute("PRAGMA database_list") if r[1] == "main")


def warm_and_busy(config):
    """The config with warm transfers (the operator hears a spoken brief), and the busy operator's answer (the
    caller stays, and a callback with the summary goes to the CRM)."""
    from voicebot.telephony.base import TransferResult

    config = config.model_copy(deep=True)
    config.sip.transfer_mode = "warm"
    return config, TransferResult(config.sip.operator_uri, ok=False, status=486, reason="Busy Here")


def assert_nothing_leaked(deps, call_id, crm_before, patterns, caplog, capfd, synthesised):
    """Scan both databases (the CRM: rows the call added or changed), the log records, what was synthesised and
    the process output for ``patterns``; then check the scan saw the places where secrets used to leak."""
    with sqlite3.connect(deps.store.path) as db:
        stored = text_values(db)  # calls, turns, events, analysis: all from this call
    with sqlite3.connect(database_file(deps.crm.db.conn)) as db:
        crm_new = [v for v in text_values(db) if v not in crm_before]  # interactions, callbacks
    leaks = [(where, text, found(without_ids(text), patterns)) for where, text in
             [(f"calls.db {t}.{c}", v) for t, c, v in stored] + [(f"crm.db {t}.{c}", v) for t, c, v in crm_new]
             + [(f"log {r.name}", r.getMessage() + (r.exc_text or "")) for r in caplog.records]
             + [("synthesised", t) for t in synthesised] + [("output", "\n".join(capfd.readouterr()))]
             if found(without_ids(text), patterns)]
    assert not leaks, leaks

    kinds = [e.kind for e in deps.store.events(call_id)]
    assert {"tool_call", "transfer_requested", "transfer_result", "callback_created"} <= set(kinds), kinds
    caller_turns = [t.text for t in deps.store.turns(call_id) if t.role == "caller"]
    assert sum(HIDDEN in t for t in caller_turns) >= 3, caller_turns  # the PIN and DOB turns are kept, masked
    call = deps.store.get_call(call_id)
    assert call.summary and call.summary.startswith("Caller Alice Johnson"), call.summary
    assert {t for t, _, _ in crm_new} >= {"interactions", "callbacks"}, crm_new


def test_a_call_on_the_fakes_leaves_no_pin_or_date_of_birth_anywhere(tmp_path, config, caplog, capfd):
    """The same call as below in milliseconds: fakes.py stands in for Whisper, Piper, webrtcvad and the model."""
    import asyncio

    from fakes import CallerVoice, FakeSynthesizer, FakeTranscriber, ScriptedChat, ScriptedVad
    from voicebot.session import CallSession, SessionDeps
    from voicebot.store import CallStore, Outcome
    from voicebot.telephony.sim import HangUp, Press, SimulatedLine, WaitForBot

    repo = Repository.open(tmp_path / "crm.db", region=config.crm.default_region, clock=morning_of(TODAY))
    seed_demo(repo, today=TODAY)
    store = CallStore(tmp_path / "calls.db", tmp_path / "recordings")
    config, busy = warm_and_busy(config)
    voice, synthesizer, chat = CallerVoice(sample_rate=config.audio.sample_rate), FakeSynthesizer(), ScriptedChat(
        [LATER_REPLY])
    deps = SessionDeps(config, FakeTranscriber(voice), synthesizer, chat, ScriptedVad(), repo, store, today=TODAY)
    with sqlite3.connect(database_file(repo.db.conn)) as db:
        crm_before = set(text_values(db))
    script = [step for text in [*SCRIPT, LATER] for step in (WaitForBot(), voice.say(text))]
    script += [WaitForBot(), Press("0"), WaitForBot(), HangUp()]
    line = SimulatedLine(script, caller_id="+15550102030", speed=float("inf"),
                         sample_rate=config.audio.sample_rate, transfer_result=busy)
    capfd.readouterr()
    caplog.set_level(logging.DEBUG)
    session = CallSession(line, deps)
    outcome = asyncio.run(asyncio.wait_for(session.run(), timeout=20))
    assert not line.failures, line.failures
    assert outcome == Outcome.TRANSFER_FAILED and line.briefs and line.briefs[0]

    assert {*SCRIPT, LATER} <= set(deps.transcriber.heard)  # the secrets were heard, so they could leak
    patterns = [digit_pattern(WRONG_PIN), digit_pattern(ALICE.pin), *DOB_PATTERNS]
    assert_nothing_leaked(deps, session.call_id, crm_before, patterns, caplog, capfd, synthesizer.texts)
    later = [t.text for t in store.turns(session.call_id) if t.role == "caller" and t.text.startswith("Also")]
    assert later == [f"Also my date of birth is {HIDDEN}, can you update my account?"]
    [request] = chat.calls  # the model saw the caller's request with the birth date masked: it cannot repeat it
    assert request.messages[-1].content == f"Caller: {later[0]}" and "1985" not in request.messages[-1].content
    store.close()
    repo.close()


@pytest.mark.models
@pytest.mark.timeout(600)
def test_a_call_that_gives_a_pin_and_a_date_of_birth_leaves_them_nowhere(call_env, caller_voice, caplog, capfd):
    from conftest import caller_says, run_call
    from voicebot.store import Outcome
    from voicebot.telephony.sim import HangUp, Press, WaitForBot

    config, busy = warm_and_busy(call_env.config)
    synthesizer = Recording(call_env.synthesizer, "tts")
    transcriber = Recording(call_env.transcriber, "stt")
    deps = dataclasses.replace(call_env, config=config, synthesizer=synthesizer, transcriber=transcriber)
    with sqlite3.connect(database_file(deps.crm.db.conn)) as db:
        crm_before = set(text_values(db))
    script = [step for text in SCRIPT for step in (WaitForBot(), caller_says(caller_voice, text))]
    script += [WaitForBot(), Press("0"), WaitForBot(), HangUp()]
    capfd.readouterr()  # from here on, only what the bot logs and prints (the caller's voice is made above)
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    line, outcome = run_call(deps, script, caller_id="+15550102030", transfer_result=busy)
    assert outcome == Outcome.TRANSFER_FAILED and len(line.briefs) == 1 and line.briefs[0]

    # what to look for: the PINs and the date of birth, and whatever digits Whisper heard in their place
    heard = [t for t in transcriber.texts if t.strip()]
    pins = {WRONG_PIN, ALICE.pin} | {digits_in(t) for t in heard if len(digits_in(t)) >= 4}
    patterns = [digit_pattern(p) for p in sorted(pins)] + DOB_PATTERNS
    assert any(found(t, patterns) for t in heard), heard  # the secrets were said and heard, so they could leak
    assert_nothing_leaked(deps, line.info.call_id, crm_before, patterns, caplog, capfd, synthesizer.texts)


@pytest.mark.models
@pytest.mark.timeout(600)
def test_a_pin_said_bare_before_it_was_asked_verifies_and_is_stored_masked(call_env, caller_voice, caplog, capfd):
    """A SIP caller said "1, 2, 3, 4" after a knowledge answer: it was taken for order 1234, the PIN asked for all
    the same, and the transcript kept her PIN in clear. Through Whisper and Piper: she is verified at once, and the
    PIN is in no table, log or synthesised text."""
    from conftest import caller_says, run_call
    from voicebot.telephony.sim import HangUp, WaitForBot

    synthesizer = Recording(call_env.synthesizer, "tts")
    transcriber = Recording(call_env.transcriber, "stt")
    deps = dataclasses.replace(call_env, synthesizer=synthesizer, transcriber=transcriber)
    capfd.readouterr()
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    script = [WaitForBot(), caller_says(caller_voice, "1, 2, 3, 4."), WaitForBot(), HangUp()]
    line, _ = run_call(deps, script, caller_id="+15550102030")
    call_id = line.info.call_id
    assert any(digits_in(t) == ALICE.pin for t in transcriber.texts), transcriber.texts  # heard, so it could leak
    bot = [t.text for t in deps.store.turns(call_id) if t.role == "bot"]
    assert "Thank you, you're verified. How can I help?" in bot, bot
    caller = [t.text for t in deps.store.turns(call_id) if t.role == "caller"]
    assert caller and all(HIDDEN in t and not re.search(r"\d", t) for t in caller), caller
    with sqlite3.connect(deps.store.path) as db:
        stored = [v for _, _, v in text_values(db)]
    logged = [r.getMessage() for r in caplog.records]
    pin = digit_pattern(ALICE.pin)
    assert not [t for t in stored + logged + synthesizer.texts if found(without_ids(t), [pin])]
