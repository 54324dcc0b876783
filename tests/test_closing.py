"""Whole caller turns that only close the call, in code (voicebot.dialog.answers.is_closing)."""

from __future__ import annotations

import pytest

from voicebot.dialog.answers import asks_only_for_help, is_closing, only_thanks, wants_more

CLOSINGS = ["Thank you, that's all.", "No, that's it, bye.", "Nothing else, thanks.", "That's everything, thank you!",
            "No thanks, bye.", "Okay, thank you, goodbye.", "No, I'm good, thanks.", "Great, thanks, have a nice day.",
            "That's all I needed, thanks.", "Bye.", "Thanks, bye bye", "no that's all",
            "Perfect, thank you very much, that's all for now.", "That\u2019s it for today, cheers."]
NOT_CLOSINGS = ["No, I want the other one.", "That's all wrong.", "Thanks, and where is my order?", "Thank you", "No",
                "Okay", "Is that all you can do?", "My order is late, thanks.", "Nothing arrived yet",
                "That's it, I want to cancel", "I'm done waiting for my parcel", "Good morning", "",
                "Bye the way, my order is late"]


@pytest.mark.parametrize("text", CLOSINGS)
def test_the_caller_closing_the_call(text):
    assert is_closing(text)


@pytest.mark.parametrize("text", NOT_CLOSINGS)
def test_requests_and_bare_courtesies_are_not_a_goodbye(text):
    assert not is_closing(text)


ANYTHING_ELSE = "Order 10452 has shipped with UPS. Is there anything else I can help with?"


@pytest.mark.parametrize("text", ["Great, thanks", "No", "No thanks.", "Thank you", "okay, thank you"])
def test_after_anything_else_a_bare_no_or_thanks_closes(text):
    assert not is_closing(text)
    assert is_closing(text, ANYTHING_ELSE)


@pytest.mark.parametrize("text", ["Yes, where is my other order?", "yes please", "Hmm", "No, my parcel is late"])
def test_after_anything_else_a_request_is_still_a_request(text):
    assert not is_closing(text, ANYTHING_ELSE)
    assert not is_closing("Thanks", "Your order shipped. Would you like the tracking number?")


@pytest.mark.parametrize(("text", "more"), [
    ("Yes.", True), ("yeah", True), ("Yes, one more thing.", True), ("Actually yes, I have another question", True),
    ("Okay, there is.", True), ("Yes, where is my other order?", False), ("No", False), ("yes please", True),
])
def test_a_bare_yes_to_anything_else_asks_what_else(text, more):
    """The model answered "Yes." to "Is there anything else?" with "I'm glad to hear that.": code asks what else."""
    assert wants_more(text, ANYTHING_ELSE) is more
    assert not wants_more(text, "Your order shipped. Would you like the tracking number?")


@pytest.mark.parametrize(("text", "only_help"), [
    ("I need help.", True), ("Can you help me?", True), ("I have a question.", True), ("Hi, I need some help please.", True),
    ("Hello, can you help me with something?", True), ("Yes, I'd like some assistance.", True),
    ("I need help with my order", False), ("Help me find my order", False), ("I have a question about my invoice", False),
    ("I need a human", False),
])
def test_a_turn_that_only_asks_for_help_is_asked_what_about(text, only_help):
    """The model handed "I need help." straight to a person."""
    assert asks_only_for_help(text) is only_help


@pytest.mark.parametrize("text, thanks", [
    ("Thank you.", True), ("Okay, thanks.", True), ("Great, thank you very much!", True), ("Cheers!", True),
    ("Thanks, that's helpful.", True), ("Oh, thank you for your help.", True), ("Perfect, thanks a lot.", True),
    ("Thanks, but where is my order?", False), ("Thanks. What time do you close?", False), ("No thanks.", False),
    ("I said thanks", False), ("", False), ("Thanks for nothing, I want a person.", False)])
def test_a_turn_that_only_thanks_the_bot(text, thanks):
    assert only_thanks(text) is thanks


@pytest.mark.parametrize("last_bot, said", [
    ("We're open from 9 AM to 5 PM on Saturdays.", "welcome"),  # an answer that asked nothing
    ("Order 10452 has shipped. Is there anything else I can help with?", "goodbye"),  # thanks to "anything else?"
    ("That's a lead for 10 chairs. Shall I send it to our sales team?", None),  # a question waits for its answer
    ("For your security, what is your PIN?", None)])
def test_thanks_after_an_answer_hear_you_are_welcome_in_code(config, last_bot, said):
    """"Okay, thanks." after an answer went to the model, which took a second or more to say "You're welcome! If
    you have any other questions..."; after a question it is no answer to it, and the rest of the turn decides."""
    from voicebot.dialog.guard import EscalationGuard
    from voicebot.session.quick_replies import quick_reply

    prompts = config.dialog.prompts
    reply = quick_reply("Okay, thanks.", last_bot, EscalationGuard(config.escalation), prompts, None, True, False)
    assert (reply.sentences if reply else None) == ([getattr(prompts, said)] if said else None)
    assert quick_reply("Okay, thanks.", last_bot, EscalationGuard(config.escalation), prompts, None, True,
                       True) is None  # a read-back waits for its yes or no


@pytest.mark.parametrize("said, bye", [
    ("That's all, bye.", True), ("Thanks, bye.", True), ("That is all, goodbye.", True), ("Bye.", True),
    ("No thanks, bye.", True), ("Yes, bye.", False), ("Yes please, thanks, bye.", False), ("Okay, thanks.", False),
])
def test_a_farewell_to_a_read_back_says_goodbye_and_a_yes_still_goes_to_the_write(config, said, bye):
    """"Shall I send it?" "That's all, bye." went to the model, which said "I'm sorry, but I can't help you with
    that." to a caller hanging up (a SIP call). A turn that ends in a farewell says goodbye, and writes nothing
    (only a yes writes); a yes with a goodbye is left to the write, which the session then closes."""
    from voicebot.dialog.guard import EscalationGuard
    from voicebot.session.quick_replies import quick_reply

    prompts = config.dialog.prompts
    reply = quick_reply(said, "I'll pass this to our sales team: 20 chairs. Shall I send it?",
                        EscalationGuard(config.escalation), prompts, None, True, True)
    assert (reply.sentences if reply else None) == ([prompts.goodbye] if bye else None)
