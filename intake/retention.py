"""Retention: a closed case is deleted `retention.closed_days` after it was closed.

A case is its report row and every row that belongs to it (events, messages, notes, triage,
referrals, attachments and their chunks, and whatever later migrations attach to a
report); the audit log keeps its entries. Each case goes in its own
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


# Keeps a case's id by design: its entries cannot go without breaking the chain, and they
# never held content (see intake/audit.py).
KEPT = frozenset({"audit_log"})


def _children(conn: store.Connection) -> list[tuple[str, str]]:
    """(table, column) of every table that holds rows of a case, found in the schema itself,
    so that a table a later migration hangs on a report goes with it with no change here.

    A row belongs to a case when its table has a foreign key to reports.id, or a column
    named `report_id` (the attachments' tables have no foreign key: their rows are written
    while the upload is open, before the report exists). Tables that refer to another of
    these come first, so that no row is left pointing at one already gone.
    """
    tables = [str(name) for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'reports'"
        " ORDER BY name").fetchall()]
    found: dict[str, str] = {}
    refers: dict[str, set[str]] = {}
    for table in tables:
        if table in KEPT:
            continue
        keys = conn.execute("SELECT * FROM pragma_foreign_key_list(?)", (table,)).fetchall()
        # id, seq, table, from, to, on_update, on_delete, match
        to_reports = [str(k[3]) for k in keys if k[2] == "reports" and k[4] in (None, "id")]
        columns = {str(c[1]) for c in conn.execute("SELECT * FROM pragma_table_info(?)",
                                                   (table,))}
        if to_reports or "report_id" in columns:
            found[table] = to_reports[0] if to_reports else "report_id"
            refers[table] = {str(k[2]) for k in keys}
    ordered: list[str] = []
    while len(ordered) < len(found):
        # A table no remaining table refers to can go now (no cycles in our schema).
        ready = [t for t in found if t not in ordered
                 and not any(t in refers[o] for o in found if o not in ordered and o != t)]
        if not ready:
            raise store.StoreError("the tables of a case refer to each other in a cycle")
        ordered.extend(ready)
    return [(table, found[table]) for table in ordered]


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

