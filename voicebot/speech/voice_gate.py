"""Is this frame the caller's voice? webrtcvad's call, checked by a second opinion (Silero), in audio time.

Why two: webrtcvad is cheap and hears every soft word end, but it also calls traffic, a crowd or the bot's own
voice on a speakerphone speech (recorded street noise: 98% of its frames at -30 dBFS). A turn said in the street
then never found the silence that ends it, and a "mm-hmm" over the bot never ended. Silero tells a voice from
such noise (its 32 ms chunks reached at most 0.28 on recorded street, train and crowd at -40..-20 dBFS, 0.54 and
more on speech), but it is slower to agree: 60-400 ms after webrtcvad hears a word begin. So a frame is speech
when webrtcvad says so and Silero heard a voice lately, and webrtcvad's own run says where the speech began and
whether the caller may be going on while Silero makes up its mind. The ``TurnDetector`` owns one per call.
"""

from __future__ import annotations

SECOND_OPINION_HOLD_MS = 200  # a "speech" from the second opinion counts this long (it hears in 32 ms chunks)
# Any speech at all, for the turn: the second opinion's probability that webrtcvad's "speech" must come with. On
# recorded street, train and crowd noise at -40..-20 dBFS Silero's 32 ms chunks reached at most 0.28 (train, 0.3%
# of them over 0.15); on speech, one-word answers ("Two.", 26 dB down too) and a human voice, 0.54 and more.
VOICE_THRESHOLD = 0.3
VOICE_HOLD_MS = 200
# Silero agrees 60-400 ms after webrtcvad hears a word begin ("Hello" lost its first syllable; a soft "and" after a
# pause took 400 ms): the utterance starts where webrtcvad's run of speech began, at most this much earlier, with
# the preroll in front of it, and while webrtcvad hears a run this young that Silero has not agreed is speech, the
# turn does not end.
VOICE_LAG_MS = 500
WEBRTC_GAP_MS = 100  # webrtcvad's run of speech goes on over gaps this short (it drops frames inside soft words)


class VoiceGate:
    """One call's second opinion and webrtcvad's run of speech. Call ``hear`` then ``step`` once per frame."""

    def __init__(self, second, frame_ms: int):  # noqa: ANN001 - a SileroVad (``stream()``) or None
        self.stream = second.stream() if second is not None else None
        self.frame_ms = frame_ms
        self._second_hold = 0  # frames the second opinion's last "speech" still counts for
        self._voice_hold = 0  # frames its last "a voice, however faint" still counts for (VOICE_THRESHOLD)
        self._began_ms = self._last_ms = -10 ** 9  # webrtcvad's current run of speech (not echo)
        self.unconfirmed = False  # this frame: webrtcvad hears speech the second opinion has not yet agreed is

    @property
    def confirmed(self) -> bool:
        """The second opinion heard speech lately at its own threshold (speech over the bot), or there is none."""
        return self.stream is None or self._second_hold > 0

    @property
    def voiced(self) -> bool:
        """The second opinion heard a voice lately, however faint (the turn's speech), or there is none."""
        return self.stream is None or self._voice_hold > 0

    def hear(self, heard: bytes, sample_rate: int) -> None:
        """The second opinion's verdict on this frame (echo already zeroed), held as the constants say."""
        if self.stream is None:
            return
        self.stream.is_speech(heard, sample_rate)
        probability = self.stream.probability
        hold = SECOND_OPINION_HOLD_MS // self.frame_ms
        self._second_hold = hold if probability >= self.stream.model.threshold else max(0, self._second_hold - 1)
        voice_hold = VOICE_HOLD_MS // self.frame_ms
        self._voice_hold = voice_hold if probability >= VOICE_THRESHOLD else max(0, self._voice_hold - 1)

    def step(self, webrtc: bool, start_ms: int, end_ms: int) -> int:
        """webrtcvad's verdict on the frame ``start_ms``-``end_ms`` (echo gated), after ``hear``; returns how many
        frames before this one webrtcvad's run began (the turn's onset, at most ``VOICE_LAG_MS``), and sets
        ``unconfirmed``: a young run Silero has not ruled on, during which no turn ends."""
        speech = webrtc and self.voiced  # the turn's speech
        if webrtc:
            if end_ms - self._last_ms > WEBRTC_GAP_MS + self.frame_ms:
                self._began_ms = start_ms
            self._last_ms = end_ms
        heard_ms = self._last_ms - self._began_ms if end_ms - self._last_ms <= WEBRTC_GAP_MS else 0
        self.unconfirmed = not speech and self.stream is not None and 0 < heard_ms <= VOICE_LAG_MS
        return min(heard_ms, VOICE_LAG_MS) // self.frame_ms - (1 if speech and heard_ms else 0)
