"""The privacy scan (issue 12): after a real SIP call in which the caller gives a card number, a wrong PIN, their
date of birth and the right PIN, none of them is anywhere in clear.

Real parts: `voicebot serve` (Whisper, the model, Piper, pjsua2), `voicebot call` as the caller, the review app
over HTTP as each role. Scanned: every text value of every table of the call store, of the CRM (rows the call
added or changed: the demo CRM holds Alice's date of birth by design) and of the review database; every file
under the bot's data folder that is not a database or a recording (logs, Kamailio's, run files); everything the
bot printed or logged; every review page and API answer for the call, as a supervisor, an admin and an operator.
What Whisper heard is scanned for too (a digit it garbled is still a secret).
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from serve_support import serving
from test_privacy import ALICE, DOB_PATTERNS, WRONG_PIN, digit_pattern, found, text_values, without_ids

from voicebot.config import load_config
from voicebot.crm.spoken import digits_in

pytestmark = [pytest.mark.models, pytest.mark.timeout(600)]

PORT = 22600  # the bot (RTP from +2)
CARD = "4111111111111111"
SAY = ["Hi, where is my order?", "My PIN is 4 8 1 5.", "My date of birth is March 14th, 1985.", "1 2 3 4.",
       "My card number is 4111 1111 1111 1111."]
USERS = {"supervisor": ("sue", "supervisor-pass-1"), "admin": ("ada", "admin-pass-12345"),
         "operator": ("oli", "operator-pass-123")}


def login(client: TestClient, user: tuple[str, str]) -> None:
    client.cookies.clear()
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    done = client.post("/login", data={"csrf_token": token, "username": user[0], "password": user[1],
                                       "next": "/"}, follow_redirects=False)
    assert done.status_code == 303, done.text[:500]


GEOMETRY = re.compile(r'\b(?:x|x1|x2|y|y1|y2|cx|cy|r|width|height|viewBox|d|points|transform)="[^"]*"')


def without_geometry(html: str) -> str:
    """A page without the charts' drawing coordinates (x2="1234" is a grid line, not Alice's PIN); every text
    and every other attribute stays in the scan."""
    return GEOMETRY.sub("", html)


def pages(config, call_id: str) -> list[tuple[str, str]]:
    """(who and where, body) of every review page and API answer about the call, as each role."""
    from voicebot.review.app import create_app
    from voicebot.review.users import ReviewDB

    db = ReviewDB(config.path(config.review.database))
    for role, (name, password) in USERS.items():
        db.add_user(name, password, role)
    db.close()
    out = []
    paths = ["/calls", f"/calls/{call_id}", "/calls?q=order", "/dashboard", "/admin/access", "/operator",
             "/unanswered", "/api/v1/calls", f"/api/v1/calls/{call_id}"]
    with TestClient(create_app(config), follow_redirects=True) as client:
        for role, user in USERS.items():
            login(client, user)
            for path in paths:
                response = client.get(path)
                out.append((f"{role} {path} ({response.status_code})", without_geometry(response.text)))
    assert any(f"/calls/{call_id}" in where and "(200)" in where for where, _ in out), [w for w, _ in out]
    return out


def files(folder: Path) -> list[tuple[str, str]]:
    """Every text file under ``folder`` but the databases and the recordings (scanned as tables, and audio)."""
    out = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix not in (".db", ".wav") and "-wal" not in path.name \
                and "-shm" not in path.name:
            out.append((str(path), path.read_text(errors="replace")))
    return out


def test_a_sip_call_with_a_card_a_pin_and_a_date_of_birth_leaves_them_nowhere(tmp_path):
    slow = "faults:\n  stt_timeout_s: 60\n  tts_timeout_s: 60\n  llm_timeout_s: 120\n"  # privacy, not speed
    with serving(tmp_path, PORT, extra=slow, sip_extra=f"  operator_uri: sip:operator@127.0.0.1:{PORT + 90}\n",
                 load_timeout_s=400, stop_timeout_s=240) as served:
        crm_path = served.folder / "data" / "crm.db"
        with sqlite3.connect(crm_path) as db:
            crm_before = set(text_values(db))
        steps = [arg for text in SAY for arg in ("--say", text)]
        cmd = [sys.executable, "-m", "voicebot.cli", "call", f"sip:voicebot@127.0.0.1:{PORT}", "--config",
               str(served.config), "--from", "+15550102030", "--json", "--hold", "12", *steps]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=400, cwd=tmp_path)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        report = json.loads(done.stdout[done.stdout.index("{"):])
    config = load_config(served.config)
    store = served.store()
    [call] = store.list_calls()
    heard = [t.text for t in store.turns(call.id) if t.role == "caller"]
    kinds = [e.kind for e in store.events(call.id)]
    store.close()
    assert "error" not in kinds, (kinds, served.text[-3000:])  # the whole conversation took place

    # what to look for: the card, both PINs, the date of birth, and any 4+ digits Whisper made of them
    secrets = {CARD, WRONG_PIN, ALICE.pin}
    patterns = [digit_pattern(s) for s in sorted(secrets)] + DOB_PATTERNS
    places: list[tuple[str, str]] = []
    with sqlite3.connect(served.folder / "data" / "calls.db") as db:
        places += [(f"calls.db {t}.{c}", v) for t, c, v in text_values(db)]
    with sqlite3.connect(crm_path) as db:
        places += [(f"crm.db {t}.{c}", v) for t, c, v in text_values(db) if (t, c, v) not in crm_before]
    places += pages(config, call.id)
    review_db = config.path(config.review.database)
    with sqlite3.connect(review_db) as db:
        places += [(f"review.db {t}.{c}", v) for t, c, v in text_values(db)]
    places += files(served.folder / "data")
    places += [("serve output and log", served.text)]
    leaks = [(where, hits) for where, text in places if (hits := found(without_ids(text), patterns))]
    assert not leaks, leaks

    # the scan looked where the secrets were: the caller said them, and their turns are kept, masked
    assert len(report["steps"]) == len(SAY) and len(heard) >= 4, heard
    assert sum("•" in t for t in heard) >= 3, heard  # the PIN, date of birth and card turns: kept, masked
    assert not any(len(digits_in(t)) > 4 for t in heard), heard  # a card keeps its last four (PCI DSS allows it)
    assert "calls.db turns.text" in {w for w, _ in places}
