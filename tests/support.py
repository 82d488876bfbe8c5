"""Constants and small helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from intake import accounts, backup, cases, crypto, store
from intake import envelope as fmt
from intake.config import Config
from intake.receipts import HashParams

PASSPHRASE = "correct horse battery staple ☂"
# Cheap on purpose: tests check behaviour, not cost. Production defaults are in HashParams.
CHEAP_HASH = HashParams(time_cost=1, memory_kib=64, parallelism=1)
SHARED = Path(__file__).resolve().parents[2] / "shared"


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, "page has no CSRF token"
    return match.group(1)


def translate(lang: str, msgid: str, **params: object) -> str:
    """A message as the compiled catalogue has it, so tests follow the translations."""
    from babel.support import Translations

    root = Path(__file__).resolve().parents[1] / "translations"
    text = Translations.load(str(root), [lang]).gettext(msgid)
    assert lang == "en" or text != msgid, f"{msgid!r} is not translated into {lang}"
    return text % params if params else text


# --- Officer console: clock, accounts, reports and notes -----------------------------------

# Ten seconds into a 30-second TOTP step, so that "one step later" is never ambiguous.
T0 = datetime(2025, 3, 4, 9, 0, 10, tzinfo=UTC)


def repeatable_rng(seed: str = "") -> Callable[[int], bytes]:
    """Bytes that look random but repeat from run to run, for tests that pass `rng=`."""
    counter = itertools.count()

    def rng(n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(f"{seed}/{next(counter)}".encode()).digest()
        return out[:n]

    return rng


@dataclass(frozen=True)
class Officer:
    """An enrolled account and what only its owner knows: password and authenticator."""

    user: accounts.User
    password: str
    secret: bytes

    def code(self, at: datetime, *, steps: int = 0) -> str:
        """What the authenticator app shows at `at`, or `steps` of 30 s away from it."""
        return crypto.totp_code(self.secret, at=at.timestamp() + steps * crypto.TOTP_STEP)

    def login(self, conn: store.Connection, config: Config, at: datetime,
              **typed: str) -> accounts.User:
        """Log in with the right name, password and current code, unless `typed` says else."""
        values = {"username": self.user.username, "password": self.password,
                  "totp_code": self.code(at)} | typed
        return accounts.authenticate(conn, config.audit_key, params=config.password_hash,
                                     now=at, **values)


def enrol(conn: store.Connection, config: Config, username: str, *, role: str = "officer",
          now: datetime = T0) -> Officer:
    """Add an account and set it up as its owner would. The TOTP step of `now` is used up."""
    _, code = accounts.add(conn, config.audit_key, username=username, role=role, actor=None,
                           now=now, setup_hours=config.console.setup_hours)
    password = f"{username} has a long password"
    secret = accounts.begin_setup(conn, username=username, code=code, password=password,
                                  params=config.password_hash, now=now,
                                  rng=repeatable_rng(username))
    user = accounts.finish_setup(conn, config.audit_key, username=username, code=code,
                                 totp_code=crypto.totp_code(secret, at=now.timestamp()), now=now)
    return Officer(user, password, secret)


def file_report(conn: store.Connection, config: Config, *, at: datetime, channel: str = "web",
                language: str = "en", report_id: str | None = None) -> str:
    """A stored report with a real envelope and its deadline, as the submission path
    leaves it; the channel is set directly so focal-point cases need no tablet."""
    data = crypto.seal({"schema": 1, "what": "test report"}, config.recipients,
                       report_id=None if report_id is None else bytes.fromhex(report_id))
    report_id = fmt.parse(data, max_size=len(data)).report_id_hex
    store.insert_report(conn, store.NewReport(
        report_id=report_id, received_at=at, channel=channel, language=language, schema=1,
        sealed_by="device", receipt_hash=os.urandom(32), envelope=data,
    ))
    cases.refresh_due(conn, config.service_levels, report_id)
    return report_id


_SUITE = hpke.Suite(hpke.KEM.P256, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def seal_note(text: str, recipients: Sequence[crypto.PublicKey], report_id: str, *,
              flags: int = 0, schema: int = fmt.SCHEMA_NOTE) -> bytes:
    """A note as the officer's browser seals it (static/js/envelope.js, schema 2).

    crypto.seal makes reports (schema 1) only, so the envelope of SECURITY.md, Formats 2 is
    written out here with pyca's HPKE: a second implementation, checked against the first
    by crypto.unseal in the tests.
    """
    content_key = os.urandom(crypto.CONTENT_KEY_LEN)
    prefix = fmt.build_prefix(flags=flags, schema=schema, report_id=bytes.fromhex(report_id),
                              recipient_count=len(recipients))
    header = bytearray(prefix)
    for recipient in recipients:
        point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), recipient.raw)
        header += recipient.key_id + _SUITE.encrypt(
            content_key, point, info=fmt.content_key_info(prefix, recipient.key_id))
    plaintext = fmt.pad(json.dumps({"schema": schema, "note": text}).encode("utf-8"))
    nonce = os.urandom(fmt.NONCE_LEN)
    return bytes(header) + nonce + AESGCM(content_key).encrypt(nonce, plaintext, bytes(header))


def audit_rows(conn: store.Connection) -> list[tuple[Any, ...]]:
    """Every audit entry as stored, oldest first."""
    return conn.execute(
        "SELECT seq, at, actor, action, report_id, detail, mac FROM audit_log ORDER BY seq"
    ).fetchall()


def actions(conn: store.Connection) -> list[str]:
    return [str(row[3]) for row in audit_rows(conn)]


def add_backup_key(instance_dir: Path) -> crypto.PrivateKey:
    """Give an instance a backup key, held in memory (no key file, so no PBKDF2 to pay)."""
    key = crypto.generate_private_key()
    path = instance_dir / "config.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(backup.with_backup_key(text, key.public_key, replace=False), encoding="utf-8")
    return key
