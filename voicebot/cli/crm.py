"""`voicebot crm ...`: seed the demo company, import CSV files, show what the bot knows about a caller."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.panel import Panel
from rich.table import Table

from voicebot.cli.common import ConfigOption, console, err_console, fail, get_config
from voicebot.crm.importer import import_csv
from voicebot.crm.models import NotFound, VerificationRecord
from voicebot.crm.phone import normalize_phone, speakable_phone
from voicebot.crm.repository import Repository
from voicebot.crm.seed import seed_demo

crm_app = typer.Typer(help="The CRM database: demo data, CSV imports, and what the bot knows about a caller.",
                      no_args_is_help=True)


def open_repository(config_path: Path | None) -> Repository:
    """The CRM database the config names (folders created, schema migrated)."""
    return Repository.from_config(get_config(config_path))  # on the company's clock (hours.yaml's zone)


def _table(title: str, columns: tuple[str, ...], rows: list[tuple]) -> Table | str:
    """A rich table, or one dim line when there is nothing to list."""
    if not rows:
        return f"[dim]{title}: none[/dim]"
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    return table


@crm_app.command("seed")
def seed(
    config_path: ConfigOption = None,
    today: Annotated[Optional[datetime], typer.Option(formats=["%Y-%m-%d"],
                                                      help="The demo's today (default: today).")] = None,
    random_seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed and day, same data.")] = 7,
    force: Annotated[bool, typer.Option("--force", help="Replace the contents of a non-empty database.")] = False,
):
    """Create the demo company "Northwind Supplies" in the configured CRM database.

    50 customers, orders in every state, tickets, two weeks of service-desk slots, leads and call history.

    The same --seed and --today always give the same data."""
    repo = open_repository(config_path)
    try:
        summary = seed_demo(repo, today.date() if today else repo.now().date(), random_seed, wipe=force)
    except ValueError as exc:
        raise fail(str(exc)) from None
    finally:
        repo.close()
    console.print(_table(f"seeded Northwind Supplies as of {summary.today}", ("table", "rows"),
                         list(summary.counts.items())))
    console.print(_table("demo callers", ("name", "phone", "PIN", "date of birth", "postcode", "orders"),
                         [(c.name, c.phone, c.pin or "(none)", c.date_of_birth, c.postcode,
                           ", ".join(c.orders)) for c in summary.demo_callers]))


@crm_app.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(help="customers.csv, orders.csv or slots.csv (told apart by their "
                                                   "header).")],
    kind: Annotated[Optional[str], typer.Option(help="customers, orders or slots, if the header is "
                                                      "ambiguous.")] = None,
    config_path: ConfigOption = None,
):
    """Import customers, orders or appointment slots from CSV: every row is checked first; any bad row imports
    nothing.

    customers.csv  name, phone (several: a;b); optional: email, pin, date_of_birth, postcode
    orders.csv     one row per item: order_number, customer_phone, status, placed_at, description, quantity,
                   unit_price; optional: sku, currency, carrier, tracking, eta, delivered_at
    slots.csv      service, starts_at (local time, YYYY-MM-DD HH:MM); optional: duration_min (default 60),
                   resource (who is booked; default the service name)"""
    if kind not in (None, "customers", "orders", "slots"):
        raise fail(f"--kind must be customers, orders or slots, not {kind!r}", 2)
    repo = open_repository(config_path)
    try:
        report = import_csv(repo, path, kind)
        services = repo.services() if report.ok and report.kind == "slots" else []
    finally:
        repo.close()
    if not report.ok:
        err_console.print(_table(f"{path}: {len(report.rejected)} row(s) rejected, nothing imported",
                                 ("line", "reason"), [(r.line, r.reason) for r in report.rejected]))
        raise typer.Exit(1)
    what = report.kind[:-1] if report.imported == 1 else report.kind
    console.print(f"[green]{path}: imported {report.imported} {what}[/green] ({report.rows} row(s))",
                  highlight=False, soft_wrap=True)
    if services:
        console.print(f"services with slots: {', '.join(services)}", markup=False, highlight=False, soft_wrap=True)


def _secrets_on_file(record: VerificationRecord | NotFound) -> str:
    if isinstance(record, NotFound):
        return "none"
    methods = (["PIN"] if record.pin_hash else []) + \
        (["date of birth + postcode"] if record.date_of_birth and record.postcode else [])
    return " or ".join(methods) or "none (cannot be verified)"


@crm_app.command("show")
def show(
    phone: Annotated[str, typer.Argument(help="The caller ID, in any format (+1 555 010 2030, 0044 20 ...).")],
    config_path: ConfigOption = None,
):
    """Print what the bot would know about a caller: before verification (the name) and after it."""
    repo = open_repository(config_path)
    try:
        e164 = normalize_phone(phone, repo.region)
        found = repo.find_customer_by_phone(phone)
        if isinstance(found, NotFound):
            shown = e164 or f"{phone!r} (not a phone number)"
            console.print(f"[yellow]unknown caller {shown}[/yellow]: the bot greets them as a new caller; "
                          "it can take a lead, a ticket, a booking or a callback.", highlight=False,
                          soft_wrap=True)
            raise typer.Exit(1)
        profile = repo.caller_profile(found.id)
        verification = _secrets_on_file(repo.verification_record(found.id))
    finally:
        repo.close()
    c = profile.customer
    console.print(Panel(
        f"[bold]{c.name}[/bold]  (customer {c.id}, since {c.created_at.date()})\n"
        f"phones: {', '.join(speakable_phone(p) for p in c.phones)}   email: {c.email or '-'}\n"
        f"verification on file: {verification}\n"
        f"before verification the bot knows only the first name: \"Hello, {c.first_name}\"",
        title=f"caller {e164}", title_align="left"))
    order_rows = [(o.number, o.status.replace("_", " "), o.placed_at, o.carrier, o.tracking, o.eta,
                   f"{o.total} {o.currency}") for o in profile.open_orders]
    console.print(_table("open orders", ("order", "status", "placed", "carrier", "tracking", "ETA",
                                         "total"), order_rows))
    console.print(_table("recent orders", ("order", "status", "placed", "delivered", "total"),
                         [(o.number, o.status.replace("_", " "), o.placed_at, o.delivered_at,
                           f"{o.total} {o.currency}") for o in profile.recent_orders]))
    console.print(_table("open tickets", ("ticket", "status", "priority", "opened", "subject", "order"),
                         [(t.id, t.status, t.priority, t.created_at.date(), t.subject, t.order_number)
                          for t in profile.open_tickets]))
    console.print(_table("upcoming appointments", ("booking", "when", "service", "with"),
                         [(b.id, b.slot.starts_at.strftime("%a %Y-%m-%d %H:%M"), b.slot.service,
                           b.slot.resource) for b in profile.upcoming_bookings]))
    console.print(_table("pending callbacks", ("id", "requested", "reason", "preferred time"),
                         [(cb.id, cb.created_at.date(), cb.reason, cb.preferred_time)
                          for cb in profile.pending_callbacks]))
    console.print(_table("recent calls", ("when", "outcome", "summary"),
                         [(i.started_at.strftime("%Y-%m-%d %H:%M"), i.outcome, i.summary)
                          for i in profile.recent_interactions]))
