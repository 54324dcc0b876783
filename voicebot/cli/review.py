"""`voicebot review ...`: serve the supervisors' web app (the default), manage its users, (re)run the after-call
analysis, and fill a store with demo calls."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Optional

import typer

from voicebot.cli.common import ConfigOption, console, err_console, fail, get_config
from voicebot.config import Config
from voicebot.store import CallStore, StoreError

review_app = typer.Typer(
    help="The supervisors' review web app. Without a command: serve it (same as `voicebot review serve`).",
    invoke_without_command=True, no_args_is_help=False)

HostOption = Annotated[Optional[str], typer.Option(help="Listen address (default: review.host).")]
PortOption = Annotated[Optional[int], typer.Option(min=1, max=65535, help="Port (default: review.port).")]


def _config(ctx: typer.Context, config_path: Path | None) -> Config:
    return get_config(config_path or (ctx.obj or {}).get("config_path"))


def _store(config: Config) -> CallStore:
    """The call store, read-write (analysis and demo data write to it); a clear error when it is missing."""
    path = config.path(config.store.database)
    if not path.is_file():
        raise fail(f"no call store at {path}: it is created when the bot takes its first call "
                   "(`voicebot serve`); for a demo, run `voicebot review seed-demo`")
    try:
        return CallStore(path, config.path(config.store.recordings_dir))
    except StoreError as exc:
        raise fail(str(exc)) from None


@review_app.callback()
def review_main(ctx: typer.Context, config_path: ConfigOption = None, host: HostOption = None,
                port: PortOption = None):
    """Serve the review web app, or run one of the commands below."""
    ctx.obj = {"config_path": config_path}
    if ctx.invoked_subcommand is None:
        _serve(get_config(config_path), host, port)


@review_app.command("serve")
def serve(ctx: typer.Context, config_path: ConfigOption = None, host: HostOption = None,
          port: PortOption = None):
    """Serve the review web app on review.host:review.port (log in with a user from `add-user`)."""
    _serve(_config(ctx, config_path), host, port)


def _serve(config: Config, host: str | None, port: int | None) -> None:
    import uvicorn

    from voicebot.review.app import StoreMissing, create_app
    from voicebot.review.redact import install_log_redaction

    host = host or config.review.host
    port = port or config.review.port
    try:
        app = create_app(config)
    except StoreMissing as exc:
        raise fail(str(exc)) from None
    except StoreError as exc:
        raise fail(str(exc)) from None
    users = app.state.review.users.users()
    if not users:
        err_console.print("[yellow]no users yet:[/yellow] add one with "
                          "`voicebot review add-user NAME --role admin`", highlight=False)
    if not _is_loopback(host) and not config.review.secure_cookies:
        err_console.print(f"[yellow]warning:[/yellow] listening on {host} without secure cookies: serve "
                          "it behind HTTPS and set review.secure_cookies: true", highlight=False)
    # open operator screens (event streams) get 3 s to end at Ctrl-C
    server_config = uvicorn.Config(app, host=host, port=port, log_level="info", server_header=False,
                                   timeout_graceful_shutdown=3)
    install_log_redaction()  # uvicorn.Config has configured its loggers by now
    console.print(f"review app on [bold]http://{host}:{port}/[/bold] ({len(users)} user(s))")
    uvicorn.Server(server_config).run()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@review_app.command("add-user")
def add_user(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user name to log in with.")],
    role: Annotated[str, typer.Option(help="supervisor (card numbers, PINs and phone numbers masked), admin, or "
                                      "operator (the live calls screen only, masked as for a supervisor).")]
    = "supervisor",
    password: Annotated[Optional[str], typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          help="Asked for when not given (at least 8 characters).")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Set a new password and role for an existing user.")]
    = False,
    config_path: ConfigOption = None,
):
    """Add a user of the review app (or, with --replace, reset one: their open sessions end)."""
    from voicebot.review.users import ReviewDB, UserError

    config = _config(ctx, config_path)
    db = ReviewDB(config.path(config.review.database), session_minutes=config.review.session_minutes)
    try:
        user = db.add_user(name, password, role, replace=replace)
    except UserError as exc:
        raise fail(str(exc)) from None
    finally:
        db.close()
    console.print(f"[green]{'updated' if replace else 'added'}[/green] {user.role} {user.username!r} "
                  f"in {config.path(config.review.database)}", highlight=False)


@review_app.command("users")
def list_users(ctx: typer.Context, config_path: ConfigOption = None):
    """List the review app's users."""
    from voicebot.review.users import ReviewDB

    config = _config(ctx, config_path)
    db = ReviewDB(config.path(config.review.database))
    try:
        for user in db.users():
            console.print(f"{user.username:<24} {user.role}", highlight=False)
    finally:
        db.close()


@review_app.command("analyze")
def analyze(
    ctx: typer.Context,
    call_ids: Annotated[Optional[list[str]], typer.Argument(help="Calls to analyse.")] = None,
    all_calls: Annotated[bool, typer.Option("--all", help="Every call in the store (again).")] = False,
    missing: Annotated[bool, typer.Option("--missing", help="Calls without a model analysis yet.")] = False,
    no_model: Annotated[bool, typer.Option("--no-model", help="Only the deterministic part (sentiment, flags).")]
    = False,
    config_path: ConfigOption = None,
):
    """(Re)run the after-call analysis: sentiment and flags, and summary, topic and QA from the local model."""
    from voicebot.review.analysis import analyze_call

    if bool(call_ids) + all_calls + missing != 1:
        raise fail("name call ids, or pass --all or --missing (one of them)", 2)
    config = _config(ctx, config_path)
    store = _store(config)
    try:
        if all_calls or missing:
            sql = "SELECT c.id FROM calls c LEFT JOIN call_analysis a ON a.call_id = c.id " \
                  "WHERE c.outcome != 'in_progress'" + (" AND (a.model IS NULL OR a.error IS NOT NULL)" if missing else "")
            call_ids = [row["id"] for row in store.select(sql + " ORDER BY c.started_at")]
        chat = None if no_model else _chat_model(config)
        for call_id in call_ids or []:
            try:
                result = analyze_call(store, call_id, chat, config.review)
            except StoreError as exc:
                raise fail(str(exc)) from None
            qa = f"QA {result.qa_score:.1f}" if result.qa_score is not None else "QA -"
            flags = ", ".join(result.flags) or "no flags"
            error = f" [red]model failed: {result.error}[/red]" if result.error else ""
            console.print(f"{call_id}  {result.topic or '-'}  {qa}  {flags}{error}", highlight=False)
        console.print(f"[green]analysed {len(call_ids or [])} call(s)[/green]")
    finally:
        store.close()


def _chat_model(config: Config):
    from voicebot.components import make_chat_model
    from voicebot.llm.base import LlmError
    from voicebot.models import ModelError, ModelStore

    try:
        return make_chat_model(config, ModelStore.from_config(config))
    except (ModelError, LlmError) as exc:
        raise fail(f"{exc} (or pass --no-model for sentiment and flags only)") from None


@review_app.command("seed-demo")
def seed_demo(
    ctx: typer.Context,
    calls: Annotated[int, typer.Option(min=1, max=5000, help="How many calls.")] = 200,
    days: Annotated[int, typer.Option(min=1, max=365, help="Spread over this many days up to now.")] = 30,
    recordings: Annotated[int, typer.Option(min=0, help="How many of the latest calls get a recording.")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same calls.")] = 7,
    config_path: ConfigOption = None,
):
    """Fill the configured call store with realistic demo calls (and their analysis) to try the app on.

    Callers are taken from the CRM when it exists (`voicebot crm seed`), so the call page shows the customer."""
    from voicebot.review.demo import seed_calls

    config = _config(ctx, config_path)
    store = CallStore(config.path(config.store.database), config.path(config.store.recordings_dir))
    try:
        if store.select("SELECT id FROM calls WHERE id LIKE ? LIMIT 1", (f"demo-{seed}-%",)):
            raise fail(f"demo calls with seed {seed} are already in {store.path}; pass another --seed")
        ids = seed_calls(store, calls, seed=seed, days=days, recordings=recordings,
                         customers=_crm_customers(config), config=config.review)
    finally:
        store.close()
    console.print(f"[green]seeded {len(ids)} demo calls[/green] into {config.path(config.store.database)}; "
                  "next: `voicebot review add-user NAME --role admin`, then `voicebot review`",
                  highlight=False)


def _crm_customers(config: Config):
    from voicebot.review.demo import DemoCustomer

    path = config.path(config.crm.database)
    if not path.is_file():
        return []
    from voicebot.crm.repository import Repository

    repo = Repository.open(path)
    try:
        rows = repo.db.execute("SELECT c.id, c.name, MIN(p.e164) FROM customers c JOIN customer_phones p "
                               "ON p.customer_id = c.id GROUP BY c.id ORDER BY c.id LIMIT 60").fetchall()
    finally:
        repo.close()
    return [DemoCustomer(str(i), phone, name.split()[0]) for i, name, phone in rows]


@review_app.command("export")
def export_calls(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="csv or json (json: each call with its turns).")] = "json",
    since: Annotated[Optional[str], typer.Option("--from", help="First day (YYYY-MM-DD, review.timezone).")] = None,
    until: Annotated[Optional[str], typer.Option("--to", help="Last day, included.")] = None,
    role: Annotated[str, typer.Option(help="Redact as this role sees the pages: supervisor (masked) or admin.")]
    = "supervisor",
    table: Annotated[str, typer.Option(help="CSV only: calls, or turns (one line per turn).")] = "calls",
    outcome: Annotated[Optional[str], typer.Option(help="Only calls with this outcome.")] = None,
    tag: Annotated[Optional[str], typer.Option(help="Only calls with this reviewer's tag.")] = None,
    tests: Annotated[Optional[str], typer.Option(help="Test calls: include or only (default: left out).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write here instead of standard output.")] = None,
    config_path: ConfigOption = None,
):
    """Export calls (and turns) as CSV or JSON, redacted for --role exactly as the review pages are."""
    import sys
    from zoneinfo import ZoneInfo

    from voicebot.review.annotations import Annotations
    from voicebot.review.app import StoreMissing, open_store
    from voicebot.review.export import Exporter, export
    from voicebot.review.queries import ListFilter
    from voicebot.review.redact import ROLES

    if fmt not in ("csv", "json") or table not in ("calls", "turns"):
        raise fail("--format is csv or json; --table is calls or turns", 2)
    if role not in ROLES:
        raise fail(f"--role is one of {', '.join(ROLES)}", 2)
    filters, problems = ListFilter.parse({"since": since or "", "until": until or "", "outcome": outcome or "",
                                          "tag": tag or "", "tests": tests or ""})
    if problems:
        raise fail("; ".join(problems), 2)
    config = _config(ctx, config_path)
    try:
        store = open_store(config)
    except (StoreMissing, StoreError) as exc:
        raise fail(str(exc)) from None
    notes = Annotations(config.path(config.review.database))
    try:
        exporter = Exporter(store, ZoneInfo(config.review.timezone), role, notes, config.path(config.crm.database))
        if out is None:
            n = export(exporter, filters, fmt, table, sys.stdout)
        else:
            with out.open("w", encoding="utf-8", newline="") as handle:
                n = export(exporter, filters, fmt, table, handle)
    finally:
        notes.close()
        store.close()
    from voicebot.review.api import logged_filters
    from voicebot.review.users import ReviewDB, User

    audit = ReviewDB(config.path(config.review.database))  # who took data out, like a page view
    try:
        audit.log(User(0, "cli", role), "export", detail=f"{fmt} {table} {n} records {logged_filters(filters)}"[:300])
    finally:
        audit.close()
    err_console.print(f"exported {n} {'turn' if fmt == 'csv' and table == 'turns' else 'call'}(s) as {role}"
                      + (f" to {out}" if out else ""), highlight=False)


@review_app.command("add-token")
def add_token(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who or what uses the token (e.g. bi-dashboard).")],
    role: Annotated[str, typer.Option(help="supervisor (masked data) or admin.")] = "supervisor",
    replace: Annotated[bool, typer.Option("--replace", help="Issue a new token for an existing name.")] = False,
    config_path: ConfigOption = None,
):
    """Create a read-only API token (GET /api/v1/calls with `Authorization: Bearer TOKEN`); shown once only."""
    from voicebot.review.api import ApiTokens, TokenError

    config = _config(ctx, config_path)
    tokens = ApiTokens(config.path(config.review.database))
    try:
        token = tokens.add(name, role, replace=replace)
    except TokenError as exc:
        raise fail(str(exc)) from None
    finally:
        tokens.close()
    err_console.print(f"token {name!r} ({role}); it is shown only now, store it safely:", highlight=False)
    print(token)


@review_app.command("revoke-token")
def revoke_token(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The token's name.")],
                 config_path: ConfigOption = None):
    """Stop an API token from working."""
    from voicebot.review.api import ApiTokens

    config = _config(ctx, config_path)
    tokens = ApiTokens(config.path(config.review.database))
    try:
        if not tokens.revoke(name):
            raise fail(f"no token named {name!r}")
    finally:
        tokens.close()
    console.print(f"revoked {name!r}", highlight=False)
