"""Caller turns the session answers at once, in code, before the menu and the model: none needs model seconds.

Why a module: each is a rule of its own, met as callers put it, and the core that runs the call stays one room.
* "Sorry, what?": the caller missed the bot's words. They hear them again (as played), not "please rephrase" from
  the model; an open PIN question or read-back stays open. A second "what?" reaches a person (the guard).
* "Am I talking to a robot?", "what can you do?": an honest answer and the way to a person, no transfer
  (``dialog.capabilities``).
* "What's the PIN on my account?": no one is told a secret, and there is no model to talk round.
* "Read me Priya Shah's appointments.", "give me all customer phone numbers": nobody else's records, whoever the
  caller says they are (``dialog.others``).
* "Set the price of chairs to 1 dollar.", "give me a 50 percent discount", "what's my balance?": the bot cannot
  change prices or see what a customer owes, and says so (``dialog.capabilities``).
* "Yes." to "anything else?", "I need help." alone: what else, or what about.
* "Thank you, that's all": the goodbye from the cache, unless a read-back still waits for its answer ("Bye." to
  one is a goodbye: nothing is written). "Um." alone: ``prompts.hesitation`` ("Take your time."), never the model.
* "Okay, thanks." after an answer that asked nothing: "You're welcome. Is there anything else I can help with?".
* Silence after a question the bot asked: "Are you still there?" and the question again (``no_input_reprompt``).
* A model reply that did not understand the caller ("I'm not sure what you're asking"), or repeats the last
  one: a no-match, so the guard's ``max_no_match`` reaches a person instead of a loop (``not_understood``).
* A hand-over by the model on a word or two ("Tune": Whisper's reading of "Two." on a phone line): "Sorry, I didn't
  catch that" first, as for any answer not understood (``asks_again_before_hand_over``); the same again goes through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from voicebot.config import PromptsConfig
from voicebot.crm.repository import Repository
from voicebot.dialog.answers import (GLAD, SECRET_REPLY, asks_for_number, asks_for_secret, asks_only_for_help,
                                     is_closing, only_praise, only_thanks, wants_more)
from voicebot.dialog.flow import MenuFlow
from voicebot.dialog.capabilities import (ACCOUNT_CHANGE_REPLY, BALANCE_REPLY, PRICE_CHANGE_REPLY, asks_for_a_balance,
                                          asks_to_change_a_price, asks_to_change_account_details, bot_answer)
from voicebot.dialog.guard import EscalationGuard
from voicebot.dialog.others import OTHERS_REPLY, asks_for_others_data
from voicebot.speech.dictation import REQUEST
from voicebot.speech.tts import split_sentences
from voicebot.text import words


@dataclass(frozen=True)
class QuickReply:
    sentences: list[str]
    fixed: bool = True  # said as written every time: from the synthesizer's cache
    progress: bool = False  # the call moved on (the guard's no-progress count starts again)


def quick_reply(text: str, last_bot: str, guard: EscalationGuard, prompts: PromptsConfig, crm: Repository | None,
                has_knowledge: bool, write_pending: bool, company: str = "") -> QuickReply | None:
    """The reply the session gives ``text`` in code (see the module docstring), or None: the menu and the model
    take the turn."""
    if last_bot and guard.asks_again(text):
        return QuickReply(split_sentences(last_bot), fixed=False)
    if guard.bot_question(text):
        return QuickReply([bot_answer(prompts, crm, has_knowledge)], progress=True)
    if asks_for_secret(text):
        return QuickReply([SECRET_REPLY], fixed=False)
    if asks_for_others_data(text, company):
        return QuickReply(split_sentences(OTHERS_REPLY), fixed=False)
    if asks_to_change_a_price(text):
        return QuickReply(split_sentences(PRICE_CHANGE_REPLY))
    if asks_for_a_balance(text):
        return QuickReply(split_sentences(BALANCE_REPLY))
    if asks_to_change_account_details(text):
        return QuickReply(split_sentences(ACCOUNT_CHANGE_REPLY))
    more = wants_more(text, last_bot)
    if more or asks_only_for_help(text):
        return QuickReply([prompts.anything_more if more else prompts.what_about])
    if only_hesitation(text):
        return QuickReply([prompts.hesitation])
    if is_closing(text, last_bot) and (not write_pending or _BYE.search(text)):  # "That's all, bye." to a read-back:
        # nothing is written (only a yes writes), and the caller is not kept for the model's "I can't help with that"
        return QuickReply([prompts.goodbye], progress=True)
    if only_praise(text) and not write_pending and not _BYE.search(text):  # "The repair went well." (a booking)
        return QuickReply([GLAD], progress=True)
    if only_thanks(text) and not last_bot.rstrip().endswith("?") and not write_pending:
        return QuickReply([prompts.welcome], progress=True)  # after an answer: a question waits for its answer
    return None


_HESITATION = frozenset("um umm uh uhh er erm hmm hm ah well so".split())
_BYE = re.compile(r"\b(?:good ?)?bye(?:\W+bye)*\W*$", re.IGNORECASE)  # a turn that ends in a farewell


def only_hesitation(text: str) -> bool:
    """Whether the whole turn is a hesitation ("Um.", "Uh, well..."): the caller is still thinking. It went to the
    model, which said "I'm sorry, I don't know who you are. Could you please provide your name or phone number?"."""
    said = words(text)
    return bool(said) and set(said) <= _HESITATION


def no_input_reprompt(transcript: list[tuple[str, str]], menu_reprompt: str, prompts: PromptsConfig) -> QuickReply:
    """What silence after a prompt hears. After a question or request the bot put to the caller ("For your
    security, please tell me your PIN.", "Shall I book it?"): ``prompts.still_there`` and that again; it had been the
    menu's reprompt ("Sorry, I did not get that. Say orders, repairs or sales..."), which asked something else
    and left the PIN question unanswered. Before the caller has said anything, or after the menu's own words,
    the menu's reprompt, as the admin wrote it."""
    said_before = any(role == "caller" for role, _ in transcript)
    last_bot = next((said for role, said in reversed(transcript) if role == "bot"), "")
    question = next((s for s in reversed(split_sentences(last_bot))  # "...?", or "please tell me your PIN."
                     if s.rstrip().endswith("?") or REQUEST.search(s.lower())), "")
    if said_before and question and transcript[-1][0] == "bot" and menu_reprompt not in last_bot:
        return QuickReply([prompts.still_there, question], fixed=False)
    return QuickReply([menu_reprompt])


_PERSON_OFFERED = re.compile(r"\b(connect|transfer|colleague|person|human|someone|agent|operator|representative|"
                             r"team|staff)\b", re.I)
_AGREEING = frozenset("yes yeah yep yup sure ok okay please right fine correct go ahead".split())


def asks_again_before_hand_over(text: str, last_bot: str, prompts: PromptsConfig) -> bool:
    """The model handed the call over on a word or two the bot cannot place ("Tune", "Hama"): a mishearing is no
    reason to transfer, so the caller hears ``prompts.not_heard`` (a no-match for the guard) instead. Not when the
    bot had just said that (the caller said it again: the hand-over stands), nor when the caller agreed to a person
    the bot offered ("Yes." to "Shall I connect you with a colleague?"), nor after a question for a number (a PIN
    asked again after wrong ones: the model's hand-over there is the verification's own way out)."""
    said = words(text)
    if not said or len(said) > 2 or last_bot == prompts.not_heard or asks_for_number(last_bot):
        return False
    return not (_PERSON_OFFERED.search(last_bot) and set(said) & _AGREEING)


_NOT_UNDERSTOOD = re.compile(
    r"\b(?:i'?m|i am) not (?:sure|certain|clear) (?:what|which|about what) you(?:'re| are)? (?:mean|asking|ask|"
    r"say|saying|need|want|looking for|referring to)|\bi (?:did not|didn't|don't|do not|couldn't|could not) (?:quite "
    r")?(?:understand|follow|catch|get|make out)(?: (?:that|you|what you|your (?:question|request))|\W*$)|\b(?:could|"
    r"can|would) you (?:please )?(?:rephrase|repeat that|say that again|say it again|explain what you mean)\b|"
    r"\bi'?m (?:sorry, )?(?:having trouble|unable) (?:understanding|to understand|with that)\b", re.IGNORECASE)
"""The model's words for a turn it could not place, and ``prompting.TROUBLE_REPLY`` (its output was no action)."""


def not_understood(sentence: str, before: str = "") -> bool:
    """Whether the model's reply (``sentence``: its first sentence, or the whole of it) says it could not place the
    caller's words ("I'm not sure what you're asking. Would you like me to pass your question to our sales
    team?"), or says again word for word what the bot said last (``before``). Either is an answer not understood,
    a no-match for the guard: gibberish heard that reply three times over, and the call never reached a person."""
    said = sentence.strip()
    return bool(_NOT_UNDERSTOOD.search(said)) or (len(said.split()) >= 4 and said == before.strip())


def keys_may_be_said(last_bot: str, flow: MenuFlow, greeted: bool) -> bool:
    """Whether a turn that only names a key ("two" after "press 1, 2 or 3") is that key: after the greeting
    (``greeted``: the call's first caller turn, not a placed call's opening) or the menu's own prompt or reprompt,
    never after a question for a number (``MenuFlow.match``)."""
    menu_words = greeted or any(p in last_bot for p in (flow.prompt(), flow.reprompt()))
    return menu_words and not asks_for_number(last_bot)
