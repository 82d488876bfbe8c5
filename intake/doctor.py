"""`intake doctor`: checks an installed instance and says, for each problem, how to fix it.

Each check is a plain function over paths, configuration and the time, returning findings.
A finding is one sentence; a problem's sentence ends with its fix. Nothing here changes the
instance: the database is opened and read, never migrated. The checks of the instance's
public address are in `intake.reach`; those of the machine (clock, disk, backups) in
`intake.upkeep`.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlcipher3.dbapi2 import DatabaseError

from intake import crypto, store
from intake.config import (
    AUDIT_KEY_FILE,
    CONFIG_FILE,
    DB_KEY_FILE,
    DB_KEY_OLD_FILE,
    PEPPER_FILE,
    RECEIPT_KEY_FILE,
    SESSION_KEY_FILE,
    Config,
    ConfigError,
    env_value,
    load,
)
from intake.receipts import HashParams


@dataclass(frozen=True)
class Finding:
    check: str
    problem: bool
    text: str
    skipped: bool = False


def ok(check: str, text: str) -> Finding:
    return Finding(check, False, text)


def problem(check: str, text: str) -> Finding:
    return Finding(check, True, text)


def skipped(check: str, text: str) -> Finding:
    return Finding(check, False, text, skipped=True)


# What each 64-hex-digit secret is for, and what to do when it is lost. Only the session
# key can be replaced by a new random one: it signs the CSRF cookie of forms, nothing that
# lasts.
_RESTORE = "restore it from your backup of the instance folder"
HEX_SECRETS = {
    DB_KEY_FILE: f"{_RESTORE}; without it the database cannot be opened",
    PEPPER_FILE: f"{_RESTORE}; without it no receipt code can be checked",
    AUDIT_KEY_FILE: f"{_RESTORE}; without it the audit log cannot be verified",
    SESSION_KEY_FILE: f"{_RESTORE}, or write a new random one (`openssl rand -hex 32 > "
                      f"{SESSION_KEY_FILE}`, then restart intake), which costs only the forms "
                      "open at that moment",
}
SECRET_FILES = (*HEX_SECRETS, RECEIPT_KEY_FILE)
# Present only while an `intake rekey` runs or after one was interrupted; a secret all the same.
PRIVATE_FILES = (*SECRET_FILES, DB_KEY_OLD_FILE)
PRODUCTION_MEMORY_KIB = HashParams().memory_kib


# --- The instance folder and its secrets ------------------------------------------------


def check_secrets(instance_dir: Path, environ: Mapping[str, str]) -> list[Finding]:
    """Every secret present and well formed (INTAKE_DB_KEY may stand in for db.key)."""
    found = []
    for name, fix in HEX_SECRETS.items():
        if name == DB_KEY_FILE and env_value(environ, "INTAKE_DB_KEY"):
            if not _is_key_hex(env_value(environ, "INTAKE_DB_KEY") or ""):
                found.append(problem("keys", "INTAKE_DB_KEY is not 64 hexadecimal digits: set "
                                             "it to the database key from your backup."))
            continue
        path = instance_dir / name
        text = _read_text(path)
        if text is None:
            found.append(problem("keys", f"{path} is missing: {fix}."))
        elif not _is_key_hex(text):
            found.append(problem("keys", f"{path} is not 64 hexadecimal digits: {fix}."))
    path = instance_dir / RECEIPT_KEY_FILE
    text = _read_text(path)
    fix = (f"{_RESTORE}; without it, reports queued offline on devices cannot be accepted")
    if text is None:
        found.append(problem("keys", f"{path} is missing: {fix}."))
    else:
        try:
            crypto.private_key_from_hex(text)
        except crypto.InvalidPublicKey:
            found.append(problem("keys", f"{path} is damaged: {fix}."))
    if not found:
        found.append(ok("keys", f"The instance's secrets ({', '.join(SECRET_FILES)}) are "
                                "present and well formed."))
    return found


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError, IsADirectoryError):
        return None


def _is_key_hex(text: str) -> bool:
    try:
        return len(bytes.fromhex(text)) == 32
    except ValueError:
        return False


def check_permissions(instance_dir: Path, *, euid: int) -> list[Finding]:
    """The folder closed to other users, secrets 0600, config.toml changed by its owner only,
    one owner for everything. (The database files are ciphertext behind the closed folder,
    and the service's UMask makes its new files 0600 anyway.)"""
    found = []
    info = instance_dir.stat()
    owner = info.st_uid
    if info.st_mode & 0o007:
        found.append(problem("permissions", f"Other users can open the instance folder "
                                            f"{instance_dir}: run `chmod 700 {instance_dir}`."))
    for path in sorted(instance_dir.iterdir()):
        mode = path.lstat().st_mode
        if path.name in PRIVATE_FILES and stat.S_IMODE(mode) & 0o077:
            who = "every user" if mode & 0o004 else "its group"
            found.append(problem("permissions", f"{path} can be read or changed by {who}: run "
                                                f"`chmod 600 {path}`."))
        elif path.name == CONFIG_FILE and mode & 0o022:
            # Whoever can edit config.toml can add their own public key to [[keys]], and
            # every later report is then sealed to them too.
            found.append(problem("permissions", f"Users other than its owner can change "
                                                f"{path}, and with it the keys reports are "
                                                f"sealed to: run `chmod 644 {path}`."))
        if path.lstat().st_uid != owner:
            name, other = _user_name(owner), _user_name(path.lstat().st_uid)
            found.append(problem("permissions", f"{path} belongs to {other}, not to {name} "
                                                "like the instance folder, so the service may "
                                                f"fail to use it: run `chown {name}: {path}`."))
    if euid != owner:
        found.append(problem("permissions", f"intake doctor runs as {_user_name(euid)}, but "
                                            f"the instance belongs to {_user_name(owner)}: run "
                                            f"it as that user (`sudo -u {_user_name(owner)} "
                                            "intake doctor ...`), so that it sees what the "
                                            "service sees and leaves no files the service "
                                            "cannot open."))
    if not found:
        found.append(ok("permissions", f"The instance folder and its secrets are private to "
                                       f"{_user_name(owner)}."))
    return found


def _user_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def check_stray_keys(instance_dir: Path) -> list[Finding]:
    """No private key file in the instance folder or beside it: `intake init` writes one to
    the current folder by default, and the server never needs it."""
    found = []
    for folder in (instance_dir, instance_dir.parent):
        for path in sorted(folder.iterdir()):
            if _is_private_key_file(path):
                found.append(problem("keys", f"{path} is a private key file on the server: move "
                                             "it to the officers' devices and an offline "
                                             "backup, then delete it here (`shred -u "
                                             f"{path}`); with it and its passphrase anyone "
                                             "who copies this machine can read every report."))
    return found


def _is_private_key_file(path: Path) -> bool:
    try:
        if not path.is_file() or path.stat().st_size > 64 * 1024:
            return False
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("format") == crypto.KEY_FILE_FORMAT


# --- Configuration, database and keys ----------------------------------------------------


def load_config(instance_dir: Path, environ: Mapping[str, str], *,
                secrets_ok: bool = True) -> tuple[Config | None, list[Finding]]:
    """The configuration, if it loads, and what is wrong with it for production."""
    try:
        config = load(instance_dir, environ)
    except ConfigError as exc:
        text = str(exc).rstrip(".")
        if text.startswith(str(instance_dir / CONFIG_FILE)):
            # A TOML or setting error names what is wrong but not what to do.
            text += ("; correct config.toml (docs/configuration.md describes every setting) "
                     "and restart intake")
        elif not secrets_ok:
            return None, []  # a missing or damaged secret, which check_secrets reported
        return None, [problem("config", f"{text}.")]
    found = []
    if not config.secure_cookies:
        found.append(problem("config", "config.toml has secure_cookies = false, which only a "
                                       "demo on http://127.0.0.1 may have: set it to true."))
    if config.receipt_hash.memory_kib < PRODUCTION_MEMORY_KIB:
        found.append(problem("config", f"receipt_hash.memory_kib is "
                                       f"{config.receipt_hash.memory_kib}, below the "
                                       f"{PRODUCTION_MEMORY_KIB} that makes receipt codes hard "
                                       "to guess: it cannot change once reports exist, so "
                                       "create a new instance with the default."))
    if config.backup_key is None:
        found.append(problem("config", "This instance has no backup key, so `intake backup` "
                                       "refuses to run: make one with `intake backup-key "
                                       "--key-out FILE`, FILE on a USB stick that then leaves "
                                       "this machine."))
    if not found:
        found.append(ok("config", f"config.toml is valid; reports are sealed to "
                                  f"{len(config.recipients)} organisation key(s)."))
    return config, found


def check_database(config: Config) -> list[Finding]:
    """The database opens with its key, is intact, and its schema is one we know."""
    path = config.db_path
    if not path.exists():
        return [problem("database", f"There is no database at {path}: restore the instance "
                                    "from your last backup (`intake restore`).")]
    try:
        conn = store.connect(path, config.db_key)
    except store.StoreError:
        return [problem("database", f"The database {path} does not open with its key (db.key, "
                                    "or INTAKE_DB_KEY if set): put back the key from your "
                                    "backup of the instance folder, which is the only copy.")]
    try:
        version = store.schema_version(conn)
        result = conn.execute("PRAGMA quick_check").fetchone()[0]
        count = conn.execute("SELECT count(*) FROM reports").fetchone()[0] if version else 0
    finally:
        conn.close()
    known = len(store.MIGRATIONS)
    if result != "ok":
        return [problem("database", f"The database is damaged (quick_check: {result}): stop "
                                    "intake and restore your last backup (`intake restore`).")]
    if version > known:
        return [problem("database", f"The database is at schema {version}, newer than this "
                                    f"intake knows ({known}): install the newer intake.")]
    if version < known:
        return [problem("database", f"The database is at schema {version}; this intake "
                                    f"brings it to {known} when it starts: restart it "
                                    "(`systemctl restart intake`).")]
    return [ok("database", f"The database opens with its key and passes quick_check: schema "
                           f"{version}, {count} report(s).")]


def newest_report(config: Config) -> datetime | None:
    """When the newest report arrived, or None (no reports, or no database to ask)."""
    try:
        conn = store.connect(config.db_path, config.db_key) if config.db_path.exists() else None
    except store.StoreError:
        return None
    if conn is None:
        return None
    try:
        row = conn.execute("SELECT max(received_at) FROM reports").fetchone()
    except DatabaseError:  # damaged, or no schema yet: check_database says which
        return None
    finally:
        conn.close()
    return datetime.fromisoformat(row[0]) if row and row[0] else None


def check_organisation_key(config: Config, key_file: Path) -> list[Finding]:
    """The key file's public half is one of the keys reports are sealed to. The passphrase
    is not needed: the key file carries its public key in clear (SECURITY.md, Formats 5)."""
    try:
        doc: Any = json.loads(key_file.read_bytes())
        if doc.get("format") != crypto.KEY_FILE_FORMAT:
            raise ValueError
        public = crypto.PublicKey.from_text(doc["public_key"])
        if public.key_id.hex() != doc.get("key_id"):
            raise ValueError
    except (OSError, ValueError, KeyError, TypeError, AttributeError, crypto.CryptoError):
        return [problem("keys", f"{key_file} is not an intake private key file: give --key the "
                                "organisation key file that `intake init` wrote.")]
    listed = ", ".join(crypto.fingerprint(k.key_id) for k in config.recipients)
    if public not in config.recipients:
        return [problem("keys", f"config.toml does not list the key in {key_file} (key id "
                                f"{crypto.fingerprint(public.key_id)}), so that key file cannot "
                                f"read new reports, which are sealed to {listed} only: use the "
                                "key file that matches, or add its public key to config.toml "
                                "as a [[keys]] block and restart intake.")]
    return [ok("keys", f"config.toml lists the key in {key_file} (key id "
                       f"{crypto.fingerprint(public.key_id)}).")]


# --- Everything --------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    key_file: Path | None = None
    url: str | None = None
    ca_file: Path | None = None
    backups_dir: Path | None = None
    max_backup_age: timedelta = timedelta(hours=48)
    min_free: int = 1024 * 1024 * 1024
    # Connect here instead of resolving the URL's host name (tests on loopback).
    connect_to: str | None = None


def examine(instance_dir: Path, options: Options, *, environ: Mapping[str, str],
            now: datetime, euid: int | None) -> list[Finding]:
    """Every check, in the order an administrator would fix them."""
    # Imported here: both modules build their findings with this module's helpers.
    from intake import reach, upkeep

    instance_dir = instance_dir.resolve()
    if not (instance_dir / CONFIG_FILE).is_file():
        return [problem("config", f"There is no instance at {instance_dir}: give --instance "
                                  "(or INTAKE_INSTANCE) the instance folder.")]
    findings = check_secrets(instance_dir, environ)
    secrets_ok = not any(finding.problem for finding in findings)
    if euid is not None:  # a POSIX system, where modes and owners mean something
        findings += check_permissions(instance_dir, euid=euid)
    findings += check_stray_keys(instance_dir)
    config, found = load_config(instance_dir, environ, secrets_ok=secrets_ok)
    findings += found
    # Opening the database as another user (root) could leave -wal and -shm files that the
    # service cannot open; check_permissions has said how to run doctor instead.
    may_open = euid is None or euid == instance_dir.stat().st_uid
    database_ok = False
    if config is not None and may_open:
        found = check_database(config)
        database_ok = not any(finding.problem for finding in found)
        findings += found
    if config is not None and options.key_file is not None:
        findings += check_organisation_key(config, options.key_file)
    server_date = None
    if options.url is not None:
        language = config.default_language if config is not None else "en"
        found, server_date = reach.check_url(
            options.url, language=language, ca_file=options.ca_file, now=now,
            connect_to=options.connect_to,
        )
        findings += found
    else:
        findings.append(skipped("https", "HTTPS was not checked: give --url with the address "
                                         "complainants use (https://...)."))
    newest = newest_report(config) if config is not None and database_ok else None
    findings += upkeep.check_clock(now, newest=newest, server_date=server_date,
                                   server=options.url or "")
    disks = [instance_dir] + ([options.backups_dir] if options.backups_dir else [])
    findings += upkeep.check_disk(disks, min_free=options.min_free)
    findings += upkeep.check_backups(options.backups_dir, now=now,
                                     max_age=options.max_backup_age)
    if config is not None:
        findings += upkeep.check_security_contact(config.security_contact, now=now)
    return findings


def current_euid() -> int | None:
    geteuid = getattr(os, "geteuid", None)
    return geteuid() if geteuid is not None else None
