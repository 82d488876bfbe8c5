"""Constants and small helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import re
from pathlib import Path

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
