"""The one vocabulary of call events, from the phone line to the call store to the review app.

Two families of small frozen dataclasses:

- **Live events** travel inside one call and are never stored. The transport's: ``DtmfReceived``,
  ``TextReceived``, ``CallerHungUp`` and a transfer's ``TransferResult`` (caller audio arrives as
  ``voicebot.audio.AudioFrame``); the turn detector's ``Utterance`` and ``NoInput`` (defined with the detector in
  ``voicebot.speech.turns``, re-exported here); the listener's ``Heard`` (an utterance with its transcript).
  ``CallInput`` is what the session's queue holds.
- **Stored events** are what the call store keeps of a call besides its turns: one ``EventKind`` each, one class
  per kind (``GuardFired`` serves both guard kinds). Rows are written with ``to_row`` and read back with ``parse``;
  no other module spells a kind or a data key, so the session, the store, the after-call analysis and the call
  page cannot drift apart.

Why this shape:

- ``to_row`` masks PINs, dates of birth and card numbers (``mask_secret_data``), so nothing stored by anyone holds
  a caller's secret in clear, whichever code path wrote it.
- ``parse`` never raises: a kind this code does not know (a row older or newer than the code) or a row whose data
  does not fit its kind becomes an ``OtherEvent`` with the row as it is, so a review page never fails on history.
- The on-disk form is the one the store always had: the kind as text and a JSON object of the event's fields, in
  declaration order, a field that is None left out (older rows lack some fields; they parse with None there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, ClassVar

from voicebot.audio import AudioFrame
from voicebot.review.redact import mask_secret_data
from voicebot.speech.stt import Transcript
from voicebot.speech.turns import NoInput, Utterance

__all__ = [
    "AudioFrame", "BackchannelHeard", "BargedIn", "CallInput", "CallbackCreated", "CallerHungUp", "DtmfReceived",
    "ErrorOccurred", "Escalated", "EventKind", "FillerPlayed", "GuardFired", "Heard", "NoInput", "NoInputTimedOut",
    "OtherEvent", "StoredEvent", "TextReceived", "ToolCallMade", "TransferEnded", "TransferReason",
    "TransferResult", "TransferStarted", "TransportEvent", "Utterance", "guard_fired", "parse", "to_row",
]


# -- live events: from the transport and the listener to the session ----------------------------------------------


@dataclass(frozen=True)
class DtmfReceived:
    """The caller pressed a key; ``at_s``: seconds of call audio."""

    digit: str
    at_s: float


@dataclass(frozen=True)
class CallerHungUp:
    """The caller (or the line) ended the call: a control event that stops the turn in progress."""

    at_s: float


@dataclass(frozen=True)
class TextReceived:
    """A caller turn that arrives as text (``voicebot chat``): the session skips speech recognition."""

    text: str
    at_s: float = 0.0


@dataclass(frozen=True)
class TransferResult:
    """How a transfer went, as the transport reports it; on failure the caller is still with the bot."""

    target: str
    ok: bool
    status: int = 0
    reason: str = ""
    progress: tuple[tuple[int, str], ...] = ()  # what the far end reported on the way (e.g. 100, 180, 200)


TransportEvent = AudioFrame | DtmfReceived | CallerHungUp | TextReceived


@dataclass(frozen=True)
class Heard:
    """A caller utterance after speech recognition: the raw ``transcript`` (its confidence is stored with the turn)
    and ``text``, the part that passed the acceptance thresholds ("" when nothing did)."""

    utterance: Utterance
    transcript: Transcript
    text: str


CallInput = Utterance | Heard | TextReceived | DtmfReceived | NoInput | CallerHungUp


# -- stored events: what the call store keeps ---------------------------------------------------------------------


class EventKind(StrEnum):
    NO_INPUT = "no_input"
    BACKCHANNEL = "backchannel"
    BARGE_IN = "barge_in"
    FILLER = "filler"
    TOOL_CALL = "tool_call"
    GUARD_UNGROUNDED = "guard_ungrounded"
    GUARD_INSTRUCTIONS_LEAK = "guard_instructions_leak"
    ESCALATION = "escalation"
    TRANSFER_REQUESTED = "transfer_requested"
    TRANSFER_RESULT = "transfer_result"
    CALLBACK_CREATED = "callback_created"
    ERROR = "error"
    STT_REJECTED = "stt_rejected"
    INTENT = "intent"
    KNOWLEDGE = "knowledge"


class TransferReason(StrEnum):
    """Why a call was handed to a person: the escalation guard's reasons, a menu option, the model, an error.
    Stored in ``TransferStarted.reason`` and in the call's ``outcome_reason``."""

    OPERATOR_REQUEST = "operator_request"
    DTMF = "dtmf"
    FRUSTRATION = "frustration"
    NO_MATCH = "no_match"
    NO_INPUT = "no_input"
    MENU = "menu"
    MODEL = "model"
    ERROR = "error"


@dataclass(frozen=True)
class NoInputTimedOut:
    """The caller said nothing for the no-input timeout after a prompt."""

    kind: ClassVar[EventKind] = EventKind.NO_INPUT


@dataclass(frozen=True)
class BackchannelHeard:
    """Caller speech over the bot that was only "mm-hmm", "okay": the bot paused, then carried on."""

    kind: ClassVar[EventKind] = EventKind.BACKCHANNEL
    text: str | None = None  # masked as a stored caller turn is
    speech_s: float | None = None


@dataclass(frozen=True)
class BargedIn:
    """Caller speech over the bot that took the turn: playback stopped."""

    kind: ClassVar[EventKind] = EventKind.BARGE_IN
    text: str | None = None
    speech_s: float | None = None


@dataclass(frozen=True)
class FillerPlayed:
    """The model was slow, so the caller heard the filler ("One moment, let me check that.")."""

    kind: ClassVar[EventKind] = EventKind.FILLER


@dataclass(frozen=True)
class ToolCallMade:
    """A CRM tool the model chose, with what it returned."""

    kind: ClassVar[EventKind] = EventKind.TOOL_CALL
    tool: str | None = None
    args: Mapping[str, Any] | None = None
    result: Any = None
    elapsed_s: float | None = None


@dataclass(frozen=True)
class GuardFired:
    """A sentence the model wrote that was not spoken: facts not in the tool results (``GUARD_UNGROUNDED``) or a
    leak of the instructions (``GUARD_INSTRUCTIONS_LEAK``)."""

    kind: EventKind
    original: str | None = None
    items: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Escalated:
    """The escalation guard asked for a person (reason: a ``TransferReason`` of the guard's)."""

    kind: ClassVar[EventKind] = EventKind.ESCALATION
    reason: str | None = None
    detail: str | None = None
    sentiment: float | None = None


@dataclass(frozen=True)
class TransferStarted:
    """The bot is handing the caller to ``target``; ``summary`` is the note for the operator."""

    kind: ClassVar[EventKind] = EventKind.TRANSFER_REQUESTED
    reason: str | None = None
    detail: str | None = None
    target: str | None = None
    summary: str | None = None


@dataclass(frozen=True)
class TransferEnded:
    """What the transport reported about a transfer (``mode``: blind or warm)."""

    kind: ClassVar[EventKind] = EventKind.TRANSFER_RESULT
    ok: bool | None = None
    status: int | None = None
    reason: str | None = None
    mode: str | None = None
    progress: tuple[tuple[int, str], ...] | None = None

    @classmethod
    def of(cls, result: TransferResult, mode: str) -> TransferEnded:
        return cls(result.ok, result.status, result.reason, mode, tuple(tuple(p) for p in result.progress))


@dataclass(frozen=True)
class CallbackCreated:
    """A transfer failed, so a callback was put in the CRM."""

    kind: ClassVar[EventKind] = EventKind.CALLBACK_CREATED
    id: int | None = None


@dataclass(frozen=True)
class ErrorOccurred:
    """Something failed during the call (``stage``, when known: e.g. "dialogue")."""

    kind: ClassVar[EventKind] = EventKind.ERROR
    stage: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class TranscriptRejected:
    """What Whisper wrote was not the caller's speech (a subtitle phrase, a loop, a doubtful window): a no-match,
    never a turn for the model. ``reason``: see voicebot/speech/hallucination.py."""

    kind: ClassVar[EventKind] = EventKind.STT_REJECTED
    reason: str | None = None
    text: str | None = None  # masked as a stored caller turn is


@dataclass(frozen=True)
class IntentRecognized:
    """The caller's request was recognised in code (nearest examples), so no model chose the action."""

    kind: ClassVar[EventKind] = EventKind.INTENT
    intent: str | None = None
    score: float | None = None
    margin: float | None = None
    example: str | None = None


@dataclass(frozen=True)
class KnowledgeAnswered:
    """A question put to the company's knowledge base: ``kind`` entry/hours/price (answered), weak (asked back)
    or none (not answered: it belongs on the "Unanswered" list); ``entry_ids`` what answered or the candidates."""

    kind: ClassVar[EventKind] = EventKind.KNOWLEDGE
    answer: str | None = None
    entry_ids: tuple[str, ...] | None = None
    score: float | None = None
    question: str | None = None  # masked as a stored caller turn is


@dataclass(frozen=True)
class OtherEvent:
    """A stored event this code has no class for (an old row, or one that does not fit its kind), kept as is."""

    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)


StoredEvent = (NoInputTimedOut | BackchannelHeard | BargedIn | FillerPlayed | ToolCallMade | GuardFired | Escalated
               | TransferStarted | TransferEnded | CallbackCreated | ErrorOccurred | TranscriptRejected
               | IntentRecognized | KnowledgeAnswered | OtherEvent)

_CLASSES: dict[str, type] = {
    **{cls.kind: cls for cls in (NoInputTimedOut, BackchannelHeard, BargedIn, FillerPlayed, ToolCallMade, Escalated,
                                 TransferStarted, TransferEnded, CallbackCreated, ErrorOccurred, TranscriptRejected,
                                 IntentRecognized, KnowledgeAnswered)},
    EventKind.GUARD_UNGROUNDED: GuardFired, EventKind.GUARD_INSTRUCTIONS_LEAK: GuardFired,
}
_GUARDS = {"ungrounded": EventKind.GUARD_UNGROUNDED, "instructions_leak": EventKind.GUARD_INSTRUCTIONS_LEAK}


def guard_fired(guard: str, original: str, items: tuple[str, ...] | list[str] = ()) -> StoredEvent:
    """The stored event for a dialogue guard (``dialog.agent.Guarded.kind``: "ungrounded", "instructions_leak");
    a guard this vocabulary does not know yet is kept as ``guard_<name>``."""
    data = {"original": original, "items": tuple(items)}
    return GuardFired(_GUARDS[guard], **data) if guard in _GUARDS else OtherEvent(f"guard_{guard}", data)


def _field_names(cls: type) -> list[str]:
    return [f.name for f in fields(cls) if f.name != "kind"]


def to_row(event: StoredEvent) -> tuple[str, dict[str, Any]]:
    """The (kind, data) the store writes for ``event``: data as JSON-ready values (tuples become lists), None fields
    left out, and PINs, dates of birth and card numbers masked."""
    if isinstance(event, OtherEvent):
        data = dict(event.data)
    else:
        data = {name: value for name in _field_names(type(event)) if (value := getattr(event, name)) is not None}
    return str(event.kind), mask_secret_data(data)


def parse(kind: str, data: Mapping[str, Any] | None = None) -> StoredEvent:
    """The typed event of a stored row. Never raises: an unknown kind, or data with keys its kind does not have,
    gives an ``OtherEvent``; keys the row lacks are None."""
    values = dict(data or {})
    cls = _CLASSES.get(kind)
    if cls is None or not set(values) <= set(_field_names(cls)):
        return OtherEvent(kind, values)
    try:
        if isinstance(values.get("items"), list):
            values["items"] = tuple(values["items"])
        if isinstance(values.get("progress"), list):
            values["progress"] = tuple(tuple(p) for p in values["progress"])
        return cls(EventKind(kind), **values) if cls is GuardFired else cls(**values)
    except (TypeError, ValueError):  # e.g. progress entries that are not pairs
        return OtherEvent(kind, dict(data or {}))
