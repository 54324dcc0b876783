"""The agent's prefill runs on a thread of its own and is dropped when its caller left while it waited
(voicebot/session/prefill.py: waiting prefills once filled the event loop's default executor and stalled calls)."""

from __future__ import annotations

import asyncio
import threading

from voicebot.session.prefill import prefill_soon


class Agent:
    def __init__(self, name: str, ran: list[tuple[str, str]], hold: threading.Event | None = None):
        self.name, self.ran, self.hold = name, ran, hold

    def prefill(self) -> None:
        self.ran.append((self.name, threading.current_thread().name))
        if self.hold is not None:
            self.hold.wait(5)  # the model's lock, held by someone else


def test_a_waiting_prefill_takes_no_default_executor_thread_and_is_dropped_once_its_caller_has_gone():
    async def main() -> list[tuple[str, str]]:
        ran: list[tuple[str, str]] = []
        busy = threading.Event()
        first = prefill_soon(Agent("a", ran, busy), threading.Event())
        gone = threading.Event()
        second = prefill_soon(Agent("b", ran), gone)
        third = prefill_soon(Agent("c", ran), threading.Event())
        # the default executor stays free for store writes and speech recognition meanwhile
        assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), 2) == "free"
        gone.set()  # b's caller hangs up while b waits behind a
        busy.set()
        await asyncio.wait_for(asyncio.gather(first, second, third), 5)
        return ran

    ran = asyncio.run(main())
    assert [name for name, _ in ran] == ["a", "c"]
    assert all(thread.startswith("llm-prefill") for _, thread in ran), ran
