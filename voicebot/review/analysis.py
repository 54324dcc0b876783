"""After-call analysis: what a supervisor wants to know about a call without reading all of it.

Two parts, stored in the call store's ``call_analysis`` table:

- **Deterministic**, always, in milliseconds: the caller's sentiment turn by turn (VADER on caller turns) and
  flags from the call's events, turn timings and outcome: ``upset_caller``, ``grounding_guard``,
  ``transfer_failed``, ``long_silence``.
- **From the record** (``voicebot.review.qa``), always: the QA rubric (understanding, resolution, grounding,
  responsiveness, handoff: 1-5 each, computed from the call's signals with a reason naming them) and the summary
  (``summary``: only what the events show).
- **From the local model**, when a ChatModel is given: a topic from ``TOPICS`` and a short generated summary
  (``generated_summary``, shown labelled as generated), in one call whose JSON schema fixes the shape
  (constrained decoding; the topic first, so a summary cut off by the token limit still leaves a topic and the
  summary's full sentences). The transcript the model reads is redacted first, so no card number or PIN can end
  up in a stored summary; a generated summary that names a number or month the record does not hold is not kept
  (``error`` says which). The model never scores the call.

The deterministic part is saved before the model starts, so flags show in the app at once. A model failure
is stored in ``error`` and never loses the deterministic part.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from statistics import fmean
from typing import Any

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from voicebot.config import ReviewConfig
from voicebot.events import Escalated, EventKind, TransferEnded, TransferReason
from voicebot.llm.base import ChatMessage, ChatModel, LlmError, complete
from voicebot.outcomes import from_store
from voicebot.review.qa import RUBRIC  # noqa: F401 - re-exported: the rubric's lines, for pages and the demo
from voicebot.review.qa import foreign_facts, record_summary, record_text, rubric, signals
from voicebot.review.redact import answers_secret_question, redact_data, redact_text
from voicebot.store import Call, CallStore, Event, Outcome, Turn

TOPICS: dict[str, str] = {
    "order_status": "Order status",
    "delivery_problem": "Delivery problem",
    "returns_refunds": "Returns and refunds",
    "billing": "Billing and payment",
    "repair_visit": "Repair visit",
    "buying": "Buying and quotes",
    "callback": "Callback request",
    "account": "Account and verification",
    "complaint": "Complaint",
    "other": "Other",
}
FLAGS: dict[str, str] = {
    "upset_caller": "Upset caller",
    "grounding_guard": "Grounding guard fired",
    "transfer_failed": "Transfer failed",
    "long_silence": "Long silence",
}
_FOR_MODEL = {EventKind.ESCALATION, EventKind.TRANSFER_RESULT, EventKind.GUARD_UNGROUNDED, EventKind.TOOL_CALL}
_PROMPT_CHARS = 6000  # about 1,500 tokens of transcript: fits the 4k context with the reply


@dataclass(frozen=True)
class SentimentPoint:
    """The caller's VADER compound score (-1..1) for one turn; ``at`` is seconds of call audio."""

    turn: int
    at: float | None
    score: float


@dataclass(frozen=True)
class RubricScore:
    score: int  # 1 (poor) .. 5 (excellent)
    reason: str


@dataclass(frozen=True)
class CallAnalysis:
    call_id: str
    sentiment: tuple[SentimentPoint, ...] = ()
    flags: Mapping[str, str] = field(default_factory=dict)  # flag -> why, e.g. "7.2 s without a word at 0:42"
    summary: str | None = None
    topic: str | None = None
    qa: Mapping[str, RubricScore] = field(default_factory=dict)
    model: str | None = None
    error: str | None = None
    analyzed_at: datetime | None = None
    generated_summary: str | None = None  # the model's words, kept only when grounded; shown as generated

    @property
    def sentiment_mean(self) -> float | None:
        return round(fmean(p.score for p in self.sentiment), 3) if self.sentiment else None

    @property
    def sentiment_min(self) -> float | None:
        return min(p.score for p in self.sentiment) if self.sentiment else None

    @property
    def qa_score(self) -> float | None:
        """The rubric's mean, 1..5 (None before any analysis)."""
        return round(fmean(r.score for r in self.qa.values()), 2) if self.qa else None

    def deterministic_columns(self) -> dict[str, Any]:
        return {"sentiment_mean": self.sentiment_mean, "sentiment_min": self.sentiment_min,
                "sentiment_trajectory": [[p.turn, p.at, p.score] for p in self.sentiment], "flags": dict(self.flags),
                "summary": self.summary, "qa_score": self.qa_score,
                "qa": {k: {"score": r.score, "reason": r.reason} for k, r in self.qa.items()}}

    def model_columns(self) -> dict[str, Any]:
        return {"model": self.model, "topic": self.topic, "generated_summary": self.generated_summary,
                "error": self.error}

    @classmethod
    def from_row(cls, call_id: str, row: Mapping[str, Any]) -> CallAnalysis:
        """From ``CallStore.get_analysis``."""
        return cls(
            call_id,
            tuple(SentimentPoint(int(t), at, float(s)) for t, at, s in row.get("sentiment_trajectory") or []),
            dict(row.get("flags") or {}), row.get("summary"), row.get("topic"),
            {k: RubricScore(int(v["score"]), str(v["reason"])) for k, v in (row.get("qa") or {}).items()},
            row.get("model"), row.get("error"),
            datetime.fromisoformat(row["analyzed_at"]) if row.get("analyzed_at") else None,
            row.get("generated_summary"))


def load_analysis(store: CallStore, call_id: str) -> CallAnalysis | None:
    row = store.get_analysis(call_id)
    return CallAnalysis.from_row(call_id, row) if row else None


# -- deterministic part -------------------------------------------------------------------------------------------

@functools.cache
def _vader() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()  # reads its lexicon once; stateless afterwards


def sentiment_trajectory(turns: Sequence[Turn]) -> tuple[SentimentPoint, ...]:
    """VADER on every caller turn with words (the stored per-turn score is not trusted: it may be absent)."""
    return tuple(SentimentPoint(t.idx if t.idx is not None else i, t.started_at,
                                round(_vader().polarity_scores(t.text)["compound"], 3))
                 for i, t in enumerate(turns) if t.role == "caller" and any(ch.isalpha() for ch in t.text)
                 and t.text != "(unintelligible)")


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def silences(turns: Sequence[Turn]) -> list[tuple[float, float]]:
    """(start, length) of every gap in the conversation that the call's timings show: between one turn's end and
    the next turn's start, and from the caller's end of speech to the bot's first audio."""
    gaps: list[tuple[float, float]] = []
    for turn in turns:
        t = turn.timings
        if t.end_of_speech is not None and t.first_audio_out is not None:
            gaps.append((t.end_of_speech, t.first_audio_out - t.end_of_speech))
    timed = [t for t in turns if t.started_at is not None and t.ended_at is not None]
    for before, after in zip(timed, timed[1:]):
        gaps.append((before.ended_at, after.started_at - before.ended_at))
    return sorted(gaps)


def call_flags(call: Call, turns: Sequence[Turn], events: Sequence[Event], sentiment: Sequence[SentimentPoint],
               config: ReviewConfig) -> dict[str, str]:
    """The flags a supervisor filters on, each with a short reason."""
    flags: dict[str, str] = {}
    low = min(sentiment, key=lambda p: p.score, default=None)
    typed = [e.parsed for e in events]
    frustrated = [e for e in typed if isinstance(e, Escalated) and e.reason == TransferReason.FRUSTRATION]
    if frustrated:
        flags["upset_caller"] = f"escalated for frustration: {frustrated[0].detail or ''}".strip(": ")
    elif low is not None and low.score <= config.upset_sentiment:
        flags["upset_caller"] = f"sentiment {low.score:+.2f} at {_clock(low.at)}"
    guarded = [e for e in typed if e.kind == EventKind.GUARD_UNGROUNDED]
    guarded_turns = [t for t in turns if t.guard_event and "ground" in t.guard_event]
    if guarded or guarded_turns:
        n = len(guarded) or len(guarded_turns)
        flags["grounding_guard"] = f"{n} reply{'' if n == 1 else 's'} held back: facts not in the tool results"
    failed = [e for e in typed if isinstance(e, TransferEnded) and e.ok is False]
    if call.outcome == Outcome.TRANSFER_FAILED or failed:
        status = " ".join(str(v) for v in ((failed[0].status, failed[0].reason) if failed else ()) if v)
        flags["transfer_failed"] = f"transfer not completed{f' ({status})' if status else ''}"
    gaps = [g for g in silences(turns) if g[1] >= config.long_silence_s]
    no_input = [e for e in typed if e.kind == EventKind.NO_INPUT]
    if gaps:
        start, length = max(gaps, key=lambda g: g[1])
        flags["long_silence"] = f"{length:.1f} s of silence at {_clock(start)}"
    elif no_input:
        flags["long_silence"] = f"caller silent after a prompt {len(no_input)} time{'s' if len(no_input) > 1 else ''}"
    return flags


# -- model part ---------------------------------------------------------------------------------------------------

def analysis_schema() -> dict[str, Any]:
    """The reply's shape. No ``maxLength``: llama.cpp's grammar for bounded strings made generation four times
    slower; ``max_tokens`` and the prompt keep the text short, and the parser trims it."""
    return {"type": "object", "additionalProperties": False, "required": ["topic", "summary"],
            "properties": {"topic": {"type": "string", "enum": list(TOPICS)}, "summary": {"type": "string"}}}


SUMMARY_TOKENS = 200  # the model's answer; a summary that runs past it is cut at its last full sentence


_SUMMARY_KEY = re.compile(r'"summary"\s*:\s*"')  # the embedded model's staged keys, or Ollama's own JSON


def salvage(text: str) -> dict[str, Any] | None:
    """A reply cut off by the token limit inside its summary (the topic comes first, so it is whole): the object
    with the summary up to its last full sentence; None when nothing usable is there."""
    key = _SUMMARY_KEY.search(text)
    if key is None:
        return None
    raw = text[key.end():]
    end = max(raw.rfind(". "), raw.rfind("! "), raw.rfind("? "))
    try:
        topic = json.loads(text[:key.start()].rstrip().rstrip(",") + "}").get("topic")
        summary = json.loads('"' + raw[:end + 1] + '"')  # its escapes decoded as JSON's
    except (ValueError, AttributeError):
        return None
    if not isinstance(topic, str) or end < 0:
        return None
    return {"topic": topic, "summary": summary}


def transcript_for_model(call: Call, turns: Sequence[Turn], events: Sequence[Event]) -> str:
    """The call as plain lines, redacted as a supervisor would see it, shortened in the middle if long."""
    lines = []
    answers = answers_secret_question([(t.role, t.text) for t in turns])
    for turn, answer in zip(turns, answers):
        lines.append(f"{turn.role.capitalize()}: {redact_text(turn.text, secret_answer=answer)}")
        for tool in turn.tool_calls:
            lines.append(f"  [tool {tool.get('name')} {json.dumps(redact_data(tool.get('arguments', {})))} -> "
                         f"{json.dumps(redact_data(tool.get('result')), default=str)[:300]}]")
    for event in events:
        if event.kind in _FOR_MODEL:
            lines.append(f"[{event.kind} at {_clock(event.at)}: {json.dumps(redact_data(event.data), default=str)[:300]}]")
    lines.append(f"Outcome: {call.outcome.value}{f' ({call.outcome_reason})' if call.outcome_reason else ''}")
    text = "\n".join(lines)
    if len(text) > _PROMPT_CHARS:
        half = _PROMPT_CHARS // 2
        text = text[:half] + "\n[... middle of the call left out ...]\n" + text[-half:]
    return text


def _messages(call: Call, turns: Sequence[Turn], events: Sequence[Event]) -> list[ChatMessage]:
    topics = ", ".join(TOPICS)
    system = ("You review recorded phone calls between a company's automated voice assistant (Bot) and a caller. "
              "Answer with JSON only.")
    user = (f"Call transcript:\n{transcript_for_model(call, turns, events)}\n\n"
            f"Write:\n- summary: one or two short sentences: what the caller wanted and what happened. Use only "
            f"facts in the transcript; name no number, amount or date it does not contain.\n"
            f"- topic: the best fit of: {topics}.")
    return [ChatMessage("system", system), ChatMessage("user", user)]


def _one_line(value: Any, limit: int) -> str:
    return " ".join(str(value or "").split())[:limit]


def model_analysis(chat: ChatModel, call: Call, turns: Sequence[Turn], events: Sequence[Event]
                   ) -> tuple[str, str]:
    """(summary, topic) from the model; LlmError when it fails or answers out of shape."""
    text = complete(chat, _messages(call, turns, events), json_schema=analysis_schema(), max_tokens=SUMMARY_TOKENS,
                    temperature=0)
    try:
        answer = json.loads(text)
    except ValueError as exc:
        answer = salvage(text)
        if answer is None:
            raise LlmError(f"{chat.name} returned invalid JSON: {text[:200]!r}") from exc
    if not isinstance(answer, dict):
        raise LlmError(f"{chat.name}: expected a JSON object, got {type(answer).__name__}")
    topic = answer.get("topic") if answer.get("topic") in TOPICS else "other"
    return _one_line(answer.get("summary"), 600), topic


# -- the whole analysis -------------------------------------------------------------------------------------------

def analyze_call(store: CallStore, call_id: str, chat: ChatModel | None = None,
                 config: ReviewConfig | None = None) -> CallAnalysis:
    """Analyse one call and store the result (the deterministic part first, then the model's).

    Raises StoreError for an unknown call. Exceptions that are not LlmError (e.g. the worker's ``Preempted``)
    pass through after the deterministic part is saved.
    """
    config = config or ReviewConfig()
    call = store.get_call(call_id)
    turns = store.turns(call_id)
    events = store.events(call_id)
    sentiment = sentiment_trajectory(turns)
    found = signals(call, turns, events, from_store(store, [call_id])[call_id])
    qa = {name: RubricScore(score, reason) for name, (score, reason) in rubric(found).items()}
    result = CallAnalysis(call_id, sentiment, call_flags(call, turns, events, sentiment, config),
                          record_summary(call, turns, events, found), qa=qa)
    store.save_analysis(call_id, **result.deterministic_columns())
    if chat is not None:
        try:
            generated, topic = model_analysis(chat, call, turns, events)
        except LlmError as exc:  # an earlier model analysis, if any, stays; the error shows next to it
            store.save_analysis(call_id, model=chat.name, error=str(exc)[:500])
        else:
            foreign = foreign_facts(generated, record_text(call, turns, events))
            error = (f"generated summary not kept: it names {', '.join(foreign)}, which the record does not hold"
                     if foreign else None)
            result = CallAnalysis(call_id, sentiment, result.flags, result.summary, topic, qa, chat.name, error,
                                  generated_summary=None if foreign else generated)
            store.save_analysis(call_id, **result.model_columns())
    return load_analysis(store, call_id) or result
