"""Every configuration key, environment variable and CLI command is documented."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from intake import crypto
from intake.cli import main
from intake.instance import render_config
from intake.receipts import HashParams

LOCALISED = {"contact"}
ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")


def _keys(table: dict[str, object], prefix: str = "") -> set[str]:
    keys = set()
    for name, value in table.items():
        # A table of language = text is one setting, not a section.
        if isinstance(value, dict) and name not in LOCALISED:
            keys |= _keys(value, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def test_every_config_key_is_documented() -> None:
    text = render_config(
        organisation="x", languages=["en"], public_key=crypto.generate_private_key().public_key,
        hash_params=HashParams(), secure_cookies=True,
    )
    for key in _keys(tomllib.loads(text)) | {"referrals"}:
        assert f"`{key}`" in DOC, f"config key {key} is not in docs/configuration.md"


def test_every_command_is_documented() -> None:
    for name in main.commands:
        assert f"`intake {name}`" in DOC, f"command {name} is not in docs/configuration.md"


def test_every_environment_variable_is_documented() -> None:
    code = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "intake").rglob("*.py"))
    for name in set(re.findall(r'"(INTAKE_[A-Z_]+)"', code)):
        assert f"`{name}`" in DOC, f"{name} is not in docs/configuration.md"
