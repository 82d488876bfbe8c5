"""The SQLCipher store: connection, migrations, and the few queries the app needs.

Functions take an open connection; nothing here holds global state. Every table lives in
one SQLCipher file encrypted with a raw 256-bit key, so the WAL, the shared-memory file and
any spilled page are ciphertext too. Report content is ciphertext before it gets here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import sqlcipher3.dbapi2 as sqlcipher

from intake.receipts import HashParams

if TYPE_CHECKING:
    # sqlcipher3 ships no types; its connection has exactly the sqlite3 API.
    from sqlite3 import Connection as Connection
else:
    Connection = sqlcipher.Connection


class StoreError(Exception):
    """The database cannot be used; the message says what to do."""


class ReplayedEnvelope(Exception):
    """This envelope was stored before under another receipt code: a replay, not a retry."""


class ReportConflict(Exception):
    """Another envelope already uses this report id."""


@dataclass(frozen=True)
class NewReport:
    report_id: str
    received_at: datetime
    channel: str
    language: str
    schema: int
    sealed_by: str
    receipt_hash: bytes
    envelope: bytes


@dataclass(frozen=True)
class Event:
    at: datetime
    status: str


@dataclass(frozen=True)
class StatusView:
    report_id: str
    status: str
    language: str
    received_at: datetime
    events: tuple[Event, ...]


@dataclass(frozen=True)
class StoredEnvelope:
    report_id: str
    received_at: datetime
    channel: str
    sealed_by: str
    envelope: bytes


_MIGRATION_1 = """
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE reports (
            id TEXT PRIMARY KEY,             -- 32 hex digits, random, from the envelope
            received_at TEXT NOT NULL,       -- UTC, ISO 8601, to the minute
            channel TEXT NOT NULL,
            language TEXT NOT NULL,
            schema_version INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT 'received',
            sealed_by TEXT NOT NULL CHECK (sealed_by IN ('device', 'server')),
            receipt_hash BLOB NOT NULL UNIQUE,
            envelope_sha256 BLOB NOT NULL,
            envelope BLOB NOT NULL
        );
        CREATE INDEX reports_received_at ON reports (received_at);
        CREATE TABLE report_events (
            id INTEGER PRIMARY KEY,
            report_id TEXT NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            status TEXT NOT NULL
        );
        CREATE INDEX report_events_report ON report_events (report_id, at);
"""

# Focal points: shared tablets that enrol once and sign what they submit (Formats 8).
_MIGRATION_2 = """
        CREATE TABLE focal_points (
            id TEXT PRIMARY KEY,             -- 8 hex digits, random
            name TEXT NOT NULL,
            created_at TEXT NOT NULL,
            enrolment_hash BLOB UNIQUE,      -- SHA-256 of the one-time code; NULL once used
            enrolment_expires_at TEXT,
            public_key BLOB,                 -- the tablet's ECDSA P-256 key, from enrolment
            enrolled_at TEXT,
            revoked_at TEXT
        );
"""

# The officer console: accounts, server-side sessions, the audit chain and casework.
# Triage fields and messages to the complainant are plaintext inside SQLCipher: the server
# must count the first and show the second to someone who holds only a receipt code (see
# SECURITY.md, "What the server can read"). Officer notes are envelopes, like reports.
_MIGRATION_3 = """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE COLLATE NOCASE,
            role TEXT NOT NULL CHECK (role IN ('admin', 'officer', 'analyst')),
            created_at TEXT NOT NULL,
            setup_hash BLOB UNIQUE,          -- SHA-256 of the one-time set-up code
            setup_expires_at TEXT,
            password_hash TEXT,              -- argon2id, PHC string; NULL until set up
            totp_secret BLOB,                -- NULL until set up
            totp_last_step INTEGER NOT NULL DEFAULT 0,  -- a code is accepted once
            failed_logins INTEGER NOT NULL DEFAULT 0,
            last_failed_at TEXT,
            disabled_at TEXT
        );
        -- Failed logins of any account, or of none: only the time, for the overall limit.
        CREATE TABLE login_failures (at TEXT NOT NULL);
        CREATE INDEX login_failures_at ON login_failures (at);
        CREATE TABLE sessions (
            token_hash BLOB PRIMARY KEY,     -- SHA-256 of the cookie's random token
            user_id INTEGER NOT NULL REFERENCES users (id),
            created_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL,
            reauth_at TEXT NOT NULL          -- last time the password and code were given
        );
        CREATE INDEX sessions_user ON sessions (user_id);
        CREATE TABLE audit_log (
            seq INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor INTEGER,                   -- users.id; NULL for an unknown account
            action TEXT NOT NULL,
            report_id TEXT,
            detail TEXT NOT NULL,            -- canonical JSON object
            mac BLOB NOT NULL                -- HMAC chain, see intake/audit.py
        );
        ALTER TABLE reports ADD COLUMN assignee INTEGER REFERENCES users (id);
        ALTER TABLE reports ADD COLUMN priority TEXT NOT NULL DEFAULT 'normal';
        ALTER TABLE reports ADD COLUMN outcome TEXT;
        ALTER TABLE reports ADD COLUMN acknowledged_at TEXT;
        ALTER TABLE reports ADD COLUMN first_update_at TEXT;
        -- The next service-level deadline, '9999' when none: kept by intake/cases.py so the
        -- case list sorts overdue cases first from an index, however many cases there are.
        ALTER TABLE reports ADD COLUMN due_at TEXT NOT NULL DEFAULT '9999';
        -- The complainant's answers, recorded by an officer's browser after decrypting:
        -- NULL until then. Referrals and sharing are refused unless the answer was yes.
        ALTER TABLE reports ADD COLUMN consent_refer INTEGER;
        ALTER TABLE reports ADD COLUMN consent_share INTEGER;
        ALTER TABLE reports ADD COLUMN consent_statistics INTEGER;
        -- The case list reads this index in its own order and filters on the columns it
        -- holds, so a page costs the same with 100,000 cases: the rows themselves (with
        -- their envelopes) are read only for the cases shown.
        CREATE INDEX reports_list ON reports
            (due_at, received_at DESC, status, priority, assignee, language, channel);
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            report_id TEXT NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            author INTEGER NOT NULL REFERENCES users (id),
            body TEXT NOT NULL
        );
        CREATE INDEX messages_report ON messages (report_id, at);
        CREATE TABLE notes (
            id INTEGER PRIMARY KEY,
            report_id TEXT NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            author INTEGER NOT NULL REFERENCES users (id),
            envelope BLOB NOT NULL
        );
        CREATE INDEX notes_report ON notes (report_id, at);
        CREATE TABLE triage (
            report_id TEXT PRIMARY KEY REFERENCES reports (id) ON DELETE CASCADE,
            updated_at TEXT NOT NULL,
            fields TEXT NOT NULL             -- canonical JSON object, see intake/triage.py
        );
        CREATE TABLE referrals (
            id INTEGER PRIMARY KEY,
            report_id TEXT NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
            service TEXT NOT NULL,
            referred_on TEXT NOT NULL,       -- a date, as the officer gave it
            created_at TEXT NOT NULL,
            author INTEGER NOT NULL REFERENCES users (id)
        );
        CREATE INDEX referrals_report ON referrals (report_id);
"""

# Attachments (SECURITY.md, Formats 13 and 14). A report with attachments waits in
# `uploads` until every chunk is stored, and only then becomes a row of `reports`. The
# server holds chunks as the device sealed them and knows only their sizes and counts.
_MIGRATION_4 = """
        CREATE TABLE uploads (
            report_id TEXT PRIMARY KEY,      -- the envelope's report id
            updated_at TEXT NOT NULL,        -- UTC, to the minute: the last chunk stored
            token_hash BLOB NOT NULL,        -- SHA-256 of the device's random upload token
            channel TEXT NOT NULL,
            language TEXT NOT NULL,
            schema_version INTEGER NOT NULL,
            receipt_hash BLOB NOT NULL UNIQUE,
            envelope_sha256 BLOB NOT NULL,
            envelope BLOB NOT NULL
        );
        CREATE INDEX uploads_updated_at ON uploads (updated_at);
        -- Each attachment as the device declared it: sizes and counts, never content. The
        -- rows outlive the upload: they belong to the report once it is complete.
        CREATE TABLE attachments (
            report_id TEXT NOT NULL,         -- an upload's, then a report's
            attachment_id TEXT NOT NULL,     -- 32 hex digits, random, from the device
            position INTEGER NOT NULL,       -- order in the payload's list
            sealed_size INTEGER NOT NULL,    -- bytes of ciphertext, every chunk together
            chunks INTEGER NOT NULL,
            PRIMARY KEY (report_id, attachment_id),
            UNIQUE (report_id, position)
        );
        CREATE TABLE attachment_chunks (
            id INTEGER PRIMARY KEY,
            report_id TEXT NOT NULL,
            attachment_id TEXT NOT NULL,
            idx INTEGER NOT NULL,
            data BLOB NOT NULL,              -- AES-256-GCM ciphertext and tag, as sent
            FOREIGN KEY (report_id, attachment_id)
                REFERENCES attachments (report_id, attachment_id) ON DELETE CASCADE,
            UNIQUE (report_id, attachment_id, idx)
        );
"""

# Throttling of guesses (intake/throttle.py). No address is stored: a client is a truncated
# HMAC of its address under a key in `meta` that is replaced, with every row here, each day.
_MIGRATION_5 = """
        CREATE TABLE throttle_clients (
            kind TEXT NOT NULL CHECK (kind IN ('status', 'login')),
            client BLOB NOT NULL,            -- 8 bytes of HMAC-SHA256(day key, address)
            failures INTEGER NOT NULL,
            last_at TEXT NOT NULL,           -- UTC, ISO 8601: the last try counted
            PRIMARY KEY (kind, client)
        ) WITHOUT ROWID;
        -- Failed receipt-code checks of every client: only the time, for the overall limit.
        CREATE TABLE status_failures (at TEXT NOT NULL);
        CREATE INDEX status_failures_at ON status_failures (at);
"""

# Append only: a migration that has shipped is never edited. Each has its own test.
MIGRATIONS: Sequence[str] = (
    _MIGRATION_1, _MIGRATION_2, _MIGRATION_3, _MIGRATION_4, _MIGRATION_5
)


def connect(path: Path, key: bytes) -> Connection:
    """Open (or create) the database with its raw key, or raise StoreError."""
    if len(key) != 32:
        # An empty key would silently create an unencrypted-in-effect database.
        raise StoreError(
            f"Cannot open {path}: the database key must be 32 bytes (64 hexadecimal digits)."
        )
    conn: Connection = sqlcipher.connect(
        str(path), isolation_level=None, check_same_thread=False
    )
    try:
        # A raw key skips SQLCipher's own PBKDF2: the key is already 256 random bits.
        conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher.DatabaseError:
        conn.close()
        raise StoreError(
            f"Cannot open {path}: the database key does not match this database. "
            "Check db.key or INTAKE_DB_KEY; the right key is in your backup."
        ) from None
    # Durability first: a report we acknowledged must survive a crash or power cut.
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    # Freed pages are overwritten, so deleted ciphertext does not linger in the file.
    conn.execute("PRAGMA secure_delete = ON")
    # Temporary tables and sort spills stay in memory, never in an unencrypted temp file.
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


# Connections (by id) inside transaction(), so that only our own transactions are joined.
_OPEN: dict[int, bool] = {}


@contextmanager
def transaction(conn: Connection) -> Iterator[Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception.

    Connections run in autocommit mode (isolation_level=None), so `with conn:` would not
    open a transaction; this does, and takes the write lock at once so that two workers
    reading then writing the same row cannot interleave. Inside another transaction it
    joins that one.
    """
    key = id(conn)
    if _OPEN.get(key):
        # Joined by an outer transaction() (an action and its audit entry commit together);
        # the outer one commits or rolls back for both.
        yield conn
        return
    if conn.in_transaction:
        # A transaction opened by anything but transaction() must never swallow this one:
        # its COMMIT would be left to code that may never run, and an acknowledged write
        # would be lost when the connection closes.
        raise StoreError("A transaction was left open on this connection.")
    conn.execute("BEGIN IMMEDIATE")
    _OPEN[key] = True
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        _OPEN.pop(key, None)


def open_ready(path: Path, key: bytes, params: HashParams) -> Connection:
    """Open the database, bring its schema up to date and check the receipt-hash settings:
    what every entry point (web app, CLI, instance creation) does before using it."""
    conn = connect(path, key)
    try:
        migrate(conn)
        check_hash_params(conn, params)
    except BaseException:
        conn.close()
        raise
    return conn


def schema_version(conn: Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: Connection, *, target: int | None = None) -> int:
    """Apply pending migrations, each in its own transaction; returns the new version."""
    target = len(MIGRATIONS) if target is None else target
    if not 0 <= target <= len(MIGRATIONS):
        raise StoreError(f"There is no schema version {target}.")
    current = schema_version(conn)
    if current > len(MIGRATIONS):
        raise StoreError(
            f"The database is at schema {current}, newer than this program knows "
            f"({len(MIGRATIONS)}). Upgrade intake before starting it."
        )
    for number in range(current + 1, target + 1):
        # One script per migration with its own BEGIN and COMMIT: executescript would
        # commit a transaction opened outside it, so the whole step must live inside it.
        try:
            step = MIGRATIONS[number - 1]
            conn.executescript(
                f"BEGIN IMMEDIATE; {step}; PRAGMA user_version = {number}; COMMIT;"
            )
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return schema_version(conn)


def check_hash_params(conn: Connection, params: HashParams) -> None:
    """Record the receipt-hash parameters on first use and refuse to run with others.

    Stored hashes are lookup keys: with other parameters no complainant could check a status.
    """
    wanted = f"{params.time_cost}/{params.memory_kib}/{params.parallelism}"
    row = conn.execute("SELECT value FROM meta WHERE name = 'receipt_hash'").fetchone()
    if row is None:
        conn.execute("INSERT INTO meta (name, value) VALUES ('receipt_hash', ?)", (wanted,))
    elif row[0] != wanted:
        raise StoreError(
            f"The receipt-hash settings in config.toml ({wanted}) differ from those this "
            f"database was created with ({row[0]}); put [receipt_hash] back as it was."
        )


def insert_report(conn: Connection, report: NewReport) -> bool:
    """Store a report and its first event atomically, exactly once.

    Returns True when stored now, False when this very submission (same envelope, same
    receipt code) was stored before: a retry after a lost answer, which changes nothing.
    A receipt code that another report has does not stop the report (see taken_receipt).
    """
    digest = hashlib.sha256(report.envelope).digest()
    at = _minute(report.received_at)
    taken = taken_receipt(report.receipt_hash, report.report_id)
    with transaction(conn):
        row = conn.execute(
            "SELECT envelope_sha256, receipt_hash FROM reports WHERE id = ?", (report.report_id,)
        ).fetchone()
        if row is not None:
            if row[0] != digest:
                raise ReportConflict()
            if row[1] not in (report.receipt_hash, taken):
                raise ReplayedEnvelope()
            return False
        receipt_hash = report.receipt_hash
        if conn.execute(
            "SELECT 1 FROM reports WHERE receipt_hash = ?", (receipt_hash,)
        ).fetchone() is not None:
            # Another report has this receipt code. Refusing would tell whoever sent it that
            # the code exists: a way to guess codes with no limit but the hash. So the
            # report is stored (it was sent, and is acknowledged) under a lookup key no
            # code can match; the code goes on finding the first report.
            receipt_hash = taken
        conn.execute(
            "INSERT INTO reports (id, received_at, channel, language, schema_version,"
            " sealed_by, receipt_hash, envelope_sha256, envelope)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (report.report_id, at, report.channel, report.language, report.schema,
             report.sealed_by, receipt_hash, digest, report.envelope),
        )
        conn.execute(
            "INSERT INTO report_events (report_id, at, status) VALUES (?, ?, 'received')",
            (report.report_id, at),
        )
    return True


def taken_receipt(receipt_hash: bytes, report_id: str) -> bytes:
    """The lookup key stored for a report whose receipt code another report already has.

    No argon2id output equals it (it is a SHA-256 of its own label), so no code finds the
    report; and it is the same each time, so that a retry of the same submission is still
    recognised as one.
    """
    return hashlib.sha256(
        b"intake-receipt-taken\x00" + receipt_hash + bytes.fromhex(report_id)
    ).digest()


def find_by_receipt(conn: Connection, receipt_hash: bytes) -> StatusView | None:
    row = conn.execute(
        "SELECT id, status, language, received_at FROM reports WHERE receipt_hash = ?",
        (receipt_hash,),
    ).fetchone()
    if row is None:
        return None
    events = conn.execute(
        "SELECT at, status FROM report_events WHERE report_id = ? ORDER BY at, id", (row[0],)
    ).fetchall()
    return StatusView(
        report_id=row[0], status=row[1], language=row[2],
        received_at=datetime.fromisoformat(row[3]),
        events=tuple(Event(datetime.fromisoformat(a), s) for a, s in events),
    )


def report_exists(conn: Connection, report_id: str) -> bool:
    return conn.execute("SELECT 1 FROM reports WHERE id = ?", (report_id,)).fetchone() is not None


def envelopes(conn: Connection, report_ids: Sequence[str] = ()) -> Iterator[StoredEnvelope]:
    """All stored envelopes in order of arrival, or only the named ones."""
    query = "SELECT id, received_at, channel, sealed_by, envelope FROM reports"
    params: tuple[str, ...] = ()
    if report_ids:
        query += f" WHERE id IN ({', '.join('?' * len(report_ids))})"
        params = tuple(report_ids)
    for row in conn.execute(query + " ORDER BY received_at, rowid", params):
        yield StoredEnvelope(row[0], datetime.fromisoformat(row[1]), row[2], row[3], bytes(row[4]))


def _minute(moment: datetime) -> str:
    # To the minute, not the second: casework needs no more, and a coarser time is harder
    # to match against someone else's network logs.
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(UTC).replace(second=0, microsecond=0).isoformat()
