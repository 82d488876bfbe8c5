"""Limits on guessing: receipt-code checks per client and overall, officer logins per client.

Kept in the database, so that every worker process sees the same counts. A try is counted
*before* its argon2id hash and the count is taken back if the code was right (or the server
was too busy to check it), so that many tries sent at once cannot slip past a limit.

"Per client" without keeping any address. A client is `CLIENT_BYTES` bytes of
HMAC-SHA256(day key, address), where the day key is 32 random bytes kept only in the
database's `meta` table and replaced, together with every client row, on the first use of
each UTC day. A row exists only for a client that made a failed try, and is forgotten some
time after its last one. An IPv6 client is its /64 (one device or household gets a whole
/64, so its single addresses tell nothing apart), an IPv4 client its address. What this
reveals, and to whom, is in SECURITY.md ("Guessing a receipt code").
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from intake import crypto, store
from intake.config import Throttle

KEY_NAME = "client_key"  # meta row: "<UTC day> <64 hex digits>"
CLIENT_BYTES = 8
STATUS = "status"
LOGIN = "login"


class Throttled(Exception):
    """Too many failed tries: wait `retry_after` seconds. Nothing was checked."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("throttled")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Policy:
    """After `free_failures` failed tries a client waits `first_wait`, then twice as long
    after each further failure, never more than `max_wait`."""

    free_failures: int
    first_wait: timedelta
    max_wait: timedelta

    @property
    def forget_after(self) -> timedelta:
        # Long enough that waiting it out gains a guesser little over waiting out each
        # max_wait (free_failures per forget_after against one per max_wait); short enough
        # that a row, and the trace of a failed try, does not outlive its use by much.
        return self.max_wait * 6

    def wait(self, failures: int, last: datetime, now: datetime) -> timedelta:
        if failures < self.free_failures:
            return timedelta(0)
        # Capped before multiplying: a timedelta overflows after about 40 doublings.
        doublings = min(failures - self.free_failures, 20)
        wait: timedelta = min(self.first_wait * 2**doublings, self.max_wait)
        return max(timedelta(0), last + wait - now)


def status_policy(settings: Throttle) -> Policy:
    return Policy(
        free_failures=settings.status_free_failures,
        first_wait=timedelta(seconds=settings.status_first_wait_seconds),
        max_wait=timedelta(seconds=settings.status_max_wait_seconds),
    )


def seconds(wait: timedelta) -> int:
    """A wait as the whole seconds of a Retry-After header, at least 1."""
    return max(1, math.ceil(wait.total_seconds()))


# --- Clients -------------------------------------------------------------------------------


def client_address(peer: str | None, forwarded_for: str | None, trusted_proxy: str) -> str | None:
    """The address that stands for the client, or None when there is none to use.

    From a trusted proxy, the last X-Forwarded-For entry: the one the proxy itself wrote
    (deploy/'s Caddyfiles overwrite the header with the connection's address, so a client
    cannot choose it). None when the proxy names no client, or a loopback one: a visitor
    who reached the proxy from this machine, which in deploy/ is Tor's onion service, where
    every visitor would be the same client.
    """
    if not _is_proxy(peer, trusted_proxy):
        return peer
    if not forwarded_for:
        return None
    last = forwarded_for.rsplit(",", 1)[-1].strip()
    try:
        ip = ipaddress.ip_address(last)
    except ValueError:
        return None
    return None if ip.is_loopback else last


def _is_proxy(peer: str | None, trusted_proxy: str) -> bool:
    if not peer or trusted_proxy == "none":
        return False
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if trusted_proxy == "loopback":
        return ip.is_loopback
    return ip == ipaddress.ip_address(trusted_proxy)


def client_id(
    conn: store.Connection, address: str | None, now: datetime, rng: crypto.Rng = os.urandom
) -> bytes | None:
    """Today's id of the client at `address`, or None when there is no usable address."""
    subject = _subject(address)
    if subject is None:
        return None
    key = _day_key(conn, now.astimezone(UTC).date(), rng)
    return hmac.new(key, subject, hashlib.sha256).digest()[:CLIENT_BYTES]


def _subject(address: str | None) -> bytes | None:
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is None:
            return b"6" + ip.packed[:8]
        ip = ip.ipv4_mapped
    return b"4" + ip.packed


def _day_key(conn: store.Connection, day: date, rng: crypto.Rng) -> bytes:
    found = _stored_key(conn, day)
    if found is not None:
        return found
    with store.transaction(conn):
        found = _stored_key(conn, day)  # another worker may have replaced it meanwhile
        if found is not None:
            return found
        key = rng(32)
        # Yesterday's rows go with yesterday's key: without it they are 8 random bytes,
        # but they would still say how many clients failed and when.
        conn.execute("DELETE FROM throttle_clients")
        conn.execute(
            "INSERT INTO meta (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (KEY_NAME, f"{day.isoformat()} {key.hex()}"),
        )
    return key


def _stored_key(conn: store.Connection, day: date) -> bytes | None:
    row = conn.execute("SELECT value FROM meta WHERE name = ?", (KEY_NAME,)).fetchone()
    if row is None:
        return None
    stored_day, _, key = str(row[0]).partition(" ")
    return bytes.fromhex(key) if stored_day == day.isoformat() else None


def client_wait(
    conn: store.Connection, policy: Policy, kind: str, client: bytes | None, now: datetime
) -> timedelta:
    if client is None:
        return timedelta(0)
    row = conn.execute(
        "SELECT failures, last_at FROM throttle_clients WHERE kind = ? AND client = ?",
        (kind, client),
    ).fetchone()
    if row is None:
        return timedelta(0)
    return policy.wait(int(row[0]), datetime.fromisoformat(row[1]), now)


@dataclass(frozen=True)
class Counted:
    """A try counted as failed before it was checked, so that it can be taken back."""

    kind: str
    client: bytes | None
    at: str = ""
    before: str | None = None  # the client's last try before this one, if it had any


def count(conn: store.Connection, policy: Policy, kind: str, client: bytes | None,
          now: datetime) -> Counted:
    """Count a try of `client` as failed; `uncount` takes it back if it was not."""
    if client is None:
        return Counted(kind, None)
    conn.execute(
        "DELETE FROM throttle_clients WHERE kind = ? AND last_at < ?",
        (kind, _text(now - policy.forget_after)),
    )
    row = conn.execute(
        "SELECT last_at FROM throttle_clients WHERE kind = ? AND client = ?", (kind, client)
    ).fetchone()
    at = _text(now)
    conn.execute(
        "INSERT INTO throttle_clients (kind, client, failures, last_at) VALUES (?, ?, 1, ?)"
        " ON CONFLICT (kind, client) DO UPDATE SET failures = failures + 1,"
        " last_at = excluded.last_at",
        (kind, client, at),
    )
    return Counted(kind, client, at, None if row is None else str(row[0]))


def uncount(conn: store.Connection, counted: Counted) -> None:
    """Take a counted try back: one failure fewer, and its time no longer the last one's
    (unless a later try has set its own meanwhile), so that a right code from a client who
    failed before does not start a new wait."""
    if counted.client is None:
        return
    conn.execute(
        "UPDATE throttle_clients SET failures = failures - 1,"
        " last_at = CASE WHEN last_at = ? AND ? IS NOT NULL THEN ? ELSE last_at END"
        " WHERE kind = ? AND client = ?",
        (counted.at, counted.before, counted.before, counted.kind, counted.client),
    )
    conn.execute(
        "DELETE FROM throttle_clients WHERE kind = ? AND client = ? AND failures <= 0",
        (counted.kind, counted.client),
    )


def _text(moment: datetime) -> str:
    # One fixed format, so that the stored times compare correctly as text.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


# --- Receipt-code checks -------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """A status check that passed the limits and is counted as failed until `cancel`."""

    conn: store.Connection
    counted: Counted
    overall_row: int

    def cancel(self) -> None:
        """The code was found, or not checked at all: the try does not count."""
        with store.transaction(self.conn):
            uncount(self.conn, self.counted)
            self.conn.execute("DELETE FROM status_failures WHERE rowid = ?", (self.overall_row,))


def begin_status_check(
    conn: store.Connection, settings: Throttle, address: str | None, now: datetime,
    rng: crypto.Rng = os.urandom,
) -> Attempt:
    """Pass the limits or raise Throttled; the try is counted as failed from here on.

    Per client: `status_policy`. Overall: once `status_overall_failures` checks failed
    within the window, every client waits until the oldest of them leaves it.
    """
    policy = status_policy(settings)
    window = timedelta(seconds=settings.status_overall_window_seconds)
    with store.transaction(conn):
        client = client_id(conn, address, now, rng)
        wait = max(client_wait(conn, policy, STATUS, client, now),
                   _overall_wait(conn, settings.status_overall_failures, window, now))
        counted, row = Counted(STATUS, None), 0
        if not wait:
            counted = count(conn, policy, STATUS, client, now)
            conn.execute("DELETE FROM status_failures WHERE at < ?", (_text(now - window),))
            cursor = conn.execute("INSERT INTO status_failures (at) VALUES (?)", (_text(now),))
            row = int(cursor.lastrowid or 0)
    if wait:
        # Nothing was written but perhaps a new day key: the refusal itself costs nothing.
        raise Throttled(seconds(wait))
    return Attempt(conn, counted, row)


def _overall_wait(conn: store.Connection, limit: int, window: timedelta,
                  now: datetime) -> timedelta:
    rows = conn.execute(
        "SELECT at FROM status_failures WHERE at >= ? ORDER BY at DESC LIMIT 1 OFFSET ?",
        (_text(now - window), limit - 1),
    ).fetchone()
    if rows is None:
        return timedelta(0)
    return max(timedelta(0), datetime.fromisoformat(rows[0]) + window - now)


def forget_everything(conn: store.Connection, schema: str = "main") -> None:
    """Drop every client, every counted failure and the day key from `schema` (a copy
    being made for a backup), where its tables exist."""
    if schema not in ("main", "backup"):
        raise ValueError(f"unknown schema {schema}")
    tables = {row[0] for row in conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table'")}  # noqa: S608
    for table in ("throttle_clients", "status_failures"):
        if table in tables:
            conn.execute(f"DELETE FROM {schema}.{table}")  # noqa: S608  (fixed names)
    conn.execute(f"DELETE FROM {schema}.meta WHERE name = ?", (KEY_NAME,))  # noqa: S608
