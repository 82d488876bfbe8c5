"""Retention: closed cases are deleted `retention.closed_days` after closing, with every row
that belongs to them, securely, and each deletion is in the audit log (intake/retention.py)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from intake import audit, cases, create_app, crypto, receipts, retention, store, triage, uploads
from intake.attachments import CHUNK_SIZE
from intake.cli import main
from intake.config import Config, ConfigError, Retention, load
from intake.instance import Created

from support import T0, enrol, file_report, seal_note

DAY = timedelta(days=1)


def _close(conn: store.Connection, config: Config, report_id: str, actor: int, *,
           at: datetime) -> None:
    cases.set_status(conn, config, report_id=report_id, status="closed", outcome="withdrawn",
                     message="", actor=actor, now=at)


def _full_case(conn: store.Connection, config: Config, actor: int, marker: str) -> str:
    """A case with a row in every table that hangs on a report."""
    report_id = file_report(conn, config, at=T0)
    cases.send_message(conn, config, report_id=report_id, body=f"message {marker}",
                       actor=actor, now=T0)
    cases.add_note(conn, config, report_id=report_id,
                   envelope=seal_note(marker, config.recipients, report_id), actor=actor, now=T0)
    cases.record_consent(conn, config, report_id=report_id, refer=True, share=False,
                         statistics=True, actor=actor, now=T0)
    cases.add_referral(conn, config, report_id=report_id, service=f"clinic {marker}",
                       referred_on="2025-03-04", actor=actor, now=T0)
    triage.save(conn, config, report_id=report_id, values={"place": f"place {marker}"},
                actor=actor, now=T0)
    return report_id


def _with_attachment(conn: store.Connection, config: Config, data: bytes) -> str:
    """A report with one attachment, uploaded in chunks as a phone sends it."""
    sealed = crypto.seal_report({"schema": 1, "language": "en"}, config.recipients,
                                [crypto.NewAttachment("photo.jpg", "image/jpeg", data)])
    token = os.urandom(uploads.TOKEN_LEN)
    request = uploads.parse_upload({
        "envelope": crypto.b64encode(sealed.envelope), "receipt_code": receipts.new_code(),
        "language": "en", "upload_token": crypto.b64encode(token),
        "attachments": [{"id": aid.hex(), "size": sum(map(len, chunks)), "chunks": len(chunks)}
                        for aid, chunks in zip(sealed.attachment_ids, sealed.chunks,
                                               strict=True)],
    }, config.limits)
    report_id = uploads.start(conn, config, request, now=lambda: T0).report_id
    for aid, chunks in zip(sealed.attachment_ids, sealed.chunks, strict=True):
        for index, chunk in enumerate(chunks):
            uploads.put_chunk(conn, config, uploads.ChunkAddress(report_id, aid.hex(), index,
                                                                 token), chunk, now=lambda: T0)
    assert store.report_exists(conn, report_id)
    return report_id


def _rows_about(conn: store.Connection, report_id: str) -> dict[str, int]:
    counts = {}
    for table in ("reports", "report_events", "messages", "notes", "triage", "referrals",
                  "attachments", "attachment_chunks"):
        column = "id" if table == "reports" else "report_id"
        counts[table] = conn.execute(f"SELECT count(*) FROM {table} WHERE {column} = ?",  # noqa: S608
                                     (report_id,)).fetchone()[0]
    return counts


def test_a_case_closed_longer_ago_than_the_period_goes_with_all_it_holds(
    config: Config, db: store.Connection
) -> None:
    officer = enrol(db, config, "olga")
    old = _full_case(db, config, officer.user.id, "old")
    recent = _full_case(db, config, officer.user.id, "recent")
    still_open = file_report(db, config, at=T0)
    _close(db, config, old, officer.user.id, at=T0)
    _close(db, config, recent, officer.user.id, at=T0 + 10 * DAY)
    now = T0 + 365 * DAY + 5 * DAY  # past the year for `old`, not for `recent`

    assert [rid for rid, _ in retention.due(db, config, now=now)] == [old]
    (purged,) = retention.purge(db, config, now=now)

    assert purged.report_id == old
    assert purged.rows == {"attachment_chunks": 0, "attachments": 0, "messages": 1, "notes": 1,
                           "referrals": 1, "report_events": 2, "triage": 1, "uploads": 0}
    assert set(_rows_about(db, old).values()) == {0}
    kept = _rows_about(db, recent)
    assert all(kept[t] for t in kept if not t.startswith("attachment"))
    assert store.report_exists(db, still_open)
    # The deletion is in the audit log: the case and the counts, nothing else.
    entry = next(audit.entries(db, report_id=old, limit=1))
    assert entry.action == "case_purged" and entry.actor is None
    assert entry.detail == purged.rows
    audit.verify(db, config.audit_key)
    # Nothing more is due: a second run (another worker, the next day's timer) does nothing.
    assert retention.purge(db, config, now=now) == []
    assert retention.purge(db, config, now=T0 + 376 * DAY)[0].report_id == recent


def test_reopening_a_case_stops_the_clock_and_closing_it_again_restarts_it(
    config: Config, db: store.Connection
) -> None:
    officer = enrol(db, config, "olga")
    report_id = file_report(db, config, at=T0)
    _close(db, config, report_id, officer.user.id, at=T0)
    cases.set_status(db, config, report_id=report_id, status="investigating", outcome=None,
                     message="", actor=officer.user.id, now=T0 + 100 * DAY)
    assert retention.purge(db, config, now=T0 + 400 * DAY) == []
    _close(db, config, report_id, officer.user.id, at=T0 + 200 * DAY)
    assert retention.purge(db, config, now=T0 + 400 * DAY) == []
    # A message to the complainant after closing does not extend it.
    cases.send_message(db, config, report_id=report_id, body="last word",
                       actor=officer.user.id, now=T0 + 300 * DAY)
    assert [p.report_id for p in retention.purge(db, config, now=T0 + 566 * DAY)] == [report_id]


def test_the_period_is_configurable(config: Config, db: store.Connection) -> None:
    officer = enrol(db, config, "olga")
    report_id = file_report(db, config, at=T0)
    _close(db, config, report_id, officer.user.id, at=T0)
    short = replace(config, retention=Retention(closed_days=30))
    assert retention.purge(db, short, now=T0 + 29 * DAY) == []
    assert len(retention.purge(db, short, now=T0 + 31 * DAY)) == 1


@pytest.mark.parametrize("value", ["0", "-3", "\"365\"", "1.5", "true"])
def test_the_period_is_a_whole_number_of_days(instance: Created, value: str) -> None:
    path = instance.config.instance_dir / "config.toml"
    path.write_text(path.read_text().replace("closed_days = 365", f"closed_days = {value}"))
    with pytest.raises(ConfigError, match="closed_days"):
        load(instance.config.instance_dir, environ={})


# --- Secure deletion: what is left in the files --------------------------------------------


PAGE, RESERVE = 4096, 80  # SQLCipher 4 defaults: 16-byte IV and 64-byte HMAC per page


def _decrypt_page(page: bytes, key: bytes, *, first: bool) -> bytes:
    """One SQLCipher 4 page decrypted (AES-256-CBC, the IV at the end of the page), so the
    test can look at what the file really holds, freed pages included."""
    start = 16 if first else 0  # page 1 begins with the file's salt, in the clear
    iv = page[PAGE - RESERVE: PAGE - RESERVE + 16]
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(page[start: PAGE - RESERVE]) + decryptor.finalize()


def _plaintext_of(path: Path, key: bytes) -> bytes:
    """Every page of a database file, or every frame of its write-ahead log, decrypted."""
    data = path.read_bytes() if path.exists() else b""
    if path.name.endswith("-wal"):
        frames = data[32:]  # 32-byte log header, then 24-byte frame headers before each page
        pages = [frames[i + 24: i + 24 + PAGE] for i in range(0, len(frames), 24 + PAGE)]
        return b"".join(_decrypt_page(p, key, first=False) for p in pages if len(p) == PAGE)
    return b"".join(_decrypt_page(data[i: i + PAGE], key, first=i == 0)
                    for i in range(0, len(data), PAGE))


def test_deleted_cases_leave_nothing_in_the_database_file_or_its_log(
    config: Config, db: store.Connection
) -> None:
    marker = f"marker{os.urandom(6).hex()}"
    officer = enrol(db, config, "olga")
    report_id = _full_case(db, config, officer.user.id, marker)
    envelope = next(store.envelopes(db, [report_id])).envelope
    _close(db, config, report_id, officer.user.id, at=T0)
    # A second case, with a photo: its chunks are ciphertext, but they must go too.
    photo = _with_attachment(db, config, os.urandom(CHUNK_SIZE + 1000))  # two chunks
    (chunk,) = db.execute("SELECT data FROM attachment_chunks WHERE report_id = ? AND idx = 0",
                          (photo,)).fetchone()
    _close(db, config, photo, officer.user.id, at=T0)
    files = [config.db_path, config.db_path.with_name(config.db_path.name + "-wal")]

    def held() -> bytes:
        return b"".join(_plaintext_of(path, config.db_key) for path in files)

    # The decryption works: before the purge the case is there, in the clear once decrypted.
    before = held()
    assert marker.encode() in before and envelope[-64:] in before
    assert bytes(chunk)[1000:1064] in before
    purged = retention.purge(db, config, now=T0 + 400 * DAY)
    assert {p.report_id: p.rows["attachment_chunks"] for p in purged}[photo] == 2
    assert set(_rows_about(db, photo).values()) == {0}
    after = held()
    assert marker.encode() not in after, "a deleted case is still readable in the files"
    assert envelope[-64:] not in after and bytes(chunk)[1000:1064] not in after
    assert report_id.encode() in after  # the audit log keeps the id
    # The log was checkpointed and emptied: what it held went to the file, zeroed.
    assert files[1].stat().st_size == 0


# --- When it runs: at start-up and with `intake purge` --------------------------------------


def test_the_server_purges_when_it_starts(config: Config, db: store.Connection) -> None:
    officer = enrol(db, config, "olga")
    report_id = file_report(db, config, at=T0 - 400 * DAY)
    _close(db, config, report_id, officer.user.id, at=T0 - 400 * DAY)
    create_app(config)
    assert not store.report_exists(db, report_id)


def test_purge_command(runner: CliRunner, instance: Created) -> None:
    config = instance.config
    conn = store.connect(config.db_path, config.db_key)
    try:
        officer = enrol(conn, config, "olga")
        report_id = file_report(conn, config, at=T0 - 400 * DAY)
        _close(conn, config, report_id, officer.user.id, at=T0 - 400 * DAY)
    finally:
        conn.close()
    args = ["--instance", str(config.instance_dir), "purge"]
    dry = runner.invoke(main, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert report_id in dry.output and "1 closed case(s) are due" in dry.output
    done = runner.invoke(main, args)
    assert done.exit_code == 0, done.output
    assert report_id in done.output and "1 closed case(s) deleted" in done.output
    assert "0 closed case(s) deleted" in runner.invoke(main, args).output
    conn = store.connect(config.db_path, config.db_key)
    try:
        assert not store.report_exists(conn, report_id)
        detail = conn.execute("SELECT detail FROM audit_log WHERE action = 'case_purged'"
                              ).fetchone()[0]
    finally:
        conn.close()
    assert json.loads(detail) == {"attachment_chunks": 0, "attachments": 0, "messages": 0,
                                  "notes": 0, "referrals": 0, "report_events": 2, "triage": 0,
                                  "uploads": 0}
