"""Officer sessions, kept on the server so they can be listed and ended.

The browser holds a random 256-bit token in an HttpOnly, SameSite=Strict cookie; the
database holds only its SHA-256, so a copy of the database logs no one in. A session ends
after `idle_minutes` without a request, after `session_hours` whatever happens, at logout,
or when the officer logs out everywhere or an administrator resets the account.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from intake import accounts, crypto, store
from intake.config import Console

# last_seen_at is written at most this often: one write per click would be a write per page.
TOUCH_EVERY = timedelta(seconds=30)


@dataclass(frozen=True)
class Session:
    token_hash: bytes
    user: accounts.User
    created_at: datetime
    last_seen_at: datetime
    reauth_at: datetime

    def fresh(self, policy: Console, now: datetime) -> bool:
        """Whether the password and code were given recently enough for a sensitive action."""
        return now - self.reauth_at <= timedelta(minutes=policy.reauth_minutes)


def start(conn: store.Connection, user_id: int, *, now: datetime,
          rng: crypto.Rng = os.urandom) -> str:
    token = crypto.b64encode(rng(32))
    with store.transaction(conn):
        conn.execute(
            "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, reauth_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (crypto.token_digest(token), user_id, now.isoformat(), now.isoformat(),
             now.isoformat()),
        )
    return token


def resolve(conn: store.Connection, token: str, policy: Console, *,
            now: datetime) -> Session | None:
    """The live session of this token, or None (and an expired one is deleted)."""
    if not token or len(token) > 64:
        return None
    digest = crypto.token_digest(token)
    row = conn.execute(
        "SELECT user_id, created_at, last_seen_at, reauth_at FROM sessions"
        " WHERE token_hash = ?", (digest,),
    ).fetchone()
    if row is None:
        return None
    created, seen, reauth = (datetime.fromisoformat(v) for v in row[1:])
    user = accounts.get(conn, int(row[0]))
    if (
        user is None or user.disabled or not user.set_up
        or now - seen > timedelta(minutes=policy.idle_minutes)
        or now - created > timedelta(hours=policy.session_hours)
    ):
        end(conn, digest)
        return None
    if now - seen >= TOUCH_EVERY:
        with store.transaction(conn):
            conn.execute("UPDATE sessions SET last_seen_at = ? WHERE token_hash = ?",
                         (now.isoformat(), digest))
        seen = now
    return Session(digest, user, created, seen, reauth)


def reauthenticated(conn: store.Connection, token_hash: bytes, *, now: datetime) -> None:
    with store.transaction(conn):
        conn.execute("UPDATE sessions SET reauth_at = ? WHERE token_hash = ?",
                     (now.isoformat(), token_hash))


def end(conn: store.Connection, token_hash: bytes) -> None:
    with store.transaction(conn):
        conn.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))


def end_all(conn: store.Connection, user_id: int) -> int:
    with store.transaction(conn):
        return int(conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,)).rowcount)


def count(conn: store.Connection, user_id: int) -> int:
    return int(conn.execute("SELECT count(*) FROM sessions WHERE user_id = ?",
                            (user_id,)).fetchone()[0])
