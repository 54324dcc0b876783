"""EscalationGuard: operator phrases, the escalation key, frustration, no-match / no-input runs, the hand-over note.

Pure logic with the real VADER lexicon; no models.
"""

from __future__ import annotations

import dataclasses

import pytest

from voicebot.config import EscalationConfig
from voicebot.dialog.guard import Escalation, EscalationGuard


@pytest.fixture
def guard() -> EscalationGuard:
    return EscalationGuard(EscalationConfig())


# One realistic sentence per default phrase, plus case and punctuation variants.
ASKS = [
    ("I want to talk to an agent please", "agent"),
    ("Can I speak to one of your agents?", "agent"),
    ("can I speak to a real person", "real person"),
    ("OPERATOR!", "operator"),
    ("operator operator", "operator"),
    ("Operator?  Hello?", "operator"),
    ("get me a human", "human"),
    ("Is there a HUMAN being I can talk to", "human"),
    ("Is there a live person there", "live person"),
    ("Representative.", "representative"),
    ("Can I just talk to someone, please?", "talk to someone"),
    ("I need to speak to someone about my bill", "speak to someone"),
    ("let me talk to a person", "talk to a person"),
    ("Could I speak to a person, please", "speak to a person"),
    ("my travel agent said to call, so get me an operator", "operator"),
]


def test_every_default_phrase_is_covered_by_a_sentence():
    assert {phrase for _, phrase in ASKS} == set(EscalationConfig().operator_phrases)


@pytest.mark.parametrize(("text", "phrase"), ASKS)
def test_operator_phrases_inside_sentences_escalate(guard, text, phrase):
    escalation = guard.check_transcript(text)
    assert escalation is not None
    assert escalation.reason == "operator_request"
    assert escalation.detail == f"said {phrase!r}"


@pytest.mark.parametrize("text", [
    "where is my order",
    "I ordered a humane mouse trap",
    "my travel agent booked it",
    "the estate agent has the keys",
    "I work in human resources",
    "the agency sent me an invoice",
    "the operation went fine",
    "I'd like to reorder toner for the printer",
    "personally I think it was late",
])
def test_ordinary_sentences_do_not_escalate(guard, text):
    assert guard.operator_phrase(text) is None
    assert guard.check_transcript(text) is None


@pytest.mark.parametrize(("text", "named"), [
    ("Can I speak to Bob from sales?", "speak to Bob"),
    ("I want to talk with Mrs. Lopez please", "talk with Mrs. Lopez"),
    ("Please put me through to Maria.", "put me through to Maria"),
    ("Can I speak to you about my order?", None),
    ("Who am I speaking to?", None),
    ("I need to speak to The manager", "speak to The manager"),  # by role: as good as a name
    ("Speak to me slowly please", None),
])
def test_a_person_asked_for_by_name_is_a_person(guard, text, named):
    """"Can I speak to Bob from sales?" went to the knowledge base ("is your question: can I get a quote?"): the
    bot cannot reach Bob, a colleague can."""
    assert guard.operator_phrase(text) == named


def test_phrases_come_from_config():
    guard = EscalationGuard(EscalationConfig(operator_phrases=["supervisor", "a manager"]))
    assert guard.check_transcript("Supervisor, now.").detail == "said 'supervisor'"
    assert guard.check_transcript("get me a manager!").detail == "said 'a manager'"
    assert guard.check_transcript("is there an agent") is None


def test_escalation_key_escalates_and_other_keys_do_not(guard):
    escalation = guard.check_dtmf("0")
    assert escalation == Escalation("dtmf", "pressed 0", 0.0)
    for digit in "123456789*#":
        assert guard.check_dtmf(digit) is None
    custom = EscalationGuard(EscalationConfig(dtmf_key="#"))
    assert custom.check_dtmf("#").reason == "dtmf"
    assert custom.check_dtmf("0") is None


def test_escalation_is_frozen(guard):
    escalation = guard.check_dtmf("0")
    with pytest.raises(dataclasses.FrozenInstanceError):
        escalation.reason = "no_match"


def test_no_input_in_a_row_escalates_and_progress_resets(guard):
    assert guard.note_no_input() is None
    guard.note_progress()
    assert guard.note_no_input() is None
    escalation = guard.note_no_input()
    assert escalation is not None and escalation.reason == "no_input"
    assert "2 prompts" in escalation.detail


def test_no_match_count_follows_config():
    guard = EscalationGuard(EscalationConfig(max_no_match=3))
    assert guard.note_no_match() is None
    assert guard.note_no_match() is None
    guard.note_progress()
    assert guard.note_no_match() is None
    assert guard.note_no_match() is None
    escalation = guard.note_no_match()
    assert escalation is not None and escalation.reason == "no_match"


def test_no_match_and_no_input_are_separate_runs(guard):
    assert guard.note_no_match() is None
    assert guard.note_no_input() is None
    assert guard.note_no_match().reason == "no_match"


def test_sentiment_scores_and_records_each_turn(guard):
    assert guard.sentiment("thank you, that is wonderful") > 0.5
    assert guard.sentiment("it arrived broken and damaged") < -0.5
    assert guard.sentiment("where is my order") == 0.0
    guard.check_transcript("where is my order")
    guard.check_transcript("it arrived broken and damaged")
    assert len(guard.sentiments) == 2 and guard.sentiments[1] < -0.5


def test_negative_mood_over_recent_turns_escalates(guard):
    # Each turn alone is a problem to solve, not a reason to transfer; three in a row are.
    assert guard.check_transcript("my parcel is lost and I am really worried") is None
    assert guard.check_transcript("it arrived broken and damaged") is None
    escalation = guard.check_transcript("I paid and got nothing, this is a disaster")
    assert escalation is not None and escalation.reason == "frustration"
    assert "last 3 turns" in escalation.detail
    assert escalation.sentiment < EscalationConfig().frustration_threshold


def test_a_neutral_turn_keeps_the_mean_above_the_threshold(guard):
    assert guard.check_transcript("my parcel is lost and I am really worried") is None
    assert guard.check_transcript("the order number is 10452") is None
    assert guard.check_transcript("it arrived broken and damaged") is None


@pytest.mark.parametrize("text", ["This is ridiculous.", "you are useless", "I'm fed up with this", "damn it"])
def test_one_angry_turn_escalates(guard, text):
    escalation = guard.check_transcript(text)
    assert escalation is not None and escalation.reason == "frustration"
    assert escalation.detail.startswith("angry:")


@pytest.mark.parametrize("text", ["I am not angry at all, thanks", "no joke, thank you so much"])
def test_anger_words_in_a_positive_turn_do_not_escalate(guard, text):
    assert guard.check_transcript(text) is None


def test_repeated_what_escalates(guard):
    assert guard.check_transcript("What?") is None
    assert guard.check_transcript("the order number is 10452") is None
    escalation = guard.check_transcript("sorry, I don't understand")
    assert escalation is not None and escalation.reason == "frustration"
    assert "did not understand the bot 2 times" in escalation.detail


def test_what_questions_are_not_confusion(guard):
    assert guard.check_transcript("what?") is None
    assert guard.check_transcript("what is the status of my order") is None
    assert guard.check_transcript("what time do you open tomorrow") is None


def test_saying_the_same_again_after_an_answer_escalates(guard):
    assert guard.check_transcript("where is my order 10452") is None
    guard.note_progress()  # the bot answered something
    escalation = guard.check_transcript("Where is my order, 10452?!")
    assert escalation is not None and escalation.reason == "frustration"
    assert escalation.detail.startswith("repeated")


def test_repeating_after_a_no_match_is_what_the_bot_asked_for(guard):
    assert guard.check_transcript("where is my order 10452") is None
    assert guard.note_no_match() is None  # "sorry, could you say that again?"
    assert guard.check_transcript("where is my order 10452") is None


def test_short_answers_twice_are_not_a_repeat(guard):
    assert guard.check_transcript("yes") is None
    assert guard.check_transcript("yes") is None
    assert guard.check_transcript("different words entirely now") is None


def test_blank_transcripts_are_ignored(guard):
    assert guard.check_transcript("") is None
    assert guard.check_transcript("  ...  ") is None
    assert guard.sentiments == []


def test_reset_forgets_signals_but_keeps_the_record(guard):
    guard.check_transcript("what?")
    guard.note_no_match()
    guard.reset()
    assert guard.check_transcript("pardon?") is None
    assert guard.note_no_match() is None
    assert guard.last is None
    assert len(guard.sentiments) == 2


def test_summary_names_caller_request_and_reason(guard):
    turns = [
        ("bot", "Hello, you are speaking with the automated assistant of Northwind Supplies."),
        ("caller", "Where is my order 10452?"),
        ("bot", "Order 10452 shipped on Monday."),
        ("caller", "operator"),
    ]
    for role, text in turns:
        if role == "caller":
            escalation = guard.check_transcript(text)
    assert escalation is not None
    summary = guard.summary(turns, caller="Alice Smith (+15550102030), verified")
    assert summary == ('Caller Alice Smith (+15550102030), verified. Asked about order 10452: '
                       '"Where is my order 10452?". Escalated: asked for a person (said \'operator\').')
    assert guard.summary(turns, caller="Alice Smith (+15550102030), verified") == summary  # deterministic


def test_summary_of_an_upset_unknown_caller(guard):
    turns = [("caller", "I want a refund for the broken drill"), ("caller", "this is ridiculous")]
    escalation = None
    for _, text in turns:
        escalation = guard.check_transcript(text) or escalation
    summary = guard.summary(turns)
    assert summary.startswith("Caller not identified. Asked about billing: \"I want a refund for the broken drill\".")
    assert "Escalated: caller frustrated (angry: 'ridiculous'" in summary
    assert "Mood: negative" in summary


def test_summary_without_a_request(guard):
    escalation = guard.check_dtmf("0")
    summary = guard.summary([("caller", "operator")], escalation=escalation)
    assert summary == "Caller not identified. No request stated. Escalated: pressed the operator key (pressed 0)."


def test_escalation_config_reads_a_numeric_key_and_rejects_empty_phrases():
    from pydantic import ValidationError

    assert EscalationConfig.model_validate({"dtmf_key": 0}).dtmf_key == "0"
    with pytest.raises(ValidationError, match="no words to listen for"):
        EscalationConfig(operator_phrases=["operator", "?!"])


@pytest.mark.parametrize(("said", "question"), [
    ("Am I talking to a real person?", True), ("are you a robot", True), ("Are you a real person or a machine?", True),
    ("is this a recording", True), ("hello? am I speaking with a human?", True), ("are you real", True),
    ("is this automated", True), ("Sorry, are you a bot?", True), ("are you a person or a bot?", True),
    ("real person please", False), ("I want to talk to a real person", False), ("let me talk to someone", False),
    ("operator", False), ("can I speak to a human", False), ("are you open on saturday", False),
    ("What can you do for me?", True), ("So what can you help me with?", True), ("Who are you?", True),
    ("How can you help me?", True), ("who am I talking to", True), ("what can you do about my refund", False),
    ("what do you do with my data", False), ("who are you sending", False),
])
def test_a_question_about_the_bot_is_not_a_request_for_a_person(said, question):
    guard = EscalationGuard(EscalationConfig())
    assert EscalationGuard.bot_question(said) is question
    escalation = guard.check_transcript(said)
    if question:
        assert escalation is None
    elif guard.operator_phrase(said):
        assert escalation is not None and escalation.reason == "operator_request"


def test_a_pin_said_twice_is_not_a_repeat_complaint():
    guard = EscalationGuard(EscalationConfig())
    assert guard.check_transcript("one two three four") is None
    assert guard.check_transcript("one two three four") is None  # asked again after a mishearing
    assert guard.check_transcript("4 8 1 5 6") is None and guard.check_transcript("4 8 1 5 6") is None


@pytest.mark.parametrize(("said", "again"), [
    ("What?", True), ("Sorry, what?", True), ("Pardon?", True), ("Could you say that again, please?", True),
    ("Sorry?", True), ("Excuse me?", True), ("I didn't catch that.", True),
    ("Sorry, what were the times again?", True), ("What times did you say?", True), ("What was that?", True),
    ("Could you read them again?", True), ("Sorry, I missed that.", True), ("One more time, please?", True),
    ("Can you book me again?", False), ("It broke again.", False), ("What was the total?", False),
    ("Please.", False), ("Hmm.", False), ("What is the status of my order?", False), ("Yes.", False),
    ("Sorry, I need to cancel my booking for Tuesday.", False),
])
def test_asking_to_hear_the_bot_again(said, again):
    assert EscalationGuard.asks_again(said) is again


@pytest.mark.parametrize("text, person", [
    ("Can I talk to somebody?", True), ("Let me speak to customer service.", True), ("I want a supervisor.", True),
    ("Transfer me, please.", True), ("I need to speak with someone.", True), ("Can you put me through to sales?", True),
    ("Connect me to support.", True), ("Do you support Windows laptops?", False),
    ("I want to connect my printer to the network.", False), ("Can you transfer me the money back?", False),
    ("Our manager wants a quote.", False),
    ("Put me through to a person please.", True), ("Is there anyone I can talk to?", True),
    ("Speak to an actual person.", True), ("I don't want to talk to a machine.", True),
    ("Stop, I want a person.", True), ("Customer service, please.", True),
    ("I need a person to assemble the desks.", False), ("Do you have a person who can install the printer?", False),
    ("The delivery person was rude.", False), ("Our customer service team needs ten chairs.", False),
    ("We need a person for the setup on Tuesday.", False),
    ("I need help from a person.", True), ("Person, please.", True), ("I want to make a complaint to a manager.", True),
    ("I'd like to complain to your supervisor.", True), ("We got help from a person in your shop.", False),
    ("The person please sign for the parcel.", False), ("Can I speak to a vet?", True),
    ("I'd like to talk to the dentist.", True), ("Can I speak with your mechanic?", True),
    ("The vet said to call you.", False), ("Can a technician come on Monday?", False),
    ("Is the pharmacist available to answer a question?", True), ("Is a doctor free?", True),
    ("Is the mechanic available on Saturday?", False), ("Is the engineer available tomorrow?", False),
    ("Is the room available?", False)])
def test_a_person_asked_for_by_team_or_in_other_words_is_an_operator_request(text, person):
    """"Can I talk to somebody?", "Let me speak to customer service", "I want a supervisor", "Transfer me, please"
    were no operator phrases: at a PIN prompt they went to the identity step, elsewhere to the model. Later "Put me
    through to a person", "Is there anyone I can talk to?", "I don't want to talk to a machine" and "Customer
    service, please" heard a knowledge base entry or the model."""
    guard = EscalationGuard(EscalationConfig())
    escalation = guard.check_transcript(text)
    assert (escalation is not None and escalation.reason == "operator_request") is person
