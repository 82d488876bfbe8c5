"""Officer accounts: set-up codes, argon2id passwords, TOTP, and the login limits.

Real SQLCipher, real argon2id (cheap parameters), real TOTP codes computed for explicit
moments; the clock is passed in, never read.
"""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from intake import accounts, crypto, sessions, store
from intake.config import Config
from intake.receipts import HashParams

from support import T0, Officer, actions, audit_rows, enrol

LATER = T0 + timedelta(minutes=1)  # past the TOTP step that set-up used


def _add(db: store.Connection, config: Config, username: str = "alice", *,
         role: str = "officer", now: datetime = T0) -> str:
    return accounts.add(db, config.audit_key, username=username, role=role, actor=None,
                        now=now, setup_hours=config.console.setup_hours)[1]


def _failures(db: store.Connection, officer: Officer) -> int:
    row = db.execute("SELECT failed_logins FROM users WHERE id = ?", (officer.user.id,))
    return int(row.fetchone()[0])


def _refused(db: store.Connection, config: Config, officer: Officer, at: datetime,
             **typed: str) -> int:
    """Try to log in, expect a refusal, and return its retry_after."""
    with pytest.raises(accounts.LoginRefused) as info:
        officer.login(db, config, at, **typed)
    return info.value.retry_after


# --- Set-up ------------------------------------------------------------------------------


def test_an_account_is_set_up_with_its_code_a_password_and_a_first_app_code(db: store.Connection, config: Config) -> None:
    user, code = accounts.add(db, config.audit_key, username="alice", role="officer",
                              actor=None, now=T0, setup_hours=72)
    assert (user.set_up, user.disabled) == (False, False)
    assert len(code.replace("-", "")) == 26  # 128 bits in base32
    secret = accounts.begin_setup(db, username="alice", code=code, password="a long password",
                                  params=config.password_hash, now=T0)
    assert accounts.all_users(db)[0].set_up is False  # not until a first code from the app
    done = accounts.finish_setup(db, config.audit_key, username="alice", code=code,
                                 totp_code=crypto.totp_code(secret, at=T0.timestamp()), now=T0)
    assert done.set_up and accounts.officers(db) == [done]
    stored = db.execute("SELECT password_hash, setup_hash FROM users").fetchone()
    assert stored[0].startswith("$argon2id$") and "a long password" not in stored[0]
    assert stored[1] is None
    officer = Officer(done, "a long password", secret)
    assert officer.login(db, config, LATER) == done
    assert actions(db) == ["user_added", "user_enrolled", "login"]


def test_the_set_up_code_works_once(db: store.Connection, config: Config) -> None:
    code = _add(db, config)
    secret = accounts.begin_setup(db, username="alice", code=code, password="p" * 12,
                                  params=config.password_hash, now=T0)
    accounts.finish_setup(db, config.audit_key, username="alice", code=code,
                          totp_code=crypto.totp_code(secret, at=T0.timestamp()), now=T0)
    with pytest.raises(accounts.SetupInvalid):
        accounts.begin_setup(db, username="alice", code=code, password="q" * 12,
                             params=config.password_hash, now=LATER)
    with pytest.raises(accounts.SetupInvalid):
        accounts.finish_setup(db, config.audit_key, username="alice", code=code,
                              totp_code=crypto.totp_code(secret, at=LATER.timestamp()), now=LATER)
    # Nothing was changed by the refused attempts: the password is still the first one.
    assert Officer(accounts.all_users(db)[0], "p" * 12, secret).login(db, config, LATER)


def test_the_set_up_code_expires(db: store.Connection, config: Config) -> None:
    code = _add(db, config)
    expiry = T0 + timedelta(hours=config.console.setup_hours)
    with pytest.raises(accounts.SetupInvalid):
        accounts.begin_setup(db, username="alice", code=code, password="p" * 12,
                             params=config.password_hash, now=expiry + timedelta(seconds=1))
    # Up to the last moment it works, and it may be typed loosely.
    loose = code.lower().replace("-", " ")
    assert accounts.begin_setup(db, username="alice", code=loose, password="p" * 12,
                                params=config.password_hash, now=expiry)


@pytest.mark.parametrize("case", ["wrong-code", "other-account", "unknown-name"])
def test_a_wrong_set_up_code_or_name_is_refused(db: store.Connection, config: Config, case: str) -> None:
    code = _add(db, config)
    other = _add(db, config, "bob")
    username, typed = {"wrong-code": ("alice", code[:-1] + ("A" if code[-1] != "A" else "B")),
                       "other-account": ("alice", other), "unknown-name": ("carol", code)}[case]
    with pytest.raises(accounts.SetupInvalid):
        accounts.begin_setup(db, username=username, code=typed, password="p" * 12,
                             params=config.password_hash, now=T0)
    assert db.execute("SELECT count(*) FROM users WHERE password_hash IS NOT NULL").fetchone()[0] == 0


def test_a_wrong_first_app_code_leaves_the_account_waiting(db: store.Connection, config: Config) -> None:
    code = _add(db, config)
    with pytest.raises(accounts.SetupInvalid):  # no password chosen yet
        accounts.finish_setup(db, config.audit_key, username="alice", code=code,
                              totp_code="123456", now=T0)
    secret = accounts.begin_setup(db, username="alice", code=code, password="p" * 12,
                                  params=config.password_hash, now=T0)
    wrong = crypto.totp_code(secret, at=T0.timestamp() + 5 * crypto.TOTP_STEP)
    with pytest.raises(accounts.SetupInvalid):
        accounts.finish_setup(db, config.audit_key, username="alice", code=code,
                              totp_code=wrong, now=T0)
    assert not accounts.all_users(db)[0].set_up
    assert accounts.finish_setup(db, config.audit_key, username="alice", code=code,
                                 totp_code=crypto.totp_code(secret, at=T0.timestamp()), now=T0).set_up


@pytest.mark.parametrize("password", ["", "eleven char", "x" * (accounts.MAX_PASSWORD_CHARS + 1)])
def test_a_weak_password_is_refused_and_the_code_still_works(db: store.Connection, config: Config, password: str) -> None:
    code = _add(db, config)
    with pytest.raises(accounts.WeakPassword):
        accounts.begin_setup(db, username="alice", code=code, password=password,
                             params=config.password_hash, now=T0)
    assert accounts.begin_setup(db, username="alice", code=code, password="twelve chars",
                                params=config.password_hash, now=T0)


def test_a_password_is_compared_in_one_unicode_form(db: store.Connection, config: Config) -> None:
    officer = enrol(db, config, "alice")
    code = accounts.reset(db, config.audit_key, user_id=officer.user.id, actor=None, now=T0,
                          setup_hours=72)
    composed = "café au lait, s'il vous plaît"
    secret = accounts.begin_setup(db, username="alice", code=code, password=composed,
                                  params=config.password_hash, now=LATER)
    accounts.finish_setup(db, config.audit_key, username="alice", code=code,
                          totp_code=crypto.totp_code(secret, at=LATER.timestamp()), now=LATER)
    typed = Officer(officer.user, unicodedata.normalize("NFD", composed), secret)
    assert typed.password != composed
    assert typed.login(db, config, LATER + timedelta(minutes=1))


# --- User names and roles ----------------------------------------------------------------


def test_user_names_are_case_insensitive(db: store.Connection, config: Config) -> None:
    officer = enrol(db, config, "  Alice ")
    assert officer.user.username == "alice"
    with pytest.raises(accounts.AccountError, match="already an account called alice"):
        _add(db, config, "ALICE")
    assert officer.login(db, config, LATER, username=" ALICE ").id == officer.user.id


@pytest.mark.parametrize("name", ["", "a", "x" * 33, "-alice", ".alice", "al ice", "élise",
                                  "alice@example.org", "ali\u0441e", "alice!"])
def test_invalid_user_names_are_refused(db: store.Connection, config: Config, name: str) -> None:
    with pytest.raises(accounts.AccountError, match="2 to 32 characters"):
        _add(db, config, name)
    assert accounts.all_users(db) == []


@pytest.mark.parametrize("name", ["ab", "x" * 32, "a.b_c-d", "0fficer9"])
def test_valid_user_names_are_accepted(db: store.Connection, config: Config, name: str) -> None:
    _add(db, config, name)
    assert [u.username for u in accounts.all_users(db)] == [name]


def test_an_unknown_role_is_refused(db: store.Connection, config: Config) -> None:
    with pytest.raises(accounts.AccountError, match="admin, officer, analyst"):
        _add(db, config, role="superuser")


# --- Logging in --------------------------------------------------------------------------


@pytest.mark.parametrize("wrong", ["password", "code", "name", "disabled", "waiting"])
def test_every_wrong_login_is_refused_alike_and_recorded_without_the_name(db: store.Connection, config: Config, wrong: str) -> None:
    officer = enrol(db, config, "alice")
    typed: dict[str, str] = {}
    actor: int | None = officer.user.id
    if wrong == "password":
        typed = {"password": "mallory-typed-this"}
    elif wrong == "code":
        typed = {"totp_code": officer.code(LATER, steps=5)}
    elif wrong == "name":
        typed, actor = {"username": "mallory-typed-this"}, None
    elif wrong == "disabled":
        accounts.disable(db, config.audit_key, user_id=officer.user.id, actor=None, now=T0)
        actor = None  # a disabled account is looked up like an unknown one
    else:
        accounts.reset(db, config.audit_key, user_id=officer.user.id, actor=None, now=T0,
                       setup_hours=72)
        actor = None
    with pytest.raises(accounts.LoginRefused) as info:
        officer.login(db, config, LATER, **typed)
    assert (info.value.retry_after, str(info.value)) == (0, "invalid")
    last = audit_rows(db)[-1]
    assert (last[2], last[3], last[4], last[5]) == (actor, "login_failed", None, "{}")
    assert not any("mallory" in str(value) for row in audit_rows(db) for value in row)


def test_a_code_is_accepted_once(db: store.Connection, config: Config) -> None:
    officer = enrol(db, config, "alice")
    officer.login(db, config, LATER)
    assert _refused(db, config, officer, LATER + timedelta(seconds=5)) == 0
    # An older code than the one used is no better.
    assert _refused(db, config, officer, LATER + timedelta(seconds=31),
                    totp_code=officer.code(LATER)) == 0
    assert officer.login(db, config, LATER + timedelta(seconds=31))


@pytest.mark.parametrize(("steps", "accepted"), [(-2, False), (-1, True), (0, True), (1, True), (2, False)])
def test_one_step_of_clock_drift_is_accepted_either_way(db: store.Connection, config: Config, steps: int, accepted: bool) -> None:
    officer = enrol(db, config, "alice")
    at = T0 + timedelta(minutes=10)
    code = officer.code(at, steps=steps)
    if accepted:
        assert officer.login(db, config, at, totp_code=code)
    else:
        assert _refused(db, config, officer, at, totp_code=code) == 0


def test_a_login_with_new_hash_parameters_rehashes_the_password(db: store.Connection, config: Config) -> None:
    officer = enrol(db, config, "alice")
    before = db.execute("SELECT password_hash FROM users").fetchone()[0]
    stronger = HashParams(time_cost=2, memory_kib=128, parallelism=1)
    accounts.authenticate(db, config.audit_key, username="alice", password=officer.password,
                          totp_code=officer.code(LATER), params=stronger, now=LATER)
    after = db.execute("SELECT password_hash FROM users").fetchone()[0]
    assert after != before and "m=128,t=2" in after


# --- Limits ------------------------------------------------------------------------------


def test_after_five_failures_each_wait_doubles_up_to_an_hour(db: store.Connection, config: Config) -> None:
    officer = enrol(db, config, "alice")
    at = LATER
    for _ in range(accounts.FREE_FAILURES):
        assert _refused(db, config, officer, at, password="wrong password") == 0
        at += timedelta(seconds=1)
    last = at - timedelta(seconds=1)
    # Even the right password is refused now, and the refusal itself costs nothing.
    assert _refused(db, config, officer, at) == 59
    assert _refused(db, config, officer, at) == 59
    assert _failures(db, officer) == accounts.FREE_FAILURES
    waits: list[int] = []
    for _ in range(10):
        at = last + timedelta(seconds=waits[-1] if waits else 60)
        assert _refused(db, config, officer, at, password="wrong password") == 0
        last = at
        waits.append(_refused(db, config, officer, at))
    assert waits == [120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600, 3600]
    assert officer.login(db, config, last + timedelta(hours=1))
    assert _failures(db, officer) == 0
    assert _refused(db, config, officer, last + timedelta(hours=1, seconds=1),
                    password="wrong password") == 0  # free again


def test_the_wait_stays_an_hour_however_many_failures(db: store.Connection, config: Config) -> None:
    officer = enrol(db, config, "alice")
    at = LATER
    for count in range(1, 61):
        assert _refused(db, config, officer, at, password="wrong password") == 0
        at += timedelta(seconds=1) if count < accounts.FREE_FAILURES else timedelta(hours=1)
    assert _failures(db, officer) == 60
    assert _refused(db, config, officer, at - timedelta(minutes=30)) == 1800
    assert officer.login(db, config, at)


def test_a_reset_clears_the_wait(db: store.Connection, config: Config) -> None:
    officer = enrol(db, config, "alice")
    for _ in range(accounts.FREE_FAILURES):
        _refused(db, config, officer, LATER, password="wrong password")
    code = accounts.reset(db, config.audit_key, user_id=officer.user.id, actor=None,
                          now=LATER, setup_hours=72)
    secret = accounts.begin_setup(db, username="alice", code=code, password=officer.password,
                                  params=config.password_hash, now=LATER)
    accounts.finish_setup(db, config.audit_key, username="alice", code=code,
                          totp_code=crypto.totp_code(secret, at=LATER.timestamp()), now=LATER)
    assert Officer(officer.user, officer.password, secret).login(db, config, LATER + timedelta(minutes=1))


def test_failures_over_all_names_hold_every_login(db: store.Connection, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounts, "OVERALL_FAILURES", 3)
    officer = enrol(db, config, "alice")
    for i in range(3):
        _refused(db, config, officer, LATER + timedelta(seconds=10 * i), username=f"guess{i}")
    assert _refused(db, config, officer, LATER + timedelta(seconds=30)) == 270
    assert db.execute("SELECT count(*) FROM login_failures").fetchone()[0] == 3
    assert _failures(db, officer) == 0  # held by the overall limit, not by its own
    assert officer.login(db, config, LATER + accounts.WINDOW + timedelta(seconds=1))
    # Failures older than the window are forgotten at the next failure.
    _refused(db, config, officer, LATER + accounts.WINDOW * 3, username="later")
    assert db.execute("SELECT count(*) FROM login_failures").fetchone()[0] == 1


# --- Reset and disable -------------------------------------------------------------------


def test_a_reset_clears_password_and_app_and_ends_every_session(db: store.Connection, config: Config) -> None:
    officer = enrol(db, config, "alice")
    other = enrol(db, config, "bob")
    for who in (officer, officer, other):
        sessions.start(db, who.user.id, now=LATER)
    code = accounts.reset(db, config.audit_key, user_id=officer.user.id, actor=other.user.id,
                          now=LATER, setup_hours=72)
    row = db.execute("SELECT password_hash, totp_secret, totp_last_step FROM users WHERE id = ?",
                     (officer.user.id,)).fetchone()
    assert row == (None, None, 0)
    assert (sessions.count(db, officer.user.id), sessions.count(db, other.user.id)) == (0, 1)
    assert accounts.get(db, officer.user.id) == replace(officer.user, set_up=False)
    assert _refused(db, config, officer, LATER + timedelta(minutes=1)) == 0
    assert accounts.begin_setup(db, username="alice", code=code, password="a new password",
                                params=config.password_hash, now=LATER)
    entry = audit_rows(db)[-2]  # before the failed login
    assert (entry[2], entry[3], entry[5]) == (other.user.id, "user_reset",
                                              f'{{"user":{officer.user.id}}}')
    with pytest.raises(accounts.AccountError):
        accounts.reset(db, config.audit_key, user_id=999, actor=None, now=LATER, setup_hours=72)


def test_a_disabled_account_cannot_log_in_or_set_up(db: store.Connection, config: Config) -> None:
    officer = enrol(db, config, "alice")
    waiting = _add(db, config, "bob")
    sessions.start(db, officer.user.id, now=LATER)
    for user_id in (officer.user.id, 2):
        accounts.disable(db, config.audit_key, user_id=user_id, actor=None, now=LATER)
    assert sessions.count(db, officer.user.id) == 0
    assert [u.disabled for u in accounts.all_users(db)] == [True, True]
    assert accounts.officers(db) == []
    assert _refused(db, config, officer, LATER + timedelta(minutes=1)) == 0
    with pytest.raises(accounts.SetupInvalid):
        accounts.begin_setup(db, username="bob", code=waiting, password="p" * 12,
                             params=config.password_hash, now=LATER)
    with pytest.raises(accounts.AccountError):  # already disabled
        accounts.disable(db, config.audit_key, user_id=officer.user.id, actor=None, now=LATER)
    assert actions(db).count("user_disabled") == 2
