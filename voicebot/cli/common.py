"""What every command module of the CLI shares: the consoles, ``--config`` and its loading, errors.

The command modules import this one and nothing else of the package, so none of them imports another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from voicebot.config import Config, ConfigError, load_config

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", envvar="VOICEBOT_CONFIG",
                 help="Config file (default: ./config.yaml if present, else built-in defaults)."),
]


def default_config_path() -> Path | None:
    path = Path("config.yaml")
    return path if path.is_file() else None


def get_config(path: Path | None) -> Config:
    """Load the config or print every problem and exit 2: a broken config never starts anything."""
    try:
        return load_config(path if path is not None else default_config_path())
    except ConfigError as exc:
        err_console.print(f"[red]config has {len(exc.problems)} problem(s):[/red]")
        for problem in exc.problems:
            err_console.print(f"  {problem}", markup=False, highlight=False)
        raise typer.Exit(2) from None


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def default_models(config: Config) -> list[str]:
    """The models the config uses: the ones `models pull` fetches when no name is given."""
    names = [config.stt.model, config.tts.voice]
    if config.llm.backend == "embedded":
        names.append(config.llm.model)
    if config.knowledge.enabled:  # the knowledge base's embeddings: scripts/setup.sh pulls them by default
        names.append(config.knowledge.model)
    if config.turns.model:  # the end-of-turn model: scripts/setup.sh pulls it by default
        names.append(config.turns.model)
    if config.vad.second_opinion:  # Silero, the second opinion on the caller's speech
        names.append(config.vad.second_opinion)
    if config.stt.speech_model and config.stt.speech_model not in names:  # Silero, before Whisper hears a turn
        names.append(config.stt.speech_model)
    return names
