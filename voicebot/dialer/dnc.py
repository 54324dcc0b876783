"""The do-not-call list: a plain file the admin can read and edit, one number per line.

Why a file and not a CRM table: a do-not-call list is often handed over by a regulator or another system, and it
must hold numbers the CRM has never seen. Lines are ``+15550102030`` (anything ``crm.phone.normalize_phone``
reads), ``#`` starts a comment; a line that is not a number is reported once and ignored. An opt-out is appended
with the date and the callback as a comment (never the caller's words). The file is read again when its size or
mtime changes, so an edit takes effect on the dialer's next round.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

from voicebot.crm.phone import normalize_phone
from voicebot.review.redact import mask_phone

log = logging.getLogger(__name__)


class DoNotCallList:
    """``number in dnc`` (E.164); ``add(number, note)`` appends one."""

    def __init__(self, path: Path, region: str = "US"):
        self.path = path
        self.region = region
        self._numbers: set[str] = set()
        self._seen: tuple[int, int] | None = None

    def _load(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._numbers, self._seen = set(), None
            return
        key = (st.st_size, st.st_mtime_ns)
        if key == self._seen:
            return
        numbers = set()
        for n, line in enumerate(self.path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            number = normalize_phone(text, self.region)
            if number is None:
                log.warning("%s:%d: not a phone number, ignored", self.path, n)
            else:
                numbers.add(number)
        self._numbers, self._seen = numbers, key

    def __contains__(self, number: object) -> bool:
        self._load()
        return isinstance(number, str) and (normalize_phone(number, self.region) or number) in self._numbers

    def __len__(self) -> int:
        self._load()
        return len(self._numbers)

    def add(self, number: str, note: str, at: datetime | None = None) -> None:
        """Append ``number`` with ``note`` (e.g. ``opted out on callback 12``) and sync it to disk."""
        e164 = normalize_phone(number, self.region) or number
        if e164 in self:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        when = (at or datetime.now().astimezone()).isoformat(timespec="seconds")
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(f"{e164}  # {when} {note}\n")
            f.flush()
            os.fsync(f.fileno())
        log.info("do-not-call: %s added (%s)", mask_phone(e164), note)
        self._load()
