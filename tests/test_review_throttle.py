"""The password policy and the login backoff, as rules (the HTTP behaviour is in test_review_app.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from voicebot.review.throttle import Failures, ThrottlePolicy, backoff_s, password_problem, wait_s
from voicebot.review.users import ReviewDB, UserError

NOW = datetime(2026, 3, 3, 9, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("password", ["12345678", "1234567890", "password123", "Password1!", "qwertyuiop",
                                      "short-1", "aaaaaaaaaaaa", "abababababab", "ada-the-admin", "9876543210123"])
def test_weak_passwords_are_refused(password):
    assert password_problem(password, "ada") is not None


@pytest.mark.parametrize("password", ["harbour-lamp-7", "correct horse battery", "Tr1cky!Lantern"])
def test_reasonable_passwords_pass(password):
    assert password_problem(password, "ada") is None


def test_add_user_applies_the_policy(tmp_path):
    db = ReviewDB(tmp_path / "review.db")
    with pytest.raises(UserError, match="common"):
        db.add_user("bob", "password123", "supervisor")
    with pytest.raises(UserError, match="digits only"):
        db.add_user("bob", "1357924680", "supervisor")
    assert db.add_user("bob", "harbour-lamp-7", "supervisor").username == "bob"


def test_backoff_doubles_after_the_free_tries_and_is_capped():
    assert [backoff_s(n, 3, 60) for n in range(2, 11)] == [0, 1, 2, 4, 8, 16, 32, 60, 60]


class Log:
    """A FailureLog with fixed answers per scope."""

    def __init__(self, by_client=0, by_pair=0, by_name=0, trusted=False, last=NOW):
        self.counts = {"client": by_client, "pair": by_pair, "name": by_name}
        self.trusted, self.last = trusted, last

    def failures(self, *, since, until, username=None, client=None):
        scope = "pair" if username and client else "client" if client else "name"
        n = self.counts[scope]
        return Failures(n, self.last if n else None)

    def logged_in_before(self, username, client, since, until):
        return self.trusted


def test_the_longest_scope_wait_applies():
    policy = ThrottlePolicy()
    assert wait_s(Log(), "ada", "10.0.0.1", NOW, policy) == 0
    assert wait_s(Log(by_client=9), "ada", "10.0.0.1", NOW, policy) == 16  # 2 ** (9 - 5)
    assert wait_s(Log(by_pair=5), "ada", "10.0.0.1", NOW, policy) == 4  # 2 ** (5 - 3)
    assert wait_s(Log(by_name=40), "ada", "10.0.0.1", NOW, policy) == 60  # capped: never a lockout


def test_a_client_the_user_logged_in_from_before_skips_the_name_wide_backoff():
    assert wait_s(Log(by_name=40, trusted=True), "ada", "10.0.0.1", NOW) == 0
    assert wait_s(Log(by_name=40, trusted=False), "ada", "10.0.0.1", NOW) == 60


def test_the_wait_runs_from_the_last_failure():
    log = Log(by_client=9, last=NOW - timedelta(seconds=10))
    assert wait_s(log, "ada", "10.0.0.1", NOW) == 6
    assert wait_s(log, "ada", "10.0.0.1", NOW + timedelta(seconds=7)) == 0
