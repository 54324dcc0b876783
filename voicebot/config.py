"""The admin's one file, ``config.yaml``, as Pydantic models.

Every section forbids unknown keys. ``load_config`` reads YAML with the safe loader only (so tags such as
``!!python/object`` are errors, never code), keeps the line of every key, and turns validation errors into
``ConfigProblem`` values that name the file, the line and the dotted field.
"""

from __future__ import annotations

import ipaddress
import re
import string
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from voicebot.dialog.flow import DtmfKey, MenuConfig, check_escalation_overlap, default_menu, phrases_have_words
from voicebot.configfile import ConfigError, ConfigProblem, read_yaml_mapping, validation_problems  # noqa: F401
from voicebot.strict import StrictModel

Section = StrictModel
"""Base of every config section: unknown keys are errors, values are checked on assignment too."""


class SipAccountConfig(Section):
    """One registration at a PBX or SIP trunk (``sip.accounts``): the bot registers as ``user`` at ``registrar``
    and answers the calls the registrar sends it. The password comes from exactly one of ``password``,
    ``password_file`` (its first line) or ``password_env``; it is never logged and shows as ``**********`` in
    any dump of the config."""

    registrar: str = Field(description="The registrar's SIP URI, e.g. sip:pbx.example.com or sip:10.0.0.5:5060.")
    user: str = Field(min_length=1, description="The extension or account name: sip:user@registrar-host.")
    auth_user: str | None = Field(None, description="The digest user name when it differs from user.")
    realm: str = Field("*", description="The digest realm the credentials are for; * answers any realm.")
    password: SecretStr | None = None
    password_file: str | None = Field(None, description="A file holding the password (first line), relative "
                                      "to the config file's folder.")
    password_env: str | None = Field(None, description="An environment variable holding the password.")
    expiry_s: int = Field(300, ge=10, le=86400, description="Registration lifetime asked for; refreshed before.")
    outbound_proxy: str | None = Field(None, description="Send REGISTERs (and the account's calls) through this "
                                       "SIP URI; calls from its address are trusted like the registrar's.")
    contact_host: str | None = Field(None, description="host[:port] the registrar is asked to send calls to (the "
                                     "Contact; e.g. a forwarded public address): default the bot's own address. "
                                     "It must lead to this endpoint itself (calls answer with it), not to a proxy.")
    transport: Literal["udp", "tcp"] = "udp"
    retry_s: int = Field(30, ge=1, le=3600, description="First retry after a failed registration; doubles on "
                         "each further failure up to max_retry_s.")
    max_retry_s: int = Field(300, ge=1, le=86400)

    @field_validator("registrar", "outbound_proxy")
    @classmethod
    def _sip_uri(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"sips?:[^@\s;>]+(;[^\s>]*)?", value):
            raise ValueError(f"{value!r} is not a registrar SIP URI (sip:host[:port], no user part)")
        return value

    @field_validator("user", "auth_user")
    @classmethod
    def _no_uri_chars(cls, value: str | None) -> str | None:
        if value is not None and re.search(r"[\s@:;<>\"]", value):
            raise ValueError(f"{value!r}: a user name only, without @, :, ; or spaces")
        return value

    @field_validator("contact_host")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[^\s@:;<>\[\]]+)(:\d{1,5})?", value):
            raise ValueError(f"{value!r}: host[:port] only, e.g. 192.0.2.10:5060")
        return value

    @model_validator(mode="after")
    def _one_password_source(self) -> "SipAccountConfig":
        given = [name for name in ("password", "password_file", "password_env") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("set exactly one of password, password_file, password_env"
                             + (f" (got {', '.join(given)})" if given else ""))
        if self.max_retry_s < self.retry_s:
            raise ValueError(f"max_retry_s ({self.max_retry_s}) is below retry_s ({self.retry_s})")
        return self

    @property
    def name(self) -> str:
        """``user@registrar-host[:port]``: how logs and /metrics name the account (no secret in it)."""
        host = self.registrar.split(":", 1)[1].split(";", 1)[0]
        return f"{self.user}@{host}"


class SipConfig(Section):
    listen_address: str = "127.0.0.1"
    port: int = Field(5060, ge=1, le=65535)
    transports: list[Literal["udp", "tcp"]] = Field(default_factory=lambda: ["udp", "tcp"], min_length=1)
    allowed_sources: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8"],
        description="IP addresses or networks allowed to send INVITEs; every other source gets 403.",
    )
    operator_uri: str = "sip:operator@127.0.0.1:5070"
    transfer_targets: list[str] = Field(
        default_factory=list, description="The only SIP URIs besides operator_uri a call may be transferred to: "
        "a transfer anywhere else is refused before any SIP is sent."
    )
    codecs: list[Literal["PCMU", "PCMA", "G722"]] = Field(default_factory=lambda: ["PCMU", "PCMA", "G722"])
    rtp_timeout_s: float = Field(20.0, gt=0, le=600)
    rtp_source_check: bool = Field(
        True, description="Hang up a call whose RTP starts coming from an address that is neither the call's SIP "
                          "peer, its SDP address nor in allowed_sources (a media hijack: pjmedia follows the new "
                          "source, so the bot's speech would go there). Off for setups where media comes from "
                          "elsewhere, e.g. phones behind NAT with direct media.")
    max_calls: int = Field(4, ge=1, le=4, description="The pjsua2 wheel allows at most 4 calls per process.")
    transfer_mode: Literal["blind", "warm"] = "blind"
    auth_users_file: str | None = Field(
        None, description="Digest authentication of direct callers: a file of user:password lines (relative to "
        "the config file). Set: an INVITE from allowed_sources must authenticate (401, then 403 for wrong "
        "credentials); calls from a registrar in accounts are exempt. Never logged.")
    auth_realm: str = Field("voicebot", min_length=1, pattern=r'^[^"\\\s]+$',
                            description="The realm callers' digest credentials are for.")
    accounts: list[SipAccountConfig] = Field(
        default_factory=list, description="Registrations at a PBX or trunk; calls the registrar (or the account's "
        "outbound proxy) sends are answered even from outside allowed_sources.")

    @field_validator("allowed_sources")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP address or network") from exc
        return value

    @field_validator("operator_uri", "transfer_targets")
    @classmethod
    def _sip_uris(cls, value: str | list[str]) -> str | list[str]:
        for uri in [value] if isinstance(value, str) else value:
            if not uri.startswith(("sip:", "sips:")):
                raise ValueError(f"{uri!r} is not a SIP URI (sip:user@host[:port])")
        return value

    def transfer_allowed(self, target: str) -> bool:
        """Whether a call may be transferred to ``target``: the operator URI or one of ``transfer_targets``."""
        return target == self.operator_uri or target in self.transfer_targets


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


class VadConfig(Section):
    aggressiveness: int = Field(2, ge=0, le=3)
    frame_ms: Literal[10, 20, 30] = 20
    end_of_turn_silence_ms: int = Field(700, ge=100, le=5000)
    digits_silence_ms: int = Field(1500, ge=100, le=10000)
    min_speech_ms: int = Field(200, ge=20, le=5000)
    preroll_ms: int = Field(300, ge=0, le=2000)
    barge_in_ms: int = Field(200, ge=20, le=2000)
    early_stt_ms: int = Field(300, ge=0, le=5000, description="Start speech recognition after this much silence, "
                              "before the turn surely ended (0: wait for the end of turn).")
    no_input_timeout_s: float = Field(7.0, gt=0, le=60)
    echo_margin_db: float = Field(
        20.0, ge=0, le=60,
        description="Caller audio this far below the bot's own playback level is its echo, not speech.",
    )


class TurnsConfig(Section):
    """End of turn decided by a turn model after a short pause; ``model: null``: the fixed ``vad`` silences."""
    model: str | None = "smart-turn-v3.2"
    check_silence_ms: int = Field(200, ge=40, le=1000)  # bounds keep it below incomplete_silence_ms
    incomplete_silence_ms: int = Field(1600, ge=1100, le=10000)  # also when the model gave no answer
    dictation_silence_ms: int = Field(2500, ge=1100, le=10000)  # digits, an address ("complete": the limit above)
    threshold: float = Field(0.5, gt=0, lt=1)  # probability of "complete" that ends the turn
    threads: int = Field(1, ge=1, le=16)


class SttConfig(Section):
    model: str = "whisper-base"
    language: str | None = Field("en", description="ISO code; null lets Whisper detect the language.")
    beam_size: int = Field(1, ge=1, le=10)
    threads: int = Field(2, ge=1, le=64)
    no_speech_threshold: float = Field(0.6, ge=0, le=1)
    logprob_threshold: float = Field(-1.0, le=0)
    initial_prompt: str | None = None


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
    bot_question: str = Field(
        "Yes, I'm an automated assistant. I can help with orders, repair visits and quotes, and if you'd rather "
        "talk to a person, just say operator or press zero at any time.",
        description="The caller asked whether they are talking to a machine: an honest answer, no transfer.")

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
    timezone: str = Field("UTC", description="IANA name; dates in the app and the per-day charts use it.")
    page_size: int = Field(25, ge=5, le=200)
    secure_cookies: bool = Field(False, description="Set true when the app is served over HTTPS.")
    long_silence_s: float = Field(5.0, gt=0, le=60, description="A gap this long in a call flags it.")
    upset_sentiment: float = Field(-0.5, ge=-1, le=0, description="A caller turn this negative flags the call.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a known time zone (e.g. UTC, Europe/Berlin)") from exc
        return value


class KnowledgeConfig(Section):
    """The company's knowledge (``voicebot kb``): Markdown entries, hours and prices the bot answers from."""

    enabled: bool = True
    dir: str = Field("knowledge", description="Markdown files (one entry per heading), hours.yaml, prices.yaml.")
    model: str = Field("multilingual-e5-small", description="Embedding model from models/manifest.yaml.")
    confident: float = Field(0.38, ge=0, le=1, description="A fused score this high answers from the entry ...")
    margin: float = Field(0.04, ge=0, le=1, description="... when it leads the next document by this much (or "
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


class ServeConfig(Section):
    """How `voicebot serve` runs: one process on ``sip.port``, or Kamailio there in front of N worker processes."""

    workers: int = Field(1, ge=1, le=16, description="1: one process answers on sip.port; more: Kamailio on "
                         "sip.port dispatches to that many worker processes (4 calls each).")
    worker_base_port: int = Field(5080, ge=1024, le=65535, description="Worker i's SIP port is this + i.")
    rtp_base_port: int = Field(20000, ge=1024, le=65535, description="Worker i's RTP ports start at this + "
                               "i * rtp_ports_per_worker.")
    rtp_ports_per_worker: int = Field(1000, ge=100, le=10000, description="Size of each worker's RTP port block.")
    drain_timeout_s: float = Field(30.0, ge=0, le=3600, description="On SIGTERM live calls get this long to end.")
    metrics_port: int = Field(9464, ge=0, le=65535, description="Prometheus /metrics; 0 turns it off.")
    metrics_address: str = "127.0.0.1"
    run_dir: str = Field("data/run", description="Generated Kamailio config, dispatcher list, pid file, control "
                         "socket and the workers' metrics files.")

    @field_validator("metrics_address")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IP address") from exc
        return value


def serve_port_problems(sip: SipConfig, serve: ServeConfig, workers: int | None = None) -> list[tuple[str, str]]:
    """Port clashes of a multi-worker setup as (serve field, message); empty when fine. ``workers`` overrides
    ``serve.workers`` (the ``--workers`` option). With one worker only the metrics port is checked."""
    n = serve.workers if workers is None else workers
    problems = []
    if serve.metrics_port and serve.metrics_port == sip.port:
        problems.append(("metrics_port", f"{serve.metrics_port} is sip.port too"))
    if n <= 1:
        return problems
    sip_ports = range(serve.worker_base_port, serve.worker_base_port + n)
    rtp_ports = range(serve.rtp_base_port, serve.rtp_base_port + n * serve.rtp_ports_per_worker)
    sip_span, rtp_span = f"{sip_ports[0]}-{sip_ports[-1]}", f"{rtp_ports[0]}-{rtp_ports[-1]}"
    if sip_ports[-1] > 65535:
        problems.append(("worker_base_port", f"{serve.worker_base_port} + {n} workers goes past port 65535"))
    if rtp_ports[-1] > 65535:
        problems.append(("rtp_base_port", f"{serve.rtp_base_port} + {n} workers x {serve.rtp_ports_per_worker} "
                                          "RTP ports goes past port 65535"))
    if sip.port in sip_ports:
        problems.append(("worker_base_port", f"worker ports {sip_span} include sip.port {sip.port}, where "
                                             "Kamailio listens"))
    if sip.port in rtp_ports or sip.port + 1 in rtp_ports:
        problems.append(("rtp_base_port", f"RTP ports {rtp_span} include sip.port {sip.port}"))
    if set(sip_ports) & set(rtp_ports):
        problems.append(("rtp_base_port", f"RTP ports {rtp_span} overlap the worker SIP ports {sip_span}"))
    if serve.metrics_port and serve.metrics_port in sip_ports:
        problems.append(("metrics_port", f"{serve.metrics_port} is a worker's SIP port ({sip_span})"))
    return problems


# -- the dialer (issue 18): proactive calls, one block ---------------------------------------------------------
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)")


def _default_hours() -> dict[str, str]:
    return {day: "09:00-18:00" if day not in ("sat", "sun") else "closed" for day in WEEKDAYS}


class DialerConfig(Section):
    """Proactive calls from ``voicebot serve`` (``voicebot.dialer``): the CRM's due callbacks, dialled within the
    company's calling hours, with attempt limits and spacing, a do-not-call list and a cap that always leaves
    lines for inbound callers. Off unless ``enabled``."""

    enabled: bool = Field(False, description="Work the CRM's due callbacks from `voicebot serve` (worker 0 only).")
    timezone: str = Field("UTC", description="IANA zone the calling hours are in (the callees' local time).")
    hours: dict[str, str] = Field(default_factory=_default_hours, description="Calling hours per weekday (mon-sun):"
                                  " 'HH:MM-HH:MM', several spans separated by commas, or 'closed'; a day left out "
                                  "is closed.")
    max_attempts: int = Field(3, ge=1, le=20, description="Calls per callback before it is given up (failed).")
    spacing_min: float = Field(60.0, gt=0, le=7 * 24 * 60, description="Minutes between two attempts on one "
                               "callback, and between any two calls to one number.")
    max_concurrent: int = Field(1, ge=1, le=3, description="Outbound calls at once; a worker has 4 lines in all.")
    free_lines: int = Field(1, ge=1, le=3, description="Lines that must stay free for inbound callers after a "
                            "call is placed: no call goes out when fewer would be left.")
    dnc_file: str = Field("data/do-not-call.txt", description="Do-not-call list: one number per line (E.164), "
                          "# comments; opt-outs are appended. Relative to config.yaml.")
    dial_uri: str = Field("sip:{number}@127.0.0.1:5070", description="Where a number is dialled: {number} is "
                          "replaced by the E.164 number (e.g. sip:{number}@pbx.example.com for the trunk).")
    caller_id: str | None = Field(None, description="The From user of outbound calls (e.g. the company's number).")
    ring_timeout_s: float = Field(30.0, ge=1, le=180, description="Unanswered after this long: no_answer.")
    poll_s: float = Field(30.0, gt=0, le=3600, description="How often due callbacks are looked for.")
    opt_out_key: str = Field("9", pattern=r"^[0-9*#]$", description="The key a callee presses to opt out.")
    opt_out_phrases: list[str] = Field(default_factory=lambda: [
        "don't call me again", "do not call me again", "don't call me", "do not call me", "stop calling",
        "remove me from your list", "take me off your list", "remove my number", "never call me"],
        min_length=1, description="Said by a callee, any of these opts the number out (case and punctuation "
        "ignored).")
    opening: str = Field("Hello, this is the automated assistant of {company} calling back about: {reason}. "
                         "To stop these calls, say so or press {key}.",
                         description="The first words of a callback call; {reason} is the callback's reason as "
                         "the caller gave it, never account data.")
    opt_out_goodbye: str = "Understood. We will not call this number again. Goodbye."

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return ReviewConfig._known_zone(value)

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: dict[str, str]) -> dict[str, str]:
        for day, spans in value.items():
            if day not in WEEKDAYS:
                raise ValueError(f"{day!r} is not a weekday ({', '.join(WEEKDAYS)})")
            if spans.strip() != "closed":
                for span in spans.split(","):
                    m = _SPAN.fullmatch(span.strip())
                    if m is None or (m[3], m[4]) <= (m[1], m[2]) or (m[3] == "24" and m[4] != "00"):
                        raise ValueError(f"{day}: {span.strip()!r} is not a span 'HH:MM-HH:MM' (end after start)")
        return value

    @field_validator("dial_uri")
    @classmethod
    def _dial_uri(cls, value: str) -> str:
        if "{number}" not in value or not value.startswith(("sip:", "sips:")):
            raise ValueError(f"{value!r} must be a SIP URI with {{number}} in it")
        return value

    @field_validator("opening")
    @classmethod
    def _opening(cls, value: str) -> str:
        if "{reason}" not in value:
            raise ValueError("the opening must say why the bot calls: put {reason} in it")
        return value


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
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(exc, str(path), lines)) from exc
    config.base_dir = path.resolve().parent
    return config
