"""The admin's one file, ``config.yaml``, as Pydantic models.

Every section forbids unknown keys. ``load_config`` reads YAML with the safe loader only (so tags such as
``!!python/object`` are errors, never code), keeps the line of every key, and turns validation errors into
``ConfigProblem`` values that name the file, the line and the dotted field. The phone side's sections (``sip``,
``serve``) live in voicebot.config_telephony and the dialer's in voicebot.config_dialer; all are importable from
here.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from voicebot.dialog.flow import DtmfKey, MenuConfig, check_escalation_overlap, default_menu, phrases_have_words
from voicebot.configfile import ConfigError, ConfigProblem, read_yaml_mapping, validation_problems  # noqa: F401
from voicebot.config_dialer import WEEKDAYS, DialerConfig  # noqa: F401 - part of this module's names
from voicebot.config_speech import TurnsConfig, VadConfig  # noqa: F401 - part of this module's names
from voicebot.config_telephony import (ServeConfig, SipAccountConfig, SipConfig,  # noqa: F401
                                       serve_port_problems)
from voicebot.strict import StrictModel, known_time_zone

Section = StrictModel
"""Base of every config section: unknown keys are errors, values are checked on assignment too."""


def _removed(data: Any, removed: dict[str, str]) -> Any:
    """A ``model_validator(mode="before")`` body: a key that no longer exists gets its own message (why, and what
    to set instead) at its own line, not a bare "unknown key"."""
    if isinstance(data, dict):
        found = [{"type": PydanticCustomError("removed_key", f"this key was removed: {why}"), "loc": (key,),
                  "input": data[key]} for key, why in removed.items() if key in data]
        if found:
            raise ValidationError.from_exception_data("removed keys", found)
    return data


class AudioConfig(Section):
    sample_rate: Literal[8000, 16000] = Field(
        16000, description="Rate inside the pipeline: SIP calls (the media clock), the simulated and console "
        "lines, speech recognition and synthesis.")

    @model_validator(mode="before")
    @classmethod
    def _no_frame_ms(cls, data: Any) -> Any:
        return _removed(data, {"frame_ms": "it did nothing; the turn detector cuts audio into vad.frame_ms frames "
                                           "and each phone line keeps its own framing (SIP: 20 ms). Delete the key."})


class SttConfig(Section):
    model: str = "whisper-base"
    language: str | None = Field("en", description="ISO code; null lets Whisper detect the language.")
    beam_size: int = Field(1, ge=1, le=10)
    threads: int = Field(2, ge=1, le=64)
    no_speech_threshold: float = Field(0.6, ge=0, le=1)
    logprob_threshold: float = Field(-1.0, le=0)
    initial_prompt: str | None = None
    company_words: bool = Field(True, description="Give Whisper the company's own words as hotwords: its name, the "
                                "CRM's services and the price list's items (\"Fiber 500\" was heard as \"5 or 500\").")
    window_s: float = Field(10.0, ge=5, le=30, description="Shortest encoder window in seconds: 30 is Whisper's "
                            "own; less transcribes short turns faster (the utterance plus 2 s, at least this long).")
    speech_model: str | None = Field("silero-vad-v6", description="A VAD model (models/manifest.yaml) that must "
                                     "hear speech in a turn before Whisper transcribes it (null: every turn is "
                                     "transcribed; with company words, Whisper wrote them out of line noise).")
    speech_threshold: float = Field(0.15, gt=0, lt=1, description="The speech model's probability, in some 32 ms "
                                    "of the turn, below which the turn holds no speech.")


class TtsConfig(Section):
    voice: str = "piper-en_US-joe-medium"
    length_scale: float = Field(1.0, gt=0.3, le=3.0, description="Above 1 speaks slower.")
    cache_dir: str = "~/.cache/voicebot/tts"


class OllamaConfig(Section):
    url: str = "http://127.0.0.1:11434"
    model: str = "qwen2.5-coder:1.5b-instruct-q4_K_M"
    timeout_s: float = Field(30.0, gt=0, le=600)
    keep_alive: str = "30m"


class LlmConfig(Section):
    backend: Literal["embedded", "ollama"] = "embedded"
    model: str = "qwen2.5-coder-1.5b"
    context_tokens: int = Field(4096, ge=512, le=32768)
    threads: int = Field(2, ge=1, le=64)
    temperature: float = Field(0.2, ge=0, le=2, description="Sampling temperature of every model turn in a call.")
    max_tokens: int = Field(120, ge=1, le=4096, description="The longest model answer in one step of a call (a "
                            "reply, a tool call or a transfer, as JSON); the after-call analysis sets its own.")
    ollama: OllamaConfig = Field(default_factory=OllamaConfig)


class CrmConfig(Section):
    database: str = "data/crm.db"
    default_region: str = Field("US", min_length=2, max_length=2)
    verification_attempts: int = Field(3, ge=1, le=10)
    verification_lockout_hours: float = Field(
        24.0, ge=0, le=720, description="Wrong answers count against an account across calls for this long; "
                                        "0 counts them per call only.")


class StoreConfig(Section):
    database: str = "data/calls.db"
    recordings_dir: str = "data/recordings"
    spill_dir: str = Field("~/.cache/voicebot/spill", description="A second place (ideally another disk) for call "
                           "records the database could not take; the file beside the database is tried first.")


class FaultsConfig(Section):
    """Per-stage time limits: a stage that takes longer is a fault (an apology and a transfer), never a silence."""

    # Limits for a hang, not for a slow turn: on 2 busy cores a long sentence took Piper 4+ s and a cold model
    # prefix 10+ s, and a caller transferred for a slow but good answer is a caller let down.
    stt_timeout_s: float = Field(15.0, gt=0, le=60, description="Longest speech recognition of one caller turn.")
    tts_timeout_s: float = Field(12.0, gt=0, le=60, description="Longest synthesis of one sentence.")
    llm_timeout_s: float = Field(25.0, gt=0, le=120, description="Longest wait for the model's next piece (the "
                                 "first included; the filler plays meanwhile) or for its next tool step.")
    crm_timeout_s: float = Field(10.0, gt=0, le=60, description="Longest CRM lookup or write done by the call itself.")
    hold_after_s: float = Field(2.5, gt=0, le=30, description="The caller has heard nothing this long after their "
                                "turn ended: the pre-rendered hold line plays while the stage goes on to its limit.")
    store_errors: Literal["transfer", "continue"] = Field(
        "transfer", description="When the call store cannot write (a full disk): 'transfer' (the apology and a "
        "person, as for any fault) or 'continue' (the bot goes on; records are spilled and imported later).")


_DISCLOSURE = re.compile(
    r"\b(?:(?:automated|virtual|digital|ai|a\.i\.|computer)\s+(?:assistant|agent|system)|an? (?:ro)?bot)\b",
    re.IGNORECASE,
)
_GREETING_FIELDS = {"name", "company"}


class PromptsConfig(Section):
    """What the bot says at fixed moments of a call. Synthesised once and cached; spoken as written."""

    not_heard: str = Field("Sorry, I didn't catch that. Could you say it again?",
                           description="Nothing usable was heard (an answer the menu cannot place gets the reprompt).")
    transfer: str = Field("I'll connect you with a colleague now. Please hold.", description="Before a transfer.")
    transfer_failed: str = Field(
        "I'm sorry, no one can take your call right now. I've asked a colleague to call you back at this number. "
        "Is there anything else I can help with?", description="The transfer failed; a callback was created.")
    error: str = Field("I'm sorry, something went wrong on my side. Let me connect you with a colleague.",
                       description="Something failed on the bot's side; a transfer follows.")
    offer_human: str = Field("I'm sorry about this. Let me get you to a person who can help.",
                             description="The caller sounds frustrated; a transfer follows.")
    error_goodbye: str = Field(
        "I'm sorry, no one can take your call right now. A colleague will call you back at this number. Goodbye.",
        description="After a failure on the bot's side the transfer failed too: a callback, then the call ends.")
    still_there: str = Field("Are you still there?", description="Silence after a question the bot asked: said "
                             "before the question again.")
    hold: str = Field("Sorry, this is taking a moment. Please stay on the line.",
                      description="Nothing was audible for faults.hold_after_s after the caller's turn (pre-rendered).")
    still_connecting: str = Field("I'm still connecting you, please hold.",
                                  description="Repeated while a transfer rings (pre-rendered).")
    bot_question: str = Field(
        "I'm an automated assistant. I can help with orders, repair visits and quotes, and if you'd rather "
        "talk to a person, just say operator or press zero at any time.",
        description="The caller asked whether they are talking to a machine, or what it can do: an honest answer, "
                    "no transfer. Unset, the bot lists what the company's data allows instead "
                    "(voicebot/dialog/capabilities.py).")
    anything_more: str = Field("Sure. What else can I help you with?",
                               description="A bare \"yes\" to \"Is there anything else I can help with?\".")
    what_about: str = Field("Of course. What can I help you with?",
                            description="The caller's whole turn asks for help without saying what about "
                                        "(\"I need help.\", \"I have a question.\").")
    welcome: str = Field("You're welcome. Is there anything else I can help with?",
                         description="The caller's whole turn thanks the bot (\"Okay, thanks.\") after an answer that "
                                     "asked nothing; said from the cache, no model.")
    hesitation: str = Field("Take your time.",
                            description="The caller's whole turn is a hesitation (\"Um.\", \"Uh...\"): said from the "
                                        "cache, no model, and the bot listens on.")
    goodbye: str = Field("You're welcome. Thank you for calling, and goodbye!",
                         description="The caller's whole turn closes the call (\"that's all, thanks\"); said from the "
                                     "cache, the caller hangs up.")

    @field_validator("*")
    @classmethod
    def _spoken_as_written(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a prompt must say something")
        if "{" in value or "}" in value:
            raise ValueError("prompts are spoken as written: no {placeholders}")
        return value


INTENT_NAMES = ("order_status", "order_history", "booking", "ticket", "lead", "callback", "knowledge", "other")


class IntentsConfig(Section):
    """Requests recognised in code, before any model: nearest example utterances (voicebot/dialog/intents.py)."""

    enabled: bool = Field(True, description="Off: every free-form turn goes to the language model.")
    examples: dict[Literal[INTENT_NAMES], list[str]] = Field(  # type: ignore[valid-type]
        default_factory=dict, description="More example utterances per intent (any language), added to the "
                                          "built-in ones; 'other' holds what is no request.")
    threshold: float = Field(0.84, ge=0, le=1, description="The intent's examples must be at least this close ...")
    margin: float = Field(0.005, ge=0, le=1, description="... and this much closer than any other intent's.")


class DialogConfig(Section):
    company: str = "Northwind Supplies"
    greeting: str = (
        "Hello{name}, you are speaking with the automated assistant of {company}. "
        "How can I help you today? You can say operator at any time."
    )
    system_prompt: str = (
        "You are the phone assistant of {company}. Answer in one or two short plain sentences. "
        "Say only what the tools return; never invent order numbers, dates or amounts."
    )
    filler: str = "One moment, let me check that."
    filler_after_ms: int = Field(1200, ge=0, le=10000)
    prompts: PromptsConfig = Field(default_factory=PromptsConfig)
    intents: IntentsConfig = Field(default_factory=IntentsConfig)
    menu: MenuConfig = Field(default_factory=default_menu, description="Menu nodes; see voicebot/dialog/flow.py.")

    @field_validator("greeting")
    @classmethod
    def _discloses_a_bot(cls, value: str) -> str:
        """Callers must hear at once that they are talking to a machine (honest, and the research asks for it)."""
        try:
            fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ValueError(f"unbalanced braces: {exc}") from exc
        if fields - _GREETING_FIELDS:
            unknown = ", ".join("{" + f + "}" for f in sorted(fields - _GREETING_FIELDS))
            raise ValueError(f"unknown placeholder {unknown}; the greeting may use {{name}} and {{company}}")
        if not _DISCLOSURE.search(value):
            raise ValueError("the greeting must tell callers they are talking to a machine: say e.g. "
                             "'automated assistant', 'virtual assistant', 'AI assistant' or 'a bot'")
        return value


class EscalationConfig(Section):
    """When the guard hands the call to a human: checked before any menu or model, at every step of the call."""

    operator_phrases: list[str] = Field(
        default_factory=lambda: [
            "operator", "agent", "human", "real person", "live person", "representative",
            "talk to someone", "speak to someone", "talk to a person", "speak to a person",
        ],
        min_length=1,
    )
    dtmf_key: DtmfKey = "0"
    max_no_match: int = Field(2, ge=1, le=10)
    max_no_input: int = Field(2, ge=1, le=10)
    frustration_threshold: float = Field(-0.5, ge=-1, le=0, description="Mean sentiment over sentiment_turns.")
    sentiment_turns: int = Field(3, ge=1, le=10, description="Caller turns the mean sentiment is taken over.")
    max_confused_turns: int = Field(2, ge=1, le=4, description="'What?', 'sorry?' turns among the last four.")
    repeat_similarity: float = Field(0.85, ge=0.5, le=1, description="A turn this like the last is a repeat.")

    _phrases_have_words = field_validator("operator_phrases")(phrases_have_words)


class ReviewConfig(Section):
    """The supervisors' review web app (`voicebot review`) and the after-call analysis."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    session_minutes: int = Field(30, ge=1, le=24 * 60, description="A login ends after this long idle.")
    database: str = Field("data/review.db", description="Users, login sessions and the access log.")
    timezone: str | None = Field(None, description="IANA name; dates in the app and the per-day charts use it. "
                                 "Unset: the company's (the knowledge folder's hours.yaml), else UTC.")
    page_size: int = Field(25, ge=5, le=200)
    secure_cookies: bool = Field(False, description="Set true when the app is served over HTTPS.")
    long_silence_s: float = Field(5.0, gt=0, le=60, description="A gap this long in a call flags it.")
    upset_sentiment: float = Field(-0.5, ge=-1, le=0, description="A caller turn this negative flags the call.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        return None if value is None else known_time_zone(value)


class KnowledgeConfig(Section):
    """The company's knowledge (``voicebot kb``): Markdown entries, hours and prices the bot answers from."""

    enabled: bool = True
    dir: str = Field("knowledge", description="Markdown files (one entry per heading), hours.yaml, prices.yaml.")
    model: str = Field("multilingual-e5-small", description="Embedding model from models/manifest.yaml.")
    confident: float = Field(0.32, ge=0, le=1, description="A fused score this high answers from the entry ...")
    margin: float = Field(0.10, ge=0, le=1, description="... when it leads the next document by this much (or "
                          "scores 0.2 above confident).")
    weak: float = Field(0.25, ge=0, le=1, description="Below confident but this high: ask or offer a person.")
    threads: int = Field(1, ge=1, le=64, description="Embedding threads: one query is ~10 ms on one idle core, "
                         "and a second thread mostly waits on Whisper and the LLM.")

    @field_validator("weak")
    @classmethod
    def _below_confident(cls, value: float, info: ValidationInfo) -> float:
        confident = info.data.get("confident")
        if confident is not None and value > confident:
            raise ValueError(f"weak ({value}) must not be above confident ({confident})")
        return value


class ModelsConfig(Section):
    dir: str = "models"
    cache_dir: str = Field("~/.cache/voicebot", description="Downloaded packages live here, outside the repo.")


class Config(Section):
    sip: SipConfig = Field(default_factory=SipConfig)
    audio: AudioConfig = Field(default_factory=AudioConfig)
    vad: VadConfig = Field(default_factory=VadConfig)
    turns: TurnsConfig = Field(default_factory=TurnsConfig)
    stt: SttConfig = Field(default_factory=SttConfig)
    tts: TtsConfig = Field(default_factory=TtsConfig)
    llm: LlmConfig = Field(default_factory=LlmConfig)
    crm: CrmConfig = Field(default_factory=CrmConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    faults: FaultsConfig = Field(default_factory=FaultsConfig)
    dialog: DialogConfig = Field(default_factory=DialogConfig)
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    review: ReviewConfig = Field(default_factory=ReviewConfig)
    knowledge: KnowledgeConfig = Field(default_factory=KnowledgeConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    dialer: DialerConfig = Field(default_factory=DialerConfig)

    # Set by load_config: paths in the file are relative to the file's folder.
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @model_validator(mode="after")
    def _menu_vs_escalation(self) -> "Config":
        """The escalation key and phrases always mean a human: a menu option may not take them elsewhere."""
        check_escalation_overlap(self.dialog.menu, self.escalation.dtmf_key, self.escalation.operator_phrases)
        return self

    @model_validator(mode="after")
    def _dialer_lines(self) -> "Config":
        """The dialer's calls and the lines kept free for inbound callers must fit in a worker's lines; its key
        may not be the key for a person."""
        d = self.dialer
        if d.max_concurrent + d.free_lines > self.sip.max_calls:
            raise ValueError(f"dialer.max_concurrent ({d.max_concurrent}) + dialer.free_lines ({d.free_lines}) "
                             f"exceeds sip.max_calls ({self.sip.max_calls}): inbound callers would lose lines")
        if d.opt_out_key == self.escalation.dtmf_key:
            raise ValueError(f"dialer.opt_out_key {d.opt_out_key!r} is escalation.dtmf_key, the key for a person")
        return self

    @model_validator(mode="after")
    def _company_zone(self, info: ValidationInfo) -> "Config":
        """Unset time zones (``review``, ``dialer``) are the company's: ``hours.yaml``'s, the zone its opening hours,
        its CRM's clock and its callers' "today" are in (``knowledge.hours.company_clock``); UTC when there is no file
        to read it from (a config made in code, knowledge off, no or a broken hours file). Why: both were UTC while
        the demo's hours are in Los Angeles: a dialer turned on called at 1 AM the callees' time, a reminder's "day
        before" and the review app's days began at 4 PM the day before."""
        if self.review.timezone is not None and self.dialer.timezone is not None:
            return self
        from voicebot.knowledge.hours import company_zone

        base_dir = (info.context or {}).get("base_dir") if info is not None else None
        zone = company_zone(Path(base_dir) / self.knowledge.dir) if base_dir and self.knowledge.enabled else None
        for section in (self.review, self.dialer):
            if section.timezone is None:
                section.timezone = zone or "UTC"
        return self

    @model_validator(mode="after")
    def _serve_ports(self) -> "Config":
        """Ports of the proxy, the workers and /metrics must not clash (each error at its own serve.* key)."""
        problems = [{"type": PydanticCustomError("serve_ports", message), "loc": ("serve", field),
                     "input": getattr(self.serve, field)}
                    for field, message in serve_port_problems(self.sip, self.serve)]
        if problems:
            raise ValidationError.from_exception_data("Config", problems)
        return self

    def path(self, value: str) -> Path:
        """Resolve a path from the config: ``~`` expanded, relative paths against the config's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate a config file; raise ConfigError listing every problem. ``None`` gives the defaults.
    Reading is ``voicebot.configfile``'s job (safe YAML, bounded aliases, duplicate keys, key lines)."""
    if path is None:
        return Config()
    path = Path(path)
    data, lines = read_yaml_mapping(path)
    try:
        config = Config.model_validate(data, context={"base_dir": path.resolve().parent})  # sip.tls files
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, str(path), lines)) from exc
    config.base_dir = path.resolve().parent
    return config
