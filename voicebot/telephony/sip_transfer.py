"""Handing a SIP call to a person, with no pjsua2: the policy of a blind and of a warm transfer, and what each
outcome means for the caller's call. The endpoint does the SIP work behind ``TransferControl``.

- Blind (no brief): send a REFER and wait for its final NOTIFY; on 2xx the bot's leg is hung up.
- Warm (a brief): dial the target, play the brief to it alone, then connect the two calls in the conference
  bridge (the bot's own audio leaves both). The pair then lives on without the session.

Either way a failure (refused, busy, not answered, someone hung up during the brief) leaves the caller's call as
it was, with the bot still on it. A call goes only to ``sip.operator_uri`` or one of ``sip.transfer_targets``:
any other target is refused before anything is sent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from voicebot import metrics
from voicebot.config import SipConfig
from voicebot.telephony.base import CallInfo, TransferResult

log = logging.getLogger(__name__)

BRIEF_MARGIN_S = 10.0  # a warm transfer's brief may take this much longer than its audio before it is given up
BRIDGE_SETTLE_S = 0.04  # two 20 ms media ticks: the brief's last frame leaves the bridge before the legs are joined


class SipDialError(RuntimeError):
    """An outgoing call that was not answered: ``status`` is the SIP status (408 for no answer in time, 0 when
    the INVITE could not even be sent)."""

    def __init__(self, uri: str, status: int, reason: str):
        self.uri, self.status, self.reason = uri, status, reason
        super().__init__(f"{uri}: {status} {reason}" if status else f"{uri}: {reason}")


def reason_of(exc: BaseException) -> str:
    """pjsua2.Error carries its text in ``reason``; others in str()."""
    return str(getattr(exc, "reason", None) or exc)


class ReferProgress:
    """One REFER in flight: the NOTIFYs reporting its progress (100 Trying, 180 Ringing, ..., final) and the
    final (status, reason). Lives on the asyncio loop."""

    def __init__(self) -> None:
        self.final: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self.progress: list[tuple[int, str]] = []

    def notified(self, status: int, reason: str, final: bool) -> None:
        self.progress.append((status, reason))
        if final and not self.final.done():
            self.final.set_result((status, reason))

    def call_ended(self) -> None:
        if not self.final.done():
            self.final.set_result((0, "call ended"))


class TransferLeg(Protocol):
    """What the transfer needs of a call (SipCall is one)."""

    info: CallInfo
    sample_rate: int
    ended: bool
    end_status: int
    bridged: TransferLeg | None
    refer: ReferProgress | None
    transfers: list[TransferResult]

    @property
    def playing(self) -> bool: ...

    def play(self, pcm: bytes) -> None: ...

    async def wait_played(self) -> None: ...

    async def wait_ended(self) -> None: ...

    async def hangup(self) -> None: ...


class TransferControl(Protocol):
    """The SIP work a transfer asks of the endpoint; each returns once the pjsua2 thread has done it (or raises)."""

    sip: SipConfig  # the endpoint's SIP section: where a call may be transferred to

    async def refer(self, call: TransferLeg, target: str) -> None:
        """Send a REFER to ``target`` on ``call``; its NOTIFYs go to ``call.refer``."""

    async def dial(self, uri: str, caller_id: str | None = None, headers: dict[str, str] | None = None,
                   timeout_s: float = 20.0) -> TransferLeg:
        """Call ``uri``; the answered call, or SipDialError."""

    async def bridge(self, a: TransferLeg, b: TransferLeg) -> None:
        """Connect two answered calls' audio both ways and take the bot off both."""


async def transfer(call: TransferLeg, control: TransferControl, target: str, brief: bytes | None,
                   timeout_s: float) -> TransferResult:
    """Hand the far end of ``call`` to ``target``: blind without ``brief``, warm with one (s16le at the call's
    rate). The result is added to ``call.transfers``, counted and logged."""
    mode = "blind" if brief is None else "warm"
    if call.ended:
        result = TransferResult(target, False, 0, "call ended")
    elif not control.sip.transfer_allowed(target):
        result = TransferResult(target, False, 0, "not an allowed transfer target (sip.operator_uri or "
                                                  "sip.transfer_targets)")
    elif brief is None:
        result = await _blind(call, control, target, timeout_s)
    else:
        result = await _warm(call, control, target, timeout_s, brief)
    call.transfers.append(result)
    metrics.TRANSFERS.labels(mode=mode, result="ok" if result.ok else "failed").inc()
    log.info("call %s: %s transfer to %s: %s %s", call.info.call_id, mode, target, result.status, result.reason)
    return result


async def _blind(call: TransferLeg, control: TransferControl, target: str, timeout_s: float) -> TransferResult:
    refer = call.refer = ReferProgress()
    try:
        await control.refer(call, target)
    except Exception as exc:  # pjsua2.Error: bad URI, no dialog...
        call.refer = None
        return TransferResult(target, False, 0, f"REFER not sent: {reason_of(exc)}")
    try:
        status, reason = await asyncio.wait_for(refer.final, timeout_s)
    except TimeoutError:
        status, reason = 408, "no final NOTIFY"
    finally:
        call.refer = None
    result = TransferResult(target, 200 <= status < 300, status, reason, tuple(refer.progress))
    if result.ok:
        await call.hangup()
    return result


async def _warm(call: TransferLeg, control: TransferControl, target: str, timeout_s: float,
                brief: bytes) -> TransferResult:
    """Not answered / busy / timeout: ``call`` is untouched. When either side of the bridged pair hangs up later,
    the endpoint hangs up the other."""
    try:
        operator = await control.dial(target, caller_id=call.info.caller_id or None, timeout_s=timeout_s)
    except SipDialError as exc:
        return TransferResult(target, False, exc.status, exc.reason)
    except Exception as exc:  # the worker is stopping
        return TransferResult(target, False, 0, f"the operator could not be called: {reason_of(exc)}")
    operator.play(brief)
    waits = [asyncio.ensure_future(operator.wait_played()), asyncio.ensure_future(call.wait_ended()),
             asyncio.ensure_future(operator.wait_ended())]
    limit = len(brief) / (2 * call.sample_rate) + BRIEF_MARGIN_S
    try:
        await asyncio.wait(waits, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
    failure = None
    if call.ended:
        failure = TransferResult(target, False, 0, "the caller hung up during the brief")
    elif operator.ended:
        failure = TransferResult(target, False, operator.end_status, "the operator hung up during the brief")
    elif operator.playing:
        failure = TransferResult(target, False, 0, "the brief did not play out")
    if failure is None:
        await asyncio.sleep(BRIDGE_SETTLE_S)
        try:
            await control.bridge(call, operator)
        except Exception as exc:
            failure = TransferResult(target, False, 0, f"bridging failed: {reason_of(exc)}")
    if failure is not None:
        await operator.hangup()
        return failure
    call.bridged, operator.bridged = operator, call
    return TransferResult(target, True, 200, "bridged")
