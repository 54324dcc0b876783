"""The demo company's callers, new phrasings (session 27): an order's arrival asked again after its status, a
billing error, several items with counts in one quote, a bare count after a price, a lead's name, a product
question the knowledge base cannot answer, and the model's tools kept to what the caller's words ask for. Each
test fails on the code before it; ``ScriptedChat()`` fails a test on any model call."""

from __future__ import annotations

from datetime import date

import pytest
from conftest import morning_of
from fakes import ScriptedChat

from voicebot.crm.seed import seed_demo
from voicebot.crm.repository import Repository
from voicebot.crm.verification import CallerContext
from voicebot.dialog.agent import DialogueAgent, Sentence, ToolCalled
from voicebot.dialog.knowledge_step import KnowledgeStep
from voicebot.dialog.names import spoken_name
from voicebot.dialog.writes import DETAIL_QUESTION, choosable
from voicebot.knowledge.base import OFFER_PERSON

TODAY = date(2026, 11, 22)
ALICE, TOM, STRANGER = "+15550102030", "+442079460958", "+15559990000"


@pytest.fixture
def repo():
    r = Repository.open(None, clock=morning_of(TODAY))
    seed_demo(r, today=TODAY)
    return r


def agent_for(repo, intents, kb, caller=STRANGER, chat=None):
    return DialogueAgent(chat or ScriptedChat(), CallerContext.start(repo, caller), "Northwind.", today=TODAY,
                         intents=intents, knowledge=KnowledgeStep(kb))


def said(events) -> str:
    return " ".join(e.text for e in events if isinstance(e, Sentence))


def test_when_will_it_arrive_after_an_orders_status_is_that_orders_date(repo, intent_classifier, knowledge_base):
    """It was the knowledge base's delivery times ("Items in stock are delivered in 2 to 3 business days")."""
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=TOM)
    list(agent.turn("Where's my order?"))
    list(agent.turn("I don't have a PIN."))
    list(agent.turn("2 November 1979"))
    status = said(agent.turn("SW1A 1AA"))
    assert status.startswith("Order 10460"), status
    for question in ("When will it arrive?", "Where is it now?"):
        assert said(agent.turn(question)).startswith("Order 10460"), question


def test_what_did_i_pay_after_an_orders_status_is_that_orders_total(repo, intent_classifier, knowledge_base):
    """"And what did I pay for it?" read out the whole order history; now the one order's total, from its record."""
    from voicebot.knowledge.prices import money

    agent = agent_for(repo, intent_classifier, knowledge_base, caller=TOM)
    list(agent.turn("Where's my order?"))
    list(agent.turn("I don't have a PIN."))
    list(agent.turn("2 November 1979"))
    assert said(agent.turn("SW1A 1AA")).startswith("Order 10460")
    order = repo.get_order("10460")
    total = money(order.total, order.currency)
    for question in ("And what did I pay for it?", "How much was it?"):
        assert said(agent.turn(question)) == f"Order 10460 came to {total}. Is there anything else I can help with?"
    assert total.startswith("£")
    # after a price from the price list, "how much was it?" is not the order any more
    list(agent.turn("How much is the ergonomic office chair?"))
    assert "10460" not in said(agent.turn("How much was it?"))


def test_a_new_delivery_address_is_a_ticket_not_the_office_fit_out_entry(repo, intent_classifier, knowledge_base):
    """"Can you send it to my office instead?" after an order's status was answered with the office fit-out entry;
    code cannot change where an order goes, a colleague can: a ticket in the caller's words."""
    from voicebot.dialog.placing import ADDRESS_CHANGE
    from voicebot.text import normalize

    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    list(agent.turn("Where's my order? My PIN is 1 2 3 4."))
    assert said(agent.turn("Can you send it to my office instead?")) == (
        "I'll open a ticket saying: Can you send it to my office instead. Is that right?")
    (called,) = [e for e in agent.turn("Yes.") if isinstance(e, ToolCalled)]
    assert called.name == "create_ticket" and called.result["ok"]
    for text in ("I need to change the delivery address.", "Could you deliver it to my neighbour's house?",
                 "You have the wrong address for me."):
        assert ADDRESS_CHANGE.search(normalize(text)), text
    for text in ("Do you fit out offices?", "Can you send me the invoice?", "What is your address?"):
        assert not ADDRESS_CHANGE.search(normalize(text)), text


def test_a_complaint_about_the_delivery_is_a_ticket_not_the_orders_status(repo, intent_classifier, knowledge_base):
    """"I want to complain about the delivery driver." asked for the PIN and read the order's status out: the
    complaint was lost ("delivery" made it a where-is-my-order)."""
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    assert said(agent.turn("I want to complain about the delivery driver.")) == (
        "I'm sorry about that. I'll open a ticket saying: I want to complain about the delivery driver. "
        "Is that right?")
    (called,) = [e for e in agent.turn("Yes.") if isinstance(e, ToolCalled)]
    assert called.name == "create_ticket" and called.result["ok"]
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)  # asking after one is its status
    assert "ticket saying" not in said(agent.turn("What happened to my complaint about the delivery?"))


def test_a_billing_error_is_a_ticket_not_the_order_history(repo, intent_classifier, knowledge_base):
    """"I was charged twice for my last order." asked for the PIN and read out the order history."""
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    assert said(agent.turn("I was charged twice for my last order.")) == (
        "I'll open a ticket saying: I was charged twice for my last order. Is that right?")
    (called,) = [e for e in agent.turn("Yes.") if isinstance(e, ToolCalled)]
    assert called.name == "create_ticket"


def test_a_quote_for_two_items_with_counts_prices_both_and_the_lead_keeps_both(repo, intent_classifier,
                                                                                knowledge_base):
    """"I'd like a quote for 25 standing desks and 25 chairs." was priced for the chairs alone."""
    agent = agent_for(repo, intent_classifier, knowledge_base)
    answer = said(agent.turn("I'd like a quote for 25 standing desks and 25 chairs."))
    assert "For 25 desks, at $429 per desk, the estimate is $10,725, or $10,188.75 after our 5 percent" in answer
    assert "For 25 chairs, at $189 per chair, the estimate is $4,725, or $4,488.75 after" in answer
    assert "That's $14,677.50 in all." in answer
    assert answer.endswith("May I have your name for our sales team?"), answer  # a stranger: the name first
    assert said(agent.turn("It's Mark from Globex.")) == ("Thank you, Mark from Globex. Shall I pass this to our sales "
                                                          "team for a written quote?")  # it said no name back
    (called,) = [e for e in agent.turn("Yes.") if isinstance(e, ToolCalled)]
    assert called.args["name"] == "Mark from Globex"
    assert "25 x Sit-stand desk, 140 cm" in called.args["notes"] and "25 x Ergonomic office chair" in \
        called.args["notes"] and "14677.50 USD in all" in called.args["notes"]


def test_a_bare_count_after_a_price_is_that_many_of_the_item(repo, intent_classifier, knowledge_base):
    """"How much for 3?" after the toner's price was asked back "is your question: how much does shipping cost?"."""
    agent = agent_for(repo, intent_classifier, knowledge_base)
    list(agent.turn("Do you sell toner?"))
    assert said(agent.turn("How much for 3?")).startswith(
        "For 3 cartridges, at $98.50 per cartridge, the estimate is $295.50.")


def test_questions_about_an_item_are_the_knowledge_bases_or_no_ones(repo, intent_classifier, knowledge_base):
    """After the chair's price the model said "They come in black, white, and gray." and "Yes, they are
    comfortable." (nothing in the company's files says either); a product inquiry without a price word was
    offered furniture fitting times by the model, or asked for the caller's account."""
    agent = agent_for(repo, intent_classifier, knowledge_base)
    first = said(agent.turn("um so I was wondering if uh you could maybe help me find out about, you know, the "
                            "ergonomic chairs"))
    assert first.startswith("Ergonomic office chair costs $189 per chair."), first
    assert said(agent.turn("Are they comfortable?")) == OFFER_PERSON
    assert said(agent.turn("What colours do they come in?")) == OFFER_PERSON
    assert said(agent.turn("Okay. Do you deliver to Canada?")).startswith("We deliver within the United States")


def test_the_model_may_read_records_or_free_times_only_when_the_words_ask_for_them():
    tools = ["list_free_slots", "list_open_orders", "get_order", "create_ticket", "transfer_to_human"]
    assert choosable(tools, ["Tell me about the ergonomic chairs"], slot_picked=False) == ["transfer_to_human"]
    assert "list_free_slots" in choosable(tools, ["Can someone come and fix my printer?"], slot_picked=False)
    assert "list_open_orders" in choosable(tools, ["Has my order shipped?"], slot_picked=False)


def test_a_name_with_where_the_caller_is_from():
    assert spoken_name("It's Mark from Globex.") == "Mark from Globex"
    assert spoken_name("Dana at Acme.") == "Dana at Acme"
    assert spoken_name("I'm at work") is None and spoken_name("from here") is None


def test_yes_to_the_pin_prompt_is_asked_again_gently(repo, intent_classifier, knowledge_base):
    """"Yes." to "please tell me your PIN" went to the model: "Please contact our customer service for
    assistance." (the caller was on the phone to customer service)."""
    from voicebot.dialog.identity import GO_AHEAD

    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    assert "PIN" in said(agent.turn("Where's my order?"))
    for text in ("Yes.", "Hang on, let me check."):
        assert said(agent.turn(text)) == GO_AHEAD
    assert said(agent.turn("1 2 3 4")).startswith("Order 10452")


def test_more_of_the_matter_at_the_pin_prompt_is_heard_and_the_pin_asked_once_more(repo, intent_classifier,
                                                                                     knowledge_base):
    """"It has been two weeks." to the PIN prompt was read back as a ticket, and "I ordered it two weeks ago and
    nothing came." heard the wrong-item entry. More of the same matter is acknowledged and the PIN asked again,
    once; a new question is answered as one."""
    from voicebot.dialog.identity import STILL_NEED_PIN, more_of_the_same

    for text in ("It has been two weeks.", "I ordered it two weeks ago and nothing came."):
        agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
        assert "PIN" in said(agent.turn("Where's my order?"))
        events = list(agent.turn(text))
        assert said(events) == STILL_NEED_PIN and not [e for e in events if isinstance(e, ToolCalled)]
        assert said(agent.turn("1 2 3 4")).startswith("Order 10452")
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    said(agent.turn("Where's my order?"))
    assert said(agent.turn("It has been two weeks.")) == STILL_NEED_PIN
    assert said(agent.turn("It is really late now.")) != STILL_NEED_PIN  # once: never a loop
    assert said(agent.turn("Actually, what are your opening hours?")).startswith("We're open")
    for new in ("Can I speak to someone?", "What are your hours?", "I want to cancel it.", "No.", "Operator please",
                "The table top of my desk is cracked.", "It arrived damaged."):  # a problem of its own: a ticket
        assert not more_of_the_same(new), new


@pytest.mark.parametrize("text, changes", [
    ("Set the price of chairs to 1 dollar.", True), ("Give me a 50 percent discount.", True),
    ("Can you lower the price to 100?", True), ("Make it free.", True), ("Apply a discount now.", True),
    ("I want a refund for my order.", False), ("Give me a refund.", False), ("What is the price of chairs?", False),
    ("Do you give discounts for 20 chairs?", False), ("Can I get a discount if I buy 30?", False),
    ("Set up my laptop please.", False)])
def test_telling_the_bot_to_change_a_price_is_answered_in_code(config, text, changes):
    """"Set the price of chairs to 1 dollar." was read back as a lead in those words, which sounds like a yes."""
    from voicebot.dialog.capabilities import PRICE_CHANGE_REPLY
    from voicebot.dialog.guard import EscalationGuard
    from voicebot.session.quick_replies import quick_reply

    reply = quick_reply(text, "How can I help?", EscalationGuard(config.escalation), config.dialog.prompts, None,
                        True, False)
    assert (reply is not None and " ".join(reply.sentences) == PRICE_CHANGE_REPLY) is changes


def test_a_visit_asked_to_be_booked_offers_free_times(repo, intent_classifier, knowledge_base):
    """"I'd like to book a visit to set up my new office furniture" was a lead (by 0.015) and heard the office
    fit-out entry; the day the caller then gave ("next Tuesday morning") heard the next-day delivery entry. The words
    ask to book a visit: the free times, from the CRM."""
    from voicebot.dialog.intents import Intent
    from voicebot.dialog.placing import placed_request

    services = repo.services()
    lead = Intent("lead", 0.914, 0.015, "I'm interested in buying printers for our office")
    for text in ("I'd like to book a visit to set up my new office furniture", "Can I schedule a technician?"):
        assert placed_request(lead, text, services, TODAY, lambda _: 0.69).name == "booking", text
    for text in ("I'd like to order ten chairs", "I want to book ten standing desks"):  # buying: still a lead
        assert placed_request(lead, text, services, TODAY, lambda _: 0.69).name == "lead", text
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    events = list(agent.turn("I'd like to book a visit to set up my new office furniture"))
    assert [e.name for e in events if isinstance(e, ToolCalled)] == ["list_free_slots"]
    assert "fit out" not in said(events) and agent.offered_slots, said(events)


@pytest.mark.parametrize("text, asks", [
    ("What's the balance on my account?", True), ("How much do I owe you?", True), ("What do we still owe?", True),
    ("Is there an outstanding amount on my account?", True), ("What's my credit limit?", True),
    ("What is my current balance?", True), ("How much was my last order?", False),
    ("Do you sell the balance ball chair?", False), ("My balance ball arrived broken.", False),
    ("How much is the filing cabinet?", False), ("Where is my order?", False)])
def test_what_the_caller_owes_is_said_to_be_out_of_reach(config, text, asks):
    """"What's the balance on my account?" asked for the PIN, then the model read the history and said "I don't see
    any open tickets on your account": the CRM holds no balance, and the bot says so, offering a person."""
    from voicebot.dialog.capabilities import BALANCE_REPLY
    from voicebot.dialog.guard import EscalationGuard
    from voicebot.session.quick_replies import quick_reply

    reply = quick_reply(text, "How can I help?", EscalationGuard(config.escalation), config.dialog.prompts, None,
                        True, False)
    assert (reply is not None and " ".join(reply.sentences) == BALANCE_REPLY) is asks


def test_a_day_said_alone_is_no_knowledge_question(knowledge_base):
    """"Next Tuesday morning" (said after asking for a visit) was answered with the next-day delivery entry (0.40):
    a day or time that asks nothing answers a question about when; the knowledge base does not take it."""
    from datetime import UTC, datetime

    step = KnowledgeStep(knowledge_base, clock=lambda: datetime(2026, 11, 22, 9, tzinfo=UTC))
    for text in ("next tuesday morning", "Friday at 3.", "Tomorrow afternoon please"):
        assert step.ask(text, must=False) is None, text
    assert step.ask("Do you offer next day delivery?", must=False) is not None
    assert step.ask("Are you open on Saturday?", must=False) is not None


def test_the_same_entry_is_not_said_again_for_other_words(repo, intent_classifier, knowledge_base):
    """"Do you sell laser printers?" heard the printer repair entry (0.55), and "What about ink for an HP printer?" the
    same entry again (0.52): it holds nothing more, so the caller hears that, with the offer of a person. (A question
    about selling now only hears the repair entry as a question, ``knowledge.actions``: asked about printers.)"""
    from voicebot.dialog.agent import KnowledgeUsed

    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    first = said(agent.turn("I have a question about printers."))
    assert first.startswith("Our technicians repair office printers")
    events = list(agent.turn("What about ink for an HP printer?"))
    assert said(events) == OFFER_PERSON
    assert [e.kind for e in events if isinstance(e, KnowledgeUsed)] == ["none"]
    # asked in other words that the entry answers well, it is said again
    assert said(agent.turn("Which printer brands do you repair?")).startswith("Our technicians repair office printers")


def test_a_yes_to_the_name_question_hears_the_read_back_before_anything_is_written(repo, intent_classifier,
                                                                                    knowledge_base):
    """"Yes, please have sales call me." to "May I have your name for our sales team?" wrote the lead at once, for
    "Caller", without the read-back; the name the caller gave next went to the model ("Please provide your name and
    phone number"). A yes to the name question is no yes to a write the caller has not heard."""
    agent = agent_for(repo, intent_classifier, knowledge_base)
    assert said(agent.turn("We need 25 ergonomic chairs for our new office, what would that cost?")).endswith(
        "May I have your name for our sales team?")
    events = list(agent.turn("Yes, please have sales call me."))
    assert not [e for e in events if isinstance(e, ToolCalled)]
    assert said(events) == "Shall I pass this to our sales team for a written quote?"
    assert said(agent.turn("It's Dana Smith from Acme.")) == ("Thank you, Dana Smith from Acme. Shall I pass this to "
                                                              "our sales team for a written quote?")
    (called,) = [e for e in agent.turn("Yes.") if isinstance(e, ToolCalled)]
    assert called.args["name"] == "Dana Smith from Acme" and "25 x Ergonomic office chair" in called.args["notes"]


@pytest.mark.parametrize("text", ["Hi, my desk order is late, what's going on?", "The chair I ordered still isn't here.",
                                  "What happened to my order?"])
def test_a_late_order_is_looked_up_not_taken_for_a_question_about_the_item(repo, intent_classifier, knowledge_base,
                                                                            text):
    """"Hi, my desk order is late, what's going on?" (order status by 0.005) was a question about desks, and heard
    "I don't have that information"; the caller's order is looked up, after verification."""
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=TOM)
    events = list(agent.turn(text))
    assert [e.name for e in events if isinstance(e, ToolCalled)] == ["list_open_orders"]
    assert said(events) == "For your security, please tell me your date of birth.", said(events)


def test_an_order_that_arrived_damaged_is_no_order_status():
    from voicebot.dialog.answers import match_intent

    for text in ("My order arrived damaged.", "My order came with the wrong item.", "The parcel arrived broken.",
                 "My delivery came but one box is missing."):
        assert match_intent(text) is None, text
    assert match_intent("Where is my order?") == ("list_open_orders", {})


def test_a_yes_to_a_read_back_asked_after_the_pin_prompt_answers_the_read_back(repo, intent_classifier,
                                                                              knowledge_base):
    """The PIN prompt went unanswered, the caller told the problem and heard the ticket read back; their "Yes." was
    taken for the PIN prompt's ("Take your time. What is your PIN?") and nothing was written."""
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    assert "PIN" in said(agent.turn("Where's my order?"))
    assert said(agent.turn("The table top of my desk is cracked.")).startswith("I'll open a ticket saying")
    events = list(agent.turn("Yes."))
    assert [e.name for e in events if isinstance(e, ToolCalled)] == ["create_ticket"], said(events)


def test_the_tracking_number_after_an_orders_status_is_read_from_its_record(repo, intent_classifier, knowledge_base):
    """"Can you text me the tracking number?" after the order's status heard the knowledge base's "When your order
    ships we email you the carrier and tracking number", twice, while the order's record held it."""
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    list(agent.turn("Where's my order?"))
    assert said(agent.turn("1 2 3 4")).startswith("Order 10452")
    for question in ("Can you text me the tracking number?", "What is the tracking number?"):
        assert said(agent.turn(question)) == ("The tracking number of order 10452 with UPS is 1, Z, 9, 9, 9, A, A, 1, "
                                              "0, 1, 2, 3, 4, 5, 6, 7, 8, 4. Is there anything else I can help with?")
    stranger = agent_for(repo, intent_classifier, knowledge_base)  # nothing looked up: no record to read from
    assert "1, Z, 9" not in said(stranger.turn("What is the tracking number?"))


def test_an_order_to_place_is_priced_and_passed_to_sales(repo, intent_classifier, knowledge_base):
    """"I'd like to place an order for 5 standing desks" heard the estimate and nothing more: its words were not
    taken for a request to buy, and the caller's "yes" went to the model, which handed them to a person."""
    agent = agent_for(repo, intent_classifier, knowledge_base)
    answer = said(agent.turn("I'd like to place an order for 5 standing desks"))
    assert answer.startswith("For 5 desks, at $429 per desk") and answer.endswith(
        "May I have your name for our sales team?"), answer


def test_how_much_are_they_after_an_items_price_is_that_items_price(repo, intent_classifier, knowledge_base):
    """"How much are they?" after the chair's price heard the delivery charges entry, and "What colours do they come
    in?" then went to the model, which said "They come in black, white, and gray."."""
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    assert "$189 per chair" in said(agent.turn("Do you have any ergonomic chairs in stock?"))
    assert said(agent.turn("how much are they")).startswith("Ergonomic office chair costs $189")
    assert said(agent.turn("What colours do they come in?")) == OFFER_PERSON  # never the model's guess
    assert said(agent.turn("Can I get a discount if I buy 12?")).startswith(
        "For 12 chairs, at $189 per chair, the estimate is $2,268, or $2,154.60 after our 5 percent volume discount.")


@pytest.mark.parametrize("text", ["Um.", "Uh, um...", "Hmm."])
def test_a_turn_that_only_hesitates_hears_take_your_time(config, text):
    """"Um" went to the model, which said "I'm sorry, I don't know who you are. Could you please provide your name or
    phone number?"."""
    from voicebot.dialog.guard import EscalationGuard
    from voicebot.session.quick_replies import quick_reply

    reply = quick_reply(text, "How can I help?", EscalationGuard(config.escalation), config.dialog.prompts, None,
                        True, False)
    assert reply is not None and reply.sentences == [config.dialog.prompts.hesitation] and not reply.progress


def test_bye_to_a_read_back_is_a_goodbye_and_nothing_is_written(config):
    """"Bye" to "I'll pass this to our sales team: ... Shall I send it?" went to the model ("I'm sorry, I didn't
    receive a request for a quote...")."""
    from voicebot.dialog.guard import EscalationGuard
    from voicebot.session.quick_replies import quick_reply

    for text, closes in (("Bye.", True), ("Okay, bye bye.", True), ("Thank you.", False), ("That's all.", False)):
        reply = quick_reply(text, "Shall I send it?", EscalationGuard(config.escalation), config.dialog.prompts, None,
                            True, True)
        assert (reply is not None and reply.sentences == [config.dialog.prompts.goodbye]) is closes, text


@pytest.mark.parametrize("text", ["When does the technician come?", "When is the technician coming?",
                                  "What time will the engineer arrive?"])
def test_when_the_technician_comes_is_the_booked_visit(repo, intent_classifier, knowledge_base, text):
    """"When does the technician come?" was a booking by 0.012 and asked which service; "When is the technician
    coming?" heard the printer repair entry. The visit already booked is looked up (after verification)."""
    from voicebot.dialog.intents import Intent
    from voicebot.dialog.placing import placed_request

    booking = Intent("booking", 0.91, 0.012, "when can a technician come")
    assert placed_request(booking, text, repo.services(), TODAY, lambda _: 0.6).name == "my_appointments"
    assert placed_request(booking, "When can a technician come?", repo.services(), TODAY,
                          lambda _: 0.6).name == "booking"
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    events = list(agent.turn(text))
    assert [e.name for e in events if isinstance(e, ToolCalled)] == ["list_my_appointments"]
    assert "PIN" in said(events)


def test_a_return_and_a_move_with_no_pick_are_what_the_words_ask(repo, intent_classifier, knowledge_base):
    """"I need to return my order" read the PIN and the order's status: returning is the knowledge base's (the
    policy). "I want to change my appointment to Friday" (no pick) heard the entry "Call us ... and we move it"
    on the very call: the move starts, with the caller's bookings (after verification)."""
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    # how to return it (the policy's tag "return" no longer outweighs the entry titled "How do I return an item?")
    assert said(agent.turn("I need to return my order")).startswith("Ask us for a return number")
    events = list(agent.turn("I want to change my appointment to Friday"))
    assert [e.name for e in events if isinstance(e, ToolCalled)] == ["list_my_appointments"]


def test_at_the_pin_prompt_what_pin_and_never_set_one_are_answered_in_code(repo, intent_classifier, knowledge_base):
    """"What PIN?" went to the model, and "I never set one up" heard the PIN prompt again."""
    from voicebot.dialog.identity import BIRTH_PROMPT, WHAT_PIN

    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    assert "PIN" in said(agent.turn("Where's my order?"))
    assert said(agent.turn("What PIN?")) == WHAT_PIN
    assert said(agent.turn("I never set one up.")) == BIRTH_PROMPT
    assert said(agent.turn("14 March 1985")) == "Thank you. And the postcode on your account?"
    assert said(agent.turn("98101")).startswith("Order 10452")


def test_cancel_it_after_an_orders_status_is_the_order_not_a_booking(repo, intent_classifier, knowledge_base):
    """"Cancel it." after the order's status heard "I don't see any upcoming appointments": the order is meant, and
    what can be done about it is the company's policy."""
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    list(agent.turn("Where's my order?"))
    assert said(agent.turn("1 2 3 4")).startswith("Order 10452")
    answer = said(agent.turn("Cancel it."))
    assert answer.startswith("You can change or cancel an order") and answer.count("You can change") == 1, answer


@pytest.mark.parametrize("text, asks", [
    ("Can you change the phone number on my account?", True), ("I need to update my email address.", True),
    ("Can I change my order?", False), ("I want to change the time of my appointment.", False)])
def test_account_details_to_change_are_said_to_be_out_of_reach(config, text, asks):
    """"Can you change the phone number on my account?" heard the entry on changing an order."""
    from voicebot.dialog.capabilities import ACCOUNT_CHANGE_REPLY
    from voicebot.dialog.guard import EscalationGuard
    from voicebot.session.quick_replies import quick_reply

    reply = quick_reply(text, "How can I help?", EscalationGuard(config.escalation), config.dialog.prompts, None,
                        True, False)
    assert (reply is not None and " ".join(reply.sentences) == ACCOUNT_CHANGE_REPLY) is asks


def test_a_price_no_one_here_knows_is_said_so_with_a_person_offered(repo, intent_classifier, knowledge_base):
    """"How much is a whiteboard?" (the price list has none; the fitting's price matched weakly) went to the model,
    which took it for a lead and asked for a name. Now code says it has no price, and offers a colleague."""
    from voicebot.dialog.knowledge_step import NO_PRICE

    for question in ("How much is a whiteboard?", "What does a haircut cost?"):
        agent = agent_for(repo, intent_classifier, knowledge_base)
        assert said(agent.turn(question)) == NO_PRICE, question
    agent = agent_for(repo, intent_classifier, knowledge_base)  # a price the list has is still said
    assert said(agent.turn("How much for a sit stand table?")).startswith("Sit-stand desk, 140 cm costs $429")


def test_the_price_of_a_visit_is_its_price_not_free_times(repo, intent_classifier, knowledge_base):
    """"How much is a repair visit?" was a booking (0.88) and offered times; a "how much is it?" after a booking
    request in the same turn had the delivery charges entry. Both are the visit's price now."""
    agent = agent_for(repo, intent_classifier, knowledge_base)
    events = list(agent.turn("How much is a repair visit?"))
    assert said(events).startswith("Printer repair visit costs $85 per hour"), said(events)
    assert not [e for e in events if isinstance(e, ToolCalled)]
    agent = agent_for(repo, intent_classifier, knowledge_base)
    heard = said(agent.turn("Can I book a repair visit? How much is it?"))
    assert heard.startswith("Printer repair visit costs $85 per hour") and "I can offer a printer repair" in heard, heard
    assert "Delivery" not in heard


def test_a_forgotten_pin_said_first_gets_the_other_way_not_the_websites_password_entry(repo, intent_classifier,
                                                                                        knowledge_base):
    """"I forgot my PIN." before any question was asked heard "Use Forgot password on the login page": now the date of
    birth and postcode are asked (a known number), or the account is found first (an unknown one)."""
    from voicebot.dialog.identity import ACCOUNT_PROMPT, BIRTH_PROMPT

    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    assert said(agent.turn("I forgot my PIN.")) == BIRTH_PROMPT
    list(agent.turn("March 14th 1985"))
    assert said(agent.turn("98101")) == "Thank you, you're verified. How can I help?"
    assert agent.context.verified_customer is not None
    agent = agent_for(repo, intent_classifier, knowledge_base)
    assert said(agent.turn("I don't remember my PIN, can you help?")) == ACCOUNT_PROMPT


def test_opening_an_account_is_the_entry_not_a_booking(repo, intent_classifier, knowledge_base):
    """"I'd like to open an account." was a booking (0.91) and asked which service to book."""
    agent = agent_for(repo, intent_classifier, knowledge_base)
    assert said(agent.turn("I'd like to open an account.")).startswith("Fill in the business account form")
    agent = agent_for(repo, intent_classifier, knowledge_base)
    assert "Which service do you need" in said(agent.turn("I'd like to book a technician."))  # still a booking


def test_changing_an_order_just_read_out_is_the_policy_and_a_new_address_a_ticket(repo, intent_classifier,
                                                                                   knowledge_base):
    """"Can I add a chair to it?" after the caller's orders were read out had the furniture delivery entry; "Can I
    change the delivery address on my order?" read the order's status again."""
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    assert "10452" in said(agent.turn("What did I order? My PIN is 1234."))
    assert said(agent.turn("Can I add a chair to it?")).startswith("You can change or cancel an order free of charge")
    assert said(agent.turn("Can I change the delivery address on my order?")).startswith("I'll open a ticket saying")
    list(agent.turn("Yes."))
    assert [t["subject"] for t in repo.db["tickets"].rows_where("subject like ?", ["%address%"])]


def test_asked_to_cancel_the_policy_ends_with_the_offer_of_a_ticket(repo, intent_classifier, knowledge_base):
    """"I want to cancel my order." had the cancellation policy and nothing more (a SIP call): the caller who asked for
    something to be done was left to ask again. Now the policy ends with the offer of a ticket; a yes reads it back
    from the caller's words and a second yes writes it. A question about the policy gets the policy alone."""
    from voicebot.dialog.followups import OFFER_TICKET

    agent = agent_for(repo, intent_classifier, knowledge_base)
    first = said(agent.turn("I want to cancel my order."))
    assert first.startswith("You can change or cancel an order") and first.endswith(OFFER_TICKET), first
    readback = said(agent.turn("Yes, please."))
    assert readback == "I'll open a ticket saying: I want to cancel my order. Is that right?", readback
    done = agent.turn("Yes.")
    assert any(getattr(e, "name", None) == "create_ticket" for e in done), done
    assert "ticket" in said(done).lower()
    asked = said(agent_for(repo, intent_classifier, knowledge_base).turn("Can I cancel my order?"))
    assert asked.startswith("You can change or cancel an order") and OFFER_TICKET not in asked, asked


def test_a_price_asked_in_the_second_clause_of_a_lead_is_said_once(repo, intent_classifier, knowledge_base):
    """"Hi, do you have any standing desks, and how much are they?" (SIP, 2026-12-05) heard the desk's price twice,
    31 s of audio: once as the second clause's answer, once as the lead's estimate."""
    agent = agent_for(repo, intent_classifier, knowledge_base)
    answer = said(agent.turn("Hi, do you have any standing desks, and how much are they?"))
    assert answer.count("$429 per desk") == 1, answer
    assert answer.startswith("Sit-stand desk, 140 cm costs $429 per desk."), answer


@pytest.mark.parametrize("question", ["Can I pick up my order in person?", "Can I collect my order myself?"])
def test_fetching_an_order_oneself_is_the_pickup_entry_not_the_orders_status(repo, intent_classifier,
                                                                              knowledge_base, question):
    """"Can I pick up my order in person?" was an order status (by 0.01): the PIN, then the order read out. How to
    fetch an order is the company's (the knowledge base's pickup entry); "Where is my order?" stays the order's."""
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    events = list(agent.turn(question))
    assert "collect it at our Seattle showroom" in said(events) and not any(isinstance(e, ToolCalled) for e in events)
    assert said(agent_for(repo, intent_classifier, knowledge_base, caller=ALICE).turn("Where is my order?")) == (
        "For your security, please tell me your PIN.")


def test_an_order_asked_to_be_cancelled_by_number_hears_its_status_then_the_policy(repo, intent_classifier,
                                                                                    knowledge_base):
    """"I want to cancel order 10452." asked for the PIN and then read out the order's status and nothing more: the
    caller had to ask again. Now the status, the company's policy and the offer of a ticket, whose yes reads the
    caller's own words back; "Where is order 10452?" still ends with the status."""
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    assert said(agent.turn("I want to cancel order 10452.")) == "For your security, please tell me your PIN."
    answer = said(agent.turn("1234"))
    assert answer.startswith("Order 10452 has shipped") and "cancel an order free of charge until it is packed" in \
        answer and answer.endswith("Shall I do that?") and "anything else" not in answer, answer
    assert said(agent.turn("Yes.")) == "I'll open a ticket saying: I want to cancel order 10452. Is that right?"
    where = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    list(where.turn("Where is order 10452?"))
    assert said(where.turn("1234")).endswith("Is there anything else I can help with?")


def test_whether_the_company_does_a_service_is_answered_then_a_visit_offered(repo, intent_classifier,
                                                                             knowledge_base):
    """"Do you fix printers?" was a booking and offered two times at once: the caller had asked whether the company
    does it. Now the knowledge base's answer and the offer of a visit, whose yes offers the times; "Can you book me
    a printer repair?" and a day asked for still offer times at once."""
    from voicebot.dialog.followups import OFFER_VISIT

    agent = agent_for(repo, intent_classifier, knowledge_base)
    events = list(agent.turn("Do you fix printers?"))
    assert said(events) == f"Our technicians repair office printers and copiers of all major brands at your office. " \
        f"{OFFER_VISIT}" and not any(isinstance(e, ToolCalled) for e in events)
    events = list(agent.turn("Yes please."))
    assert said(events).startswith("I can offer a printer repair on") and [e.name for e in events if isinstance(
        e, ToolCalled)] == ["list_free_slots"]
    for request in ("Can you book me a printer repair?", "Can you fix my printer on Tuesday?"):
        assert said(agent_for(repo, intent_classifier, knowledge_base).turn(request)).startswith(
            "I can offer a printer repair on"), request
    stock = said(agent_for(repo, intent_classifier, knowledge_base).turn("Do you have the ergonomic chair in stock?"))
    assert "Ergonomic office chair costs $189" in stock and OFFER_VISIT not in stock  # goods, not a service done


def test_when_will_it_arrive_after_an_order_history_is_the_one_order_still_coming(repo, intent_classifier,
                                                                                 knowledge_base):
    """After the order history (10452 shipped, 10398 delivered before it), "When will it arrive?" heard the delivery
    times entry ("Items in stock are delivered in 2 to 3 business days"): the one order still on its way."""
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    list(agent.turn("What did I order last time?"))
    assert "10398" in said(agent.turn("1234"))
    assert said(agent.turn("When will it arrive?")).startswith("Order 10452 has shipped")


@pytest.mark.parametrize("text", ["I want to open a ticket.", "Can you open a ticket for me?",
                                  "I need to raise a support ticket."])
def test_a_ticket_asked_for_by_name_asks_what_went_wrong(repo, intent_classifier, knowledge_base, text):
    """"I want to open a ticket." was a booking (by 0.025) and asked which service to book, and the caller's "My
    printer is jammed." then offered repair times; "Can you open a ticket for me?" was the ticket status and asked
    for the PIN to read the caller's history. Now what went wrong is asked, and that answer is the ticket."""
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    assert said(agent.turn(text)) == DETAIL_QUESTION
    events = list(agent.turn("My printer is jammed."))
    assert said(events) == "I'll open a ticket saying: My printer is jammed. Is that right?"
    assert [e.name for e in events if isinstance(e, ToolCalled)] == []
    assert "create_ticket" in [e.name for e in agent.turn("Yes.") if isinstance(e, ToolCalled)]
    newest = next(repo.db["tickets"].rows_where(order_by="id desc", limit=1))
    assert "printer is jammed" in newest["subject"], newest


def test_a_question_after_a_ticket_still_asks_after_it(repo, intent_classifier, knowledge_base):
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    events = list(agent.turn("What happened to the ticket I opened last week?"))
    assert [e.name for e in events if isinstance(e, ToolCalled)] == ["get_caller_history"]


def test_a_caller_on_another_phone_who_names_their_number_is_found_by_it(repo, intent_classifier, knowledge_base):
    """"My phone number is 555 010 2030." from a phone the CRM does not know heard the company's contact entry, and
    "Where is my order? My phone number is 555 010 2030." looked up order 2030 (the number's tail). Now the number
    finds the account as it does when the bot asks for it, and the PIN follows; the order is never the number."""
    agent = agent_for(repo, intent_classifier, knowledge_base)
    events = list(agent.turn("I'm calling from a different phone. My phone number is 555 010 2030."))
    assert said(events) == "Thank you. For your security, please tell me your PIN."
    assert said(agent.turn("1 2 3 4")) == "Thank you, you're verified. How can I help?"
    assert agent.context.verified_customer is not None and agent.context.verified_customer.phones == (ALICE,)

    agent = agent_for(repo, intent_classifier, knowledge_base)
    events = list(agent.turn("Where is my order? My phone number is 555 010 2030."))
    assert said(events) == "Thank you. For your security, please tell me your PIN."
    assert all(e.args.get("order_number") is None for e in events if isinstance(e, ToolCalled))
    assert "Order 10452" in said(agent.turn("1 2 3 4"))

    agent = agent_for(repo, intent_classifier, knowledge_base)  # a number with no account: the same words (decoy)
    assert said(agent.turn("My phone number is 555 999 1111.")) == "Thank you. For your security, please tell me your PIN."
    assert "did not match" in said(agent.turn("1 2 3 4"))


def test_a_new_order_asked_for_is_for_the_sales_team_not_the_callers_orders(repo, intent_classifier, knowledge_base):
    """"I'd like to place an order", "Can I order 3 boxes of toner?" and "Can I order that again?" were order
    statuses or histories by the word "order": a known caller was asked for the PIN, to hear orders no one asked
    about. "How do I order from you?" read the open orders too. Now a new order is a lead read back (an estimate
    first when the price list has the item), how to order the knowledge base's entry; the caller's own orders
    are still asked after in their words."""
    for request in ("I'd like to place an order.", "Can I order 3 boxes of toner?", "Can I order that again?",
                    "I'm calling to place an order."):
        agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
        reply = said(agent.turn(request))
        assert reply.startswith("I'll pass this to our sales team: ") and "PIN" not in reply, (request, reply)
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    assert said(agent.turn("I need to order 5 chairs.")).startswith("For 5 chairs, at $")
    for question in ("How do I order from you?", "How can I place an order?"):
        agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
        assert said(agent.turn(question)).startswith("You can order on our website"), question
    for request in ("I placed an order on Monday, where is it now?", "I ordered a chair last week, has it shipped?",
                    "I want to check on an order."):
        agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
        assert said(agent.turn(request)) == "For your security, please tell me your PIN.", request


@pytest.mark.parametrize("problem", ["The desk I got is wobbly.", "My monitor flickers.", "The chair leg came off."])
def test_a_fault_in_everyday_words_is_a_ticket(repo, intent_classifier, knowledge_base, problem):
    """"The desk I got is wobbly." was a ticket by 0.005 and "My monitor flickers." by 0.012, under the write
    margin, and their words named no fault the code knew: the model was asked, and could not open a ticket either
    (a write the words do not ask for is not offered to it). Faults in everyday words are now evidence."""
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    assert said(agent.turn(problem)) == f"I'll open a ticket saying: {problem.rstrip('.')}. Is that right?"
    (called,) = [e for e in agent.turn("Yes.") if isinstance(e, ToolCalled)]
    assert called.name == "create_ticket"


def test_a_copy_of_an_invoice_asked_for_by_order_number_is_a_ticket(repo, intent_classifier, knowledge_base):
    """"Can you email me a copy of my invoice for order 10452?" was an order status by 0.005: after the PIN it read
    the order's delivery, and the copy was never asked for. Sending it is a colleague's task: a ticket in the
    caller's words. Asked without a number, the knowledge base's entry says how; "Has order 10452 been sent?" is
    still the order's status."""
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    assert said(agent.turn("Can you email me a copy of my invoice for order 10452?")) == (
        "I'll open a ticket saying: Can you email me a copy of my invoice for order 10452. Is that right?")
    (called,) = [e for e in agent.turn("Yes.") if isinstance(e, ToolCalled)]
    assert called.name == "create_ticket" and "10452" in called.args["description"]
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    assert said(agent.turn("Can you resend my invoice?")).startswith("Every invoice is in your online account")
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    assert said(agent.turn("Has order 10452 been sent?")) == "For your security, please tell me your PIN."


def test_it_after_a_services_times_are_offered_is_that_service(repo, intent_classifier, knowledge_base):
    """"How much does it cost?" after printer repair times were offered had the delivery charges entry ("Delivery
    is free on orders from $50"): "it" is the service offered, until another price is said. "Is that OK?" to the
    times is no question about the service."""
    agent = agent_for(repo, intent_classifier, knowledge_base)
    assert said(agent.turn("I need a printer repair.")).startswith("I can offer a printer repair on")
    assert said(agent.turn("How much does it cost?")).startswith("Printer repair visit costs $85 per hour.")
    assert said(agent.turn("How much is the ergonomic office chair?")).startswith("Ergonomic office chair costs")
    assert said(agent.turn("How much does that cost?")).startswith("Ergonomic office chair costs")
    agent = agent_for(repo, intent_classifier, knowledge_base, chat=ScriptedChat([{"action": "reply",
                                                                                  "text": "Shall I book it?"}]))
    assert said(agent.turn("I need laptop setup.")).startswith("I can offer a laptop setup on")
    assert "laptop" not in said(agent.turn("Is that OK?")).lower()


def test_the_account_question_answered_without_a_number(repo, intent_classifier, knowledge_base):
    """At "What is the phone number on your account, or one of your order numbers?", "I don't know my order
    number." heard the same question again, and "It's under Alice Johnson." went to the model. The other number is
    asked for, a name is no key, a caller with neither is offered a person, and their yes is the transfer."""
    from voicebot.dialog.agent import TransferRequested
    from voicebot.dialog.no_number import NEITHER_NUMBER, NO_ORDER_NUMBER, NOT_BY_NAME

    agent = agent_for(repo, intent_classifier, knowledge_base)
    assert "phone number on your account" in said(agent.turn("Where is my order?"))
    assert said(agent.turn("I don't know my order number.")) == NO_ORDER_NUMBER
    assert said(agent.turn("I don't know the phone number either.")) == NEITHER_NUMBER
    assert [e for e in agent.turn("Yes, please.") if isinstance(e, TransferRequested)]
    agent = agent_for(repo, intent_classifier, knowledge_base)
    list(agent.turn("Where is my order?"))
    assert said(agent.turn("It's under Alice Johnson.")) == NOT_BY_NAME
    assert said(agent.turn("I don't know my quarter number.")) == NO_ORDER_NUMBER  # Whisper's "order" on SIP: the
    # number named is no number of the account's, and the phone number is the one nearly every caller knows
    assert said(agent.turn("555 010 2030")) == "Thank you. For your security, please tell me your PIN."
    assert said(agent.turn("1234")).startswith("Order 10452")


def test_a_refund_asked_after_by_order_number_hears_the_refund_policy_after_the_order(repo, intent_classifier,
                                                                                      knowledge_base):
    """"Where is my refund for order 10398?" heard only that the order was delivered on October 17th, and the
    caller had to ask again. The CRM holds no refunds; after the order's record the company's refund entry says
    when. "Where is order 10398?" still hears the record alone."""
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    assert said(agent.turn("Where is my refund for order 10398?")) == "For your security, please tell me your PIN."
    answer = said(agent.turn("1234"))
    assert answer.startswith("Order 10398 was delivered on") and answer.endswith(
        "We refund within 5 business days of receiving the return, to the card or account you paid with."), answer
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    list(agent.turn("Where is order 10398?"))
    assert "refund" not in said(agent.turn("1234"))


def test_a_service_asked_for_with_no_word_of_moving_is_a_booking_not_a_move(repo, intent_classifier, knowledge_base):
    """"I need someone to set up 5 laptops next Tuesday" was a move by 0.005 (nearest: "the laptop setup has to
    move to another week") and heard the laptop setup entry, no times. With no word of moving or dropping a
    booking, a turn that names a service is a booking; the moves and cancellations keep theirs."""
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    assert said(agent.turn("I need someone to set up 5 laptops next Tuesday.")).startswith(
        "I can offer a laptop setup on Tuesday, November 24th at")
    for change in ("The laptop setup has to move to another week.", "We won't need the furniture fitting after all.",
                   "Cancel the printer repair please."):
        agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
        assert said(agent.turn(change)) == "For your security, please tell me your PIN.", change


def test_why_an_order_is_late_is_not_invented(repo, intent_classifier, knowledge_base):
    """"Can you tell me why it's delayed?" after the order's status: the model said "the carrier DHL is experiencing
    technical issues"; the record holds no reason, so the bot says so, what the record holds, and offers a ticket,
    whose yes is read back from the caller's words."""
    from voicebot.dialog.recognised import NO_REASON

    chat = ScriptedChat()  # any model call fails the test
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=TOM, chat=chat)
    list(agent.turn("Where's my order?"))
    list(agent.turn("2 November 1979"))
    assert said(agent.turn("SW1A 1AA")).startswith("Order 10460")
    answer = said(agent.turn("Can you tell me why it's delayed?"))
    assert answer.startswith(NO_REASON + " Order 10460 is delayed with DHL") and answer.endswith("Shall I do that?")
    assert said(agent.turn("Yes, please.")).startswith(
        "I'll open a ticket about order 10460 saying: Can you tell me why it's delayed")
    events = list(agent.turn("Yes."))
    [ticket] = [e for e in events if isinstance(e, ToolCalled) and e.name == "create_ticket"]
    assert ticket.args["order_number"] == "10460" and ticket.result["ok"], ticket  # linked to the order
    assert repo.db.execute("select o.number from tickets t join orders o on o.id = t.order_id "
                           "order by t.id desc limit 1").fetchone()[0] == "10460"
    assert not chat.calls


def test_a_caller_who_never_ordered_is_answered_not_asked_for_an_account(repo, intent_classifier, knowledge_base):
    """"Hi, I never ordered from you before. Do you deliver to Canada?" was read as an order status: "I can help with
    that once I've found your account"."""
    agent = agent_for(repo, intent_classifier, knowledge_base)
    events = list(agent.turn("Hi, I never ordered from you before. Do you deliver to Canada?"))
    assert not [e for e in events if isinstance(e, ToolCalled)], events
    assert "account" not in said(events)


def test_do_you_have_an_item_is_its_price_and_a_count_its_estimate(repo, intent_classifier, knowledge_base):
    """"Do you have any printer paper?" had the printer repair entry ("Yes. Our technicians repair ..."), then "How
    much for 30 boxes?" was asked back "the price of the a4 copy paper?"."""
    agent = agent_for(repo, intent_classifier, knowledge_base)
    assert said(agent.turn("Do you have any printer paper?")).startswith("Yes, we do. A4 copy paper costs $24.99")
    assert said(agent.turn("How much for 30 boxes?")).startswith("For 30 boxes, at $24.99 per box")


def test_a_price_asked_back_keeps_the_items_own_capitals():
    from voicebot.knowledge.prices import in_sentence

    assert in_sentence("A4 copy paper") == "A4 copy paper" and in_sentence("HP 26X toner cartridge") == (
        "HP 26X toner cartridge") and in_sentence("Ergonomic office chair") == "ergonomic office chair"


def test_a_refund_not_received_is_the_refund_entry_not_the_wrong_item_one(repo, intent_classifier, knowledge_base):
    """"I haven't received my refund yet" had the wrong-item entry (its words "I received"); asking for a refund is
    still a request of its own."""
    agent = agent_for(repo, intent_classifier, knowledge_base)
    assert said(agent.turn("I haven't received my refund yet")).startswith("We refund within 5 business days")
    asked = said(agent_for(repo, intent_classifier, knowledge_base).turn("I want a refund for the broken lamp"))
    assert not asked.startswith("We refund within"), asked


def test_a_price_for_them_with_no_item_spoken_of_asks_which_item_then_prices_it(repo, intent_classifier,
                                                                                 knowledge_base):
    """"How much would twelve of them cost?" as the call's first words was read back as a lead ("May I have your name
    for our sales team?") for no item at all. Now the bot asks which item, and the item named next is "them"."""
    from voicebot.dialog.knowledge_step import WHICH_ITEM

    chat = ScriptedChat()  # any model call fails the test
    agent = agent_for(repo, intent_classifier, knowledge_base, chat=chat)
    events = list(agent.turn("How much would twelve of them cost?"))
    assert said(events) == WHICH_ITEM
    assert not [e for e in events if isinstance(e, ToolCalled)] and agent.pending_write is None
    answer = said(agent.turn("Standing desks."))
    assert answer.startswith("For 12 desks, at $429 per desk, the estimate is $5,148"), answer
    assert not chat.calls


def test_whether_the_company_does_something_its_files_do_not_say_is_a_person_not_the_models_policy(
        repo, intent_classifier, knowledge_base):
    """"Do you price match?" went to the model, which said "I'm sorry, I don't have the ability to price match": a
    policy nobody wrote. With no entry for it, the caller is offered a person; a question about their own records
    is still theirs."""
    chat = ScriptedChat()  # any model call fails the test
    agent = agent_for(repo, intent_classifier, knowledge_base, chat=chat)
    assert said(agent.turn("Do you price match?")) == OFFER_PERSON
    assert not chat.calls
    agent = agent_for(repo, intent_classifier, knowledge_base, chat=chat)
    events = list(agent.turn("Do you know where my order is?"))
    assert [e.name for e in events if isinstance(e, ToolCalled)] == ["list_open_orders"]


def test_asking_to_return_something_hears_how_returns_work_then_a_ticket_is_offered(repo, intent_classifier,
                                                                                    knowledge_base):
    """"I'd like to return the chair." was a booking by the intent step and went to the model, which read a ticket
    back at once: the caller never heard how returns work. Now the returns entry, then the offer of a ticket, whose
    yes is read back from the caller's words; a broken item is still a ticket at once."""
    chat = ScriptedChat()  # any model call fails the test
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE, chat=chat)
    answer = said(agent.turn("I'd like to return the chair."))
    assert answer.startswith("Ask us for a return number") and answer.endswith("Shall I do that?"), answer
    assert said(agent.turn("Yes.")) == "I'll open a ticket saying: I'd like to return the chair. Is that right?"
    assert not chat.calls
    agent = agent_for(repo, intent_classifier, knowledge_base, chat=chat)
    assert said(agent.turn("I want to return the chair, it arrived broken.")).startswith("I'll open a ticket saying")


def test_an_invoice_copy_asked_for_then_the_orders_number_is_a_ticket_for_the_copy(repo, intent_classifier,
                                                                                     knowledge_base):
    """"Can you resend my invoice?" hears the knowledge base's "just ask us with the order number"; "It's order
    10452." next read the order's status (after the PIN). Now it is the ticket for the copy, read back with that
    number; anything else said next is its own request."""
    chat = ScriptedChat()  # any model call fails the test
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE, chat=chat)
    assert "order number" in said(agent.turn("Can you resend my invoice?"))
    assert said(agent.turn("It's order 10452.")) == \
        "I'll open a ticket about order 10452 saying: Can you resend my invoice. Is that right?"
    [ticket] = [e for e in agent.turn("Yes.") if isinstance(e, ToolCalled)]
    assert ticket.name == "create_ticket" and ticket.result["ok"], ticket
    assert "10452" in ticket.result["result"]["description"]  # not verified: the number noted, no order linked
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE, chat=chat)
    list(agent.turn("Can you resend my invoice?"))
    assert said(agent.turn("What are your opening hours?")).startswith("We're open Monday")
    assert not chat.calls


@pytest.mark.parametrize("asked, price", [("Is printer repair free?", "Printer repair visit costs $85 per hour."),
                                          ("Is the desk free?", "Sit-stand desk, 140 cm costs $429 per desk."),
                                          ("Is assembly free?", "Furniture fitting costs $55 per hour.")])
def test_is_it_free_is_a_price_question_answered_from_the_price_list(repo, intent_classifier, knowledge_base, asked,
                                                                      price):
    """The first two were offered furniture fitting or printer repair times ("free" read as a free time), the
    third asked which service to book."""
    agent = agent_for(repo, intent_classifier, knowledge_base)
    assert said(agent.turn(asked)).startswith(price)


def test_a_free_time_asked_is_still_not_a_price(repo, intent_classifier, knowledge_base):
    agent = agent_for(repo, intent_classifier, knowledge_base)
    assert "$" not in said(agent.turn("Do you have a free slot for printer repair on Monday?"))


def test_a_charge_for_moving_a_booking_asked_is_the_policy_not_the_pin(repo, intent_classifier, knowledge_base):
    """"Is there a charge to change my appointment?" asked for the PIN and then listed Alice's bookings."""
    agent = agent_for(repo, intent_classifier, knowledge_base, caller=ALICE)
    assert "free of charge" in said(agent.turn("Is there a charge to change my appointment?"))
    assert "PIN" in said(agent.turn("Can I cancel my appointment?"))  # asking to do it still is
