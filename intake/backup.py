"""Backing up, checking and restoring an instance (SECURITY.md, Backups and Formats 12).

A backup is one file holding what a fresh machine needs to serve the instance again:
config.toml, every secret (*.key) and a copy of the database. The copy is made by
`sqlcipher_export` inside one read transaction, so it is a consistent snapshot while the
server keeps writing, and it is SQLCipher-encrypted under a new random key from its first
page: no plaintext copy of the database ever reaches a disk. That key travels in the backup
as its db.key. The whole file is sealed to the instance's backup public key (`backup_key` in
config.toml); only the backup key file, kept off the server, opens it.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from intake import crypto, files, store, throttle
from intake.backupfile import BackupDamaged as BackupDamaged
from intake.backupfile import BackupError as BackupError
from intake.backupfile import BackupInvalid as BackupInvalid
from intake.backupfile import (
    Manifest,
    Member,
    Source,
    check_digest,
    sha256_of,
    unpack,
    write,
)
from intake.backupfile import WrongBackupKey as WrongBackupKey
from intake.config import (
    CONFIG_FILE,
    DB_FILE,
    DB_KEY_FILE,
    DB_KEY_OLD_FILE,
    PEPPER_FILE,
    RECEIPT_KEY_FILE,
    SESSION_KEY_FILE,
    Config,
    load,
)

# What makes a folder an instance; restore refuses to write over any of them unless told.
INSTANCE_FILES = (CONFIG_FILE, DB_KEY_FILE, DB_KEY_OLD_FILE, DB_FILE)
DB_SIDE_FILES = ("-wal", "-shm", "-journal")


class NoBackupKey(BackupError):
    """The instance has no backup public key to seal backups to."""


class RestoreRefused(BackupError):
    """The target folder already holds an instance."""


@dataclass(frozen=True)
class Made:
    path: Path
    size: int
    sha256: bytes
    manifest: Manifest
    reports: int


@dataclass(frozen=True)
class Checked:
    manifest: Manifest
    reports: int


@dataclass(frozen=True)
class Restored:
    config: Config
    manifest: Manifest
    reports: int
    moved_aside: Path | None


# --- Making a backup ---------------------------------------------------------------------


def create(config: Config, output: Path, *, now: datetime, rng: crypto.Rng = os.urandom) -> Made:
    """Write a backup of the instance to `output`, which must not exist."""
    if config.backup_key is None:
        raise NoBackupKey(
            "This instance has no backup key. Run `intake backup-key --key-out FILE` (FILE "
            "off this server), then back up again."
        )
    output = output.resolve()
    if output.exists():
        raise BackupError(f"{output} exists; it was left as it was. Choose another --output.")
    # The copy is ciphertext under a key that is only in memory and in the sealed backup, but
    # it still goes in the instance folder (owner-only, on the database's own disk) rather
    # than a shared temporary folder.
    staging = Path(tempfile.mkdtemp(prefix=".backup-", dir=config.instance_dir))
    try:
        copy_key = rng(32)
        copy = staging / DB_FILE
        schema, reports = export_database(config.db_path, config.db_key, copy, copy_key)
        sources: list[tuple[str, Source]] = [
            (CONFIG_FILE, (config.instance_dir / CONFIG_FILE).read_bytes()),
            (DB_KEY_FILE, copy_key.hex().encode("ascii") + b"\n"),
            *((path.name, path.read_bytes()) for path in _other_keys(config.instance_dir)),
            (DB_FILE, copy),
        ]
        members = tuple(Member(name, *sha256_of(source)) for name, source in sources)
        manifest = Manifest(now.astimezone(UTC).replace(microsecond=0), schema, members)
        trailer = write(output, manifest, [s for _, s in sources], config.backup_key, rng=rng)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Made(output, output.stat().st_size, trailer, manifest, reports)


def _other_keys(instance_dir: Path) -> list[Path]:
    """Every secret in the folder besides db.key (the copy has its own): *.key files."""
    found = sorted(p for p in instance_dir.glob("*.key")
                   if p.is_file() and p.name != DB_KEY_FILE and not p.name.startswith("."))
    for path in found:
        if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}", path.name):
            raise BackupError(f"{path} has a name a backup cannot carry; rename it.")
    return found


def _raw(key: bytes) -> str:
    # SQLCipher's raw-key syntax: the 32 bytes are the key itself, with no PBKDF2.
    return f"x'{key.hex()}'"


def export_database(source: Path, key: bytes, target: Path, target_key: bytes) -> tuple[int, int]:
    """Copy the database into a new SQLCipher file under `target_key`, as one consistent
    snapshot, while others keep writing. Returns (schema version, number of reports)."""
    conn = store.connect(source, key)  # temp_store = MEMORY: no sort spills to a temp file
    try:
        conn.execute("ATTACH DATABASE ? AS backup KEY ?", (str(target), _raw(target_key)))
        try:
            # WAL gives a read transaction a snapshot: writers go on, and every statement
            # sqlcipher_export runs inside it sees the database as of its first read.
            conn.execute("BEGIN DEFERRED")
            try:
                schema = store.schema_version(conn)
                reports = int(conn.execute("SELECT count(*) FROM main.reports").fetchone()[0])
                conn.execute("SELECT sqlcipher_export('backup')").fetchall()
                # sqlcipher_export copies schema and rows, not the user_version header field.
                conn.execute(f"PRAGMA backup.user_version = {schema:d}")
                # Throttling state is forgotten within a day on the server; a backup must not
                # keep it for longer (intake/throttle.py).
                conn.execute("PRAGMA backup.secure_delete = ON")
                throttle.forget_everything(conn, "backup")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            conn.execute("DETACH DATABASE backup")
    finally:
        conn.close()
    return schema, reports


# --- Checking ----------------------------------------------------------------------------


def verify(path: Path, key: crypto.PrivateKey) -> Checked:
    """Open and check every byte of a backup, then its database: the key opens it and
    integrity_check is ok. Secrets stay in memory; only the (encrypted) database copy is
    written, to a private temporary folder removed afterwards."""
    with _private_folder(None) as folder:
        held: dict[str, io.BytesIO] = {}

        def sink(member: Member) -> IO[bytes]:
            if member.name == DB_FILE:
                return _new_file(folder / DB_FILE)
            held[member.name] = io.BytesIO()
            return held[member.name]

        manifest = _unpack_closing(path, key, sink)
        secrets = {name: buffer.getvalue() for name, buffer in held.items()}
        reports = _check_contents(manifest, secrets, folder / DB_FILE)
    return Checked(manifest, reports)


def _check_contents(manifest: Manifest, secrets: dict[str, bytes], db_copy: Path) -> int:
    names = {m.name for m in manifest.members}
    missing = {CONFIG_FILE, DB_KEY_FILE, DB_FILE} - names
    if missing:
        raise BackupInvalid(f"the backup lacks {', '.join(sorted(missing))}.")
    unknown = {n for n in names if n not in (CONFIG_FILE, DB_FILE) and not n.endswith(".key")}
    if unknown or DB_KEY_OLD_FILE in names:
        raise BackupInvalid(f"the backup holds files an instance does not: {sorted(unknown)}.")
    try:
        tomllib.loads(secrets[CONFIG_FILE].decode("utf-8"))
        # The secrets this version knows; any other *.key is carried as it is.
        for name, data in secrets.items():
            if name == RECEIPT_KEY_FILE:
                crypto.private_key_from_hex(data.decode("ascii").strip())
            elif name in (DB_KEY_FILE, PEPPER_FILE, SESSION_KEY_FILE) and len(
                bytes.fromhex(data.decode("ascii"))
            ) != 32:
                raise ValueError(f"{name} is not 64 hexadecimal digits")
    except (UnicodeDecodeError, ValueError, tomllib.TOMLDecodeError, crypto.CryptoError) as exc:
        raise BackupInvalid(f"a file in the backup is damaged: {exc}.") from None
    return check_database(db_copy, bytes.fromhex(secrets[DB_KEY_FILE].decode("ascii")),
                          manifest.schema_version)


def check_database(path: Path, key: bytes, schema: int) -> int:
    """The database copy opens with its key and passes SQLite's and SQLCipher's integrity
    checks; returns its number of reports."""
    try:
        conn = store.connect(path, key)
    except store.StoreError:
        raise BackupInvalid("the database in the backup does not open with its key.") from None
    try:
        checks = {
            "integrity_check": conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)],
            "cipher_integrity_check": conn.execute("PRAGMA cipher_integrity_check").fetchall()
            == [],
            "foreign_key_check": conn.execute("PRAGMA foreign_key_check").fetchall() == [],
            "schema version": store.schema_version(conn) == schema,
        }
        failed = [name for name, ok in checks.items() if not ok]
        if failed:
            raise BackupInvalid(f"the database in the backup fails {', '.join(failed)}.")
        return int(conn.execute("SELECT count(*) FROM reports").fetchone()[0])
    finally:
        conn.close()


# --- Restoring ---------------------------------------------------------------------------


def restore(
    path: Path, key: crypto.PrivateKey, target: Path, *, overwrite: bool, now: datetime
) -> Restored:
    """Restore a backup into `target`, a new or empty folder unless `overwrite`, in which case
    the instance there is moved aside into a `replaced-<time>` folder, not deleted."""
    target = target.resolve()
    present = [name for name in INSTANCE_FILES if (target / name).exists()]
    if present and not overwrite:
        raise RestoreRefused(
            f"{target} already holds an instance ({', '.join(present)}); it was left as it "
            "was. Restore into a new folder, or add --overwrite to move it aside first."
        )
    check_digest(path)  # before creating anything, so a damaged file leaves no trace
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _private_folder(target) as staging:
        manifest = _unpack_closing(path, key, lambda m: _new_file(staging / m.name))
        secrets = {m.name: (staging / m.name).read_bytes()
                   for m in manifest.members if m.name != DB_FILE}
        reports = _check_contents(manifest, secrets, staging / DB_FILE)
        moved = _move_aside(target, now) if present else None
        # Secrets first and config.toml last: config.toml is what makes the folder an
        # instance, so a crash part-way leaves a folder that does not pretend to be one.
        names = sorted(m.name for m in manifest.members)
        order = [n for n in names if n.endswith(".key")] + [DB_FILE, CONFIG_FILE]
        for name in order:
            os.replace(staging / name, target / name)
        # Left by the check's own connection if it was not closed cleanly.
        for suffix in DB_SIDE_FILES:
            side = staging / (DB_FILE + suffix)
            if side.exists():
                os.replace(side, target / (DB_FILE + suffix))
        (target / CONFIG_FILE).chmod(0o644)
        files.sync_folder(target)
    config = load(target, environ={})
    store.open_ready(config.db_path, config.db_key, config.receipt_hash).close()
    return Restored(config, manifest, reports, moved)


def _move_aside(target: Path, now: datetime) -> Path:
    aside = target / f"replaced-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    aside.mkdir(mode=0o700)
    names = {*INSTANCE_FILES, *(DB_FILE + s for s in DB_SIDE_FILES)}
    names |= {p.name for p in target.glob("*.key") if not p.name.startswith(".")}
    for name in sorted(names):
        if (target / name).exists():
            os.replace(target / name, aside / name)
    return aside


@contextmanager
def _private_folder(parent: Path | None) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix=".restore-" if parent else "intake-verify-",
                                   dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _new_file(path: Path) -> IO[bytes]:
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def _unpack_closing(path: Path, key: crypto.PrivateKey,
                    sink: Callable[[Member], IO[bytes]]) -> Manifest:
    """unpack, closing (and flushing to disk) every file it was handed."""
    opened: list[IO[bytes]] = []

    def tracked(member: Member) -> IO[bytes]:
        handle = sink(member)
        opened.append(handle)
        return handle

    try:
        return unpack(path, key, tracked)
    finally:
        for handle in opened:
            if not isinstance(handle, io.BytesIO):  # those are read afterwards
                handle.flush()
                os.fsync(handle.fileno())
                handle.close()


# --- The backup key ----------------------------------------------------------------------


def make_backup_key(
    instance_dir: Path, key_out: Path, passphrase: str, *, replace: bool,
    rng: crypto.Rng = os.urandom,
) -> crypto.PublicKey:
    """Make the backup key pair: the private half to a passphrase-protected key file at
    `key_out` (outside the instance), the public half into config.toml as `backup_key`."""
    instance_dir, key_out = instance_dir.resolve(), key_out.resolve()
    config_path = instance_dir / CONFIG_FILE
    if not config_path.is_file():
        raise BackupError(f"No instance at {instance_dir}: run `intake init` first.")
    if key_out.is_relative_to(instance_dir):
        raise BackupError("The backup key file must not be written inside the instance folder: "
                          "it opens every backup, and backups hold the instance folder.")
    if key_out.exists():
        raise BackupError(f"{key_out} exists; it was left as it was. Choose another --key-out.")
    key = crypto.generate_private_key()
    text = with_backup_key(config_path.read_text(encoding="utf-8"), key.public_key,
                           replace=replace)
    # Key file first: config.toml must never name a key whose private half was not saved.
    files.write_atomic(key_out, crypto.write_key_file(key, passphrase, rng=rng))
    mode = config_path.stat().st_mode & 0o777  # as the administrator left it
    files.write_atomic(config_path, text.encode("utf-8"), replace=True, mode=mode)
    return key.public_key


def with_backup_key(text: str, public_key: crypto.PublicKey, *, replace: bool) -> str:
    """config.toml's text with `backup_key` set, everything else unchanged (checked)."""
    before = tomllib.loads(text)
    line = f'backup_key = "{public_key.text}"'
    if "backup_key" in before:
        if not replace:
            raise BackupError(
                "config.toml already has a backup_key. Add --replace to make a new one; keep "
                "the old key file as long as you keep backups made with it."
            )
        after = re.sub(r"(?m)^backup_key[ \t]*=.*$", line, text, count=1)
    else:
        # Top-level keys must come before the first [table]: put it there, above the
        # comment lines that introduce that table.
        lines = text.splitlines(keepends=True)
        first = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("[")),
                     len(lines))
        while first and lines[first - 1].lstrip().startswith("#"):
            first -= 1
        at = sum(len(ln) for ln in lines[:first])
        note = ("# Backups are sealed to this public key (`intake backup-key`); its private\n"
                "# half, the backup key file, is kept off this server.\n")
        after = text[:at] + note + line + "\n\n" + text[at:]
    if tomllib.loads(after) != {**before, "backup_key": public_key.text}:
        raise BackupError(f"config.toml could not be edited safely; add this line above its "
                          f"first [table] yourself:\n{line}")
    return after
