"""Rotating the organisation's key: a new key pair beside the old one, then the old one
retired (SECURITY.md, "Rotating the organisation key").

Both steps edit `config.toml` in place, keeping every other line as the administrator left
it, and check the result by parsing it; the server reads the file when it starts. A new key
file is written before `config.toml` names its public half, so the file never lists a key
whose private half was not saved.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Any

from intake import crypto, files
from intake.config import CONFIG_FILE

# The envelope carries at most 8 recipients; config.py enforces the same for keys in use.
MAX_IN_USE = 8


class KeyRotationError(Exception):
    """The key cannot be added or retired; the message says why and what to do."""


def add(instance_dir: Path, key_out: Path, passphrase: str, *, today: date,
        rng: crypto.Rng = os.urandom) -> crypto.PublicKey:
    """Make a new organisation key pair: the private half to a passphrase-protected key file
    at `key_out` (outside the instance), the public half into config.toml as a key in use."""
    instance_dir, key_out = instance_dir.resolve(), key_out.resolve()
    path = _config_path(instance_dir)
    if key_out.is_relative_to(instance_dir):
        raise KeyRotationError("The key file must not be written inside the instance folder: "
                               "it opens every report, and the server must never hold it.")
    if key_out.exists():
        raise KeyRotationError(f"{key_out} exists; it was left as it was. Choose another "
                               "--key-out.")
    text = path.read_text(encoding="utf-8")
    in_use = [b for b in _blocks(text) if "accept_until" not in b]
    if len(in_use) >= MAX_IN_USE:
        raise KeyRotationError(f"config.toml already lists {MAX_IN_USE} keys in use, the most "
                               "an envelope can carry: retire one first (`intake key retire`).")
    key = crypto.generate_private_key()
    after = with_new_key(text, key.public_key, today=today)
    files.write_atomic(key_out, crypto.write_key_file(key, passphrase, rng=rng))
    _write_config(path, after)
    return key.public_key


def retire(instance_dir: Path, key_id: str, *, accept_until: date) -> crypto.PublicKey:
    """Stop sealing new reports to a key; envelopes already sealed to it are still accepted
    until the end of `accept_until`. Retiring a retired key again changes its date."""
    path = _config_path(instance_dir.resolve())
    text = path.read_text(encoding="utf-8")
    public = find(text, key_id)
    in_use = [b for b in _blocks(text) if "accept_until" not in b]
    if [b["public_key"] for b in in_use] == [public.text]:
        raise KeyRotationError("This is the only key in use: new reports would have no key to "
                               "be sealed to. Add a new one first (`intake key add`).")
    _write_config(path, with_accept_until(text, public, accept_until))
    return public


def find(text: str, key_id: str) -> crypto.PublicKey:
    """The listed key whose id starts with `key_id` (hex, spaces allowed, at least 8 digits)."""
    wanted = "".join(key_id.split()).lower()
    if len(wanted) < 8 or any(ch not in "0123456789abcdef" for ch in wanted):
        raise KeyRotationError("Give the key id as `intake key list` shows it, or at least its "
                               "first 8 hexadecimal digits.")
    keys = [crypto.PublicKey.from_text(b["public_key"]) for b in _blocks(text)]
    found = [k for k in keys if k.key_id.hex().startswith(wanted)]
    if len(found) != 1:
        raise KeyRotationError(
            f"config.toml lists no key with the id {key_id}: `intake key list` shows them."
            if not found else f"Several keys start with {key_id}: give more of its id.")
    return found[0]


def with_new_key(text: str, public_key: crypto.PublicKey, *, today: date) -> str:
    """config.toml's text with one more `[[keys]]` block, after the last one (checked)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    headers = [i for i, line in enumerate(lines) if line.strip() == "[[keys]]"]
    if headers:
        # After the last [[keys]] block: up to the next table, less the comment lines and
        # blank lines that introduce that table.
        at = next((i for i in range(headers[-1] + 1, len(lines))
                   if lines[i].lstrip().startswith("[")), len(lines))
        while at > headers[-1] + 1 and (not lines[at - 1].strip()
                                        or lines[at - 1].lstrip().startswith("#")):
            at -= 1
    else:
        at = len(lines)
    block = (f"\n# Added on {today.isoformat()} by `intake key add`. Key id (SHA-256):\n"
             f"# {crypto.fingerprint(public_key.key_id)}\n"
             f"[[keys]]\npublic_key = \"{public_key.text}\"\n")
    after = "".join(lines[:at]) + block + "".join(lines[at:])
    before = tomllib.loads(text)
    expected = {**before, "keys": [*before.get("keys", []), {"public_key": public_key.text}]}
    _check(after, expected, block)
    return after


def with_accept_until(text: str, public_key: crypto.PublicKey, until: date) -> str:
    """config.toml's text with `accept_until` set in the key's block (checked)."""
    lines = text.splitlines(keepends=True)
    pattern = re.compile(r"""^\s*public_key\s*=\s*["']""" + re.escape(public_key.text)
                         + r"""["']\s*(#.*)?$""")
    starts = [i for i, line in enumerate(lines) if pattern.match(line.rstrip("\r\n"))]
    line = f"accept_until = {until.isoformat()}\n"
    if len(starts) != 1:
        raise KeyRotationError(f"config.toml could not be edited safely; add this line to the "
                               f"[[keys]] block of the key yourself:\n{line}")
    begin = max((i for i in range(starts[0]) if lines[i].lstrip().startswith("[")), default=0)
    end = next((i for i in range(starts[0] + 1, len(lines))
                if lines[i].lstrip().startswith("[")), len(lines))
    existing = [i for i in range(begin, end) if re.match(r"^\s*accept_until\s*=", lines[i])]
    if existing:
        lines[existing[0]] = line
    else:
        lines.insert(starts[0] + 1, line)
    after = "".join(lines)
    before = tomllib.loads(text)
    keys = [dict(b, accept_until=until) if b.get("public_key") == public_key.text else b
            for b in before["keys"]]
    _check(after, {**before, "keys": keys}, line)
    return after


def _check(after: str, expected: dict[str, Any], change: str) -> None:
    try:
        parsed = tomllib.loads(after)
    except tomllib.TOMLDecodeError:
        parsed = None
    if parsed != expected:
        raise KeyRotationError("config.toml could not be edited safely; make this change "
                               f"yourself:\n{change}")


def _blocks(text: str) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = tomllib.loads(text).get("keys", [])
    return keys


def _config_path(instance_dir: Path) -> Path:
    path = instance_dir / CONFIG_FILE
    if not path.is_file():
        raise KeyRotationError(f"No instance at {instance_dir}: run `intake init` first.")
    return path


def _write_config(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777  # as the administrator left it
    files.write_atomic(path, text.encode("utf-8"), replace=True, mode=mode)
