"""CallSession: one call, from answer to hang-up, as a small state machine with three tasks.

``CallSession(transport, deps).run()`` answers a call on any ``CallTransport`` and returns its outcome. Inside:

- ``listener``: reads the transport; every audio frame goes through the turn detector (cheap, in audio time); a
  barge-in pauses playback at once, before the next frame; speech recognition has one path (``Listener.hear``);
  utterances, DTMF and no-input timeouts go onto the session's queue; a hang-up is a control event.
- ``core``: the state machine (``state``) takes one event at a time: the escalation guard first, then the menu
  flow, then the dialogue agent for free-form turns (``model_turn``); transfers with a note for the operator
  (``handover``). The turn in progress is a task a hang-up cancels; ``gate.HangUpGate`` stops the model's thread.
- ``speaker``: plays a reply sentence by sentence while the model is still writing, as a task the listener can
  cancel; the filler when the model is slow; each turn's stage times (``TurnClock``).

Heavy work (Whisper, the model, Piper, SQLite) runs in worker threads, never on the event loop. Every turn and
event is committed to the call store when it happens. Whatever goes wrong, the caller hears something and is
offered a person: nobody is left in silence.
"""

from voicebot.session.core import CallSession
from voicebot.session.deps import SessionDeps
from voicebot.session.gate import CallEnded, HangUpGate
from voicebot.session.speaker import TurnClock
from voicebot.session.state import IllegalTransition, State

__all__ = ["CallEnded", "CallSession", "HangUpGate", "IllegalTransition", "SessionDeps", "State", "TurnClock"]
