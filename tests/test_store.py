"""The SQLCipher store: migrations, opening, inserting exactly once, and encryption at rest.

Every test uses a real SQLCipher file in its own temporary folder; nothing is mocked.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlcipher3.dbapi2 as sqlcipher

from intake import instance as instance_mod
from intake import store
from intake.receipts import HashParams

from support import CHEAP_HASH

RECEIVED = datetime(2025, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)
RECEIVED_MINUTE = datetime(2025, 3, 4, 5, 6, tzinfo=UTC)

# What each migration leaves behind: tables with their columns, and named indexes. A new
# migration without an entry here fails test_every_migration_has_a_test.
SCHEMAS: dict[int, dict[str, object]] = {
    1: {
        "tables": {
            "meta": ["name", "value"],
            "reports": ["id", "received_at", "channel", "language", "schema_version", "status",
                        "sealed_by", "receipt_hash", "envelope_sha256", "envelope"],
            "report_events": ["id", "report_id", "at", "status"],
        },
        "indexes": {"reports_received_at", "report_events_report"},
    },
    2: {
        "tables": {
            "meta": ["name", "value"],
            "reports": ["id", "received_at", "channel", "language", "schema_version", "status",
                        "sealed_by", "receipt_hash", "envelope_sha256", "envelope"],
            "report_events": ["id", "report_id", "at", "status"],
            "focal_points": ["id", "name", "created_at", "enrolment_hash",
                             "enrolment_expires_at", "public_key", "enrolled_at", "revoked_at"],
        },
        "indexes": {"reports_received_at", "report_events_report"},
    },
    3: {
        "tables": {
            "meta": ["name", "value"],
            "reports": ["id", "received_at", "channel", "language", "schema_version", "status",
                        "sealed_by", "receipt_hash", "envelope_sha256", "envelope",
                        "assignee", "priority", "outcome", "acknowledged_at", "first_update_at",
                        "due_at", "consent_refer", "consent_share", "consent_statistics"],
            "report_events": ["id", "report_id", "at", "status"],
            "focal_points": ["id", "name", "created_at", "enrolment_hash",
                             "enrolment_expires_at", "public_key", "enrolled_at", "revoked_at"],
            "users": ["id", "username", "role", "created_at", "setup_hash", "setup_expires_at",
                      "password_hash", "totp_secret", "totp_last_step", "failed_logins",
                      "last_failed_at", "disabled_at"],
            "login_failures": ["at"],
            "sessions": ["token_hash", "user_id", "created_at", "last_seen_at", "reauth_at"],
            "audit_log": ["seq", "at", "actor", "action", "report_id", "detail", "mac"],
            "messages": ["id", "report_id", "at", "author", "body"],
            "notes": ["id", "report_id", "at", "author", "envelope"],
            "triage": ["report_id", "updated_at", "fields"],
            "referrals": ["id", "report_id", "service", "referred_on", "created_at", "author"],
        },
        "indexes": {"reports_received_at", "report_events_report", "login_failures_at",
                    "sessions_user", "reports_list",
                    "messages_report", "notes_report", "referrals_report"},
    },
}
SCHEMAS[4] = {
    "tables": {
        **SCHEMAS[3]["tables"],  # type: ignore[dict-item]
        "uploads": ["report_id", "updated_at", "token_hash", "channel", "language",
                    "schema_version", "receipt_hash", "envelope_sha256", "envelope"],
        "attachments": ["report_id", "attachment_id", "position", "sealed_size", "chunks"],
        "attachment_chunks": ["id", "report_id", "attachment_id", "idx", "data"],
    },
    "indexes": {*SCHEMAS[3]["indexes"], "uploads_updated_at"},  # type: ignore[misc]
}
SCHEMAS[5] = {
    "tables": {
        **SCHEMAS[4]["tables"],  # type: ignore[dict-item]
        "throttle_clients": ["kind", "client", "failures", "last_at"],
        "status_failures": ["at"],
    },
    "indexes": {*SCHEMAS[4]["indexes"], "status_failures_at"},  # type: ignore[misc]
}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "intake.db"


@pytest.fixture
def conn(db_path: Path) -> Iterator[store.Connection]:
    connection = store.connect(db_path, os.urandom(32))
    store.migrate(connection)
    yield connection
    connection.close()


def _report(**changes: object) -> store.NewReport:
    """A report with fresh random id, receipt hash and envelope, unless given."""
    report = store.NewReport(
        report_id=os.urandom(16).hex(), received_at=RECEIVED, channel="web", language="fr",
        schema=1, sealed_by="device", receipt_hash=os.urandom(32), envelope=os.urandom(710),
    )
    return replace(report, **changes)  # type: ignore[arg-type]


def _counts(conn: store.Connection) -> tuple[int, int]:
    reports = conn.execute("SELECT count(*) FROM reports").fetchone()[0]
    events = conn.execute("SELECT count(*) FROM report_events").fetchone()[0]
    return reports, events


def _schema(conn: store.Connection) -> dict[str, object]:
    names = conn.execute(
        "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
    ).fetchall()
    tables = {
        name: [row[1] for row in conn.execute(f"PRAGMA table_info({name})")]
        for kind, name in names if kind == "table"
    }
    return {"tables": tables, "indexes": {name for kind, name in names if kind == "index"}}


# --- Migrations --------------------------------------------------------------------------


def test_every_migration_has_a_test() -> None:
    assert sorted(SCHEMAS) == list(range(1, len(store.MIGRATIONS) + 1))


@pytest.mark.parametrize("version", sorted(SCHEMAS))
def test_migration(db_path: Path, version: int) -> None:
    conn = store.connect(db_path, os.urandom(32))
    try:
        assert store.migrate(conn, target=version - 1) == version - 1
        assert store.schema_version(conn) == version - 1
        assert store.migrate(conn, target=version) == version
        assert conn.execute("PRAGMA user_version").fetchone()[0] == version
        assert _schema(conn) == SCHEMAS[version]
        assert not conn.in_transaction
        before = conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
        # Idempotent: running it again changes nothing and does not fail.
        assert store.migrate(conn, target=version) == version
        assert store.migrate(conn) == len(store.MIGRATIONS)
        after = conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
        assert before == after or version < len(store.MIGRATIONS)
    finally:
        conn.close()


def test_migration_2_keeps_the_reports_of_version_1(db_path: Path) -> None:
    conn = store.connect(db_path, os.urandom(32))
    try:
        store.migrate(conn, target=1)
        report = _report()
        store.insert_report(conn, report)
        store.migrate(conn, target=2)
        (kept,) = list(store.envelopes(conn))
        assert (kept.report_id, kept.envelope) == (report.report_id, report.envelope)
    finally:
        conn.close()


def test_migration_3_keeps_reports_open_with_no_deadline_until_refreshed(
    db_path: Path,
) -> None:
    conn = store.connect(db_path, os.urandom(32))
    try:
        store.migrate(conn, target=2)
        report = _report()
        store.insert_report(conn, report)
        store.migrate(conn, target=3)
        row = conn.execute(
            "SELECT status, priority, due_at, assignee, consent_refer FROM reports"
        ).fetchone()
        assert row == ("received", "normal", "9999", None, None)
    finally:
        conn.close()


def test_migration_4_keeps_reports_and_adds_no_attachments_to_them(db_path: Path) -> None:
    conn = store.connect(db_path, os.urandom(32))
    try:
        store.migrate(conn, target=3)
        report = _report()
        store.insert_report(conn, report)
        store.migrate(conn, target=4)
        (kept,) = list(store.envelopes(conn))
        assert (kept.report_id, kept.envelope) == (report.report_id, report.envelope)
        for table in ("uploads", "attachments", "attachment_chunks"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0  # noqa: S608  (our own table names)
        # Chunks belong to a declared attachment and go with it.
        conn.execute("INSERT INTO attachments VALUES (?, ?, 0, 16, 1)", (report.report_id, "a" * 32))
        conn.execute("INSERT INTO attachment_chunks (report_id, attachment_id, idx, data)"
                     " VALUES (?, ?, 0, ?)", (report.report_id, "a" * 32, b"x" * 16))
        with pytest.raises(sqlcipher.IntegrityError):
            conn.execute("INSERT INTO attachment_chunks (report_id, attachment_id, idx, data)"
                         " VALUES (?, ?, 0, ?)", (report.report_id, "b" * 32, b"x" * 16))
        with pytest.raises(sqlcipher.IntegrityError):
            conn.execute("INSERT INTO attachment_chunks (report_id, attachment_id, idx, data)"
                         " VALUES (?, ?, 0, ?)", (report.report_id, "a" * 32, b"y" * 16))
        conn.execute("DELETE FROM attachments")
        assert conn.execute("SELECT count(*) FROM attachment_chunks").fetchone()[0] == 0
    finally:
        conn.close()


def test_migration_5_keeps_reports_and_starts_with_no_throttle_state(db_path: Path) -> None:
    conn = store.connect(db_path, os.urandom(32))
    try:
        store.migrate(conn, target=4)
        report = _report()
        store.insert_report(conn, report)
        conn.execute("INSERT INTO login_failures (at) VALUES ('2025-03-04T05:06:07+00:00')")
        store.migrate(conn, target=5)
        assert [item.report_id for item in store.envelopes(conn)] == [report.report_id]
        assert conn.execute("SELECT count(*) FROM login_failures").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM throttle_clients").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM status_failures").fetchone()[0] == 0
        # A client row is for one of the two kinds of guess, and one row per client.
        with pytest.raises(sqlcipher.IntegrityError):
            conn.execute("INSERT INTO throttle_clients VALUES ('other', x'00', 1, 't')")
        conn.execute("INSERT INTO throttle_clients VALUES ('status', x'00', 1, 't')")
        with pytest.raises(sqlcipher.IntegrityError):
            conn.execute("INSERT INTO throttle_clients VALUES ('status', x'00', 2, 't')")
    finally:
        conn.close()


def test_a_failing_migration_leaves_the_database_as_it_was(
    conn: store.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = "CREATE TABLE half_done (a TEXT); THIS IS NOT SQL"
    monkeypatch.setattr(store, "MIGRATIONS", (*store.MIGRATIONS, broken))
    with pytest.raises(sqlcipher.OperationalError):
        store.migrate(conn)
    assert store.schema_version(conn) == len(store.MIGRATIONS) - 1
    assert not conn.in_transaction
    assert "half_done" not in _schema(conn)["tables"]  # type: ignore[operator]


def test_a_database_newer_than_the_code_is_refused(conn: store.Connection) -> None:
    newer = len(store.MIGRATIONS) + 1
    conn.execute(f"PRAGMA user_version = {newer}")
    with pytest.raises(store.StoreError, match=r"newer than this program knows.*Upgrade"):
        store.migrate(conn)
    assert store.schema_version(conn) == newer


# --- Opening -----------------------------------------------------------------------------


def test_the_right_key_opens_the_instance_database(instance: instance_mod.Created) -> None:
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        assert store.schema_version(conn) == len(store.MIGRATIONS)
    finally:
        conn.close()


@pytest.mark.parametrize(("key", "says"), [
    (os.urandom(32), "key does not match"), (b"", "must be 32 bytes"), (b"\x01" * 31, "must be 32 bytes"),
], ids=["wrong-key", "no-key", "short-key"])
def test_a_wrong_or_missing_key_is_refused_with_a_sentence(
    instance: instance_mod.Created, key: bytes, says: str
) -> None:
    path = instance.config.db_path
    with pytest.raises(store.StoreError) as info:
        store.connect(path, key)
    message = str(info.value)
    assert str(path) in message
    assert says in message
    assert message.endswith(".")


def test_the_file_is_not_a_plain_sqlite_database(instance: instance_mod.Created) -> None:
    plain = sqlite3.connect(instance.config.db_path)
    try:
        with pytest.raises(sqlite3.DatabaseError):
            plain.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        plain.close()


def test_pragmas_after_connect(conn: store.Connection) -> None:
    def pragma(name: str) -> object:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]

    assert pragma("journal_mode") == "wal"
    assert pragma("synchronous") == 2  # FULL
    assert pragma("secure_delete") == 1
    assert pragma("temp_store") == 2  # MEMORY
    assert pragma("foreign_keys") == 1
    assert pragma("busy_timeout") == 10_000
    assert pragma("cipher_version")  # SQLCipher, not plain SQLite


# --- Inserting exactly once ------------------------------------------------------------


def test_insert_stores_the_report_and_its_first_event(conn: store.Connection) -> None:
    report = _report()
    store.insert_report(conn, report)
    assert _counts(conn) == (1, 1)
    assert store.report_exists(conn, report.report_id)
    row = conn.execute(
        "SELECT received_at, channel, language, schema_version, status, sealed_by,"
        " receipt_hash, envelope FROM reports"
    ).fetchone()
    assert row == ("2025-03-04T05:06:00+00:00", "web", "fr", 1, "received", "device",
                   report.receipt_hash, report.envelope)


def _assert_refused(
    conn: store.Connection, report: store.NewReport, error: type[Exception]
) -> None:
    before = _counts(conn)
    with pytest.raises(error):
        store.insert_report(conn, report)
    assert _counts(conn) == before
    assert not conn.in_transaction
    # The connection is still usable after a refusal.
    store.insert_report(conn, _report())
    assert _counts(conn) == (before[0] + 1, before[1] + 1)


def test_the_same_submission_again_is_a_retry_that_changes_nothing(conn: store.Connection) -> None:
    first = _report()
    assert store.insert_report(conn, first) is True
    before = _counts(conn)
    assert store.insert_report(conn, first) is False
    later = replace(first, received_at=RECEIVED + timedelta(hours=1))
    assert store.insert_report(conn, later) is False
    assert _counts(conn) == before
    assert not conn.in_transaction


def test_the_same_envelope_under_another_receipt_code_is_a_replay(conn: store.Connection) -> None:
    first = _report()
    store.insert_report(conn, first)
    _assert_refused(conn, replace(first, receipt_hash=os.urandom(32)), store.ReplayedEnvelope)


def test_another_envelope_with_the_same_id_is_a_conflict(conn: store.Connection) -> None:
    first = _report()
    store.insert_report(conn, first)
    _assert_refused(conn, _report(report_id=first.report_id), store.ReportConflict)
    _assert_refused(
        conn, _report(report_id=first.report_id, receipt_hash=first.receipt_hash),
        store.ReportConflict,
    )


def test_a_receipt_hash_already_taken_stores_the_report_where_no_code_finds_it(conn: store.Connection) -> None:
    """Refusing it would tell the sender the code exists: an unthrottled way to guess."""
    first = _report()
    store.insert_report(conn, first)
    second = _report(receipt_hash=first.receipt_hash)
    assert store.insert_report(conn, second) is True
    assert _counts(conn) == (2, 2)
    found = store.find_by_receipt(conn, first.receipt_hash)
    assert found is not None and found.report_id == first.report_id
    stored = conn.execute("SELECT receipt_hash FROM reports WHERE id = ?",
                          (second.report_id,)).fetchone()[0]
    assert stored == store.taken_receipt(first.receipt_hash, second.report_id)
    # Its retry is still a retry, and another code for its envelope still a replay.
    assert store.insert_report(conn, second) is False
    assert _counts(conn) == (2, 2)
    _assert_refused(conn, replace(second, receipt_hash=os.urandom(32)), store.ReplayedEnvelope)


def test_report_and_event_are_stored_together_or_not_at_all(conn: store.Connection) -> None:
    # A real failure of the second insert, raised by the database itself.
    conn.execute(
        "CREATE TEMP TRIGGER no_events BEFORE INSERT ON main.report_events"
        " BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END"
    )
    with pytest.raises(sqlcipher.IntegrityError):
        store.insert_report(conn, _report())
    assert not conn.in_transaction
    conn.execute("DROP TRIGGER no_events")
    assert _counts(conn) == (0, 0)


def test_a_time_without_a_zone_is_refused(conn: store.Connection) -> None:
    with pytest.raises(ValueError):
        store.insert_report(conn, _report(received_at=datetime(2025, 3, 4, 5, 6)))
    assert _counts(conn) == (0, 0)


# --- Reading -----------------------------------------------------------------------------


def test_find_by_receipt(conn: store.Connection) -> None:
    report = _report(language="ar")
    store.insert_report(conn, report)
    store.insert_report(conn, _report())
    view = store.find_by_receipt(conn, report.receipt_hash)
    assert view == store.StatusView(
        report_id=report.report_id, status="received", language="ar",
        received_at=RECEIVED_MINUTE, events=(store.Event(RECEIVED_MINUTE, "received"),),
    )
    assert store.find_by_receipt(conn, os.urandom(32)) is None


def test_envelopes_in_order_of_arrival(conn: store.Connection) -> None:
    reports = [_report(received_at=RECEIVED + timedelta(minutes=m)) for m in (5, 1, 3)]
    for report in reports:
        store.insert_report(conn, report)
    listed = list(store.envelopes(conn))
    assert [e.report_id for e in listed] == [reports[i].report_id for i in (1, 2, 0)]
    assert [e.envelope for e in listed] == [reports[i].envelope for i in (1, 2, 0)]
    assert isinstance(listed[0].envelope, bytes)
    only = list(store.envelopes(conn, [reports[0].report_id]))
    assert [(e.report_id, e.channel, e.sealed_by) for e in only] == [
        (reports[0].report_id, "web", "device")
    ]
    assert list(store.envelopes(conn, ["0" * 32])) == []


def test_check_hash_params_records_then_refuses_others(conn: store.Connection) -> None:
    store.check_hash_params(conn, CHEAP_HASH)
    store.check_hash_params(conn, CHEAP_HASH)
    assert conn.execute("SELECT value FROM meta WHERE name = 'receipt_hash'").fetchall() == [
        ("1/64/1",)
    ]
    for other in (HashParams(), HashParams(2, 64, 1), HashParams(1, 128, 1), HashParams(1, 64, 2)):
        with pytest.raises(store.StoreError, match=r"\(1/64/1\); put \[receipt_hash\] back"):
            store.check_hash_params(conn, other)


def test_instance_records_its_hash_params(instance: instance_mod.Created) -> None:
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        store.check_hash_params(conn, CHEAP_HASH)
        with pytest.raises(store.StoreError):
            store.check_hash_params(conn, HashParams())
    finally:
        conn.close()


# --- Encryption at rest ------------------------------------------------------------------


def _on_disk(db_path: Path) -> dict[str, bytes]:
    files = [db_path, db_path.with_name(db_path.name + "-wal"),
             db_path.with_name(db_path.name + "-shm")]
    return {p.name: p.read_bytes() for p in files if p.exists()}


def test_nothing_is_readable_on_disk(db_path: Path, conn: store.Connection) -> None:
    marker = f"MARKER-{uuid.uuid4().hex}"
    store.insert_report(conn, _report(channel=marker, language=marker))
    assert conn.execute("SELECT channel FROM reports").fetchone()[0] == marker

    # While the connection is open the row is in the write-ahead log, not yet in the file.
    files = _on_disk(db_path)
    assert len(files.get("intake.db-wal", b"")) > 0
    for name, content in files.items():
        for form in (marker.encode("ascii"), marker.encode("utf-16-le")):
            assert form not in content, f"{name} holds the marker in plaintext"
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for name, content in _on_disk(db_path).items():
        assert marker.encode("ascii") not in content, f"{name} holds the marker in plaintext"


def test_the_marker_search_would_find_plaintext(tmp_path: Path) -> None:
    # The control for the test above: the same search finds the marker in plain SQLite.
    marker = f"MARKER-{uuid.uuid4().hex}"
    path = tmp_path / "plain.db"
    plain = sqlite3.connect(path)
    try:
        plain.execute("PRAGMA journal_mode = WAL")
        plain.execute("CREATE TABLE t (channel TEXT)")
        plain.execute("INSERT INTO t VALUES (?)", (marker,))
        plain.commit()
        assert any(marker.encode("ascii") in content for content in _on_disk(path).values())
    finally:
        plain.close()
