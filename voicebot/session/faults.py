"""Faults never mean silence: a failing part of a call ends in an apology and a person, within a few seconds.

Any stage may fail mid-call: speech recognition, synthesis, the language model (an error, a hang, a dead server),
the CRM. Each stage the call waits for runs under a time limit (``faults.*_timeout_s``), so a hang becomes a
fault like an error does: ``StageFailed(stage, ...)``. The session then (``recover``):

1. logs the fault once, with its stage and the error's type (caller words masked), counts it in
   ``voicebot_errors_total{kind=stage}`` and records an ``error`` event;
2. plays the apology (``dialog.prompts.error``) at once, from ``FallbackSpeech``: speech rendered when the worker
   started, so it plays even when the synthesizer is the part that broke;
3. transfers the caller to a person (``sip.operator_uri``);
4. when the transfer fails, asks the CRM for a callback and plays the goodbye (``prompts.error_goodbye``, also
   pre-rendered), then hangs up: a broken bot does not carry on with the caller.

The call store is written off the caller's path (``records.CallRecords``: a failed write is retried, then
spilled, never lost). When it fails for real (a full disk), ``faults.store_errors`` decides: ``transfer`` (the
default, ``store_failed``) stops whatever the bot is doing and takes the fault path above, since a bot that cannot
keep its records should hand the caller to a person; ``continue`` lets the call go on as if nothing happened.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from voicebot import compute, metrics
from voicebot.config import PromptsConfig
from voicebot.events import CallbackCreated, ErrorOccurred, TransferEnded, TransferReason, TransferStarted
from voicebot.llm.base import LlmError
from voicebot.review.redact import mask_secrets
from voicebot.session.prerendered import play_prerendered  # noqa: F401 - re-exported for the session
from voicebot.session.state import State
from voicebot.speech.tts import Synthesizer
from voicebot.store import Outcome

CallSession = Any
"""A voicebot.session.core.CallSession: core calls this module, so it is not imported back (no import circle);
the functions here use the session's state and its helpers as core defines them."""

log = logging.getLogger(__name__)
T = TypeVar("T")

FALLBACK_PROMPTS = ("error", "error_goodbye", "hold", "still_connecting")


class StageFailed(Exception):
    """A stage of the call failed (``error``) or took longer than its limit (``timed_out``)."""

    def __init__(self, stage: str, error: BaseException | str, timed_out: bool = False):
        self.stage = stage
        self.error = error
        self.timed_out = timed_out
        self.at = time.perf_counter()  # when the fault was noticed (the apology is timed from here)
        super().__init__(f"{stage}: {error if isinstance(error, str) else type(error).__name__ + ': ' + str(error)}")


@dataclass(frozen=True)
class Faulted:
    """A caller event the listener queues when a stage it ran failed (the words of a barge-in)."""

    failure: StageFailed


async def limited(stage: str, timeout_s: float, work: Awaitable[T]) -> T:
    """``await work`` within ``timeout_s``; any error, or the time running out, raises ``StageFailed(stage)``."""
    try:
        return await asyncio.wait_for(work, timeout_s)
    except TimeoutError as exc:
        raise StageFailed(stage, f"no result within {timeout_s:g} s", timed_out=True) from exc
    except StageFailed:
        raise
    except Exception as exc:
        raise StageFailed(stage, exc) from exc


MODEL_STAGES = frozenset({"stt", "tts", "llm"})


async def in_thread(stage: str, timeout_s: float, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a worker thread, limited like ``limited`` (a hung thread is left behind); model
    stages on a compute thread, below the media path's priority (``voicebot.compute``)."""
    work = compute.run(fn, *args, **kwargs) if stage in MODEL_STAGES else asyncio.to_thread(fn, *args, **kwargs)
    return await limited(stage, timeout_s, work)


def store_failed(session: CallSession, exc: BaseException) -> None:
    """The call store failed (``CallRecords.on_failure``): with ``faults.store_errors: transfer`` the fault goes
    before anything else the caller said, and the turn under way (the greeting, a reply) stops for it."""
    if (session.config.faults.store_errors != "transfer" or session.hung_up.is_set()
            or session.state in (State.TRANSFERRING, State.ENDED)):
        return
    failure = StageFailed("store", exc)
    if session._turn_task is None and session.state == State.GREETING:  # being answered: run() takes it first
        session.early_fault = failure
        return
    waiting = [session.queue.get_nowait() for _ in range(session.queue.qsize())]
    session.queue.put_nowait(Faulted(failure))
    for event in waiting:
        session.queue.put_nowait(event)
    if session._turn_task is not None:
        session._turn_task.cancel()


def stage_of(exc: BaseException, default: str = "session") -> str:
    if isinstance(exc, StageFailed):
        return exc.stage
    if isinstance(exc, LlmError):
        return "llm"
    if isinstance(exc, sqlite3.Error):
        return "crm"
    return default


def describe(exc: BaseException) -> str:
    """The error as it may be logged and stored: its type and message, caller secrets masked."""
    error = exc.error if isinstance(exc, StageFailed) else exc
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return mask_secrets(text)[:300]


def customer_id(session: CallSession) -> int | None:
    context = session.agent.context if session.agent is not None else None
    caller = (context.verified_customer or context.customer) if context is not None else None
    return caller.id if caller else None


def safe_summary(session: CallSession, fallback: str) -> str:
    """The operator's note, or ``fallback`` with the caller's number when the call never got that far."""
    try:
        return session._summary()
    except Exception:  # noqa: BLE001 - no agent (the CRM failed at answer), or the note itself failed
        return f"Call from {session.t.info.caller_id or 'an unknown number'}. {fallback}"


async def warm_brief(session: CallSession, text: str) -> bytes | None:
    """The operator's brief for a warm transfer as speech; None when synthesis fails (the transfer goes blind)."""
    try:
        return await session.speaker.synthesize(text)
    except StageFailed as exc:
        log.error("call %s: tts failed for the warm transfer brief (%s); transferring blind", session.call_id,
                  describe(exc))
        metrics.ERRORS.labels(kind="tts").inc()
        await session._record(ErrorOccurred(stage="tts", error=describe(exc)))
        return None


class FallbackSpeech:
    """The prompts a failing call needs, rendered once when the worker starts (``render``), kept in memory."""

    def __init__(self, pcm: dict[str, bytes], sample_rate: int):
        self.pcm = pcm
        self.sample_rate = sample_rate

    @classmethod
    def render(cls, synthesizer: Synthesizer, prompts: PromptsConfig, sample_rate: int) -> FallbackSpeech:
        return cls({name: synthesizer.cached(getattr(prompts, name), sample_rate) for name in FALLBACK_PROMPTS},
                   sample_rate)

    def get(self, name: str, sample_rate: int) -> bytes | None:
        return self.pcm.get(name) if sample_rate == self.sample_rate else None


async def _play(session: CallSession, name: str, timeout_s: float) -> bool:
    """Play a fallback prompt now (pre-rendered; else synthesised within the TTS limit) and record it as said."""
    text = getattr(session.config.dialog.prompts, name)
    fallback = session.deps.fallback
    pcm = fallback.get(name, session.rate) if fallback is not None else None
    if pcm is None:
        try:
            pcm = await in_thread("tts", session.config.faults.tts_timeout_s, session.deps.synthesizer.cached,
                                  text, session.rate)
        except StageFailed as exc:
            log.error("call %s: the %s prompt could not be synthesised either (%s)", session.call_id, name,
                      describe(exc))
            return False
    started = session.detector.now_s
    session.t.flush()  # whatever half-reply was queued gives way
    session.t.play(pcm)
    try:
        await asyncio.wait_for(session.t.wait_played(), timeout_s)
    except TimeoutError:
        pass
    await session._turn("bot", text, started_at=started, ended_at=session.detector.now_s)
    return True


async def recover(session: CallSession, exc: BaseException) -> None:
    """The fault path (module docstring): apology, transfer, else callback and goodbye; the call then ends."""
    stage = stage_of(exc)
    noticed = exc.at if isinstance(exc, StageFailed) else time.perf_counter()
    detail = describe(exc)
    log.error("call %s: %s failed (%s); apology and transfer", session.call_id, stage, detail,
              exc_info=stage in ("session", "dialogue"))  # a bug: its traceback, once
    if stage != "store":  # the store's failure was counted where it happened (records.CallRecords)
        metrics.ERRORS.labels(kind=stage).inc()
    await session._record(ErrorOccurred(stage=stage, error=detail))
    if session.hung_up.is_set() or session.state == State.ENDED:
        return
    session.state = State.TRANSFERRING  # whatever the bot was doing, it stops: only the way out is left
    cfg = session.config
    longest = max(2.0, len(cfg.dialog.prompts.error) / 8)  # the prompt's own length, at a slow speaking rate
    metrics.FAULT_TO_APOLOGY.observe(time.perf_counter() - noticed)
    await _play(session, "error", longest)
    session.fault_apology_at = session.detector.now_s
    target = cfg.sip.operator_uri
    summary = safe_summary(session, f"The assistant failed ({stage}).")
    await session._record(TransferStarted(TransferReason.ERROR, f"{stage} failed", target, summary))
    try:
        from voicebot.session.transfer_hold import holding  # it plays this module's prompts: imported here

        async with holding(session):  # "still connecting you" while it rings
            result = await session.t.transfer(target)
    except Exception as transfer_exc:  # noqa: BLE001 - a failed transfer is handled like a refused one
        log.error("call %s: transfer failed (%s)", session.call_id, describe(transfer_exc))
        result = None
    if result is not None:
        await session._record(TransferEnded.of(result, "blind"))
        metrics.TRANSFERS.labels(mode="blind", result="ok" if result.ok else "failed").inc()
    if result is not None and result.ok:
        session.outcome, session.outcome_reason = Outcome.TRANSFERRED, f"{TransferReason.ERROR}: {stage} failed"
        session.transfer_target = target
        session.state = State.ENDED
        return
    why = f"{result.status} {result.reason}" if result is not None else "the transfer raised"
    reason = f"{TransferReason.ERROR}: {stage} failed; transfer failed ({why})"
    try:
        callback = await in_thread("crm", cfg.faults.crm_timeout_s, session.deps.crm.request_callback,
                                   session.t.info.caller_id, f"The assistant failed ({stage}) and the transfer "
                                   f"failed ({why}). {summary}", customer_id=customer_id(session))
    except StageFailed as crm_exc:
        log.error("call %s: no callback created: crm failed (%s)", session.call_id, describe(crm_exc))
        metrics.ERRORS.labels(kind="crm").inc()
        await session._record(ErrorOccurred(stage="crm", error=describe(crm_exc)))
        reason += "; callback NOT created (CRM failed): call the caller back"
    else:
        await session._record(CallbackCreated(callback.id))
        reason += f"; callback {callback.id}"
    session.outcome, session.outcome_reason = Outcome.TRANSFER_FAILED, reason
    await _play(session, "error_goodbye", max(2.0, len(cfg.dialog.prompts.error_goodbye) / 8))
    session.state = State.ENDED
    try:
        await session.t.hangup()
    except Exception:  # noqa: BLE001 - the line may be gone already
        log.debug("hang-up after a fault failed", exc_info=True)
