"""Typed, frozen configuration of one instance, read from its folder and the environment.

Nothing reads configuration at import time. `load` is called once by the CLI or a test and
the resulting `Config` is passed to `create_app` and to the domain functions.

An instance folder holds:

    config.toml     settings an administrator edits (organisation, languages, keys, ...)
    db.key          64 hex digits: the raw SQLCipher key (or INTAKE_DB_KEY)
    pepper.key      64 hex digits: the receipt-code pepper
    session.key     64 hex digits: Flask's signing key for the CSRF session cookie
    receipt.key     hex PKCS#8: the receipt key, which opens receipt codes sealed on devices
    audit.key       64 hex digits: the key of the audit log's hash chain
    intake.db       the SQLCipher database (with -wal and -shm beside it)
    db.key.old      only while `intake rekey` runs: the key being replaced
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from intake import catalogues
from intake.crypto import InvalidPublicKey, PrivateKey, PublicKey, private_key_from_hex
from intake.receipts import HashParams

CONFIG_FILE = "config.toml"
DB_KEY_FILE = "db.key"
PEPPER_FILE = "pepper.key"
SESSION_KEY_FILE = "session.key"
RECEIPT_KEY_FILE = "receipt.key"
AUDIT_KEY_FILE = "audit.key"
DB_FILE = "intake.db"
# Kept by `intake rekey` until the new key is committed (intake/rekey.py).
DB_KEY_OLD_FILE = "db.key.old"

# English and every language with a catalogue in translations/; config enables a subset.
AVAILABLE_LANGUAGES = catalogues.languages()
RTL_LANGUAGES = frozenset({"ar"})


class ConfigError(Exception):
    """The instance cannot start; the message says what to do."""


@dataclass(frozen=True)
class LocalText:
    """Text an administrator writes, in one language or several (`{en = "...", fr = "..."}`)."""

    by_language: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, raw: object) -> LocalText:
        if isinstance(raw, str):
            return cls((("", raw),))
        if isinstance(raw, dict) and all(isinstance(v, str) for v in raw.values()):
            return cls(tuple((str(k), v) for k, v in raw.items()))
        raise ValueError("a text setting is a string or a table of language = text")

    def get(self, lang: str, fallback: str) -> str:
        """The text in `lang`, else in the fallback language, else the first given."""
        values = dict(self.by_language)
        for key in (lang, fallback, ""):
            if values.get(key):
                return values[key]
        return self.by_language[0][1] if self.by_language else ""


@dataclass(frozen=True)
class Referral:
    area: str
    name: str
    contact: str
    services: LocalText = LocalText()


@dataclass(frozen=True)
class ServiceLevels:
    acknowledge_hours: int = 72
    first_update_days: int = 14


@dataclass(frozen=True)
class Console:
    """Officer sessions: server-side, revocable, short-lived."""

    idle_minutes: int = 30  # also when an officer's browser forgets the unlocked key
    session_hours: int = 12  # absolute lifetime, however active the session is
    reauth_minutes: int = 5  # sensitive actions need the password and code this recently
    setup_hours: int = 72  # a new account's one-time set-up code expires after this
    page_size: int = 50


@dataclass(frozen=True)
class RetiredKey:
    """An organisation key that new reports are no longer sealed to (`intake key retire`).

    Reports already sealed to it, waiting on offline devices or in exported queue files, are
    still accepted until the end of `accept_until` (a UTC date); its key file still reads
    every report sealed to it, for good.
    """

    public_key: PublicKey
    accept_until: date

    def accepting(self, now: datetime) -> bool:
        return now.astimezone(UTC).date() <= self.accept_until


@dataclass(frozen=True)
class Retention:
    # A year after closing: long enough for a complainant to read the outcome and the last
    # messages on the status page (they may check rarely, and only when it is safe), for a
    # case to be reopened on appeal or new information, and for the yearly figures and
    # reports to partners that count it; short enough that a seized server, copy or backup
    # holds no case that is over and done with for long. An organisation with a legal duty
    # to keep case files longer (paternity and child support claims can take years) sets
    # its own.
    closed_days: int = 365

    def __post_init__(self) -> None:
        if type(self.closed_days) is not int or self.closed_days < 1:  # bool is an int too
            raise ValueError("retention.closed_days is a whole number of days, at least 1")


@dataclass(frozen=True)
class Limits:
    # A 2,000-word report is about 12 KiB of JSON; 256 KiB leaves room for long ones while
    # bounding what one request can make the server hold in memory.
    max_envelope_bytes: int = 256 * 1024
    max_text_chars: int = 20_000
    # Attachments (photos, voice notes, videos, documents) of one report, as plaintext:
    # about 3 minutes of phone video, or 10 photos at full size. Checked on the device
    # before anything is sent, and by the server from the declared sizes.
    max_attachment_bytes: int = 20 * 1024 * 1024
    max_attachments: int = 10
    # An upload with no new chunk for this long is deleted; a device that still holds the
    # report starts it again. Long enough for a connection that returns the next day.
    upload_expiry_hours: int = 72
    # Every incomplete upload together, in declared ciphertext bytes: about 50 full reports
    # at once. Beyond it a new upload is answered 503 and the device tries again later, so
    # that uploads opened and left to dawdle cannot fill the disk (doctor warns below
    # 1 GiB free). Text reports are never held back by it.
    open_upload_bytes: int = 1024 * 1024 * 1024

    @property
    def max_request_bytes(self) -> int:
        # base64url grows the envelope by 4/3; the rest is the JSON around it.
        return self.max_envelope_bytes * 4 // 3 + 4096


@dataclass(frozen=True)
class Capacity:
    """Expensive work at once (intake/capacity.py): argon2id hashes and server-side sealing."""

    # 0: one slot per CPU core this process may use. Each slot may hold one argon2id hash,
    # so memory for hashing is at most slots x the larger memory_kib of the two hashes.
    hash_slots: int = 0
    # How long a request may wait for a slot before it is answered 503 (busy).
    wait_seconds: float = 2.0

    @property
    def slots(self) -> int:
        if self.hash_slots:
            return self.hash_slots
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1


@dataclass(frozen=True)
class Throttle:
    """Limits on receipt-code guessing (intake/throttle.py; SECURITY.md, "Guessing a receipt
    code"). Waits are in seconds."""

    # Off for a Tor onion service, or behind a proxy that cannot name the client: every
    # visitor would then look like one client, and one guesser would hold them all.
    per_client: bool = True
    status_free_failures: int = 5
    status_first_wait_seconds: int = 30
    status_max_wait_seconds: int = 600
    status_overall_failures: int = 300
    status_overall_window_seconds: int = 600


@dataclass(frozen=True)
class SecurityContact:
    """Whom to tell about a vulnerability in this deployment: `[security]`, published as
    /.well-known/security.txt (RFC 9116, intake/disclosure.py)."""

    contacts: tuple[str, ...]  # mailto:, https: or tel: addresses, most preferred first
    expires: date  # after this day, finders should not trust the file: renew it yearly
    policy: str = ""  # an https: page on how the organisation handles reports

    def __post_init__(self) -> None:
        if not self.contacts:
            raise ValueError("[security] contact needs at least one address")
        for uri in (*self.contacts, *((self.policy,) if self.policy else ())):
            if not _is_disclosure_uri(uri):
                raise ValueError(f"[security] {uri!r} is not a mailto:, https: or tel: "
                                 "address without spaces")
        if self.policy and not self.policy.startswith("https://"):
            raise ValueError("[security] policy is an https:// address")


def _is_disclosure_uri(uri: str) -> bool:
    # One line of a text file each: no spaces or control characters, and a scheme a finder
    # can use without trusting this server (RFC 9116 asks for https: web addresses).
    return (uri.startswith(("mailto:", "https://", "tel:")) and len(uri) <= 500
            and uri.isprintable() and not any(c.isspace() for c in uri))


@dataclass(frozen=True)
class Config:
    instance_dir: Path
    organisation: str
    languages: tuple[str, ...]
    contact: LocalText
    recipients: tuple[PublicKey, ...]  # the keys in use: new reports are sealed to them
    referrals: tuple[Referral, ...] = ()
    service_levels: ServiceLevels = ServiceLevels()
    limits: Limits = Limits()
    receipt_hash: HashParams = HashParams()
    password_hash: HashParams = HashParams()
    console: Console = Console()
    retention: Retention = Retention()
    retired_keys: tuple[RetiredKey, ...] = ()
    capacity: Capacity = Capacity()
    throttle: Throttle = Throttle()
    # Which peer is a reverse proxy whose X-Forwarded-For names the client: "loopback" (any
    # address of this machine: Caddy in deploy/), one IP address, or "none". Used only to
    # tell clients apart for throttling (intake/throttle.py); never logged.
    trusted_proxy: str = "loopback"
    # Off only for a demo or test served over plain http on 127.0.0.1.
    secure_cookies: bool = True
    timezone: str = "UTC"
    # A focal point's tablet empties its form after this many minutes without input.
    focal_idle_minutes: int = 5
    # Backups are sealed to this public key; its private half is kept off the server.
    backup_key: PublicKey | None = None
    # Published at /.well-known/security.txt when set; none: that address is a 404.
    security_contact: SecurityContact | None = None
    # Further catalogue folders (each holding <lang>/LC_MESSAGES/messages.mo), searched after
    # the shipped ones. Never read from config.toml: only code that builds a Config sets it,
    # as the tests do to serve their pseudo-locale, so no instance can enable one by accident.
    extra_translations: tuple[Path, ...] = ()
    db_key: bytes = field(default=b"", repr=False)
    pepper: bytes = field(default=b"", repr=False)
    session_key: bytes = field(default=b"", repr=False)
    receipt_key: PrivateKey | None = field(default=None, repr=False)
    audit_key: bytes = field(default=b"", repr=False)

    @property
    def receipt_public_key(self) -> PublicKey:
        if self.receipt_key is None:
            raise ConfigError("This instance has no receipt key (receipt.key).")
        return self.receipt_key.public_key

    def accepts_recipients(self, key_ids: Iterable[bytes], now: datetime) -> bool:
        """Whether an envelope sealed to these keys may be stored.

        Every key must be one this instance lists, in use or retired, so that no report is
        stored sealed to a stranger's key; and at least one must be in use, or retired but
        still accepted, so that a report sealed only to a key given up long ago is refused
        while the device still holds it, rather than stored where no one may read it.
        """
        ids = set(key_ids)
        in_use = {key.key_id for key in self.recipients}
        retired = {r.public_key.key_id: r for r in self.retired_keys}
        return bool(ids) and ids <= in_use | set(retired) and any(
            key_id in in_use or retired[key_id].accepting(now) for key_id in ids)

    @property
    def db_path(self) -> Path:
        return self.instance_dir / DB_FILE

    @property
    def default_language(self) -> str:
        return self.languages[0]


def env_value(environ: Mapping[str, str], name: str) -> str | None:
    """The one place that reads environment variables: empty counts as unset."""
    value = environ.get(name, "").strip()
    return value or None


def load(instance_dir: Path, environ: Mapping[str, str] | None = None) -> Config:
    environ = os.environ if environ is None else environ
    instance_dir = instance_dir.resolve()
    path = instance_dir / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(
            f"No instance at {instance_dir}: run `intake init` first, or set INTAKE_INSTANCE."
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    if (instance_dir / DB_KEY_OLD_FILE).exists():
        raise ConfigError(
            f"{instance_dir / DB_KEY_OLD_FILE} is there: an `intake rekey` was interrupted. "
            "Run `intake rekey --recover`; it keeps whichever key opens the database."
        )
    try:
        return _build(instance_dir, raw, environ)
    except (KeyError, TypeError, ValueError, InvalidPublicKey) as exc:
        raise ConfigError(f"{path} has a wrong or missing setting: {exc}") from exc


def _build(instance_dir: Path, raw: dict[str, Any], environ: Mapping[str, str]) -> Config:
    languages = tuple(raw["languages"])
    unknown = [lang for lang in languages if lang not in AVAILABLE_LANGUAGES]
    if not languages or unknown:
        raise ValueError(f"languages must be some of {', '.join(AVAILABLE_LANGUAGES)}")
    recipients, retired = _keys(raw["keys"])
    db_key_hex = env_value(environ, "INTAKE_DB_KEY") or _read_secret(instance_dir, DB_KEY_FILE)
    return Config(
        instance_dir=instance_dir,
        organisation=str(raw["organisation"]),
        languages=languages,
        contact=LocalText.parse(raw.get("contact", "")),
        recipients=recipients,
        retired_keys=retired,
        referrals=tuple(
            Referral(**{**r, "services": LocalText.parse(r.get("services", ""))})
            for r in raw.get("referrals", [])
        ),
        service_levels=ServiceLevels(**raw.get("service_levels", {})),
        limits=_limits(raw.get("limits", {})),
        receipt_hash=HashParams(**raw.get("receipt_hash", {})),
        password_hash=HashParams(**raw.get("password_hash", {})),
        console=_console(raw.get("console", {})),
        retention=Retention(**raw.get("retention", {})),
        capacity=_capacity(raw.get("capacity", {})),
        throttle=_throttle(raw.get("throttle", {})),
        trusted_proxy=_trusted_proxy(str(raw.get("trusted_proxy", "loopback"))),
        secure_cookies=bool(raw.get("secure_cookies", True)),
        timezone=_timezone(str(raw.get("timezone", "UTC"))),
        focal_idle_minutes=int(raw.get("focal_idle_minutes", 5)),
        backup_key=PublicKey.from_text(raw["backup_key"]) if "backup_key" in raw else None,
        security_contact=_security(raw["security"]) if "security" in raw else None,
        db_key=_key_bytes(db_key_hex, "the database key (db.key or INTAKE_DB_KEY)"),
        pepper=_key_bytes(_read_secret(instance_dir, PEPPER_FILE), PEPPER_FILE),
        session_key=_key_bytes(_read_secret(instance_dir, SESSION_KEY_FILE), SESSION_KEY_FILE),
        receipt_key=_receipt_key(_read_secret(instance_dir, RECEIPT_KEY_FILE)),
        audit_key=_key_bytes(_read_secret(instance_dir, AUDIT_KEY_FILE), AUDIT_KEY_FILE),
    )


def _keys(blocks: list[dict[str, Any]]) -> tuple[tuple[PublicKey, ...], tuple[RetiredKey, ...]]:
    """The `[[keys]]` blocks: keys in use, and retired keys (those with `accept_until`)."""
    in_use: list[PublicKey] = []
    retired: list[RetiredKey] = []
    for block in blocks:
        key = PublicKey.from_text(block["public_key"])
        until = block.get("accept_until")
        if until is None:
            in_use.append(key)
        elif type(until) is date:  # a TOML date, not a date-time: whole days, UTC
            retired.append(RetiredKey(key, until))
        else:
            raise ValueError("accept_until is a date, written 2026-03-31 without quotes")
    if not 1 <= len(in_use) <= 8:
        raise ValueError("[[keys]] must list 1 to 8 organisation public keys in use (without "
                         "accept_until): new reports are sealed to them")
    if len(retired) > 8:
        raise ValueError("[[keys]] may list at most 8 retired keys; remove the oldest blocks")
    ids = [key.key_id for key in in_use] + [r.public_key.key_id for r in retired]
    if len(set(ids)) != len(ids):
        raise ValueError("[[keys]] lists one public key twice")
    return tuple(in_use), tuple(retired)


def _limits(raw: dict[str, Any]) -> Limits:
    limits = Limits(**{k: int(v) for k, v in raw.items()})
    if min(limits.max_envelope_bytes, limits.max_text_chars, limits.max_attachment_bytes,
           limits.max_attachments, limits.upload_expiry_hours,
           limits.open_upload_bytes) < 1:
        raise ValueError("every [limits] setting is a whole number of at least 1")
    if limits.open_upload_bytes < 2 * limits.max_attachment_bytes:
        # Else a report at the limit, or two at once, could never be let in.
        raise ValueError("limits.open_upload_bytes must be at least twice "
                         "limits.max_attachment_bytes")
    return limits


def _console(raw: dict[str, Any]) -> Console:
    console = Console(**{k: int(v) for k, v in raw.items()})
    if min(console.idle_minutes, console.session_hours, console.reauth_minutes,
           console.setup_hours, console.page_size) < 1:
        raise ValueError("every [console] setting is a whole number of at least 1")
    return console


def _security(raw: dict[str, Any]) -> SecurityContact:
    contact = raw["contact"]
    contacts = (contact,) if isinstance(contact, str) else tuple(contact)
    expires = raw["expires"]
    if type(expires) is not date:  # a TOML date, not a string or a date-time
        raise ValueError("[security] expires is a date, written 2027-06-30 without quotes")
    if not all(isinstance(c, str) for c in contacts):
        raise ValueError("[security] contact is an address or a list of addresses")
    return SecurityContact(contacts=contacts, expires=expires,
                           policy=str(raw.get("policy", "")))


def _trusted_proxy(text: str) -> str:
    if text in ("loopback", "none"):
        return text
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(
            f"trusted_proxy {text!r} is not \"loopback\", \"none\" or an IP address"
        ) from None


def _capacity(raw: dict[str, Any]) -> Capacity:
    capacity = Capacity(hash_slots=int(raw.get("hash_slots", 0)),
                        wait_seconds=float(raw.get("wait_seconds", 2.0)))
    if capacity.hash_slots < 0 or not 0 <= capacity.wait_seconds <= 60:
        raise ValueError("[capacity] hash_slots is 0 or more, wait_seconds 0 to 60")
    unknown = set(raw) - {"hash_slots", "wait_seconds"}
    if unknown:
        raise ValueError(f"[capacity] has no setting {', '.join(sorted(unknown))}")
    return capacity


def _throttle(raw: dict[str, Any]) -> Throttle:
    per_client = raw.get("per_client", True)
    if not isinstance(per_client, bool):
        raise ValueError("[throttle] per_client is true or false")
    numbers = {k: int(v) for k, v in raw.items() if k != "per_client"}
    throttle = Throttle(per_client=per_client, **numbers)
    if min(numbers.values(), default=1) < 1:
        raise ValueError("every [throttle] number is a whole number of at least 1")
    if throttle.status_first_wait_seconds > throttle.status_max_wait_seconds:
        raise ValueError("[throttle] status_first_wait_seconds exceeds status_max_wait_seconds")
    return throttle


def _receipt_key(text: str) -> PrivateKey:
    try:
        return private_key_from_hex(text)
    except InvalidPublicKey:
        raise ConfigError(
            f"{RECEIPT_KEY_FILE} is damaged: restore it from your backup. Without it, "
            "reports queued offline on devices cannot be accepted."
        ) from None


def _timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone {name!r} is not an IANA time zone name") from None
    return name


def _read_secret(instance_dir: Path, name: str) -> str:
    path = instance_dir / name
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise ConfigError(
            f"{path} is missing: restore it from your backup (without it the instance "
            "cannot read its data), or create a new instance with `intake init`."
        ) from None


def _key_bytes(text: str, what: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError(f"{what} must be 64 hexadecimal digits (a random 256-bit key).")
    return key
