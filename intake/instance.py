"""Creating an instance folder: config, secrets, database and the organisation's key pair."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from intake import crypto, store
from intake.config import (
    AUDIT_KEY_FILE,
    AVAILABLE_LANGUAGES,
    CONFIG_FILE,
    DB_KEY_FILE,
    PEPPER_FILE,
    RECEIPT_KEY_FILE,
    SESSION_KEY_FILE,
    Config,
    load,
)
from intake.receipts import HashParams


class InstanceExists(Exception):
    """Refusing to overwrite an instance: its keys are the only way to read its reports."""


@dataclass(frozen=True)
class Created:
    config: Config
    key_file: Path
    key_id: bytes


def create(
    instance_dir: Path,
    *,
    key_out: Path,
    passphrase: str,
    organisation: str = "Example Organisation",
    languages: Sequence[str] = ("en", "fr", "ar"),
    hash_params: HashParams = HashParams(),
    secure_cookies: bool = True,
    rng: crypto.Rng = os.urandom,
) -> Created:
    """Make a new instance folder and write the private key file to `key_out`, outside it."""
    instance_dir = instance_dir.resolve()
    key_out = key_out.resolve()
    if (instance_dir / CONFIG_FILE).exists() or (instance_dir / DB_KEY_FILE).exists():
        raise InstanceExists(f"{instance_dir} already holds an instance; it was left as it was.")
    if key_out.is_relative_to(instance_dir):
        raise ValueError("the private key file must not be written inside the instance folder")
    if key_out.exists():
        raise InstanceExists(f"{key_out} exists; it was left as it was. Choose another --key-out.")
    key = crypto.generate_private_key()
    key_file_bytes = crypto.write_key_file(key, passphrase, rng=rng)

    instance_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in (DB_KEY_FILE, PEPPER_FILE, SESSION_KEY_FILE, AUDIT_KEY_FILE):
        _write_private(instance_dir / name, rng(32).hex() + "\n")
    receipt_key = crypto.generate_private_key()
    _write_private(instance_dir / RECEIPT_KEY_FILE, crypto.private_key_to_hex(receipt_key) + "\n")
    (instance_dir / CONFIG_FILE).write_text(
        render_config(
            organisation=organisation, languages=languages, public_key=key.public_key,
            hash_params=hash_params, secure_cookies=secure_cookies,
        ),
        encoding="utf-8",
    )
    _write_private(key_out, key_file_bytes.decode("utf-8"))
    config = load(instance_dir, environ={})
    store.open_ready(config.db_path, config.db_key, config.receipt_hash).close()
    return Created(config, key_out, key.public_key.key_id)


def render_config(
    *,
    organisation: str,
    languages: Sequence[str],
    public_key: crypto.PublicKey,
    hash_params: HashParams,
    secure_cookies: bool,
) -> str:
    def q(text: str) -> str:
        # A JSON string is a valid TOML basic string; keep letters readable for admins.
        return json.dumps(text, ensure_ascii=False)

    return f"""\
# Settings of this intake instance. See docs/configuration.md for every key.

organisation = {q(organisation)}
# The first language is the default. Available: {", ".join(AVAILABLE_LANGUAGES)}.
languages = [{", ".join(q(lang) for lang in languages)}]
# Times on the status page are shown in this time zone (an IANA name).
timezone = "UTC"
# A focal point's shared tablet empties its form after this many idle minutes.
focal_idle_minutes = 5
# Keep true in production (HTTPS). False only for a demo or test on http://127.0.0.1.
secure_cookies = {str(secure_cookies).lower()}

# Shown on the information page under "Help now", in each language (or one string for all).
[contact]
en = {q("In an emergency, go to the nearest health centre.")}
fr = {q("En cas d'urgence, allez au centre de santé le plus proche.")}
ar = {q("في حالة الطوارئ، اذهب إلى أقرب مركز صحي.")}

[service_levels]
acknowledge_hours = 72
first_update_days = 14

[limits]
max_envelope_bytes = 262144
max_text_chars = 20000
# Photos, voice notes, videos and documents of one report: total bytes and how many.
max_attachment_bytes = 20971520
max_attachments = 10
# An upload left incomplete this long is deleted (the device starts it again).
upload_expiry_hours = 72
# Every incomplete upload together, in bytes; beyond it new uploads wait (503).
open_upload_bytes = 1073741824

# Cost of the receipt-code hash. Never change it after the first report: stored hashes are
# lookup keys. Production must keep m >= 65536 KiB.
[receipt_hash]
time_cost = {hash_params.time_cost}
memory_kib = {hash_params.memory_kib}
parallelism = {hash_params.parallelism}

# Cost of officers' password hashes (argon2id). Can be changed at any time.
[password_hash]
time_cost = {hash_params.time_cost}
memory_kib = {hash_params.memory_kib}
parallelism = {hash_params.parallelism}

# Officer console sessions.
[console]
idle_minutes = 30
session_hours = 12
reauth_minutes = 5
setup_hours = 72
page_size = 50

# Closed cases are deleted this many days after they were closed (`intake purge`, daily,
# and at start-up); the deletion is in the audit log. See SECURITY.md, "Retention".
[retention]
closed_days = 365

# Organisation public keys; reports are sealed to every key listed. Key id (SHA-256):
# {crypto.fingerprint(public_key.key_id)}
[[keys]]
public_key = {q(public_key.text)}

# Whom to tell about a vulnerability in this deployment, published at
# /.well-known/security.txt (RFC 9116). Renew expires each year.
# [security]
# contact = ["mailto:security@example.org"]
# expires = 2027-06-30

# Support services shown on the information page, one block each:
# [[referrals]]
# area = "Bangui"
# name = "Health centre"
# contact = "+236 ..."
# services = {{ en = "medical care, counselling", fr = "soins, écoute" }}
"""


def _write_private(path: Path, text: str) -> None:
    """Create a file readable by its owner only, failing if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
