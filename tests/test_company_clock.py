"""The company's clock: the CRM's times and a call's "today" are in ``hours.yaml``'s zone, the zone the hours are
answered in. On a machine in UTC, a company in California heard "Today, Sunday, we're closed" and was then offered
Tuesday's times for "tomorrow" (the dialogue and the CRM took the machine's date, already Monday)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from voicebot.config import load_config
from voicebot.crm.repository import Repository
from voicebot.knowledge.hours import company_clock

HOURS = 'timezone: {zone}\nweekly: {{monday: "09:00-17:00", tuesday: "09:00-17:00", wednesday: closed, ' \
        'thursday: closed, friday: closed, saturday: closed, sunday: closed}}\n'


def _site(tmp_path, zone: str | None):
    folder = tmp_path / "knowledge"
    folder.mkdir(parents=True)
    (folder / "faq.md").write_text("# Where are you?\nWe are on Elm Street.\n", encoding="utf-8")
    if zone is not None:
        (folder / "hours.yaml").write_text(HOURS.format(zone=zone), encoding="utf-8")
    (tmp_path / "config.yaml").write_text(f"knowledge:\n  dir: {folder}\ncrm:\n  database: {tmp_path / 'crm.db'}\n",
                                          encoding="utf-8")
    return load_config(tmp_path / "config.yaml")


def _close(a: datetime, b: datetime) -> bool:
    return abs(a - b) < timedelta(seconds=5)


def test_the_clock_is_the_hours_zones_wall_clock(tmp_path):
    # UTC+14 and UTC-11: a day apart from each other for most of every day, and from UTC for half of it
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        config = _site(tmp_path / zone.replace("/", "_"), zone)
        there = datetime.now(ZoneInfo(zone)).replace(tzinfo=None)
        assert _close(company_clock(config)(), there)
        repo = Repository.from_config(config)  # the CRM the worker and `voicebot crm` open
        assert _close(repo.now(), there)
        repo.close()


def test_without_an_hours_file_the_clock_is_the_machines(tmp_path):
    config = _site(tmp_path, None)
    assert _close(company_clock(config)(), datetime.now())
    assert company_clock(config.model_copy(update={"knowledge": config.knowledge.model_copy(
        update={"enabled": False})}))().tzinfo is None



def test_the_review_apps_days_and_the_calling_hours_are_the_companys_zone_unless_set(tmp_path):
    """Both were UTC while the demo's hours are in Los Angeles: a dialer turned on called at 1 AM the callees' time
    (9 AM UTC), and the review app's days began at 4 PM the day before."""
    from voicebot.config import Config
    from voicebot.config_dialer import DialerConfig
    from voicebot.dialer.policy import CallingHours

    config = _site(tmp_path / "a", "Pacific/Kiritimati")
    assert (config.review.timezone, config.dialer.timezone) == ("Pacific/Kiritimati", "Pacific/Kiritimati")
    assert CallingHours.of(config.dialer).zone == ZoneInfo("Pacific/Kiritimati")
    set_here = tmp_path / "b"
    _site(set_here, "Pacific/Kiritimati")
    text = (set_here / "config.yaml").read_text(encoding="utf-8")
    (set_here / "config.yaml").write_text(text + "review:\n  timezone: Europe/Berlin\n", encoding="utf-8")
    config = load_config(set_here / "config.yaml")
    assert (config.review.timezone, config.dialer.timezone) == ("Europe/Berlin", "Pacific/Kiritimati")
    config = _site(tmp_path / "c", None)  # no hours file: UTC, as before
    assert (config.review.timezone, config.dialer.timezone) == ("UTC", "UTC")
    assert (Config().review.timezone, Config().dialer.timezone) == ("UTC", "UTC")  # made in code: no folder to read
    assert CallingHours.of(DialerConfig()).zone == ZoneInfo("UTC")
    demo = load_config(Path(__file__).resolve().parents[1] / "config.yaml")
    assert demo.review.timezone == demo.dialer.timezone == "America/Los_Angeles"  # the demo's knowledge/hours.yaml
