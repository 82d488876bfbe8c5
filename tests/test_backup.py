"""Backups: made while the server writes, restored on a fresh folder, refused when altered.

Real SQLCipher files, real HPKE and AES-GCM, a real writer thread; nothing is mocked. The
format itself (byte layout, known-answer vector) is tested in test_backup_format.py.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import sqlite3
import stat
import threading
import time
import tomllib
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from intake import backup, backupfile, crypto, receipts, reports, store
from intake import instance as instance_mod
from intake.config import ConfigError, load

from support import add_backup_key

NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
HEADER, SEGMENT = backupfile.HEADER_LEN, backupfile.SEGMENT_CT_LEN


@pytest.fixture
def backup_key(instance: instance_mod.Created) -> crypto.PrivateKey:
    return add_backup_key(instance.config.instance_dir)


@pytest.fixture
def made(instance: instance_mod.Created, backup_key: crypto.PrivateKey,
         tmp_path: Path) -> backup.Made:
    config = load(instance.config.instance_dir, environ={})
    conn = store.connect(config.db_path, config.db_key)
    try:
        for i in range(3):
            # Long reports, so that the backup spans several segments.
            what = f"report {i} " + "x" * 40_000
            data = crypto.seal({"schema": 1, "what": what}, config.recipients)
            reports.accept_envelope(conn, config, data=data, receipt_code=receipts.new_code(),
                                    language="fr")
    finally:
        conn.close()
    return backup.create(config, tmp_path / "backup.bin", now=NOW)


def _report(envelope: bytes, **changes: str) -> store.NewReport:
    return store.NewReport(
        report_id=os.urandom(16).hex(), received_at=NOW, channel=changes.get("channel", "web"),
        language="en", schema=1, sealed_by="device", receipt_hash=os.urandom(32),
        envelope=envelope,
    )


def _open_all(path: Path, key: crypto.PrivateKey) -> backupfile.Manifest:
    """The format layer alone: every byte checked, nothing written anywhere."""
    return backupfile.unpack(path, key, lambda member: io.BytesIO())


# --- Making a backup while the server writes ---------------------------------------------


def test_a_backup_taken_while_reports_arrive_is_one_moment_and_restores(
    instance: instance_mod.Created, org_key: crypto.PrivateKey, backup_key: crypto.PrivateKey,
    tmp_path: Path,
) -> None:
    config = load(instance.config.instance_dir, environ={})
    inserted: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        conn = store.connect(config.db_path, config.db_key)
        try:
            while not stop.is_set():
                sealed = crypto.seal({"schema": 1, "what": f"report {len(inserted)}"},
                                     config.recipients)
                report = _report(sealed)
                store.insert_report(conn, report)  # a report and its first event, together
                inserted.append(report.report_id)
        finally:
            conn.close()

    thread = threading.Thread(target=writer)

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 60
        while len(inserted) < count:
            assert thread.is_alive() and time.monotonic() < deadline, "the writer stopped"
            time.sleep(0.01)

    thread.start()
    try:
        wait_for(40)
        made = backup.create(config, tmp_path / "backup.bin", now=NOW)
        wait_for(len(inserted) + 20)  # the backup left the writer free to go on
    finally:
        stop.set()
        thread.join()

    restored = backup.restore(tmp_path / "backup.bin", backup_key, tmp_path / "fresh",
                              overwrite=False, now=NOW)
    conn = store.connect(restored.config.db_path, restored.config.db_key)
    try:
        ids = [row[0] for row in conn.execute("SELECT id FROM reports ORDER BY rowid")]
        events = conn.execute("SELECT count(*) FROM report_events").fetchone()[0]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        first = next(store.envelopes(conn, [ids[0]]))
    finally:
        conn.close()
    # One moment: exactly the first N reports, each with its event, and nothing after.
    assert 40 <= len(ids) == made.reports == restored.reports < len(inserted)
    assert ids == inserted[: len(ids)]
    assert events == len(ids)
    assert crypto.unseal(first.envelope, org_key).payload["what"] == "report 0"


def test_the_backup_and_its_database_copy_hold_no_plaintext(
    instance: instance_mod.Created, backup_key: crypto.PrivateKey, tmp_path: Path
) -> None:
    marker = f"MARKER-{uuid.uuid4().hex}"
    config_path = instance.config.instance_dir / "config.toml"
    config_path.write_text(config_path.read_text().replace("Example Organisation", marker))
    config = load(instance.config.instance_dir, environ={})
    conn = store.connect(config.db_path, config.db_key)
    store.insert_report(conn, _report(os.urandom(700), channel=marker))
    conn.close()

    copy = tmp_path / "copy.db"
    backup.export_database(config.db_path, config.db_key, copy, os.urandom(32))
    made = backup.create(config, tmp_path / "backup.bin", now=NOW)
    pepper = (instance.config.instance_dir / "pepper.key").read_text().strip()
    for path in (copy, made.path):
        content = path.read_bytes()
        for needle in (marker.encode(), marker.encode("utf-16-le"), b"CREATE TABLE",
                       b"SQLite format 3", pepper.encode(), b"intake-backup"):
            assert needle not in content, f"{path.name} holds {needle!r} in plaintext"
    plain = sqlite3.connect(copy)
    with pytest.raises(sqlite3.DatabaseError):
        plain.execute("SELECT count(*) FROM sqlite_master").fetchone()
    plain.close()
    # The staging folder in the instance is gone, and the file is the owner's only.
    assert not list(instance.config.instance_dir.glob(".backup-*"))
    assert stat.S_IMODE(made.path.stat().st_mode) == 0o600


def test_what_a_backup_holds(made: backup.Made, instance: instance_mod.Created) -> None:
    names = [m.name for m in made.manifest.members]
    assert names == ["config.toml", "db.key", "audit.key", "pepper.key", "receipt.key",
                     "session.key", "intake.db"]
    assert made.manifest.created_at == NOW
    assert made.manifest.schema_version == len(store.MIGRATIONS)
    assert made.reports == 3
    # The database copy has a key of its own, never the server's.
    db_key = next(m for m in made.manifest.members if m.name == "db.key")
    server_key = (instance.config.instance_dir / "db.key").read_bytes()
    assert db_key.sha256 != backupfile.sha256_of(server_key)[1]


def test_a_backup_needs_a_backup_key_and_a_new_file(
    instance: instance_mod.Created, tmp_path: Path
) -> None:
    with pytest.raises(backup.NoBackupKey, match="intake backup-key"):
        backup.create(instance.config, tmp_path / "b.bin", now=NOW)
    add_backup_key(instance.config.instance_dir)
    config = load(instance.config.instance_dir, environ={})
    (tmp_path / "b.bin").write_bytes(b"precious")
    with pytest.raises(backup.BackupError, match="exists; it was left as it was"):
        backup.create(config, tmp_path / "b.bin", now=NOW)
    assert (tmp_path / "b.bin").read_bytes() == b"precious"


# --- Checking ----------------------------------------------------------------------------


def test_verify_opens_every_byte_and_checks_the_database(
    made: backup.Made, backup_key: crypto.PrivateKey
) -> None:
    checked = backup.verify(made.path, backup_key)
    assert checked.reports == 3
    assert checked.manifest == made.manifest
    assert backupfile.check_digest(made.path) == made.sha256


def test_a_wrong_key_is_refused_with_a_sentence(made: backup.Made) -> None:
    with pytest.raises(backup.WrongBackupKey) as info:
        backup.verify(made.path, crypto.generate_private_key())
    message = str(info.value)
    assert "is intact, but this backup key does not open it" in message
    assert message.endswith(".")


def _positions(size: int) -> list[int]:
    """Every byte of the header, of the trailer and around every segment boundary, plus a
    seeded sample of the rest: tests stay fast, and every part of the layout is hit."""
    picked = set(range(HEADER)) | set(range(size - 40, size))
    for start in range(HEADER, size - backupfile.DIGEST_LEN, SEGMENT):
        picked |= {start, start + 1, start + 11, start + SEGMENT - 17, start + SEGMENT - 1}
    seeded = random.Random(20250304)  # noqa: S311  (a repeatable sample, not a secret)
    picked |= set(seeded.sample(range(size), 200))
    return sorted(p for p in picked if 0 <= p < size)


def test_changing_any_byte_is_detected(
    made: backup.Made, backup_key: crypto.PrivateKey, tmp_path: Path
) -> None:
    original = made.path.read_bytes()
    assert len(original) > HEADER + 2 * SEGMENT  # several segments, so boundaries count
    _open_all(made.path, backup_key)  # the control: unaltered, it opens
    altered = tmp_path / "altered.bin"
    for position in _positions(len(original)):
        data = bytearray(original)
        data[position] ^= 0x01
        altered.write_bytes(bytes(data))
        with pytest.raises(backup.BackupDamaged, match="SHA-256 does not match"):
            _open_all(altered, backup_key)


def test_a_forger_who_recomputes_the_digest_is_still_caught(
    made: backup.Made, backup_key: crypto.PrivateKey, tmp_path: Path
) -> None:
    # Without the backup key, a changed byte cannot be made to authenticate: a changed
    # header no longer opens, and a changed segment fails its tag.
    original = made.path.read_bytes()[: -backupfile.DIGEST_LEN]
    altered = tmp_path / "altered.bin"
    for position in _positions(len(original))[::3]:
        data = bytearray(original)
        data[position] ^= 0x80
        altered.write_bytes(_with_digest(bytes(data)))
        error = backup.WrongBackupKey if position < HEADER else backup.BackupDamaged
        with pytest.raises(error):
            _open_all(altered, backup_key)


def _with_digest(body: bytes) -> bytes:
    return body + hashlib.sha256(body).digest()


def test_segments_cut_dropped_swapped_or_added_are_detected(
    made: backup.Made, backup_key: crypto.PrivateKey, tmp_path: Path
) -> None:
    body = made.path.read_bytes()[: -backupfile.DIGEST_LEN]
    segments = [body[i : i + SEGMENT] for i in range(HEADER, len(body), SEGMENT)]
    header = body[:HEADER]
    variants = {
        "last segment cut off": header + b"".join(segments[:-1]),
        "middle segment dropped": header + segments[0] + b"".join(segments[2:]),
        "two segments swapped": header + segments[1] + segments[0] + b"".join(segments[2:]),
        "a segment repeated": header + segments[0] + b"".join(segments),
        "bytes added": body + b"\x00" * 17,
        "tag cut short": body[:-1],
        "a second backup appended": body + body[HEADER:],
    }
    for name, variant in variants.items():
        path = tmp_path / "variant.bin"
        path.write_bytes(_with_digest(variant))
        try:
            _open_all(path, backup_key)
        except backup.BackupError:
            continue
        pytest.fail(f"not refused: {name}")


def test_a_file_too_short_to_be_a_backup(tmp_path: Path, backup_key: crypto.PrivateKey) -> None:
    path = tmp_path / "short.bin"
    path.write_bytes(_with_digest(os.urandom(HEADER + 16)))
    with pytest.raises(backup.BackupDamaged, match="too short"):
        backup.verify(path, backup_key)


# --- Restoring ---------------------------------------------------------------------------


def test_restore_gives_a_working_instance_with_private_files(
    instance: instance_mod.Created, backup_key: crypto.PrivateKey, tmp_path: Path
) -> None:
    config = load(instance.config.instance_dir, environ={})
    code = receipts.new_code()
    conn = store.connect(config.db_path, config.db_key)
    data = crypto.seal({"schema": 1, "what": "kept"}, config.recipients)
    accepted = reports.accept_envelope(conn, config, data=data, receipt_code=code, language="ar")
    conn.close()
    made = backup.create(config, tmp_path / "backup.bin", now=NOW)

    target = tmp_path / "new-machine" / "instance"
    restored = backup.restore(made.path, backup_key, target, overwrite=False, now=NOW)
    assert restored.moved_aside is None
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    for name in ("db.key", "pepper.key", "session.key", "receipt.key", "intake.db"):
        assert stat.S_IMODE((target / name).stat().st_mode) == 0o600, name
    assert not list(target.glob(".restore-*"))
    again = load(target, environ={})
    assert (again.pepper, again.session_key, again.recipients, again.backup_key) == (
        config.pepper, config.session_key, config.recipients, config.backup_key)
    assert again.db_key != config.db_key  # the copy's own key
    conn = store.open_ready(again.db_path, again.db_key, again.receipt_hash)
    try:
        # The pepper came back: the complainant's code still finds their report.
        found = reports.find_status(conn, again, code)
    finally:
        conn.close()
    assert found is not None and found.report_id == accepted.report_id


def test_a_backup_leaves_the_guessing_limits_behind(
    instance: instance_mod.Created, backup_key: crypto.PrivateKey, tmp_path: Path
) -> None:
    """Throttling state lives a day at most on the server (intake/throttle.py); a backup
    kept for months must not hold it."""
    config = load(instance.config.instance_dir, environ={})
    conn = store.connect(config.db_path, config.db_key)
    try:
        for _ in range(3):
            reports.check_status(conn, config, receipts.new_code(), client_address="192.0.2.1")
        assert conn.execute("SELECT count(*) FROM throttle_clients").fetchone()[0] == 1
    finally:
        conn.close()
    made = backup.create(config, tmp_path / "backup.bin", now=NOW)
    target = tmp_path / "restored"
    restored = backup.restore(made.path, backup_key, target, overwrite=False, now=NOW)
    conn = store.connect(restored.config.db_path, restored.config.db_key)
    try:
        for query in ("SELECT count(*) FROM throttle_clients",
                      "SELECT count(*) FROM status_failures",
                      "SELECT count(*) FROM meta WHERE name = 'client_key'"):
            assert conn.execute(query).fetchone()[0] == 0, query
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def test_restore_refuses_an_existing_instance_unless_told(
    made: backup.Made, backup_key: crypto.PrivateKey, instance: instance_mod.Created
) -> None:
    target = instance.config.instance_dir
    before = (target / "db.key").read_bytes()
    with pytest.raises(backup.RestoreRefused, match="already holds an instance"):
        backup.restore(made.path, backup_key, target, overwrite=False, now=NOW)
    assert (target / "db.key").read_bytes() == before

    restored = backup.restore(made.path, backup_key, target, overwrite=True, now=NOW)
    aside = restored.moved_aside
    assert aside == target / "replaced-20250304T050607Z"
    assert (aside / "db.key").read_bytes() == before  # moved, not deleted
    assert {p.name for p in aside.iterdir()} >= {"config.toml", "pepper.key", "intake.db"}
    assert restored.reports == 3


def test_a_damaged_or_unopenable_backup_leaves_no_trace(
    made: backup.Made, backup_key: crypto.PrivateKey, tmp_path: Path
) -> None:
    data = bytearray(made.path.read_bytes())
    data[HEADER + 5] ^= 1
    damaged = tmp_path / "damaged.bin"
    damaged.write_bytes(_with_digest(bytes(data[: -backupfile.DIGEST_LEN])))
    for path, key in ((damaged, backup_key), (made.path, crypto.generate_private_key())):
        target = tmp_path / "target"
        with pytest.raises(backup.BackupError):
            backup.restore(path, key, target, overwrite=False, now=NOW)
        assert list(target.iterdir()) == []
        with pytest.raises(ConfigError, match="No instance"):
            load(target, environ={})


# --- The backup key ----------------------------------------------------------------------


def test_backup_key_goes_off_the_instance_and_into_config(
    instance: instance_mod.Created, tmp_path: Path
) -> None:
    folder = instance.config.instance_dir
    with pytest.raises(backup.BackupError, match="inside the instance folder"):
        backup.make_backup_key(folder, folder / "backup.key", "a long enough passphrase",
                               replace=False)
    before = load(folder, environ={})
    public = backup.make_backup_key(folder, tmp_path / "backup.key",
                                    "a long enough passphrase", replace=False)
    after = load(folder, environ={})
    assert after.backup_key == public
    assert after.recipients == before.recipients and after.contact == before.contact
    key = crypto.read_key_file((tmp_path / "backup.key").read_bytes(), "a long enough passphrase")
    assert key.public_key == public
    assert stat.S_IMODE((tmp_path / "backup.key").stat().st_mode) == 0o600
    with pytest.raises(backup.BackupError, match="already has a backup_key"):
        backup.make_backup_key(folder, tmp_path / "other.key", "a long enough passphrase",
                               replace=False)
    newer = backup.make_backup_key(folder, tmp_path / "other.key", "a long enough passphrase",
                                   replace=True)
    assert load(folder, environ={}).backup_key == newer != public


def test_with_backup_key_edits_only_that_line() -> None:
    public = crypto.generate_private_key().public_key
    for text in ('a = 1\n', '# only a comment\n[t]\nb = 2\n', 'a = 1\n\n# about t\n[t]\nb = 2\n'):
        edited = backup.with_backup_key(text, public, replace=False)
        assert tomllib.loads(edited)["backup_key"] == public.text
    # Above the comment that introduces the first table, not between the two.
    assert backup.with_backup_key('a = 1\n# t\n[t]\n', public, replace=False).endswith('# t\n[t]\n')


@pytest.mark.parametrize("env", [{}, {"INTAKE_DB_KEY": "ab" * 32}])
def test_backup_reads_the_key_wherever_it_is(
    instance: instance_mod.Created, tmp_path: Path, env: dict[str, str]
) -> None:
    # With INTAKE_DB_KEY the server's key is not in the folder; the backup does not need it.
    add_backup_key(instance.config.instance_dir)
    folder = instance.config.instance_dir
    if env:
        key = (folder / "db.key").read_text().strip()
        env = {"INTAKE_DB_KEY": key}
        (folder / "db.key").unlink()
    config = load(folder, environ=env)
    made = backup.create(config, tmp_path / "b.bin", now=NOW)
    assert "db.key" in [m.name for m in made.manifest.members]
