"""Changing the database key (`intake rekey`) in steps that survive a crash between any two.

The order, and what a crash after each step leaves (SECURITY.md, "Changing the database
key", says the same for administrators):

    step                 db.key   db.key.old   database   `intake rekey --recover`
    (before)             old      -            old        nothing to do
    1 lock               old      -            old        nothing to do
    2 keep_old_key       old      old          old        db.key (old) opens: remove .old
    3 write_new_key      new      old          old        db.key fails, db.key.old opens:
                                                          put it back as db.key
    4 rekey_database     new      old          old/new    whichever opens is kept
    5 finish             new      old          new        db.key opens: remove db.key.old
    6 forget_old_key     new      -            new        nothing to do

At every moment one of the two files holds the key that opens the database, and
config.load refuses to start while db.key.old exists, so an interrupted rekey is never
served half done. Step 4 is one SQLite transaction: until it commits, the rollback journal
keeps every page as it was, under the old key, and opening with the old key rolls it back.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from pathlib import Path

import sqlcipher3.dbapi2 as sqlcipher

from intake import crypto, files, store
from intake.config import DB_FILE, DB_KEY_FILE, DB_KEY_OLD_FILE, Config, env_value


class RekeyError(Exception):
    """The database key cannot be changed, or an interrupted change cannot be sorted out;
    the message says what to do."""


class DatabaseInUse(RekeyError):
    """Another process (the server) has the database open."""


class KeyInEnvironment(RekeyError):
    """The key comes from INTAKE_DB_KEY, which intake cannot update."""


class Recovery(enum.Enum):
    NOTHING = "no interrupted rekey"
    FINISHED = "the new key opens the database and is kept"
    ROLLED_BACK = "the old key opens the database and is kept"


def run(config: Config, environ: Mapping[str, str], *, rng: crypto.Rng = os.urandom) -> None:
    """Give the database a new random key, and db.key with it."""
    if env_value(environ, "INTAKE_DB_KEY"):
        raise KeyInEnvironment(
            "INTAKE_DB_KEY is set, and intake cannot change a key kept in your secrets "
            "manager. Stop the server, write the key to db.key (64 hex digits, mode 0600), "
            "unset INTAKE_DB_KEY, run `intake rekey`, then put the new db.key into your "
            "secrets manager and delete db.key."
        )
    new_key = rng(32)
    conn = lock(config.db_path, config.db_key)
    try:
        keep_old_key(config.instance_dir, config.db_key)
        write_new_key(config.instance_dir, new_key)
        rekey_database(conn, new_key)
    except BaseException:
        conn.close()
        recover(config.instance_dir)
        raise
    conn.close()
    finish(config.db_path, new_key)
    forget_old_key(config.instance_dir)


def lock(db_path: Path, key: bytes) -> store.Connection:
    """Step 1: open the database and take it for ourselves, or refuse if anyone has it."""
    conn = store.connect(db_path, key)
    try:
        conn.execute("PRAGMA busy_timeout = 2000")
        # SQLite leaves WAL mode only when no other connection has the database open, so
        # this is also the check that the server is stopped. Rekeying itself needs a
        # rollback journal: in WAL mode a new connection could not read the file's header.
        try:
            mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
        except sqlcipher.OperationalError:
            mode = "wal"
        if mode != "delete":
            raise DatabaseInUse(
                f"{db_path} is in use: stop the server (`intake serve`) and every other "
                "`intake` command, then run `intake rekey` again. Nothing was changed."
            )
        # Hold the lock until we close, so that no server can start half way through.
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("COMMIT")
    except BaseException:
        conn.close()
        raise
    return conn


def keep_old_key(instance_dir: Path, old_key: bytes) -> None:
    """Step 2: db.key.old holds the key that opens the database now."""
    files.write_atomic(instance_dir / DB_KEY_OLD_FILE, _key_text(old_key))


def write_new_key(instance_dir: Path, new_key: bytes) -> None:
    """Step 3: db.key holds the new key (the database does not use it yet)."""
    files.write_atomic(instance_dir / DB_KEY_FILE, _key_text(new_key), replace=True)


def rekey_database(conn: store.Connection, new_key: bytes) -> None:
    """Step 4: re-encrypt every page under the new key, in one transaction."""
    conn.execute(f"PRAGMA rekey = \"x'{new_key.hex()}'\"").fetchall()


def finish(db_path: Path, new_key: bytes) -> None:
    """Step 5: the new key opens the database, which goes back to WAL mode."""
    conn = store.connect(db_path, new_key)
    try:
        if conn.execute("PRAGMA quick_check").fetchall() != [("ok",)]:
            raise RekeyError(f"{db_path} fails quick_check after the new key was set. "
                             "Run `intake rekey --recover`, then restore a backup if it fails.")
    finally:
        conn.close()


def forget_old_key(instance_dir: Path) -> None:
    """Step 6: the old key is no longer needed; removing it commits the change."""
    (instance_dir / DB_KEY_OLD_FILE).unlink()
    files.sync_folder(instance_dir)


def recover(instance_dir: Path) -> Recovery:
    """Sort out an interrupted rekey: keep, as db.key, whichever key opens the database."""
    db_path = instance_dir / DB_FILE
    for leftover in instance_dir.glob(f".{DB_KEY_FILE}*{files.TEMP_SUFFIX}"):
        leftover.unlink()
    old_path = instance_dir / DB_KEY_OLD_FILE
    if not old_path.exists():
        return Recovery.NOTHING
    if not db_path.is_file():
        # Opening a missing database would create an empty one, which any key "opens".
        raise RekeyError(f"{db_path} is missing; {DB_KEY_OLD_FILE} was left as it is.")
    current_path = instance_dir / DB_KEY_FILE
    # The current key first: trying a key that does not match changes nothing, even when a
    # rollback journal is waiting for the other key (tests/test_rekey.py kills a rekey to
    # check this).
    current = _read_key(current_path) if current_path.exists() else None
    if _opens(db_path, current):
        changed = current != _read_key(old_path)
        old_path.unlink()
        files.sync_folder(instance_dir)
        return Recovery.FINISHED if changed else Recovery.ROLLED_BACK
    if _opens(db_path, _read_key(old_path)):
        os.replace(old_path, current_path)
        files.sync_folder(instance_dir)
        return Recovery.ROLLED_BACK
    raise RekeyError(
        f"Neither {DB_KEY_FILE} nor {DB_KEY_OLD_FILE} opens {db_path}; both were left as "
        "they are. Restore the instance from a backup (`intake restore`)."
    )


def _opens(db_path: Path, key: bytes | None) -> bool:
    if key is None:
        return False
    conn = sqlcipher.connect(str(db_path), isolation_level=None)
    try:
        conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
        conn.execute("PRAGMA busy_timeout = 2000")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return True
    except sqlcipher.OperationalError as exc:
        if "locked" in str(exc):
            raise DatabaseInUse(f"{db_path} is in use: wait for the `intake rekey` that is "
                                "running, or stop the server, then try again.") from None
        return False
    except sqlcipher.DatabaseError:
        return False
    finally:
        conn.close()


def _read_key(path: Path) -> bytes | None:
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None
    return key if len(key) == 32 else None


def _key_text(key: bytes) -> bytes:
    return key.hex().encode("ascii") + b"\n"
