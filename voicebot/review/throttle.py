"""Login throttling with backoff, and the password policy: slow guessing down, never let a guesser lock anyone out.

Why not a lockout: "5 wrong passwords lock the name for 15 minutes" lets anyone who knows a user name (admins
included) keep that user out for good. Instead each failed login makes the next attempt wait, by scope:

- **per client** (the address the request came from), over every name: the guesser's own address slows down
  exponentially, up to 15 minutes between attempts, whatever names it tries;
- **per client and name**: the same, sooner;
- **per name**, from every address: a short backoff (at most a minute) against guessing spread over many
  addresses. A client that logged in as that user before (within ``trusted_days``) skips this scope, so a
  guesser elsewhere cannot keep the real user out even for that minute.

While a scope waits, attempts are refused before the password is checked (no argon2 work for a flood) and are
logged as ``login_throttled``; only real wrong passwords (``login_failed``) count towards the backoff, so a
throttled guesser cannot extend it by hammering. The counts come from the access log the app keeps anyway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

MIN_PASSWORD = 10

# The most common passwords of public breach lists (top entries, 8+ characters, as people type them): a
# password in this list, or one of them with digits or "!" added, is refused.
COMMON_PASSWORDS = frozenset("""
123456789 1234567890 12345678 123123123 987654321 11111111 00000000 88888888 12341234 11223344 password
password1 password12 password123 passw0rd p@ssword p@ssw0rd qwertyuiop qwerty123 qwerty12 1q2w3e4r 1q2w3e4r5t
1qaz2wsx zaq12wsx asdfghjkl asdfasdf iloveyou iloveyou1 sunshine princess football baseball basketball
welcome welcome1 welcome123 letmein letmein1 trustno1 superman batman michael jennifer charlie starwars
whatever computer internet master monkey dragon shadow abc12345 abcd1234 abcdefgh administrator admin123
admin1234 adminadmin changeme changeme123 default secret123 test1234 testtest 1234qwer q1w2e3r4 q1w2e3r4t5
football1 liverpool chelsea arsenal manchester samsung pokemon minecraft fuckyou azerty123 aaaaaaaa
lovely1234 loveme123 freedom hello123 helloworld summer2024 winter2024 spring2024 autumn2024 summer2025
winter2025 summer2026 winter2026 company123 voicebot voicebot123 supervisor supervisor1 operator operator1
""".split())


def password_problem(password: str, username: str = "") -> str | None:
    """Why a password is not accepted, or None. Length first, then the guessable shapes."""
    if len(password) < MIN_PASSWORD:
        return f"the password needs at least {MIN_PASSWORD} characters"
    folded = password.lower()
    if folded in COMMON_PASSWORDS or re.sub(r"[\d!.]+$", "", folded) in COMMON_PASSWORDS:
        return "that password is on the list of the most common passwords; choose another"
    if password.isdigit():
        return "the password must not be digits only"
    if len(set(folded)) < 4:
        return "the password needs at least 4 different characters"
    if username and len(username) >= 3 and username.lower() in folded:
        return "the password must not contain the user name"
    return None


@dataclass(frozen=True)
class Failures:
    """Wrong passwords within the window for one scope: how many, and when the last one was."""

    count: int
    last: datetime | None


class FailureLog(Protocol):
    def failures(self, *, since: datetime, until: datetime, username: str | None = None,
                 client: str | None = None) -> Failures: ...

    def logged_in_before(self, username: str, client: str, since: datetime, until: datetime) -> bool: ...


@dataclass(frozen=True)
class ThrottlePolicy:
    window: timedelta = timedelta(minutes=15)
    client_free: int = 5       # wrong passwords from one address (any names) before it waits
    client_cap_s: float = 900.0
    pair_free: int = 3         # wrong passwords for one name from one address
    pair_cap_s: float = 300.0
    name_free: int = 10        # wrong passwords for one name from every address
    name_cap_s: float = 60.0   # short on purpose: a guesser elsewhere can only slow the real user a little
    trusted_days: int = 30


def backoff_s(count: int, free: int, cap_s: float) -> float:
    """0 for the first ``free`` failures, then 1, 2, 4, 8 ... seconds, at most ``cap_s``."""
    return 0.0 if count < free else min(cap_s, 2.0 ** (count - free))


def wait_s(log: FailureLog, username: str, client: str | None, now: datetime,
           policy: ThrottlePolicy = ThrottlePolicy()) -> float:
    """Seconds this client must still wait before trying this name again (0: go ahead)."""
    since = now - policy.window
    scopes: list[tuple[Failures, int, float]] = []
    if client:
        scopes.append((log.failures(since=since, until=now, client=client), policy.client_free, policy.client_cap_s))
        scopes.append((log.failures(since=since, until=now, username=username, client=client), policy.pair_free,
                       policy.pair_cap_s))
    trusted = bool(client) and log.logged_in_before(username, client or "",
                                                    now - timedelta(days=policy.trusted_days), now)
    if not trusted:
        scopes.append((log.failures(since=since, until=now, username=username), policy.name_free, policy.name_cap_s))
    waits = [(f.last + timedelta(seconds=backoff_s(f.count, free, cap)) - now).total_seconds()
             for f, free, cap in scopes if f.last is not None]
    return max([0.0, *waits])
