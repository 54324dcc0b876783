"""Caller verification, decided in code: the model relays what the caller said; this module compares it with
the record. Attempts are limited per call (``crm.verification_attempts``); after the last wrong answer the call
is locked out and account tools stay closed for the rest of it.

PINs are stored as salted PBKDF2 hashes (``voicebot.crm.pins``: hashed as the repository writes them; this
module only compares). With four digits that is no defence against someone who has stolen the
database file; it keeps the PIN out of dumps, logs, `crm show` and anything handed to the model.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from voicebot.crm.models import Customer, NotFound, VerificationRecord
from voicebot.crm.phone import normalize_phone, region_of
from voicebot.crm.pins import pin_matches
from voicebot.crm.repository import Repository
from voicebot.crm.spoken import digits_in, parse_date, words_to_digits


def normalize_postcode(text: str) -> str:
    """"SW1A 1AA", "sw1a1aa", "s w one a one a a" -> "SW1A1AA"; "nine eight one oh one" -> "98101"."""
    return re.sub(r"[^A-Z0-9]", "", words_to_digits(text).upper())


class Outcome(str, Enum):
    VERIFIED = "verified"
    WRONG = "wrong"              # compared and did not match: one attempt used
    LOCKED = "locked"            # no attempts left
    UNCLEAR = "unclear"          # nothing comparable was heard: no attempt used, ask again
    NO_SECRET = "no_secret"      # the record has no such secret: ask for the other method
    NO_CUSTOMER = "no_customer"  # nobody to verify against (unknown caller ID)


@dataclass(frozen=True)
class VerificationResult:
    outcome: Outcome
    attempts_left: int
    message: str

    @property
    def verified(self) -> bool:
        return self.outcome is Outcome.VERIFIED


@dataclass
class Verification:
    """Per-call verification state: which customer is verified, how many attempts are left."""

    max_attempts: int = 3
    region: str = "US"
    attempts_used: int = 0
    verified_customer_id: int | None = None

    @property
    def attempts_left(self) -> int:
        return max(0, self.max_attempts - self.attempts_used)

    @property
    def locked(self) -> bool:
        return self.verified_customer_id is None and self.attempts_left == 0

    def _result(self, outcome: Outcome, message: str) -> VerificationResult:
        return VerificationResult(outcome, self.attempts_left, message)

    def check(self, record: VerificationRecord | NotFound | None, *, pin: str | None = None,
              date_of_birth: str | None = None, postcode: str | None = None) -> VerificationResult:
        """Compare what the caller said or keyed (PIN, or date of birth plus postcode) with ``record``."""
        if self.verified_customer_id is not None and isinstance(record, VerificationRecord) \
                and record.customer_id == self.verified_customer_id:
            return self._result(Outcome.VERIFIED, "The caller is already verified.")
        if self.locked:
            return self._result(Outcome.LOCKED, "Too many wrong answers: verification is locked for this call. "
                                                 "Offer to transfer the caller to a person.")
        if not isinstance(record, VerificationRecord):
            return self._result(Outcome.NO_CUSTOMER, "No customer account is known for this caller. "
                                                      "Ask for the phone number on the account.")
        pin_digits = digits_in(pin) if pin else ""
        birth = parse_date(date_of_birth, self.region) if date_of_birth else None
        code = normalize_postcode(postcode) if postcode else ""
        if pin_digits:
            if not record.pin_hash:
                return self._result(Outcome.NO_SECRET, "This account has no PIN; ask for the date of birth and "
                                                        "postcode instead.")
            return self._decide(record, pin_matches(pin_digits, record.pin_hash))
        if birth and code:
            if not (record.date_of_birth and record.postcode):
                return self._result(Outcome.NO_SECRET, "This account cannot be verified by date of birth; ask for "
                                                        "the PIN instead.")
            return self._decide(record, birth == record.date_of_birth
                                and hmac.compare_digest(code, normalize_postcode(record.postcode)))
        missing = "the postcode" if birth else "the full date of birth with the year" if code else \
            "the PIN, or the date of birth and postcode"
        return self._result(Outcome.UNCLEAR, f"Nothing was compared: ask for {missing}.")

    def _decide(self, record: VerificationRecord, ok: bool) -> VerificationResult:
        if ok:
            self.verified_customer_id = record.customer_id
            return self._result(Outcome.VERIFIED, "Verified.")
        self.attempts_used += 1
        if self.locked:
            return self._result(Outcome.LOCKED, "That did not match, and no attempts are left: verification is "
                                                 "locked for this call. Offer a transfer to a person.")
        return self._result(Outcome.WRONG, f"That did not match. {attempts_left(self.attempts_left)}")


def attempts_left(count: int) -> str:
    """"2 attempts left." / "1 attempt left.": said to the caller ("2 attempt(s) left." was read out as written)."""
    return f"{count} attempt{'' if count == 1 else 's'} left."


def note_failure(repo: Repository, customer_id: int) -> None:
    """One wrong answer to verification for this customer, kept across calls (what was said is not kept)."""
    with repo.transaction():
        repo.db["verification_failures"].insert({"customer_id": customer_id, "at": repo.now().isoformat()})


def failures_since(repo: Repository, customer_id: int, since: datetime) -> int:
    with repo.transaction():
        rows = repo.db.execute("select count(*) from verification_failures where customer_id = ? and at >= ?",
                               [customer_id, since.isoformat()]).fetchone()
    return int(rows[0]) if rows else 0


def clear_failures(repo: Repository, customer_id: int) -> None:
    """A successful verification (or a person who checked the caller) starts the count again."""
    with repo.transaction():
        repo.db.execute("delete from verification_failures where customer_id = ?", [customer_id])


@dataclass
class CallerContext:
    """What one call knows about its caller: the dialogue holds one per call and passes it to every tool call.

    ``customer`` is who the caller ID (or a number the caller gave) points at; that is not proof of identity,
    so account tools use ``verified_customer``, set only by a successful ``Verification``.
    """

    repo: Repository
    caller_id: str | None = None
    customer: Customer | None = None
    verification: Verification = field(default_factory=Verification)
    lockout_hours: float = 24.0  # wrong answers count against an account across calls for this long
    heard_also: tuple[str, ...] = ()
    """This turn's other hearings of dictated digits (``speech.stt.Transcript.alternatives``), set by the session
    for each caller turn: a number the recogniser changed on its second hearing is looked up as first heard too."""

    @classmethod
    def start(cls, repo: Repository, raw_caller_id: str | None, *, max_attempts: int = 3,
              lockout_hours: float = 24.0) -> CallerContext:
        """Normalise the caller ID and look the caller up: call this when the call is answered."""
        found = repo.find_customer_by_phone(raw_caller_id)
        caller_id = normalize_phone(raw_caller_id, repo.region)
        # a date said in figures is read the caller's way: "2/11/1979" from a British number is 2 November (it was
        # read as February 11 in a US company's CRM, and a British caller's right date of birth did not match)
        return cls(repo, caller_id, None if isinstance(found, NotFound) else found,
                   Verification(max_attempts=max_attempts, region=region_of(caller_id) or repo.region), lockout_hours)

    @property
    def verified_customer(self) -> Customer | None:
        if self.customer is not None and self.verification.verified_customer_id == self.customer.id:
            return self.customer
        return None

    def identify(self, customer: Customer) -> None:
        """Point the call at another account (the caller gave its number). Attempts are not reset: switching
        accounts must not buy more guesses."""
        if self.customer is None or customer.id != self.customer.id:
            self.customer = customer
            self.verification.verified_customer_id = None

    def verify(self, *, pin: str | None = None, date_of_birth: str | None = None,
               postcode: str | None = None) -> VerificationResult:
        """Check the caller's answer. Wrong answers are counted per account in the CRM as well, so the
        attempts left are the fewer of this call's and the account's over the last ``lockout_hours``: calling
        again does not buy fresh guesses. A success clears the account's count."""
        customer = self.customer
        if customer is not None and self.lockout_hours > 0 and self.verification.verified_customer_id != customer.id:
            since = self.repo.now() - timedelta(hours=self.lockout_hours)
            earlier = failures_since(self.repo, customer.id, since)
            self.verification.attempts_used = max(self.verification.attempts_used, earlier)
        record = self.repo.verification_record(customer.id) if customer else None
        used = self.verification.attempts_used
        result = self.verification.check(record, pin=pin, date_of_birth=date_of_birth, postcode=postcode)
        if customer is not None and self.verification.attempts_used > used:
            note_failure(self.repo, customer.id)
        elif customer is not None and result.outcome is Outcome.VERIFIED and used:
            clear_failures(self.repo, customer.id)
        return result
