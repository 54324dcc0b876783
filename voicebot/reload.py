"""SIGHUP reloads the config of a running `voicebot serve`: what can change live does, for the next call.

Why not a restart: a restart drops no call (the drain) but takes the models' load time and the lines with it;
an administrator changing a prompt or a time limit should not need that. Why not everything: the models, the SIP
transports and the databases are opened once per process; changing them under live calls is a crash waiting.

So ``reload``:
1. reads and validates the file as `serve` does at start (``load_config``). An invalid file changes nothing: the
   old config stays, and every problem is logged with its file:line, as `check-config` prints it;
2. takes the sections in ``LIVE`` from the new file (the call's words and prompts, limits, turn-taking, escalation,
   CRM verification rules): a session reads its config when the call starts, so a live call keeps the config it
   began with and the next call gets the new one;
3. keeps the running value of everything else and logs, by key, what changed there and needs a restart;
4. renders the pre-rendered prompts (apology, hold line) again when they changed.

Under `serve --workers N` the supervisor checks the file once and forwards SIGHUP to every worker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from voicebot import compute
from voicebot.config import Config, load_config
from voicebot.configfile import ConfigError

log = logging.getLogger(__name__)

LIVE = ("vad", "faults", "escalation")  # read by each call as it starts
LIVE_FIELDS = {"dialog": ("intents",), "turns": ("model",),  # live but for these (loaded once per process)
               "crm": ("database", "default_region")}


@dataclass
class Reloaded:
    """What a reload did: ``applied`` keys now in effect for new calls, ``restart`` keys that changed in the file
    but keep their running value until a restart, ``problems`` why the file was refused (nothing applied)."""

    config: Config
    applied: list[str] = field(default_factory=list)
    restart: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _changed(old: Any, new: Any, prefix: str) -> list[str]:
    """Dotted keys that differ between two sections (or values)."""
    if isinstance(old, BaseModel) and type(old) is type(new):
        out: list[str] = []
        for name in type(old).model_fields:
            out += _changed(getattr(old, name), getattr(new, name), f"{prefix}.{name}")
        return out
    return [] if old == new else [prefix]


def merge(running: Config, new: Config) -> Reloaded:
    """The config the process runs with after a reload from ``new`` (see the module docstring)."""
    update: dict[str, Any] = {}
    applied: list[str] = []
    restart: list[str] = []
    for name in type(running).model_fields:
        old_section, new_section = getattr(running, name), getattr(new, name)
        changed = _changed(old_section, new_section, name)
        if not changed:
            continue
        if name in LIVE:
            update[name] = new_section
            applied += changed
        elif name in LIVE_FIELDS:
            fixed = {f"{name}.{key}" for key in LIVE_FIELDS[name]}
            keep = {key: getattr(old_section, key) for key in LIVE_FIELDS[name]}
            update[name] = new_section.model_copy(update=keep)
            applied += [key for key in changed if key not in fixed]
            restart += [key for key in changed if key in fixed]
        else:
            restart += changed
    merged = running.model_copy(update=update)
    return Reloaded(merged, applied, restart)


def read(path: Path, running: Config) -> Reloaded:
    """Read ``path``: the merged config, or the running one with the file's problems."""
    try:
        new = load_config(path)
    except ConfigError as exc:
        return Reloaded(running, problems=[str(p) for p in exc.problems])
    except OSError as exc:
        return Reloaded(running, problems=[f"{path}: {exc.strerror or exc}"])
    return merge(running, new)


def report(result: Reloaded, path: Path, who: str = "serve") -> None:
    """Log the reload's result: each problem with its file:line, what applies, what waits for a restart."""
    if not result.ok:
        log.error("%s: config reload (SIGHUP) refused, the running config stays: %d problem(s) in %s",
                  who, len(result.problems), path)
        for problem in result.problems:
            log.error("%s: config reload: %s", who, problem)
        return
    log.warning("%s: config reloaded from %s (SIGHUP): %s; for new calls (live calls keep theirs)", who, path,
                ", ".join(result.applied) or "nothing changed")
    if result.restart:
        log.warning("%s: changed in %s but applied only by a restart: %s", who, path, ", ".join(result.restart))


async def reload_worker(worker: Any, path: Path | None) -> Reloaded:
    """Reload ``path`` into a serving ``voicebot.worker.Worker``: its config and the SessionDeps new calls get
    (live calls hold their own). The pre-rendered prompts are rendered again off the loop when they changed."""
    if path is None:
        result = Reloaded(worker.config, problems=["serve runs on the built-in defaults (no config file): nothing "
                                                   "to reload"])
        report(result, Path("(no config file)"), getattr(worker, "name", "serve"))
        return result
    result = read(path, worker.config)
    if result.ok and result.applied and worker.deps is not None:
        deps = worker.deps
        fallback = deps.fallback
        if any(key.startswith("dialog.prompts.") for key in result.applied) or \
                result.config.audio.sample_rate != deps.config.audio.sample_rate:
            from voicebot.session.faults import FallbackSpeech

            try:
                fallback = await compute.run(FallbackSpeech.render, deps.synthesizer,
                                                   result.config.dialog.prompts, result.config.audio.sample_rate)
            except Exception as exc:  # noqa: BLE001 - a broken synthesizer: keep the old config whole
                result = Reloaded(worker.config, problems=[f"{path}: the new prompts could not be rendered: {exc}"])
        if result.ok:
            worker.deps = replace(deps, config=result.config, fallback=fallback)
            worker.config = result.config
    report(result, path, getattr(worker, "name", "serve"))
    return result
