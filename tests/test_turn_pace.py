"""Never cut a slow caller: the partial-transcript gate, the slow caller's longer limits, and ``CallerPace``.

Timelines in audio time with a scripted VAD and turn model (``test_turn_model.drive``); the session with fakes on
the simulated line; and through the real models, a slow caller whose first half sounds finished: the first turn
is cut, the bot notices, and from then on the same kind of sentence is one turn and the bot speaks slower.
"""

from __future__ import annotations

import time

import pytest
from conftest import words
from test_turn_model import ScriptedTurnModel, ThreadNotingModel, call_with, drive, turn_model, with_model  # noqa: F401
from test_turns import FRAME, of

from voicebot.events import BargedIn
from voicebot.speech.dictation import partial_kind
from voicebot.speech.pace import SLOW_AT, CallerPace, slow_turn, syllables
from voicebot.speech.turns import LikelyEnd, TurnDetector, Utterance


def answer_partials(kind_at: dict[float, str], after_frames: int = 5, slowly: frozenset[float] = frozenset()):
    """An ``on_frame`` for ``drive``: each LikelyEnd is answered ``after_frames`` later with the kind scripted for
    its end of speech (``done`` when none is), said slowly where its end of speech is in ``slowly``."""
    pending: list[tuple[int, float]] = []

    def on_frame(i: int, detector: TurnDetector) -> None:
        for due, ended in [p for p in pending if p[0] == i]:
            pending.remove((due, ended))
            on_frame.events += detector.resolve_partial(ended, kind_at.get(round(ended, 2), "done"),
                                                        round(ended, 2) in slowly)
        if detector.in_speech and detector._t_ms - detector._last_speech_ms == 300 and detector._confirmed:
            pending.append((i + after_frames, detector._last_speech_ms / 1000))

    on_frame.events = []
    return on_frame


def gated(*spans, **turns) -> TurnDetector:
    detector = with_model(*spans, **turns)
    detector.await_partial = True
    return detector


# -- the partial-transcript gate ------------------------------------------------------------------------------


def test_asked_for_a_pin_words_with_no_digits_end_as_any_answer_and_digits_wait_for_more():
    """The PIN prompt's wait is for digits: "Yes." (a "complete" verdict, a partial with no digits) is taken when
    the partial comes, not after the 1.6 s that a group of digits gets (a real call waited 1.6 s on every "Yes."
    and "No, that's all" after the PIN question); "one two" ... 1.2 s ... "three four" is still one turn."""
    yes = gated((0.5, 1.0))
    yes.expect_digits(True)
    on_frame = answer_partials({1.0: "done"})
    (utterance,) = of(drive(yes, 4, ScriptedTurnModel(True), on_frame=on_frame) + on_frame.events, Utterance)
    assert utterance.at_s == pytest.approx(1.0 + 0.3 + 0.1, abs=0.03)
    pin = gated((0.5, 1.2), (2.4, 3.0))
    pin.expect_digits(True)
    on_frame = answer_partials({1.2: "dictation", 3.0: "dictation"})
    (utterance,) = of(drive(pin, 7, ScriptedTurnModel(True), on_frame=on_frame) + on_frame.events, Utterance)
    assert utterance.speech_ended_at_s == pytest.approx(3.0) and utterance.ended_by == "dictation"
    asked = gated((0.5, 1.0))  # "What is your order number?" "I don't have it."
    asked.set_dictation(True)
    on_frame = answer_partials({1.0: "done"})
    (utterance,) = of(drive(asked, 4, ScriptedTurnModel(True), on_frame=on_frame) + on_frame.events, Utterance)
    assert utterance.at_s == pytest.approx(1.0 + 0.3 + 0.1, abs=0.03)


def test_a_complete_verdict_waits_for_the_partial_transcript_then_ends_the_turn():
    on_frame = answer_partials({}, after_frames=10)  # Whisper takes 200 ms after the LikelyEnd at 300 ms
    events = drive(gated((1.0, 1.4)), 4, ScriptedTurnModel(True), on_frame=on_frame) + on_frame.events
    assert of(events, LikelyEnd)
    (utterance,) = of(events, Utterance)
    assert utterance.ended_by == "model"
    assert utterance.at_s == pytest.approx(1.4 + 0.3 + 0.2, abs=FRAME)  # not at 1.66 s: the words were not in


def test_an_unfinished_last_word_overrules_a_complete_verdict():
    on_frame = answer_partials({1.4: "unfinished"})  # "I bought a chair and" ... 1.2 s ... "it broke"
    events = drive(gated((0.5, 1.4), (2.6, 3.2)), 6, ScriptedTurnModel(True), on_frame=on_frame) + on_frame.events
    (utterance,) = of(events, Utterance)
    assert utterance.speech_ended_at_s == pytest.approx(3.2)


def test_words_left_hanging_wait_as_long_as_a_slow_callers_pause_and_other_words_do_not():
    """Mid-call, "I bought a chair and" ... 2 s ... "it broke" is one turn: the words are sure to go on, so the
    pause waits ``slow_scale`` times the limit (2.4 s), as on the open floor; a sentence that sounded unfinished
    but whose words are done ("Is it possible to book a visit?") still ends at the usual 1.6 s."""
    on_frame = answer_partials({1.4: "unfinished"})
    events = drive(gated((0.5, 1.4), (3.4, 4.0)), 8, ScriptedTurnModel(True), on_frame=on_frame) + on_frame.events
    (utterance,) = of(events, Utterance)
    assert utterance.speech_ended_at_s == pytest.approx(4.0)
    on_frame = answer_partials({1.4: "done"})
    events = drive(gated((0.5, 1.4), (3.4, 4.0)), 8, ScriptedTurnModel(False), on_frame=on_frame) + on_frame.events
    first, _ = of(events, Utterance)
    assert first.speech_ended_at_s == pytest.approx(1.4) and first.at_s == pytest.approx(1.4 + 1.6, abs=FRAME)


def test_digits_in_the_partial_transcript_keep_a_dictated_number_whole():
    spans = ((0.5, 1.2), (2.2, 2.8), (3.8, 4.4))  # "three six nine" ... "five two" ... "one", no hint from the bot
    on_frame = answer_partials({1.2: "dictation", 2.8: "dictation", 4.4: "dictation"})
    events = drive(gated(*spans), 8, ScriptedTurnModel(True), on_frame=on_frame) + on_frame.events
    (utterance,) = of(events, Utterance)
    assert utterance.speech_ended_at_s == pytest.approx(4.4) and utterance.ended_by == "dictation"


@pytest.mark.parametrize("partial, kind", [
    ("My order number is three six nine", "dictation"),
    ("I bought a chair in March and", "unfinished"),
    ("I want to change the address for the", "unfinished"),
    ("Um", "unfinished"),
    ("I bought a chair in March.", "preamble"),
    ("Where is my order?", "done"),
    ("", "done"),
    # a copula or preposition ends a sentence after a question word or in a question, and only there
    ("My colleague said you could help, but I am not sure what it was.", "done"),
    ("That's what I was looking for.", "done"),
    ("What is it about?", "done"),
    ("Do you know what time it is?", "done"),
    ("The problem is", "unfinished"),
    ("I'm calling about", "unfinished"),
    ("I bought it in March and it was", "unfinished"),
    ("Where is the", "unfinished"),
    # the last two words open what comes next (a slow caller's "Could you tell me, ..." was cut there)
    ("Could you tell me", "unfinished"), ("Could you tell me?", "unfinished"),
    ("I was wondering,", "unfinished"), ("I'm calling", "unfinished"), ("Can you", "unfinished"),
    ("That's all I need.", "done"), ("Thank you.", "done"), ("If you'd like.", "done"), ("Could you tell me when it arrives?", "done"),
])
def test_what_a_partial_transcript_says_about_the_turn(partial, kind):
    assert partial_kind(partial) == kind


# -- the slow caller's limits ---------------------------------------------------------------------------------


def test_a_slow_caller_is_not_cut_at_a_pause_that_sounds_finished():
    spans = ((0.5, 2.0), (3.4, 4.5))  # "I bought a chair in March," ... 1.4 s ... "and a leg is broken"
    cut = of(drive(with_model(*spans), 8, ScriptedTurnModel(True)), Utterance)
    assert len(cut) == 2  # the model hears the first half as finished

    slow = with_model(*spans)
    slow.set_slow(True)
    (utterance,) = of(drive(slow, 8, ScriptedTurnModel(True)), Utterance)
    assert utterance.speech_ended_at_s == pytest.approx(4.5)
    assert utterance.at_s == pytest.approx(4.5 + 1.7)  # turns.slow_complete_silence_ms


def test_a_pause_after_words_said_slowly_waits_as_a_slow_callers_and_only_that_pause():
    spans = ((0.5, 2.0), (3.4, 4.5))  # "I bought a chair in March," said slowly ... 1.4 s ... "and a leg is broken"
    on_frame = answer_partials({}, slowly=frozenset({2.0}))
    events = drive(gated(*spans), 8, ScriptedTurnModel(True), on_frame=on_frame) + on_frame.events
    (utterance,) = of(events, Utterance)  # not cut at 2.0 + 0.3 s, as the same pause with a brisk first half is
    assert utterance.speech_ended_at_s == pytest.approx(4.5)
    assert utterance.at_s == pytest.approx(4.5 + 0.3 + 0.1, abs=FRAME)  # its own partial was not slow: no wait

    brisk = answer_partials({})
    assert len(of(drive(gated(*spans), 8, ScriptedTurnModel(True), on_frame=brisk) + brisk.events, Utterance)) == 2


@pytest.mark.parametrize("text, speech_s, slow", [
    ("I bought a chair in March", 1.9, True),  # 6 syllables: 3.2 a second, Piper's voice at length_scale 1.6
    ("I bought a chair in March", 1.2, False),  # 5 a second: a normal pace
    ("We would like a quote for ten desks", 2.5, True),
    ("We would like a quote for ten desks", 1.8, False),
    ("Yes", 1.6, False),  # a word held long says nothing of the pace (nor does a short phrase, stretched by noise)
    ("Hello world", 1.8, False),
    ("Thanks", 1.2, False),  # too little speech to judge
    ("My PIN is 1, 2, 3, 4.", 2.1, False),  # digits are read slowly by everyone; dictation has its own wait
])
def test_a_turn_said_slowly(text, speech_s, slow):
    assert slow_turn(text, speech_s) is slow


def test_syllables_are_counted_well_enough_for_a_rate():
    assert [syllables(t) for t in ("I bought a chair in March", "the delivery date", "Alice Martin", "table",
                                   "I'd like to see it", "7 2")] == [6, 6, 4, 2, 5, 2]


def test_a_slow_callers_other_limits_are_longer():
    slow = with_model((0.5, 1.5))
    slow.set_slow(True)
    (utterance,) = of(drive(slow, 6, ScriptedTurnModel(False)), Utterance)
    assert utterance.at_s == pytest.approx(1.5 + 1.6 * 1.5)  # incomplete limit times turns.slow_scale


def test_an_utterance_says_its_longest_inner_pause():
    (utterance,) = of(drive(with_model((0.5, 1.0), (1.8, 2.0), (2.3, 2.6)), 5, ScriptedTurnModel(False)), Utterance)
    assert utterance.longest_pause_s == pytest.approx(0.8)


# -- CallerPace: evidence over the call -----------------------------------------------------------------------


def test_a_caller_who_goes_on_after_the_turn_was_ended_is_slow_at_once():
    pace = CallerPace()
    change = pace.resumed(1.1)
    assert change is not None and pace.slow and "went on" in change.reasons[0]
    assert pace.resumed(0.5) is None  # said once


def test_hesitation_adds_up_and_a_brisk_caller_stays_normal():
    brisk = CallerPace()
    for text in ("Where is my order?", "Yes.", "I would like to speak to someone in sales please."):
        assert brisk.heard(text, 0.3 * len(text.split())) is None
    assert brisk.pause(0.6) is None and brisk.resumed(4.0) is None and not brisk.slow

    hesitant = CallerPace()
    assert hesitant.heard("Sorry?", 0.5) is None  # one point
    assert hesitant.pause(1.3) is not None and hesitant.slow and hesitant.points == SLOW_AT


def test_a_slow_speaking_rate_over_the_call_counts():
    pace = CallerPace()
    pace.heard("What?", 0.4)
    change = pace.heard("I would like to check the status of my order please", 4.5)  # 13 syllables in 4.5 s
    assert change is not None and "slow speech" in change.reasons and change.syllables_per_s == pytest.approx(2.89)
    assert change.words_per_s == pytest.approx(2.44)


def test_a_number_read_out_or_a_short_answer_is_not_a_slow_speaking_rate():
    pace = CallerPace()
    assert pace.heard("My PIN is 1, 2, 3, 4.", 4.5) is None and pace.heard("It is 3 6 9 5 2", 4.0) is None
    assert all(pace.heard(text, 0.6) is None for text in ("Yes.", "No.", "Right.", "Okay.", "Yes.", "No.", "Yes."))
    assert pace.speech_s == 0 and pace.heard("I'd like to check my order status please", 2.0) is None


# -- the session: the bot notices, records it, and adapts ------------------------------------------------------


def test_a_caller_cut_once_gets_longer_limits_for_the_rest_of_the_call(tmp_path, config):
    from voicebot.telephony.sim import HangUp, Silence, WaitForBot

    from fakes import ScriptedChat

    model = ThreadNotingModel(True)  # every pause sounds finished
    chat = ScriptedChat([{"action": "reply", "text": "I see."}], repeat=True)
    _, session, turns, _ = call_with(tmp_path, config, model, lambda voice: [
        WaitForBot(), voice.say("the chair broke", 0.8), Silence(1.0), voice.say("last night", 0.6), WaitForBot(),
        voice.say("my parcel", 0.8), Silence(1.4), voice.say("is late", 0.6), WaitForBot(), HangUp()], chat=chat)
    caller = [t.text for t in turns if t.role == "caller"]
    assert caller[:2] == ["the chair broke", "last night"]  # the first time, the caller was cut
    assert caller[2:] == ["my parcel is late"]  # then the 1.4 s pause was part of the turn
    assert session.detector.slow
    (pace,) = [e for e in session.events if getattr(e, "kind", None) == "caller_pace"]
    assert pace.data["pace"] == "slow" and pace.data["length_scale"] == config.turns.slow_length_scale


def test_a_caller_going_on_before_the_bot_answered_is_heard_as_one_turn(tmp_path, config):
    """Cut after "the chair broke" while the model is still writing (nothing played yet), the caller goes on: the
    reply to the first half is dropped and the bot answers the whole sentence, once (voicebot/session/resume.py)."""
    from voicebot.telephony.sim import HangUp, Silence, WaitForBot

    from fakes import ScriptedChat

    # at line pace (time runs on while the bot thinks), and a model slower than the caller's pause
    chat = ScriptedChat([{"action": "reply", "text": "I see, I am sorry about that."}], repeat=True, delay_s=0.1)
    _, session, turns, _ = call_with(tmp_path, config, ThreadNotingModel(True), lambda voice: [
        WaitForBot(), voice.say("the chair broke", 0.8), Silence(1.0), voice.say("last night", 0.6), WaitForBot(),
        HangUp()], chat=chat, speed=1.0)
    caller = [t.text for t in turns if t.role == "caller"]
    bot = [t.text for t in turns if t.role == "bot"]
    assert caller == ["the chair broke", "the chair broke last night"]  # the cut half is on record; the turn: all
    assert bot[1:] == ["I see, I am sorry about that."]  # one answer, to the whole sentence
    assert chat.calls[-1].messages[-1].content == "Caller: the chair broke last night"  # the model read the whole
    (resumed,) = [e for e in session.events if getattr(e, "kind", None) == "turn_resumed"]
    assert resumed.data["went_on_at_s"] > resumed.data["cut_at_s"]


def test_a_caller_going_on_after_the_bot_answered_is_a_new_turn(tmp_path, config):
    """The bot answered the cut half before the caller went on: nothing is joined (that is a barge-in or a new
    turn), as in the test above this one's neighbour."""
    from voicebot.telephony.sim import HangUp, Silence, WaitForBot

    from fakes import ScriptedChat

    chat = ScriptedChat([{"action": "reply", "text": "I see."}], repeat=True)
    _, session, turns, _ = call_with(tmp_path, config, ThreadNotingModel(True), lambda voice: [
        WaitForBot(), voice.say("the chair broke", 0.8), Silence(1.0), voice.say("last night", 0.6), WaitForBot(),
        HangUp()], chat=chat)
    assert [t.text for t in turns if t.role == "caller"] == ["the chair broke", "last night"]
    assert not [e for e in session.events if getattr(e, "kind", None) == "turn_resumed"]


def test_a_prompt_answer_to_a_short_question_is_no_sign_of_a_slow_caller(tmp_path, config):
    """The bot asks "Shall I book it?" (under a second) and the caller says "yes please" at once, within 2.5 s of
    the end of their last turn: an answer to the question, not a cut turn going on. It made every caller "slow"
    (longer limits, slower speech) after the first short question."""
    from voicebot.telephony.sim import HangUp, Silence, WaitForBot

    from fakes import ScriptedChat

    chat = ScriptedChat([{"action": "reply", "text": "Shall I book it?"}], repeat=True)
    _, session, turns, _ = call_with(tmp_path, config, ThreadNotingModel(True), lambda voice: [
        WaitForBot(), voice.say("I need a repair visit", 1.0), WaitForBot(), Silence(0.3),
        voice.say("yes please", 0.6), WaitForBot(), HangUp()], chat=chat, speed=1.0)
    assert [t.text for t in turns if t.role == "caller"] == ["I need a repair visit", "yes please"]
    assert not [e for e in session.events if getattr(e, "kind", None) in ("caller_pace", "turn_resumed")]


def test_a_caller_going_on_over_the_first_words_of_the_reply_is_heard_as_one_turn(tmp_path, config):
    """Cut after "the chair broke", the bot quick to answer: its reply starts inside the caller's 1.2 s pause, and
    the caller goes on over its first words. That is an interruption (the reply stops), and what is answered is the
    whole sentence, not "and one leg is broken" on its own."""
    from voicebot.telephony.sim import HangUp, Silence, WaitForBot

    from fakes import ScriptedChat

    chat = ScriptedChat([{"action": "reply", "text": "I see. Let me look at what we can do about that for you, "
                                                      "one moment while I check the details."}], repeat=True)
    line, session, turns, _ = call_with(tmp_path, config, ThreadNotingModel(True), lambda voice: [
        WaitForBot(), voice.say("the chair broke", 0.8), Silence(1.2), voice.say("and one leg is broken", 1.4),
        WaitForBot(), HangUp()], chat=chat, speed=1.0)
    caller = [t.text for t in turns if t.role == "caller"]
    assert caller == ["the chair broke", "the chair broke and one leg is broken"], caller
    assert chat.calls[-1].messages[-1].content == "Caller: the chair broke and one leg is broken"
    (resumed,) = [e for e in session.events if getattr(e, "kind", None) == "turn_resumed"]
    assert resumed.data["over_the_bot"] is True
    assert [e for e in session.events if isinstance(e, BargedIn)]  # the first reply was stopped


def test_a_caller_answering_the_bot_after_hearing_it_is_not_joined_to_the_turn_before(tmp_path, config):
    """The caller let the bot say more than ``CONTINUES_WITHIN_PLAYED_S`` before speaking over it: that is an
    interruption of the reply (or an answer to it), a turn of its own."""
    from voicebot.telephony.sim import HangUp, Silence, WaitForBot

    from fakes import ScriptedChat

    chat = ScriptedChat([{"action": "reply", "text": "I see. Let me look at what we can do about that for you, "
                                                      "one moment while I check the details."}], repeat=True)
    _, session, turns, _ = call_with(tmp_path, config, ThreadNotingModel(True), lambda voice: [
        WaitForBot(), voice.say("the chair broke", 0.8), Silence(2.4), voice.say("no wait it is the table", 1.4),
        WaitForBot(), HangUp()], chat=chat, speed=1.0)
    assert [t.text for t in turns if t.role == "caller"] == ["the chair broke", "no wait it is the table"]
    assert not [e for e in session.events if getattr(e, "kind", None) == "turn_resumed"]


def test_the_simulated_line_waits_for_a_slow_verdict_faster_than_line_pace(tmp_path, config):
    """At 10x line pace a verdict that takes 0.4 s of wall time is 4 s of call audio, longer than any limit: the
    line holds its clock while the session waits for it, as a real line's 0.4 s would be."""
    from voicebot.telephony.sim import HangUp, WaitForBot

    class SlowModel(ThreadNotingModel):
        def score(self, pcm, sample_rate):
            time.sleep(0.4)
            return super().score(pcm, sample_rate)

    line, _, turns, _ = call_with(tmp_path, config, SlowModel(True), lambda voice: [
        WaitForBot(), voice.say("sales", 0.6), WaitForBot(), HangUp()], speed=float("inf"))
    caller = next(t for t in turns if t.role == "caller")
    waited = line.bot_utterances()[1].start_s - caller.timings.end_of_speech
    assert waited < config.turns.incomplete_silence_ms / 1000 - 0.2  # the verdict ended it, not the limit


def test_real_piper_speaks_slower_for_a_slow_caller(config, model_store):
    """The voice already loaded, at ``turns.slow_length_scale``: the same sentence lasts that much longer."""
    from voicebot.speech.tts import PiperSynthesizer

    voice = PiperSynthesizer(model_store.locate(config.tts.voice), voice=config.tts.voice, noise_scale=0.0,
                             noise_w_scale=0.0)
    slower = voice.with_length_scale(config.turns.slow_length_scale)
    text = "Your parcel will arrive tomorrow before six."
    normal = len(b"".join(c.pcm for c in voice.stream(text, 8000)))
    slow = len(b"".join(c.pcm for c in slower.stream(text, 8000)))
    assert slow / normal == pytest.approx(config.turns.slow_length_scale, rel=0.1)
    assert voice.length_scale == 1.0 and slower._voice is voice._voice  # the shared voice is not changed or reloaded


def test_real_models_a_slow_caller_is_not_cut_and_is_noticed(tmp_path, config, model_store, transcriber,
                                                             turn_model):  # noqa: F811
    """Whisper, webrtcvad (+ Silero) and Smart Turn on the simulated line: a caller at 2/3 of Piper's pace pauses
    after a complete clause ("I bought a chair in March," 0.97 complete) mid-call. The words so far were said slowly
    (``pace.slow_turn``), so the pause waits and the sentence is one turn (before, it was cut there, and only the
    caller going on told the bot); the bot notices the pace and the pause, and the next such pause, 1.4 s long, is
    part of the turn too."""
    from fakes import ScriptedChat

    from voicebot.components import make_voice_activity
    from voicebot.speech.tts import PiperSynthesizer
    from voicebot.speech.vad import WebRtcVoiceActivity, speech_regions
    from voicebot.telephony.sim import HangUp, Say, Silence, WaitForBot

    rate = 16000
    slow = PiperSynthesizer(model_store.locate(config.tts.voice), voice=config.tts.voice, length_scale=1.5,
                            noise_scale=0.0, noise_w_scale=0.0)

    def halves(text: str) -> tuple[Say, Say]:
        pcm = b"".join(c.pcm for c in slow.stream(text, rate))
        first = speech_regions(WebRtcVoiceActivity(2), pcm, rate, 20, hangover_ms=100)[0]
        cut = first.end_ms * rate // 1000 * 2
        return Say(pcm[:cut], rate, "first half"), Say(pcm[cut:], rate, "second half")

    hello = Say(b"".join(c.pcm for c in slow.stream("Hello.", rate)), rate, "hello")
    a1, a2 = halves("I bought a chair in March, and one of the legs is broken.")
    b1, b2 = halves("I called yesterday about my invoice, and nobody called me back.")
    chat = ScriptedChat([{"action": "reply", "text": "I see."}], repeat=True)
    # "Hello." first: the first turn is the open floor (tests/test_open_floor.py), where this pause is no cut
    _, session, turns, _ = call_with(tmp_path, config, turn_model, lambda voice: [
        WaitForBot(), hello, WaitForBot(), a1, Silence(1.0), a2, WaitForBot(), b1, Silence(1.4), b2, WaitForBot(),
        HangUp()],
        transcriber=transcriber, vad=make_voice_activity(config), chat=chat, speed=float("inf"))
    caller = [t.text for t in turns if t.role == "caller"]
    assert session.detector.slow, caller
    assert any(e.kind == "caller_pace" for e in session.events if hasattr(e, "data"))
    assert {"invoice", "nobody"} <= set(words(caller[-1])), caller  # the last sentence is one turn
    assert {"march", "broken"} <= set(words(caller[-2])), caller  # and the first, said before the bot knew
