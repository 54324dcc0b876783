"""Pre-rendered prompts played without synthesis: the hold line while a part hangs, "still connecting you" while
a transfer rings. A module of its own so that the fault path (``faults``) and the transfer hold
(``transfer_hold``), which use each other's moments, both import it without importing each other."""

from __future__ import annotations

from typing import Any

CallSession = Any  # voicebot.session.core.CallSession (not imported: core imports this module's users)


async def play_prerendered(session: CallSession, name: str) -> bool:
    """Queue a pre-rendered prompt behind whatever plays (no synthesis: it may be the part that hangs) and record it
    as said; False when it was not rendered at start. Returns at once: the turn it covers goes on."""
    fallback = session.deps.fallback
    pcm = fallback.get(name, session.rate) if fallback is not None else None
    if pcm is None or session.hung_up.is_set():
        return False
    started = session.detector.now_s
    session.t.play(pcm)
    await session._turn("bot", getattr(session.config.dialog.prompts, name), started_at=started,
                        ended_at=round(started + len(pcm) / (2 * session.rate), 3))
    return True
