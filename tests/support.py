"""Constants and small helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import re
from pathlib import Path

from intake import backup, crypto
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


def add_backup_key(instance_dir: Path) -> crypto.PrivateKey:
    """Give an instance a backup key, held in memory (no key file, so no PBKDF2 to pay)."""
    key = crypto.generate_private_key()
    path = instance_dir / "config.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(backup.with_backup_key(text, key.public_key, replace=False), encoding="utf-8")
    return key
