"""`voicebot campaign ...` and `voicebot dial`: put outbound calls in the queue of the dialer that
`voicebot serve` runs (``voicebot.dialer.campaigns``). Nothing here dials: the serving dialer does, within the
calling hours, limits, do-not-call list and cap of ``dialer`` in config.yaml."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from voicebot.cli.common import ConfigOption, console, fail, get_config
from voicebot.crm.repository import Repository
from voicebot.dialer.campaigns import (CRM_QUERIES, PURPOSES, CampaignError, add_campaign, list_campaigns,
                                       queue_call, set_status, targets_from_crm, targets_from_csv)

campaign_app = typer.Typer(help="Outbound campaigns (reminders, check-ins, callbacks, a message) for the dialer "
                                "of `voicebot serve`.", no_args_is_help=True)

PurposeOption = Annotated[str, typer.Option(help=f"One of: {', '.join(PURPOSES)}.")]
WHEN = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"]


def _repository(config_path: Path | None) -> tuple[Repository, str]:
    config = get_config(config_path)
    return Repository.from_config(config), config.crm.default_region


@campaign_app.command("add")
def add(name: Annotated[str, typer.Argument(help="A name to pause or resume it by.")],
        purpose: PurposeOption = "message",
        csv_file: Annotated[Optional[Path], typer.Option("--csv", help="Targets: a CSV with a phone column "
                                                         "(optional: reason, customer_id, booking_id, ticket_id)."
                                                         )] = None,
        crm_query: Annotated[Optional[str], typer.Option("--crm", help="Targets from the CRM: " + "; ".join(
            f"{k} ({v[1]})" for k, v in CRM_QUERIES.items()))] = None,
        message: Annotated[Optional[str], typer.Option(help="What the bot says (purpose message).")] = None,
        start: Annotated[Optional[datetime], typer.Option(formats=WHEN, help="No call before (dialer.timezone)."
                                                          )] = None,
        end: Annotated[Optional[datetime], typer.Option(formats=WHEN, help="No call from then on.")] = None,
        max_attempts: Annotated[Optional[int], typer.Option(min=1, max=20, help="Calls per target (default: "
                                                            "dialer.max_attempts).")] = None,
        config_path: ConfigOption = None):
    """Queue a campaign: one call per target number, in the window, for the serving dialer."""
    if (csv_file is None) == (crm_query is None):
        raise fail("give exactly one target list: --csv FILE or --crm QUERY", 2)
    repo, region = _repository(config_path)
    try:
        targets = targets_from_csv(csv_file, region) if csv_file else targets_from_crm(repo, crm_query, region)
        target = f"csv:{csv_file}" if csv_file else f"crm:{crm_query}"
        campaign_id = add_campaign(repo, name, purpose, targets, target, message=message, starts_at=start,
                                   ends_at=end, max_attempts=max_attempts)
        [row] = [c for c in list_campaigns(repo) if c.id == campaign_id]
    except (CampaignError, OSError) as exc:
        raise fail(str(exc)) from None
    finally:
        repo.close()
    console.print(f"campaign {campaign_id} {name!r}: {purpose}, {row.counts.get('pending', 0)} call(s) queued "
                  f"from {target}", highlight=False)


@campaign_app.command("list")
def list_(config_path: ConfigOption = None):
    """Every campaign with its window and how its calls stand."""
    repo, _ = _repository(config_path)
    try:
        rows = list_campaigns(repo)
    finally:
        repo.close()
    if not rows:
        console.print("[dim]no campaigns[/dim]")
        return
    for c in rows:  # one line each (a table would wrap in a terminal and in a log)
        calls = ", ".join(f"{k} {v}" for k, v in sorted(c.counts.items())) or "none"
        console.print(f"{c.id}  {c.name}  {c.purpose}  {c.status}  {c.target}  window {c.starts_at or '-'} .. "
                      f"{c.ends_at or '-'}  attempts {c.max_attempts or 'default'}  calls: {calls}",
                      highlight=False, soft_wrap=True)


@campaign_app.command("pause")
def pause(name: Annotated[str, typer.Argument(help="The campaign's name or id.")], config_path: ConfigOption = None):
    """Hold a campaign's calls that have not been made (a call in progress ends normally)."""
    _set(name, "paused", config_path)


@campaign_app.command("resume")
def resume(name: Annotated[str, typer.Argument(help="The campaign's name or id.")], config_path: ConfigOption = None):
    """Let a paused campaign's calls go on."""
    _set(name, "active", config_path)


def _set(name: str, status: str, config_path: Path | None) -> None:
    repo, _ = _repository(config_path)
    try:
        set_status(repo, name, status)
    except CampaignError as exc:
        raise fail(str(exc)) from None
    finally:
        repo.close()
    console.print(f"campaign {name}: {status}", highlight=False)


def dial(number: Annotated[str, typer.Argument(help="The number to call (E.164, or as the CRM's region reads it).")],
         purpose: PurposeOption = "callback",
         reason: Annotated[str, typer.Option(help="Why (callback: said in the opening; message: what is said).")] = "",
         booking: Annotated[Optional[int], typer.Option(help="The booking (reminder, check-in).")] = None,
         ticket: Annotated[Optional[int], typer.Option(help="The ticket (check-in).")] = None,
         wait: Annotated[float, typer.Option(help="Seconds to wait for the call's result (0: queue and return).")
                         ] = 0.0,
         config_path: ConfigOption = None):
    """Queue one call now for the dialer of `voicebot serve` (it dials within the calling hours and limits)."""
    repo, region = _repository(config_path)
    try:
        row_id = queue_call(repo, number, purpose, region, reason=reason, booking_id=booking, ticket_id=ticket)
        console.print(f"call {row_id} queued ({purpose})", highlight=False)
        deadline = time.monotonic() + wait
        row = repo.db["callbacks"].get(row_id)
        while wait and row["status"] == "pending" and time.monotonic() < deadline:
            time.sleep(0.5)
            row = repo.db["callbacks"].get(row_id)
    except CampaignError as exc:
        raise fail(str(exc)) from None
    finally:
        repo.close()
    if wait:
        result = row["last_result"] or "not dialled yet"
        console.print(f"call {row_id}: {row['status']} ({result}, {row['attempts']} attempt(s))", highlight=False)
        if row["status"] == "pending":
            raise typer.Exit(1)
