"""The speech sections of the config: ``vad`` (the frame gate, speech over the bot) and ``turns`` (the end-of-turn
model). Apart from voicebot.config, which re-exports them, as the telephony and dialer sections are."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from voicebot.strict import StrictModel as Section


class VadConfig(Section):
    aggressiveness: int = Field(2, ge=0, le=3)
    frame_ms: Literal[10, 20, 30] = 20
    end_of_turn_silence_ms: int = Field(700, ge=100, le=5000)
    digits_silence_ms: int = Field(1500, ge=100, le=10000)
    min_speech_ms: int = Field(200, ge=20, le=5000)
    preroll_ms: int = Field(300, ge=0, le=2000)
    barge_in_ms: int = Field(60, ge=20, le=2000, description="Speech over the bot this long lowers the bot's "
                             "voice by duck_db at once (pauses it when duck_db is 0).")
    duck_db: float = Field(24.0, ge=0, le=60, description="How far the bot's voice drops while speech over it is "
                           "judged (the reply plays on, so a backchannel leaves no gap); 0: pause at barge_in_ms.")
    pause_ms: int = Field(360, ge=20, le=5000, description="Speech over the bot this long pauses the ducked reply "
                          "(held, nothing lost) until it is judged a backchannel or an interruption.")
    backchannel_max_ms: int = Field(700, ge=100, le=5000, description="Speech over the bot up to this long that "
                                    "stops is a backchannel (the bot carries on); longer stops the bot.")
    backchannel_gap_ms: int = Field(80, ge=20, le=1000, description="Silence that ends such a backchannel.")
    backchannel_quieter_db: float = Field(6.0, ge=0, le=40, description="Speech over the bot this far below the "
                                          "caller's own level does not pause the bot (listening noises).")
    second_opinion: str | None = Field("silero-vad-v6", description="A VAD model (models/manifest.yaml) that must "
                                       "also hear speech before speech over the bot or in a turn counts (echo, "
                                       "street noise).")
    second_opinion_threshold: float = Field(0.5, gt=0, lt=1)
    early_stt_ms: int = Field(300, ge=0, le=5000, description="Start speech recognition after this much silence, "
                              "before the turn surely ended (0: wait for the end of turn).")
    no_input_timeout_s: float = Field(7.0, gt=0, le=60)
    echo_margin_db: float = Field(
        20.0, ge=0, le=60,
        description="Caller audio this far below the bot's own playback level is its echo, not speech.",
    )

    @model_validator(mode="after")
    def _overlap_order(self) -> "VadConfig":
        """Speech over the bot lowers it, then pauses it, then stops it: the three lengths must come in order."""
        if not self.barge_in_ms <= self.pause_ms < self.backchannel_max_ms:
            raise ValueError(f"vad.pause_ms ({self.pause_ms}) must be at least vad.barge_in_ms ({self.barge_in_ms}) "
                             f"and under vad.backchannel_max_ms ({self.backchannel_max_ms})")
        return self


class TurnsConfig(Section):
    """End of turn decided by a turn model after a short pause; ``model: null``: the fixed ``vad`` silences."""
    model: str | None = "smart-turn-v3.2"
    check_silence_ms: int = Field(200, ge=40, le=1000)  # bounds keep it below incomplete_silence_ms
    recheck_silence_ms: int = Field(500, ge=0, le=1000)  # an "incomplete" verdict is asked once more here; 0: not
    recheck_threshold: float = Field(0.7, gt=0, lt=1)  # ... and that second look must be this sure of "complete"
    incomplete_silence_ms: int = Field(1600, ge=1100, le=10000)  # also when the model gave no answer
    dictation_silence_ms: int = Field(2500, ge=1100, le=10000)  # digits, an address ("complete": the limit above)
    threshold: float = Field(0.5, gt=0, lt=1)  # probability of "complete" that ends the turn
    open_threshold: float = Field(0.8, gt=0, lt=1)  # the same on the open floor (first turn, "anything else?")
    threads: int = Field(1, ge=1, le=16)
    slow_complete_silence_ms: int = Field(1700, ge=200, le=10000)  # a slow caller's "complete" (speech.pace)
    slow_scale: float = Field(1.5, ge=1, le=4)  # a slow caller's other limits, times this
    slow_length_scale: float = Field(1.2, ge=1, le=2)  # and the bot's speech this much slower (Piper length_scale)
