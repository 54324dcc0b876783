"""The broken parts, the timed line and the Ollama doubles of ``voicebot bench faults`` (``bench_faults``).

Each broken part implements the real Protocol (``Transcriber``, ``Synthesizer``, ``ChatModel``) or wraps the real
object (the CRM repository, the call store), so the session meets it exactly where it meets the working one. A
``Fault`` says when it is armed and records when the failing calls were made: the moment the figure starts from.
"""

from __future__ import annotations

import errno
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler
from dataclasses import dataclass, field
from typing import Any, Literal

from voicebot.audio import AudioFrame
from voicebot.llm.base import ChatMessage
from voicebot.speech.stt import Transcriber
from voicebot.speech.tts import SpeechChunk, Synthesizer
from voicebot.store import CallStore
from voicebot.store_journal import Op
from voicebot.telephony.sim import SimulatedLine
from voicebot.telephony.script import Say, Step, WaitForBot
from voicebot.tools.levels import SPEECH_DB, frame_levels

QUESTION = "Hello, how is your day going so far?"  # no menu, intent or template places it: the model answers
REPLY = "I'm fine, thank you. How can I help you today?"
PORTS = range(25560, 25600)  # the Ollama doubles listen here (the project's port range for this bench)
HANG_MAX_S = 120.0  # a hung part is let go when its call ends, at the latest after this


@dataclass
class Fault:
    """One injected failure: armed once the moment it stands for has come; ``at`` holds the wall-clock times of
    the failing calls. ``raise``: the part raises ``error``; ``hang``: it blocks until the call has ended;
    ``real``: the part fails by itself (the Ollama client against a broken server), the call is only timed."""

    mode: Literal["raise", "hang", "real"]
    error: Callable[[], BaseException] = lambda: RuntimeError("broken (simulated)")
    armed: bool = False
    at: list[float] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)

    def hit(self, timed: bool = True) -> None:
        """Called by a broken part on each call; ``timed=False``: a call that is not the turn's (a prefill)."""
        if not self.armed:
            return
        if timed:
            self.at.append(time.perf_counter())
        if self.mode == "hang":
            self.released.wait(HANG_MAX_S)
            raise TimeoutError("the hung part was let go after the call")
        if self.mode == "raise":
            raise self.error()


@dataclass
class BrokenTranscriber:
    """A ``Transcriber`` that fails (after ``Fault.armed``) before Whisper is asked."""

    inner: Transcriber
    fault: Fault

    def transcribe(self, pcm: bytes, sample_rate: int, *, prompt: str | None = None) -> Any:
        self.fault.hit()
        return self.inner.transcribe(pcm, sample_rate, prompt=prompt)


@dataclass
class BrokenSynthesizer:
    """A ``Synthesizer`` that fails on every synthesis once armed (after the greeting); a generator, so a hang
    blocks the worker thread that reads it, never the event loop."""

    inner: Synthesizer
    fault: Fault

    @property
    def voice(self) -> str:
        return self.inner.voice

    def stream(self, text: str, sample_rate: int) -> Iterator[SpeechChunk]:
        self.fault.hit()
        yield from self.inner.stream(text, sample_rate)

    def cached(self, text: str, sample_rate: int) -> bytes:
        self.fault.hit()
        return self.inner.cached(text, sample_rate)


@dataclass
class CannedChat:
    """A ``ChatModel`` that answers every turn with ``REPLY`` as the agent's JSON action; a prefill
    (``max_tokens=1``) writes nothing. The model's speed is not what these calls measure."""

    name: str = "canned"

    def stream(self, messages: Sequence[ChatMessage], *, json_schema: dict[str, Any] | None = None,
               max_tokens: int | None = None, temperature: float | None = None) -> Iterator[str]:
        if max_tokens == 1:
            return iter(())
        text = json.dumps({"action": "reply", "text": REPLY})
        return iter([text[i:i + 8] for i in range(0, len(text), 8)])

    def warm(self, system_prompt: str) -> None:
        return None


@dataclass
class BrokenChat:
    """A ``ChatModel`` around ``inner`` that fails once armed; the turn's request is timed, a prefill is not."""

    inner: Any  # a ChatModel
    fault: Fault

    @property
    def name(self) -> str:
        return str(self.inner.name)

    def stream(self, messages: Sequence[ChatMessage], *, json_schema: dict[str, Any] | None = None,
               max_tokens: int | None = None, temperature: float | None = None) -> Iterator[str]:
        self.fault.hit(timed=max_tokens != 1)  # at the first piece asked for: in the worker thread
        yield from self.inner.stream(messages, json_schema=json_schema, max_tokens=max_tokens,
                                     temperature=temperature)

    def warm(self, system_prompt: str) -> None:
        self.inner.warm(system_prompt)


class LockedCrm:
    """The real CRM repository with the caller lookup at answer failing as a locked database does."""

    def __init__(self, inner: Any, fault: Fault):
        self.inner, self.fault = inner, fault

    def find_customer_by_phone(self, raw: str | None) -> Any:
        self.fault.hit()
        return self.inner.find_customer_by_phone(raw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class FullStore(CallStore):
    """The real call store whose writes fail with ENOSPC while ``fault`` is armed (spill files still work)."""

    fault: Fault | None = None

    def apply(self, op: Op) -> None:
        if self.fault is not None:
            self.fault.hit()
        super().apply(op)


def enospc() -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


@dataclass
class TimedLine(SimulatedLine):
    """The simulated line, fast until ``pace`` (then line pace), noting the wall-clock time each frame is sent;
    ``hurry_when`` (checked on each audible frame) ends the line pace once what is measured has been heard."""

    hurry_when: Callable[[], bool] = lambda: False
    on_paced: Callable[[], None] = lambda: None
    sent_at: list[float] = field(init=False, default_factory=list)
    hurried_at: int | None = field(init=False, default=None)  # the frame at which the line went fast again
    _base: float | None = field(init=False, default=None)
    _said: bool = field(init=False, default=False)

    def pace(self) -> None:
        """Line pace from now on: one frame every 20 ms of wall time."""
        self._base = time.perf_counter() - self.now_s
        self.speed = 1.0
        self.on_paced()

    async def _run_step(self, step: Step, started: float) -> AsyncIterator[Any]:
        if isinstance(step, WaitForBot) and self._said and self.speed != 1.0 and self.hurried_at is None:
            self.pace()  # the caller has said their question: what follows is measured
        self._said = self._said or isinstance(step, Say)
        async for event in super()._run_step(step, started):
            yield event

    async def _advance(self, caller_pcm: bytes, started: float) -> AsyncIterator[Any]:
        # asked before the frame is taken from the queue: the frame then holds what was queued in that state
        ready = self.hurried_at is None and self.speed == 1.0 and self.hurry_when()
        async for event in super()._advance(caller_pcm, self._base if self._base is not None else started):
            if isinstance(event, AudioFrame):
                self.sent_at.append(time.perf_counter())
                if ready and self.last_played and frame_levels(
                        self.last_played, self.frame_ms / 1000, self.sample_rate).max() > SPEECH_DB:
                    self.hurried_at = len(self.sent_at) - 1
                    self.speed = float("inf")
            yield event

    def first_heard(self, after: float) -> int | None:
        """The first frame sent at or after ``after`` (wall clock) that is audible (above -40 dBFS)."""
        levels = frame_levels(self.recordings()[1], self.frame_ms / 1000, self.sample_rate)
        for tick, sent in enumerate(self.sent_at):
            if sent >= after and tick < len(levels) and levels[tick] > SPEECH_DB:
                return tick
        return None


class OllamaDouble:
    """An Ollama URL on loopback that fails as a real server does: ``500`` (its answer when the runner process
    was killed), ``hang`` (takes the connection, never answers), ``down`` (nothing listens). ``close`` ends it;
    a hung request is then reset, so the client's thread ends with the call (not after its own 30 s timeout)."""

    def __init__(self, how: Literal["500", "hang", "down"]):
        self._sock: socket.socket | None = _bound_socket()
        self._server: Any = None
        self._lock = threading.Lock()  # closed by the call's end and by the bench, whichever comes first
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        if how == "hang":
            self._sock.listen(16)
            return
        port = self._sock.getsockname()[1]
        self._sock.close()
        self._sock = None
        if how == "500":
            from http.server import ThreadingHTTPServer

            self._server = ThreadingHTTPServer(("127.0.0.1", port), _Failing)
            threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        with self._lock:
            sock, server, self._sock, self._server = self._sock, self._server, None, None
        if sock is not None:
            sock.close()
        if server is not None:
            server.shutdown()
            server.server_close()


class _Failing(BaseHTTPRequestHandler):
    """Ollama's answer to /api/chat when its runner process was killed."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"error": "llama runner process has terminated: signal: killed"}).encode()
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _bound_socket() -> socket.socket:
    for port in PORTS:
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
            return sock
        except OSError:
            sock.close()
    raise OSError(f"no free port in {PORTS.start}-{PORTS.stop - 1} for the Ollama double")
