"""QA and summaries grounded in the record: what the call store holds decides the scores, not a model's opinion.

Every rubric line is computed from signals of the call's turns and events (``Signals``), each with a reason that
names them, so a supervisor can check any score against the transcript:

- **understanding**: caller turns the bot could not place: knowledge questions left unanswered (``none``) or
  asked back (``weak``), rejected transcripts (``stt_rejected``), failed tool calls, and the caller repeating
  themselves. 5 with none; one point off each.
- **resolution**: the outcome from evidence (``voicebot.outcomes``): resolved 5; transferred because the caller
  asked for a person 4; transferred for another reason 3; transfer failed or interrupted 2; abandoned
  unresolved 1.
- **grounding**: replies held back by a guard (facts not in the tool results, instructions leaked) and errors:
  5 with none, 3 with one, 1 with more.
- **responsiveness**: the caller's end of speech to the bot's first audio (median over answered turns): 5 up to
  1.5 s, 4 up to 2.5 s, 3 up to 3.5 s, 2 up to 5 s, else 1; one point off for two or more barge-ins (the bot
  talked on) or for two or more no-input timeouts.
- **handoff**: time to a human: from the first escalation to the transfer's result: 5 within 15 s, 4 within
  30 s, else 3; 2 when the transfer failed; 1 when the caller left after two or more unanswered turns without
  being handed over. 5 when no person was needed.

``record_summary`` states only what the events show (the request as recognised, tools and their results,
knowledge answers, escalations and the outcome), counts in words. ``foreign_facts`` lists the numbers and months
a text names that the record does not hold: a model's summary that names one is not kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median

from voicebot.events import (BargedIn, Escalated, IntentRecognized, KnowledgeAnswered, ToolCallMade, TransferEnded,
                             TransferStarted)
from voicebot.outcomes import ANSWERED_KNOWLEDGE, LABELS, Decision, Step, decide, from_rows, tool_ok
from voicebot.store import Call, Event, Outcome, Turn

RUBRIC: dict[str, str] = {
    "understanding": "caller turns understood: no unanswered questions, rejected transcripts or repeats",
    "resolution": "the caller's goal was met (outcome from the call's evidence)",
    "grounding": "no reply held back by a guard, no errors",
    "responsiveness": "time from the caller's end of speech to the bot's first audio; barge-ins; silences",
    "handoff": "time to a human when one was needed; no caller left unhelped without the offer",
}
_ON_REQUEST = {"operator_request", "dtmf"}
_SECRET_ARG = re.compile(r"pin|birth|dob|card|cvv|password|postcode|zip", re.I)  # never in a summary
_WORDS = "no one two three four five six seven eight nine ten eleven twelve".split()
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]


@dataclass(frozen=True)
class Signals:
    """What the record shows about a call, counted."""

    caller_turns: int = 0
    unanswered: int = 0  # knowledge none
    asked_back: int = 0  # knowledge weak
    rejected: int = 0  # stt_rejected
    failed_tools: int = 0
    repeats: int = 0  # caller turns that repeat an earlier one
    guards: int = 0
    errors: int = 0
    barge_ins: int = 0
    no_input: int = 0
    latencies: tuple[float, ...] = ()
    escalated_at: float | None = None
    escalation_reason: str | None = None
    transfer_at: float | None = None
    transfer_ok: bool | None = None
    decision: Decision = field(default_factory=lambda: Decision(Outcome.ABANDONED, ""))

    @property
    def not_understood(self) -> int:
        return self.unanswered + self.asked_back + self.rejected + self.failed_tools + self.repeats


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9']+", text.lower()) if len(w) > 2}


def _repeats(texts: Sequence[str]) -> int:
    """Caller turns whose words mostly repeat an earlier turn's (three or more words, overlap 0.6 or more)."""
    seen: list[set[str]] = []
    count = 0
    for text in texts:
        words = _words(text)
        if len(words) >= 3 and any(len(words & old) / len(words | old) >= 0.6 for old in seen):
            count += 1
        seen.append(words)
    return count


def signals(call: Call, turns: Sequence[Turn], events: Sequence[Event], steps: Sequence[Step] | None = None
            ) -> Signals:
    """The counts, and the outcome decided from ``steps`` (``outcomes.from_store``: exact order), else from the turns
    and events ordered by seconds of call audio."""
    typed = [(e.at, e.parsed) for e in events]
    kinds = [str(getattr(t, "kind", "")) for _, t in typed]
    knowledge = [t for _, t in typed if isinstance(t, KnowledgeAnswered)]
    escalations = [(at, t) for at, t in typed if isinstance(t, (Escalated, TransferStarted))]
    transfers = [(at, t) for at, t in typed if isinstance(t, TransferEnded)]
    caller = [t.text for t in turns if t.role == "caller"]
    latencies = sorted({(t.timings.end_of_speech, t.timings.first_audio_out - t.timings.end_of_speech)
                        for t in turns if t.timings.end_of_speech is not None and t.timings.first_audio_out is not None
                        and t.timings.first_audio_out >= t.timings.end_of_speech})
    rows_t = [{"idx": t.idx or i, "role": t.role, "text": t.text, "tool_calls": list(t.tool_calls),
               "started_at": t.started_at, "recorded_at": None} for i, t in enumerate(turns)]
    rows_e = [{"id": e.id or i, "kind": e.kind, "data": dict(e.data), "at": e.at, "recorded_at": None}
              for i, e in enumerate(events)]
    return Signals(
        caller_turns=len(caller),
        unanswered=sum(1 for k in knowledge if k.answer == "none"),
        asked_back=sum(1 for k in knowledge if k.answer == "weak"),
        rejected=kinds.count("stt_rejected"),
        failed_tools=sum(1 for _, t in typed if isinstance(t, ToolCallMade) and not tool_ok(t.result)),
        repeats=_repeats(caller),
        guards=sum(1 for k in kinds if k.startswith("guard_")) or sum(1 for t in turns if t.guard_event),
        errors=kinds.count("error"),
        barge_ins=max(sum(1 for _, t in typed if isinstance(t, BargedIn)), sum(1 for t in turns if t.barged_in)),
        no_input=kinds.count("no_input"),
        latencies=tuple(lat for _, lat in latencies),
        escalated_at=escalations[0][0] if escalations else None,
        escalation_reason=escalations[0][1].reason if escalations else None,
        transfer_at=transfers[-1][0] if transfers else None,
        transfer_ok=bool(transfers[-1][1].ok) if transfers else None,
        decision=decide(steps if steps is not None else from_rows(rows_t, rows_e), call.outcome),
    )


def _n(count: int, noun: str) -> str:
    word = _WORDS[count] if count < len(_WORDS) else "many"
    if count == 1:
        return f"{word} {noun}"
    return f"{word} {noun[:-1]}ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else f"{word} {noun}s"


def _clamp(score: float) -> int:
    return int(min(5, max(1, round(score))))


def rubric(s: Signals) -> dict[str, tuple[int, str]]:
    """Each rubric line's (score, reason) from the signals."""
    out: dict[str, tuple[int, str]] = {}
    parts = [text for count, text in ((s.unanswered, _n(s.unanswered, "question") + " left unanswered"),
                                      (s.asked_back, _n(s.asked_back, "question") + " only asked back"),
                                      (s.rejected, _n(s.rejected, "transcript") + " rejected as not speech"),
                                      (s.failed_tools, _n(s.failed_tools, "tool call") + " failed"),
                                      (s.repeats, f"the caller repeated themselves {_n(s.repeats, 'time')}"))
             if count]
    out["understanding"] = (_clamp(5 - s.not_understood), "; ".join(parts) if parts else
                            "every caller turn was placed" if s.caller_turns else "the caller said nothing")
    outcome, reason = s.decision.outcome, s.decision.reason
    score = {Outcome.RESOLVED: 5, Outcome.TRANSFER_FAILED: 2, Outcome.INTERRUPTED: 2, Outcome.ERROR: 1,
             Outcome.ABANDONED: 1, Outcome.IN_PROGRESS: 3}.get(outcome, 3)
    if outcome == Outcome.TRANSFERRED:
        score = 4 if s.escalation_reason in _ON_REQUEST else 3
    out["resolution"] = (score, f"{LABELS[outcome]}: {reason}")
    held = s.guards + s.errors
    why = [text for count, text in ((s.guards, _n(s.guards, "reply") + " held back by a guard"),
                                    (s.errors, _n(s.errors, "error"))) if count]
    out["grounding"] = (5 if held == 0 else 3 if held == 1 else 1, "; ".join(why) or "no reply held back, no errors")
    if s.latencies:
        mid, worst = median(s.latencies), max(s.latencies)
        score = 5 if mid <= 1.5 else 4 if mid <= 2.5 else 3 if mid <= 3.5 else 2 if mid <= 5 else 1
        why = [f"median reply after {mid:.1f} s (slowest {worst:.1f} s)"]
    else:
        score, why = 3, ["no timed reply"]
    if s.barge_ins >= 2:
        score, why = score - 1, [*why, f"the caller talked over the bot {_n(s.barge_ins, 'time')}"]
    if s.no_input >= 2:
        score, why = score - 1, [*why, f"{_n(s.no_input, 'silence')} after a prompt"]
    out["responsiveness"] = (_clamp(score), "; ".join(why))
    if s.transfer_ok is False:
        out["handoff"] = (2, "the transfer to a person failed")
    elif s.escalated_at is not None and s.transfer_at is not None:
        wait = max(0.0, s.transfer_at - s.escalated_at)
        out["handoff"] = (5 if wait <= 15 else 4 if wait <= 30 else 3,
                          f"a person reached {wait:.0f} s after the escalation ({s.escalation_reason or 'unknown'})")
    elif outcome == Outcome.ABANDONED and s.unanswered + s.asked_back + s.rejected >= 2:
        out["handoff"] = (1, "the caller left after unanswered turns without being handed to a person")
    elif s.escalated_at is not None:
        out["handoff"] = (2, "an escalation with no transfer result")
    else:
        out["handoff"] = (5, "no person was needed")
    return out


def record_summary(call: Call, turns: Sequence[Turn], events: Sequence[Event], s: Signals) -> str:
    """What the events show, in a few plain sentences; every number in it is one the record holds."""
    typed = [e.parsed for e in events]
    sentences = []
    intents = list(dict.fromkeys(t.intent for t in typed if isinstance(t, IntentRecognized) and t.intent))
    if intents:
        sentences.append("Recognised request: " + ", ".join(i.replace("_", " ") for i in intents) + ".")
    calls = [(t.tool, t.args, t.result) for t in typed if isinstance(t, ToolCallMade) and t.tool]
    if not calls:  # older calls keep their tool calls on the bot's turns only
        calls = [(c.get("name"), c.get("arguments"), c.get("result")) for turn in turns for c in turn.tool_calls
                 if c.get("name")]
    tools = []
    for name, arguments, result in calls:
        args = ", ".join(f"{k} {v}" for k, v in (arguments or {}).items()
                         if isinstance(v, (str, int)) and v != "" and not _SECRET_ARG.search(str(k)))
        tools.append(f"{name.replace('_', ' ')}{f' ({args})' if args else ''} "
                     f"{'succeeded' if tool_ok(result) else 'failed'}")
    if tools:
        sentences.append("CRM: " + "; ".join(tools) + ".")
    answered = sum(1 for t in typed if isinstance(t, KnowledgeAnswered) and t.answer in ANSWERED_KNOWLEDGE)
    if answered or s.unanswered or s.asked_back:
        parts = [p for c, p in ((answered, f"{_n(answered, 'question')} answered"),
                                (s.unanswered, f"{_n(s.unanswered, 'question')} it could not answer"),
                                (s.asked_back, f"{_n(s.asked_back, 'question')} asked back")) if c]
        sentences.append("Knowledge base: " + ", ".join(parts) + ".")
    if s.rejected:
        sentences.append(f"{_n(s.rejected, 'caller turn').capitalize()} not understood.")
    if s.escalation_reason:
        sentences.append(f"Escalated ({s.escalation_reason.replace('_', ' ')}).")
    if not s.caller_turns:
        sentences.append("The caller said nothing.")
    sentences.append(f"Outcome: {LABELS[s.decision.outcome]} ({s.decision.reason}).")
    return " ".join(sentences)


# -- is a text grounded in the record? ----------------------------------------------------------------------------

def _numbers(text: str) -> set[int]:
    joined = re.sub(r"(?<=\d)[,.](?=\d{3}\b)", "", text)  # 10,452 -> 10452
    return {int(n) for n in re.findall(r"\d+", joined)}


def record_text(call: Call, turns: Sequence[Turn], events: Sequence[Event]) -> str:
    parts = [t.text for t in turns]
    parts += [json.dumps(list(t.tool_calls), default=str) for t in turns if t.tool_calls]
    parts += [json.dumps(dict(e.data), default=str) for e in events]
    parts += [call.caller_id or "", call.outcome_reason or "", call.started_at.isoformat()]
    return "\n".join(parts)


def foreign_facts(text: str, record: str) -> list[str]:
    """Numbers (order numbers, amounts, days, years) and month names in ``text`` that ``record`` never names; ISO
    dates in the record count for their month."""
    known = _numbers(record)
    months = {m for m in _MONTHS if re.search(rf"\b{m}\b", record.lower())}
    months |= {_MONTHS[int(m) - 1] for m in re.findall(r"\b\d{4}-(\d{2})-\d{2}", record) if 1 <= int(m) <= 12}
    foreign = [str(n) for n in sorted(_numbers(text) - known)]
    foreign += [m for m in _MONTHS if re.search(rf"\b{m}\b", text.lower()) and m not in months]
    return foreign
