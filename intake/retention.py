"""Retention: a closed case is deleted `retention.closed_days` after it was closed.

A case is its report row and every row that refers to it (events, messages, notes, triage,
referrals, and whatever later migrations attach to a report). Each case goes in its own
transaction with its audit entry, which names the case and how many rows went, nothing
else. SQLCipher runs with `secure_delete = ON`, so the deleted rows and freed pages are
overwritten with zeros in the database file; afterwards the write-ahead log, which still
holds the pages as they were, is checkpointed and truncated. SECURITY.md ("Retention") says
what remains, where, and for how long.

It runs when the server starts and with `intake purge`, which the daily timer runs before
`intake backup` (deploy/README.md), so a backup never carries a case past its time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from intake import audit, store
from intake.config import Config


@dataclass(frozen=True)
class Purged:
    report_id: str
    closed_at: datetime
    rows: dict[str, int]  # table -> rows deleted with the case (the report row not counted)


def cutoff(config: Config, now: datetime) -> datetime:
    """Cases closed before this moment are due (times are stored to the minute)."""
    return (now - timedelta(days=config.retention.closed_days)).astimezone(UTC)


def due(conn: store.Connection, config: Config, *, now: datetime,
        report_id: str | None = None) -> list[tuple[str, datetime]]:
    """(report id, when it was closed) of every case due for deletion, oldest first, or of
    the one named if it is due.

    A case's closing time is its last status change: any change after a closing (reopened)
    makes it open again, and closing it again restarts the clock. Messages sent on a closed
    case do not.
    """
    limit = cutoff(config, now).replace(second=0, microsecond=0).isoformat()
    one = "" if report_id is None else " AND r.id = ?"
    rows = conn.execute(
        # The only fragment added is the fixed `one` above; every value is a ? parameter.
        "SELECT r.id, max(e.at) AS closed FROM reports r JOIN report_events e"  # noqa: S608
        f" ON e.report_id = r.id WHERE r.status = 'closed'{one} GROUP BY r.id"
        " HAVING closed < ? ORDER BY closed, r.id",
        (limit,) if report_id is None else (report_id, limit),
    ).fetchall()
    return [(str(rid), datetime.fromisoformat(closed)) for rid, closed in rows]


def purge(conn: store.Connection, config: Config, *, now: datetime) -> list[Purged]:
    """Delete every case that is due, each with its audit entry; returns what went."""
    done = [p for rid, closed in due(conn, config, now=now)
            if (p := _purge_one(conn, config, rid, closed, now)) is not None]
    if done:
        # Secure delete zeroed the pages in the database file, but the write-ahead log
        # still holds them as they were until it is checkpointed and restarted. Best effort:
        # a reader holding an old snapshot makes this return "busy", and the frames are then
        # overwritten by later writes once SQLite restarts the log.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return done


def _children(conn: store.Connection) -> list[tuple[str, str]]:
    """(table, column) of every foreign key to reports.id, found in the schema itself, so a
    table that a later migration hangs on a report is deleted with it without a change here."""
    found = []
    for (table,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'reports' ORDER BY name"
    ).fetchall():
        for row in conn.execute("SELECT * FROM pragma_foreign_key_list(?)", (table,)):
            # id, seq, table, from, to, on_update, on_delete, match
            if row[2] == "reports" and row[4] in (None, "id"):
                found.append((str(table), str(row[3])))
    return found


def _purge_one(conn: store.Connection, config: Config, report_id: str, closed_at: datetime,
               now: datetime) -> Purged | None:
    with store.transaction(conn):
        # Checked again inside the transaction: another process may have purged it, or an
        # officer reopened it, since the list was read.
        if due(conn, config, now=now, report_id=report_id) != [(report_id, closed_at)]:
            return None
        rows: dict[str, int] = {}
        for table, column in _children(conn):
            # Table and column names come from the schema, never from input.
            cursor = conn.execute(f'DELETE FROM "{table}" WHERE "{column}" = ?',  # noqa: S608
                                  (report_id,))
            rows[table] = rows.get(table, 0) + max(cursor.rowcount, 0)
        conn.execute("DELETE FROM reports WHERE id = ?", (report_id,))
        audit.record(conn, config.audit_key, actor=None, action="case_purged", now=now,
                     report_id=report_id, detail=dict(sorted(rows.items())))
    return Purged(report_id, closed_at, rows)

