"""A typed "phone line" for `voicebot chat`: the admin types as the caller, the bot answers in text and audio.

Typed lines skip speech recognition; everything after it is the real call path (guard, menus, model, CRM,
speech synthesis, call store). ``/dtmf 0`` presses a key, ``/quit`` hangs up. Each bot reply's audio can be
saved as a WAV file (and played with ``aplay`` where a sound device exists).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from voicebot.audio import write_wav
from voicebot.events import CallerHungUp, DtmfReceived, TextReceived, TransferResult, TransportEvent
from voicebot.telephony.base import CallInfo


class ConsoleLine:
    def __init__(self, read_line: Callable[[], str | None], *, caller_id: str = "", sample_rate: int = 16000,
                 audio_dir: Path | None = None, play_audio: bool = False):
        self.read_line = read_line  # blocking; None at end of input
        self.sample_rate = sample_rate
        self.info = CallInfo(call_id=str(uuid.uuid4()), caller_id=caller_id, called="voicebot", remote="console",
                             codec="L16")
        self.audio_dir = audio_dir
        self.play_audio = play_audio and shutil.which("aplay") is not None
        self.transfers: list[str] = []
        self._reply = bytearray()
        self._bot = bytearray()
        self._replies = 0
        self._idle = asyncio.Event()
        self._ended = False
        self._t = 0.0

    async def events(self) -> AsyncIterator[TransportEvent]:
        while not self._ended:
            await self._idle.wait()  # the bot has answered the previous line
            self._idle.clear()
            line = await asyncio.to_thread(self.read_line)
            self._t += 1.0
            if line is None or line.strip() in ("/quit", "/exit", "/hangup"):
                self._ended = True
                yield CallerHungUp(self._t)
                return
            line = line.strip()
            if line.startswith("/dtmf"):
                for digit in line.split(maxsplit=1)[1:][0] if len(line.split()) > 1 else "":
                    yield DtmfReceived(digit, self._t)
            elif line:
                yield TextReceived(line, self._t)
            else:
                self._idle.set()

    def play(self, pcm: bytes) -> None:
        self._reply += pcm
        self._bot += pcm

    def busy(self, working: bool) -> None:
        if working:
            return
        if self._reply:
            self._replies += 1
            if self.audio_dir is not None:
                self.audio_dir.mkdir(parents=True, exist_ok=True)
                path = self.audio_dir / f"reply-{self._replies:02d}.wav"
                write_wav(path, bytes(self._reply), self.sample_rate)
                if self.play_audio:
                    subprocess.run(["aplay", "-q", str(path)], check=False)
            self._reply.clear()
        self._idle.set()

    def pause(self) -> None:
        pass

    def duck(self, db: float) -> None:
        pass

    def resume(self) -> None:
        pass

    def flush(self) -> int:
        return 0

    @property
    def playing(self) -> bool:
        return False

    @property
    def last_played(self) -> bytes:
        return b""

    async def wait_played(self) -> None:
        return None

    async def transfer(self, target: str) -> TransferResult:
        self.transfers.append(target)
        self._ended = True
        self._idle.set()
        return TransferResult(target, ok=True, status=200, reason="OK (console: the operator would answer now)")

    async def hangup(self) -> None:
        self._ended = True
        self._idle.set()

    def recordings(self) -> tuple[bytes, bytes]:
        return b"\0" * len(self._bot), bytes(self._bot)
