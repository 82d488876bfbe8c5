"""Officer accounts: roles, set-up with a one-time code, argon2id passwords, TOTP, throttling.

An administrator adds an account and hands its one-time set-up code to the officer, who
chooses a password and enrols an authenticator app: the administrator never knows either.
Every login needs the password and a six-digit code. Failed logins are limited per account,
per client and overall, in the database, so the limit holds across every worker process; no
client address is kept to do it (SECURITY.md, "Officer console").
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from intake import audit, capacity, crypto, focal, store, throttle
from intake.receipts import HashParams

ROLES = ("admin", "officer", "analyst")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024

# Per account: after FREE_FAILURES wrong logins, each further try waits twice as long as the
# one before, up to MAX_WAIT. A real officer is never locked out for longer than that, and
# an administrator's reset clears it at once.
FREE_FAILURES = 5
FIRST_WAIT = timedelta(minutes=1)
MAX_WAIT = timedelta(hours=1)
# Overall: this many failures within WINDOW, across all accounts and unknown names, and
# every login waits until the window has passed. It slows a spray over many usernames.
OVERALL_FAILURES = 100
WINDOW = timedelta(minutes=5)
# Per client (a keyed hash of its address, intake/throttle.py): one client spraying many
# names is slowed before the overall limit holds every officer. More free tries than per
# account, because an office shares one address; capped, so that someone on the same
# network as the officers can slow them but never lock them out for good.
CLIENT_POLICY = throttle.Policy(
    free_failures=10, first_wait=timedelta(minutes=1), max_wait=timedelta(minutes=15)
)


class AccountError(Exception):
    """An account action was refused; the message is for the administrator."""


class SetupInvalid(Exception):
    """Unknown account, wrong, used or expired set-up code, or a wrong first code."""


class WeakPassword(Exception):
    """The new password is shorter than MIN_PASSWORD_CHARS."""


class LoginRefused(Exception):
    """Wrong name, password or code (`retry_after` 0), or too many tries (seconds to wait)."""

    def __init__(self, retry_after: int = 0) -> None:
        super().__init__("throttled" if retry_after else "invalid")
        self.retry_after = retry_after


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    set_up: bool
    disabled: bool


_COLUMNS = "id, username, role, setup_hash IS NULL AND password_hash IS NOT NULL, disabled_at"


def _user(row: tuple[Any, ...]) -> User:
    return User(int(row[0]), str(row[1]), str(row[2]), bool(row[3]), row[4] is not None)


def _hasher(params: HashParams) -> PasswordHasher:
    return PasswordHasher(
        time_cost=params.time_cost, memory_cost=params.memory_kib,
        parallelism=params.parallelism,
    )


def get(conn: store.Connection, user_id: int) -> User | None:
    query = f"SELECT {_COLUMNS} FROM users WHERE id = ?"  # noqa: S608  (fixed columns)
    row = conn.execute(query, (user_id,)).fetchone()
    return _user(row) if row else None


def all_users(conn: store.Connection) -> list[User]:
    query = f"SELECT {_COLUMNS} FROM users ORDER BY username"  # noqa: S608  (fixed columns)
    return [_user(r) for r in conn.execute(query)]


def officers(conn: store.Connection) -> list[User]:
    return [u for u in all_users(conn) if u.role == "officer" and u.set_up and not u.disabled]


def add(
    conn: store.Connection,
    audit_key: bytes,
    *,
    username: str,
    role: str,
    actor: int | None,
    now: datetime,
    setup_hours: int,
    rng: crypto.Rng = os.urandom,
) -> tuple[User, str]:
    """Create an account; returns it and its one-time set-up code (128 random bits)."""
    username = username.strip().lower()
    if not USERNAME.match(username):
        raise AccountError(
            "A user name has 2 to 32 characters: letters a-z, digits, dot, dash, underscore."
        )
    if role not in ROLES:
        raise AccountError(f"The role must be one of {', '.join(ROLES)}.")
    code = focal.display_code(rng(16))
    with store.transaction(conn):
        if conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
            raise AccountError(f"There is already an account called {username}.")
        cursor = conn.execute(
            "INSERT INTO users (username, role, created_at, setup_hash, setup_expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (username, role, now.isoformat(), focal.code_hash(code),
             (now + timedelta(hours=setup_hours)).isoformat()),
        )
        user_id = int(cursor.lastrowid or 0)
        audit.record(conn, audit_key, actor=actor, action="user_added", now=now,
                     detail={"user": user_id, "role": role})
    return User(user_id, username, role, False, False), code


def reset(
    conn: store.Connection,
    audit_key: bytes,
    *,
    user_id: int,
    actor: int | None,
    now: datetime,
    setup_hours: int,
    rng: crypto.Rng = os.urandom,
) -> str:
    """A lost phone or password: clear both, end every session, issue a new set-up code.

    A disabled account stays disabled: a reset must not quietly bring it back.
    """
    code = focal.display_code(rng(16))
    with store.transaction(conn):
        changed = conn.execute(
            "UPDATE users SET setup_hash = ?, setup_expires_at = ?, password_hash = NULL,"
            " totp_secret = NULL, totp_last_step = 0, failed_logins = 0, last_failed_at = NULL"
            " WHERE id = ?",
            (focal.code_hash(code), (now + timedelta(hours=setup_hours)).isoformat(), user_id),
        ).rowcount
        if not changed:
            raise AccountError("There is no such account.")
        conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
        audit.record(conn, audit_key, actor=actor, action="user_reset", now=now,
                     detail={"user": user_id})
    return code


def disable(
    conn: store.Connection, audit_key: bytes, *, user_id: int, actor: int | None,
    now: datetime,
) -> None:
    with store.transaction(conn):
        changed = conn.execute(
            "UPDATE users SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL",
            (now.isoformat(), user_id),
        ).rowcount
        if not changed:
            raise AccountError("There is no such active account.")
        conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
        audit.record(conn, audit_key, actor=actor, action="user_disabled", now=now,
                     detail={"user": user_id})


def begin_setup(
    conn: store.Connection,
    *,
    username: str,
    code: str,
    password: str,
    params: HashParams,
    now: datetime,
    rng: crypto.Rng = os.urandom,
    gate: capacity.Gate | None = None,
) -> bytes:
    """Check the set-up code, keep the new password's hash, return a new TOTP secret.

    The account stays unusable until `finish_setup` sees a first code from the app.
    """
    check_password(password)
    _setup_account(conn, username, code, now)  # before the hash: a wrong code costs none
    with capacity.slot(gate):
        password_hash = _hasher(params).hash(_normal(password))
    with store.transaction(conn):
        user_id = _setup_account(conn, username, code, now)
        secret = crypto.new_totp_secret(rng)
        conn.execute(
            "UPDATE users SET password_hash = ?, totp_secret = ?, totp_last_step = 0"
            " WHERE id = ?",
            (password_hash, secret, user_id),
        )
    return secret


def finish_setup(
    conn: store.Connection,
    audit_key: bytes,
    *,
    username: str,
    code: str,
    totp_code: str,
    now: datetime,
) -> User:
    """The first code from the authenticator app proves it holds the secret: set up."""
    with store.transaction(conn):
        user_id = _setup_account(conn, username, code, now)
        row = conn.execute(
            "SELECT totp_secret FROM users WHERE id = ? AND password_hash IS NOT NULL",
            (user_id,),
        ).fetchone()
        if row is None or row[0] is None:
            raise SetupInvalid("choose a password first")
        try:
            step = crypto.totp_verify(bytes(row[0]), totp_code, at=now.timestamp(), last_step=0)
        except crypto.TotpInvalid:
            raise SetupInvalid("wrong code") from None
        conn.execute(
            "UPDATE users SET setup_hash = NULL, setup_expires_at = NULL, totp_last_step = ?"
            " WHERE id = ?",
            (step, user_id),
        )
        audit.record(conn, audit_key, actor=user_id, action="user_enrolled", now=now)
    user = get(conn, user_id)
    assert user is not None
    return user


def authenticate(
    conn: store.Connection,
    audit_key: bytes,
    *,
    username: str,
    password: str,
    totp_code: str,
    params: HashParams,
    now: datetime,
    action: str = "login",
    client_address: str | None = None,
    gate: capacity.Gate | None = None,
) -> User:
    """Check name, password and code under the limits above; raises LoginRefused, or
    capacity.Busy (the try does not count) when no slot is free for the hash.

    The try is counted as failed before the argon2id hash and taken back if it succeeds,
    so that tries sent all at once cannot slip past a limit; and no transaction is held
    during the hash, so that other writers (reports arriving) never wait on a login.
    """
    hasher = _hasher(params)
    name = username.strip().lower()[:64]
    with store.transaction(conn):
        wait = _overall_wait(conn, now)
        row = conn.execute(
            "SELECT id, password_hash, totp_secret, totp_last_step, failed_logins,"
            " last_failed_at FROM users WHERE username = ? AND setup_hash IS NULL"
            " AND disabled_at IS NULL AND password_hash IS NOT NULL",
            (name,),
        ).fetchone()
        if row is not None:
            wait = max(wait, _account_wait(int(row[4]), row[5], now))
        client = throttle.client_id(conn, client_address, now)
        wait = max(wait, throttle.client_wait(conn, CLIENT_POLICY, throttle.LOGIN, client, now))
        pending: tuple[int, throttle.Counted] = (0, throttle.Counted(throttle.LOGIN, None))
        if not wait:
            pending = _count_failure(conn, None if row is None else int(row[0]), client, now)
    if wait:
        raise LoginRefused(retry_after=throttle.seconds(wait))
    try:
        with capacity.slot(gate):
            step = _check(hasher, row, password, totp_code, now)
            rehashed = (hasher.hash(_normal(password)) if step is not None
                        and hasher.check_needs_rehash(str(row[1])) else None)
    except BaseException:
        with store.transaction(conn):
            _uncount_failure(conn, row, pending, now)
        raise
    with store.transaction(conn):
        if step is not None:
            # The code must still be newer than the last one used: another login with the
            # same code may have finished while this one was hashing.
            used = conn.execute(
                "UPDATE users SET failed_logins = 0, last_failed_at = NULL, totp_last_step = ?"
                " WHERE id = ? AND totp_last_step < ?",
                (step, int(row[0]), step),
            ).rowcount
            if not used:
                step = None
        if step is None:
            # The name typed is not recorded when no account has it: it may be a password.
            audit.record(conn, audit_key, actor=None if row is None else int(row[0]),
                         action="login_failed", now=now)
        else:
            user_id = int(row[0])
            conn.execute("DELETE FROM login_failures WHERE rowid = ?", (pending[0],))
            throttle.uncount(conn, pending[1])
            if rehashed is not None:
                conn.execute("UPDATE users SET password_hash = ? WHERE id = ?",
                             (rehashed, user_id))
            audit.record(conn, audit_key, actor=user_id, action=action, now=now)
    if step is None:
        raise LoginRefused()
    user = get(conn, int(row[0]))
    assert user is not None
    return user


def check_password(password: str) -> None:
    if not MIN_PASSWORD_CHARS <= len(_normal(password)) <= MAX_PASSWORD_CHARS:
        raise WeakPassword(f"a password has at least {MIN_PASSWORD_CHARS} characters")


def _check(
    hasher: PasswordHasher, row: tuple[Any, ...] | None, password: str, totp_code: str,
    now: datetime,
) -> int | None:
    """The TOTP step that logged in, or None. An unknown name costs one hash too."""
    stored = str(row[1]) if row is not None else _DUMMY.get(hasher)
    try:
        hasher.verify(stored, _normal(password)[:MAX_PASSWORD_CHARS])
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    try:
        return crypto.totp_verify(bytes(row[2]), totp_code, at=now.timestamp(),
                                  last_step=int(row[3]))
    except crypto.TotpInvalid:
        return None


class _Dummy:
    """A hash to verify against when the name is unknown, so timing says nothing."""

    def __init__(self) -> None:
        self._by_params: dict[tuple[int, int, int], str] = {}

    def get(self, hasher: PasswordHasher) -> str:
        key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
        if key not in self._by_params:
            self._by_params[key] = hasher.hash(os.urandom(16).hex())
        return self._by_params[key]


_DUMMY = _Dummy()


def _count_failure(conn: store.Connection, user_id: int | None, client: bytes | None,
                   now: datetime) -> tuple[int, throttle.Counted]:
    """Count a try as failed, before it is checked: its row in login_failures, and its
    count for the client."""
    if user_id is not None:
        conn.execute(
            "UPDATE users SET failed_logins = failed_logins + 1, last_failed_at = ? WHERE id = ?",
            (now.isoformat(), user_id),
        )
    conn.execute("DELETE FROM login_failures WHERE at < ?", ((now - WINDOW).isoformat(),))
    cursor = conn.execute("INSERT INTO login_failures (at) VALUES (?)", (now.isoformat(),))
    counted = throttle.count(conn, CLIENT_POLICY, throttle.LOGIN, client, now)
    return int(cursor.lastrowid or 0), counted


def _uncount_failure(conn: store.Connection, row: tuple[Any, ...] | None,
                     pending: tuple[int, throttle.Counted], now: datetime) -> None:
    """Take back a try that was never checked (the server was busy): one failure fewer,
    and the account's last failure what it was, unless a later try has set its own."""
    if row is not None:
        conn.execute(
            "UPDATE users SET failed_logins = max(failed_logins - 1, 0), last_failed_at ="
            " CASE WHEN last_failed_at = ? THEN ? ELSE last_failed_at END WHERE id = ?",
            (now.isoformat(), row[5], int(row[0])),
        )
    conn.execute("DELETE FROM login_failures WHERE rowid = ?", (pending[0],))
    throttle.uncount(conn, pending[1])


def _overall_wait(conn: store.Connection, now: datetime) -> timedelta:
    rows = conn.execute(
        "SELECT at FROM login_failures WHERE at >= ? ORDER BY at",
        ((now - WINDOW).isoformat(),),
    ).fetchall()
    if len(rows) < OVERALL_FAILURES:
        return timedelta(0)
    oldest = datetime.fromisoformat(str(rows[-OVERALL_FAILURES][0]))
    return max(timedelta(0), oldest + WINDOW - now)


def _account_wait(failures: int, last: str | None, now: datetime) -> timedelta:
    if failures < FREE_FAILURES or last is None:
        return timedelta(0)
    # The doublings are capped before multiplying: past about 40 a timedelta overflows, and
    # an account that many failures deep would raise instead of waiting MAX_WAIT.
    doublings = min(failures - FREE_FAILURES, 20)
    wait: timedelta = min(FIRST_WAIT * 2**doublings, MAX_WAIT)
    left: timedelta = datetime.fromisoformat(last) + wait - now
    return max(timedelta(0), left)


def _setup_account(conn: store.Connection, username: str, code: str, now: datetime) -> int:
    row = conn.execute(
        "SELECT id, setup_hash, setup_expires_at FROM users WHERE username = ?"
        " AND disabled_at IS NULL",
        (username.strip().lower()[:64],),
    ).fetchone()
    if (
        row is None or row[1] is None
        or not crypto.macs_equal(bytes(row[1]), focal.code_hash(code))
        or datetime.fromisoformat(row[2]) < now
    ):
        raise SetupInvalid("unknown account, or a wrong, used or expired set-up code")
    return int(row[0])


def _normal(password: str) -> str:
    # The same password typed on two keyboards can differ in Unicode form.
    return unicodedata.normalize("NFC", password)
