"""Streaming helpers: the reply text out of a JSON object as the model writes it, and a synchronous generator
consumed from asyncio without blocking the event loop. (Sentences out of growing text: speech.tts.SentenceBuffer.)"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

from voicebot.compute import lower_this_thread

T = TypeVar("T")

_TEXT_START = re.compile(r'"text"\s*:\s*"')
_REPLY = re.compile(r'"action"\s*:\s*"reply"')
_ACTION = re.compile(r'"action"\s*:\s*"([A-Za-z_]+)"')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": " ", "r": " ", "t": " "}


class JsonTextStream:
    """Feed pieces of a JSON object; get back the new characters of its ``"text"`` string value so far.

    The schema puts ``action`` before ``text``, so speech can start before the object is complete. Only the
    text of a ``reply`` is speech: for any other action the stream yields nothing.
    """

    def __init__(self) -> None:
        self.raw = ""
        self._pos: int | None = None  # index in raw of the next undecoded character of the text value
        self.done = False

    def settled(self, text_unused: frozenset[str]) -> dict | None:
        """The action, once its name is written, when it is one whose ``text`` nothing reads (``text_unused``): the
        model can stop there. A hand-over wrote a reason ("caller asked for a person") for a second or more after
        "transfer" was settled, and the caller waited for it; the reason was never used."""
        match = _ACTION.search(self.raw)
        return {"action": match.group(1), "text": ""} if match and match.group(1) in text_unused else None

    def feed(self, piece: str) -> str:
        self.raw += piece
        if self.done:
            return ""
        if self._pos is None:
            match = _TEXT_START.search(self.raw)
            if not match:
                return ""
            if not _REPLY.search(self.raw, 0, match.start()):
                self.done = True
                return ""
            self._pos = match.end()
        out = []
        i = self._pos
        while i < len(self.raw):
            ch = self.raw[i]
            if ch == '"':
                self.done = True
                i += 1
                break
            if ch == "\\":
                if i + 1 >= len(self.raw):
                    break  # wait for the escaped character
                nxt = self.raw[i + 1]
                if nxt == "u":
                    if i + 6 > len(self.raw):
                        break
                    out.append(chr(int(self.raw[i + 2:i + 6], 16)))
                    i += 6
                    continue
                out.append(_ESCAPES.get(nxt, nxt))
                i += 2
                continue
            out.append(ch)
            i += 1
        self._pos = i
        return "".join(out)


def parse_json_object(raw: str) -> dict | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


async def iterate_in_thread(make: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """Run a blocking generator in a worker thread and yield its items on the event loop.

    When the consumer stops early (a barge-in cancels the reply), the generator is closed in its own thread
    at its next item, which stops the model mid-generation.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()
    end = object()

    def worker() -> None:
        lower_this_thread()  # the model's generation: below the media path (voicebot.compute)
        gen = make()
        try:
            for item in gen:
                if stop.is_set():
                    break
                loop.call_soon_threadsafe(queue.put_nowait, (item, None))
        except BaseException as exc:  # handed to the consumer, raised there
            loop.call_soon_threadsafe(queue.put_nowait, (end, exc))
            return
        finally:
            gen.close()
        loop.call_soon_threadsafe(queue.put_nowait, (end, None))

    thread = threading.Thread(target=worker, name="voicebot-gen", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = await queue.get()
            if item is end:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
