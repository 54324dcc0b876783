"""``voicebot bench turns``: how often the end of a turn comes too early, and how fast it comes when it is right.

Why a benchmark of its own: the turn model's job is to tell a pause from an end, and the two ways it can fail
cost differently. Cutting a slow caller mid-sentence loses their words (issue 14: the goal is no false cut);
waiting too long after a finished turn costs every caller time. This runs real speech (Piper at a slow pace,
length_scale 1.4-1.6) through webrtcvad, the ``TurnDetector``, the real turn model and Whisper's partial
transcripts, in audio time, with no language model, so 30 utterances take a minute or two. Each verdict (and
partial transcript) is answered as many 20 ms frames after its request as the model really took, as on a call.

Three sets, each compared with the fixed silence (``vad.end_of_turn_silence_ms``, the behaviour without a model):

* slow speech: 20 sentences, each said in one go, split at its inner pause for 0.9-1.4 s (a slow or hesitant
  caller), as the caller's first turn (the open floor: ``TurnDetector.set_open_floor``) and mid-call, after a
  yes-or-no question and after a question for a detail (``set_answer_expected``: there a scene is the answer);
* dictated numbers: 10 numbers in groups of digits, each said on its own, 1 s apart, after the bot asked for the
  number (``set_dictation``), and the same without the hint;
* finished turns: how long after the end of speech the turn ends (the model: ~0.2 s + its own time), for answers
  mid-call (after a yes-or-no question, the slower case) and for first turns, each said whole at a normal and a
  slow pace (what the open floor's patience, and a turn heard as said slowly, ``speech.pace.slow_turn``, cost),
  short answers to a yes-or-no question, with the words read as a whole answer (``preamble.closed_answer``)
  and without, and answers to a question for a detail; mid-call with the model's second look at an unfinished
  verdict (``turns.recheck_silence_ms``) and without it ("one look").
"""

from __future__ import annotations

import math
from collections.abc import Callable

from voicebot.audio import AudioFrame, gained, split_frames
from voicebot.bench import Row
from voicebot.bench_barge import bench_barge_in
from voicebot.components import make_synthesizer, make_transcriber, make_turn_model, make_voice_activity
from voicebot.config import Config, TurnsConfig
from voicebot.models import ModelError, ModelStore
from voicebot.speech.dictation import YES_NO, partial_kind
from voicebot.speech.pace import slow_turn
from voicebot.speech.stt import Transcriber
from voicebot.speech.turn_model import EndOfTurnModel
from voicebot.speech.turns import LikelyEnd, TurnCheck, TurnDetector, Utterance
from voicebot.speech.vad import speech_regions

SLOW_SENTENCES = [
    "I would like to check the status of my order number, and the delivery date.",
    "My order, the one from last week, has not arrived yet.",
    "I bought a chair in March, and one of the legs is broken.",
    "Could you tell me, if it is not too much trouble, when you open on Saturday?",
    "I need a repair visit for the printer, preferably on Monday morning.",
    "We would like a quote for ten desks, and maybe some chairs as well.",
    "The parcel was left at the door, but the box was empty.",
    "I called yesterday about my invoice, and nobody called me back.",
    "My name is Alice Martin, and I live on Elm Street.",
    "I want to change the address for the delivery, because I am moving.",
    "Hello, this is Robert from the dental clinic, we ordered printer paper last month.",
    "The technician came on Tuesday, but the printer still does not work.",
    "So, about the invoice you sent me, there is a charge I do not understand.",
    "Can you check whether my refund, the one for the broken lamp, has gone through?",
    "Last week I ordered two office chairs, and only one of them arrived.",
    "I was hoping to speak with somebody, about a bulk order for our school.",
    "We moved to a new office, so the delivery address needs to change.",
    "Is it possible to book a visit, maybe some time next Thursday afternoon?",
    "My husband placed an order on Friday, and he asked me to call about it.",
    "There is a problem with my account, I cannot log in on the website.",
]
NUMBERS = [
    ["three six nine", "five two"], ["one zero four", "five two"], ["seven seven", "one three", "eight"],
    ["two four six", "eight one"], ["nine nine", "zero two", "four"], ["five five five", "one two"],
    ["four one", "six six", "nine"], ["eight zero two", "three"], ["six one two", "four four"],
    ["one one", "two two", "three three"],
]
FINISHED = ["Yes.", "No, thank you.", "Where is my order?", "I would like to speak to someone in sales.",
            "That's right.", "Can I book a repair visit?", "My PIN is one two three four.", "Thanks, goodbye."]
FIRST_TURNS = ["Where is my order?", "I would like to speak to someone in sales.", "Can I book a repair visit?",
               "My chair arrived broken.", "I want to cancel my order.", "Operator.", "I'm calling about my invoice.",
               "Do you deliver on Saturdays?", "Billing.", "I have a question."]
"""Said whole after "How can I help you?" (the open floor: ``TurnDetector.set_open_floor``)."""
SHORT_ANSWERS = ["Yes.", "Yes, that's right.", "Yeah, sure.", "No.", "Okay.", "Yes, go ahead.", "Yes, it is.",
                 "No, that's all.", "That's correct.", "No, thank you."]
"""Said whole after "Shall I book it?": the turn model hears many as unfinished ("Yes, it is." 0.02), the words
(``preamble.closed_answer``) do not."""
DETAIL_ANSWERS = ["Next Tuesday would be good.", "The one I ordered in March.", "I'm not sure, maybe last week.",
                  "It was the blue one.", "Please send it to my office instead.", "My name is Karen Lopez.",
                  "I think that was in October.", "Okay, can someone call me back about it tomorrow morning?"]
"""Said whole after "Which day suits you?" and the like: the turn model's first look (200 ms of silence) hears some
as unfinished and its second (``turns.recheck_silence_ms``) as finished ("Next Tuesday would be good." 0.27, then
0.75)."""


def _pause(seconds: float, rate: int) -> bytes:
    return b"\0\0" * round(seconds * rate)


def run_detector(detector: TurnDetector, model: EndOfTurnModel | None, pcm: bytes, rate: int,
                 costs: list[float] | None = None, transcriber: Transcriber | None = None,
                 ready: list[float] | None = None, question: str = "") -> list[Utterance]:
    """Feed ``pcm`` through the detector; each TurnCheck is answered as many frames later as the model took
    (its time in ms appended to ``costs``). With a ``transcriber``, as in a call: each LikelyEnd starts the
    partial transcript, answered (``resolve_partial``) as many frames later as Whisper took, and a "complete"
    verdict waits for it; ``ready`` gets, per utterance, the delay from its end of speech to its transcript;
    ``question``: what the bot asked, as the listener tells ``partial_kind`` (``dictation.YES_NO``...)."""
    utterances: list[Utterance] = []
    due: list[tuple[int, Callable[[], list]]] = []  # (frame index of the answer, the answer)
    partials: dict[float, float] = {}  # end of speech -> audio time its transcript was ready
    detector.await_partial = transcriber is not None

    def later(index: int, seconds: float, answer: Callable[[], list]) -> None:
        due.append((index + max(1, math.ceil(seconds * 1000 / detector.frame_ms)), answer))

    for index, frame in enumerate(split_frames(pcm, rate, detector.frame_ms)):
        for entry in [d for d in due if d[0] == index]:
            due.remove(entry)
            utterances += [e for e in entry[1]() if isinstance(e, Utterance)]
        for event in detector.feed(AudioFrame(frame.pcm, rate)):
            if isinstance(event, Utterance):
                utterances.append(event)
            elif isinstance(event, TurnCheck) and model is not None:
                score = model.score(event.pcm, event.sample_rate)
                if costs is not None:
                    costs.append(score.seconds * 1000)
                later(index, score.seconds, lambda c=event.id, s=score: detector.resolve_turn_check(
                    c, s.complete, s.probability))
            elif isinstance(event, LikelyEnd) and transcriber is not None:
                transcript = transcriber.transcribe(event.pcm, event.sample_rate)
                partials[event.speech_ended_at_s] = event.at_s + transcript.elapsed_s
                later(index, transcript.elapsed_s, lambda e=event.speech_ended_at_s, t=transcript.text,
                      s=event.speech_s: detector.resolve_partial(e, partial_kind(t, question), slow_turn(t, s)))
    if ready is not None:
        ready += [max(partials.get(u.speech_ended_at_s, u.at_s), u.at_s) - u.speech_ended_at_s for u in utterances]
    return utterances


def bench_turns(config: Config, runs: int = 1, log: Callable[[str], None] = print) -> list[Row]:
    """False cuts over slow speech and dictated numbers, and the delay after finished turns; model vs fixed."""
    from voicebot.speech.tts import PiperSynthesizer

    if not config.turns.model:
        raise ModelError("turns.model is null in this config: there is no turn model to benchmark")
    store = ModelStore.from_config(config)
    model = make_turn_model(config, store)
    assert model is not None
    model.warm()
    make_synthesizer(config, store)  # the voice is there and verified
    stt = make_transcriber(config, store)  # the partial transcripts a call's turns wait for
    rate = 8000  # telephone audio, as the model hears it on a call
    vad = make_voice_activity(config)  # as on a call: webrtcvad, and Silero where vad.second_opinion is set

    def detector(turns: TurnsConfig | None, dictation: bool = False, slow: bool = False,
                 open_floor: bool = False, detail: bool = False) -> TurnDetector:
        d = TurnDetector(vad, config.vad, turns=turns)
        d.set_dictation(dictation)
        d.set_slow(slow)
        d.set_open_floor(open_floor)
        d.set_answer_expected(detail)  # mid-call: after "Shall I book it?" (False) or "May I have your name?"
        return d

    def voice(scale: float) -> PiperSynthesizer:
        return PiperSynthesizer(store.locate(config.tts.voice), voice=config.tts.voice, length_scale=scale,
                                noise_scale=0.0, noise_w_scale=0.0)

    def speech(v: PiperSynthesizer, text: str) -> bytes:
        return b"".join(chunk.pcm for chunk in v.stream(text, rate))

    voices = {scale: voice(scale) for scale in (1.0, 1.4, 1.5, 1.6)}
    cuts: dict[str, list[int]] = {}
    costs: list[float] = []
    slow_variants = (("turn model + partial transcript, first turn", config.turns, model, stt, False, True, False),
                     ("turn model, caller found slow", config.turns, model, stt, True, False, False),
                     ("turn model alone, first turn", config.turns, model, None, False, True, False),
                     ("turn model + partial transcript, mid-call, asked yes or no", config.turns, model, stt, False,
                      False, False),
                     ("turn model + partial transcript, mid-call, asked for a detail", config.turns, model, stt,
                      False, False, True),
                     ("fixed silence", None, None, None, False, False, False))
    number_variants = (("turn model, bot asked for it", config.turns, model, None, True),
                       ("turn model + partial transcript, no hint", config.turns, model, stt, False),
                       ("turn model alone, no hint", config.turns, model, None, False),
                       ("fixed silence", None, None, None, False))
    for _ in range(runs):
        log("slow speech with a pause mid-sentence ...")
        for i, text in enumerate(SLOW_SENTENCES):
            v = voices[(1.4, 1.5, 1.6)[i % 3]]
            pcm = speech(v, text)
            regions = speech_regions(vad, pcm, rate, 20, hangover_ms=100)
            inner = regions[len(regions) // 2 - 1] if len(regions) > 1 else None  # a pause mid-sentence
            cut = inner.end_ms * rate // 1000 * 2 if inner else len(pcm) // 4 * 2
            gap = 0.9 + 0.5 * (i % 3) / 2  # 0.9, 1.15, 1.4 s
            audio = _pause(0.5, rate) + pcm[:cut] + _pause(gap, rate) + pcm[cut:] + _pause(3.0, rate)
            for label, turns, m, t, slow, floor, detail in slow_variants:
                question = YES_NO if not (floor or detail or slow) and t is not None else ""
                cuts.setdefault(f"slow speech, 0.9-1.4 s pause ({label})", []).append(int(len(run_detector(
                    detector(turns, slow=slow, open_floor=floor, detail=detail), m, audio, rate, costs, t,
                    question=question)) > 1))
        log("dictated numbers with 1 s pauses ...")
        for i, groups in enumerate(NUMBERS):
            v = voices[(1.4, 1.5, 1.6)[i % 3]]
            audio = _pause(0.5, rate) + _pause(1.0, rate).join(speech(v, g) for g in groups) + _pause(3.5, rate)
            for label, turns, m, t, hint in number_variants:
                cuts.setdefault(f"dictated numbers, 1 s pauses ({label})", []).append(
                    int(len(run_detector(detector(turns, hint), m, audio, rate, costs, t)) > 1))
    rows = [Row("false cuts", f"{name}: {sum(v)} of {len(v)} cut early", "cuts", (float(sum(v)),))
            for name, v in cuts.items()]

    log("finished turns ...")
    delays: dict[str, list[float]] = {}
    ready: dict[str, list[float]] = {}
    finished = [(text, scale, False, False, "" if scale == 1.0 else f"length_scale {scale}, ")
                for text in FINISHED for scale in (1.0, 1.5)] + [
        (text, scale, True, False, f"first turn, length_scale {scale}, ") for text in FIRST_TURNS
        for scale in (1.0, 1.5)] + [
        (text, scale, False, False, f"short answer to yes or no, length_scale {scale}, ") for text in SHORT_ANSWERS
        for scale in (1.0, 1.5)] + [
        (text, scale, False, True, f"answer to a question for a detail, length_scale {scale}, ")
        for text in DETAIL_ANSWERS for scale in (1.0, 1.5)]
    one_look = config.turns.model_copy(update={"recheck_silence_ms": 0})  # before the second look
    for text, scale, floor, detail, where in finished * runs:
        audio = _pause(0.5, rate) + speech(voices[scale], text) + _pause(3.0, rate)
        for label, turns, m, t, slow, question in (
                ("turn model + partial transcript", config.turns, model, stt, False, YES_NO),
                ("turn model + partial transcript, one look", one_look, model, stt, False, YES_NO),
                ("turn model + partial transcript, words not read as an answer", config.turns, model, stt, False, ""),
                ("turn model alone", config.turns, model, None, False, ""),
                ("turn model, caller found slow", config.turns, model, stt, True, YES_NO),
                ("fixed silence", None, None, None, False, "")):
            if floor and (slow or t is None or not question or turns is one_look):
                continue  # the first turn: as on a call, with the partial transcript and the pace not yet known
            if "not read as an answer" in label and not where.startswith("short"):
                continue
            label = where + label
            for utt in run_detector(detector(turns, slow=slow, open_floor=floor, detail=detail), m, audio, rate,
                                    costs, t, ready.setdefault(label, []) if t else None,
                                    "" if floor or detail else question):
                delays.setdefault(label, []).append(utt.at_s - utt.speech_ended_at_s)
    rows += [Row("end of turn", f"finished turn, end of speech to end of turn ({label})", "s", tuple(v))
             for label, v in delays.items()]
    rows += [Row("end of turn", f"finished turn, end of speech to end of turn and transcript ({label})", "s",
                 tuple(v)) for label, v in ready.items()]
    if costs:
        rows.append(Row("end of turn", "turn model decision (8 kHz, 1 thread)", "ms", tuple(costs)))
    rows += bench_barge_in(config, lambda text, gain_db: gained(speech(voices[1.0], text), gain_db), runs, log)
    return rows
