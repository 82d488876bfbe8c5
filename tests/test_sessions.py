"""Server-side officer sessions: lifetimes, re-authentication, ending them, and what is stored."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import pytest

from intake import accounts, crypto, sessions, store
from intake.config import Config

from support import T0, Officer, enrol, repeatable_rng


@pytest.fixture
def officer(db: store.Connection, config: Config) -> Officer:
    return enrol(db, config, "alice")


def _rows(db: store.Connection) -> int:
    return int(db.execute("SELECT count(*) FROM sessions").fetchone()[0])


def test_a_token_resolves_to_its_officer(db: store.Connection, config: Config, officer: Officer) -> None:
    token = sessions.start(db, officer.user.id, now=T0)
    found = sessions.resolve(db, token, config.console, now=T0 + timedelta(seconds=1))
    assert found is not None
    assert (found.user, found.created_at, found.reauth_at) == (officer.user, T0, T0)
    assert len(crypto.b64decode(token)) == 32


@pytest.mark.parametrize("token", ["", "x", "A" * 43, "A" * 65])
def test_an_unknown_or_malformed_token_resolves_to_nothing(db: store.Connection, config: Config, officer: Officer, token: str) -> None:
    sessions.start(db, officer.user.id, now=T0)
    assert sessions.resolve(db, token, config.console, now=T0) is None
    assert _rows(db) == 1  # a wrong token ends no one else's session


def test_the_database_holds_only_the_tokens_sha256(db: store.Connection, officer: Officer) -> None:
    token = sessions.start(db, officer.user.id, now=T0, rng=repeatable_rng("session"))
    assert token == crypto.b64encode(repeatable_rng("session")(32))  # rng= is what it uses
    (row,) = db.execute("SELECT * FROM sessions").fetchall()
    assert row[0] == hashlib.sha256(token.encode()).digest()
    raw = crypto.b64decode(token)
    for value in row:
        assert value != token and value != raw
        assert token not in str(value) and raw not in (value if isinstance(value, bytes) else b"")


def test_an_idle_session_ends(db: store.Connection, config: Config, officer: Officer) -> None:
    idle = timedelta(minutes=config.console.idle_minutes)
    token = sessions.start(db, officer.user.id, now=T0)
    # Each request within the idle time keeps it alive, well past one idle time in all.
    at = T0
    for _ in range(3):
        at += idle - timedelta(seconds=1)
        assert sessions.resolve(db, token, config.console, now=at) is not None
    assert sessions.resolve(db, token, config.console, now=at + idle + timedelta(seconds=1)) is None
    assert _rows(db) == 0  # deleted, not merely refused
    assert sessions.resolve(db, token, config.console, now=at) is None


def test_requests_moments_apart_write_last_seen_at_most_every_30_seconds(db: store.Connection, config: Config, officer: Officer) -> None:
    token = sessions.start(db, officer.user.id, now=T0)
    for seconds, seen in ((10, T0), (29, T0), (30, T0 + timedelta(seconds=30)),
                          (45, T0 + timedelta(seconds=30))):
        found = sessions.resolve(db, token, config.console, now=T0 + timedelta(seconds=seconds))
        assert found is not None and found.last_seen_at == seen


def test_a_busy_session_still_ends_after_its_lifetime(db: store.Connection, config: Config, officer: Officer) -> None:
    lifetime = timedelta(hours=config.console.session_hours)
    token = sessions.start(db, officer.user.id, now=T0)
    at = T0
    while at + timedelta(minutes=20) <= T0 + lifetime:
        at += timedelta(minutes=20)
        assert sessions.resolve(db, token, config.console, now=at) is not None
    assert sessions.resolve(db, token, config.console,
                            now=T0 + lifetime + timedelta(seconds=1)) is None
    assert _rows(db) == 0


def test_a_session_is_fresh_for_a_few_minutes_after_a_password_and_code(db: store.Connection, config: Config, officer: Officer) -> None:
    window = timedelta(minutes=config.console.reauth_minutes)
    token = sessions.start(db, officer.user.id, now=T0)

    def fresh(at: datetime) -> bool:
        found = sessions.resolve(db, token, config.console, now=at)
        assert found is not None
        return found.fresh(config.console, at)

    assert fresh(T0 + window)
    assert not fresh(T0 + window + timedelta(seconds=1))
    later = T0 + timedelta(minutes=20)
    found = sessions.resolve(db, token, config.console, now=later)
    assert found is not None
    sessions.reauthenticated(db, found.token_hash, now=later)
    assert fresh(later + window)
    assert not fresh(later + window + timedelta(seconds=1))


def test_end_ends_one_session_and_end_all_every_session_of_one_officer(db: store.Connection, config: Config, officer: Officer) -> None:
    other = enrol(db, config, "bob")
    tokens = [sessions.start(db, officer.user.id, now=T0) for _ in range(3)]
    theirs = sessions.start(db, other.user.id, now=T0)
    first = sessions.resolve(db, tokens[0], config.console, now=T0)
    assert first is not None
    sessions.end(db, first.token_hash)
    alive = [sessions.resolve(db, t, config.console, now=T0) is not None for t in tokens]
    assert alive == [False, True, True]
    assert sessions.end_all(db, officer.user.id) == 2
    assert sessions.count(db, officer.user.id) == 0
    assert sessions.resolve(db, theirs, config.console, now=T0) is not None
    assert sessions.end_all(db, officer.user.id) == 0


def test_a_disabled_officers_session_dies(db: store.Connection, config: Config, officer: Officer) -> None:
    token = sessions.start(db, officer.user.id, now=T0)
    accounts.disable(db, config.audit_key, user_id=officer.user.id, actor=None, now=T0)
    assert sessions.resolve(db, token, config.console, now=T0) is None


def test_a_session_dies_with_its_account_even_if_its_row_survives(db: store.Connection, config: Config, officer: Officer) -> None:
    """resolve checks the account itself, not only that disable and reset deleted rows."""
    token = sessions.start(db, officer.user.id, now=T0)
    with store.transaction(db):
        db.execute("UPDATE users SET disabled_at = ?", (T0.isoformat(),))
    assert sessions.resolve(db, token, config.console, now=T0) is None
    assert _rows(db) == 0


def test_a_reset_account_has_no_session(db: store.Connection, config: Config, officer: Officer) -> None:
    token = sessions.start(db, officer.user.id, now=T0)
    accounts.reset(db, config.audit_key, user_id=officer.user.id, actor=None, now=T0,
                   setup_hours=72)
    assert sessions.resolve(db, token, config.console, now=T0) is None
    # Even a session row written after the reset is refused: the account is not set up.
    late = sessions.start(db, officer.user.id, now=T0)
    assert sessions.resolve(db, late, config.console, now=T0) is None
