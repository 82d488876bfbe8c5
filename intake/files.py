"""Writing files that hold secrets: owner-only, atomic, durable.

A key file half written by a crash, or written but not yet on disk when the power goes, can
lose every report the key protects. So a secret is written to a temporary file in the same
folder (mode 0600 from the start, never wider), flushed to disk, renamed over its final
name, and the folder itself is flushed so that the rename survives a crash too.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def temp_name(path: Path) -> Path:
    """A hidden, unique name beside `path` for writing it; hidden names are never backed up."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def write_atomic(path: Path, data: bytes, *, replace: bool = False, mode: int = 0o600) -> None:
    """Write `data` to `path` atomically and durably, with `mode` (owner-only unless told).

    Without `replace`, fails with FileExistsError if `path` exists, and never clobbers it.
    """
    temp = temp_name(path)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)  # exactly `mode`, whatever the umask
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        commit(temp, path, replace=replace)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def commit(temp: Path, path: Path, *, replace: bool) -> None:
    """Give a fully written and flushed `temp` its final name, durably."""
    if replace:
        os.replace(temp, path)
    else:
        # link() fails if the name exists, where rename() would silently replace it.
        os.link(temp, path)
        temp.unlink()
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Flush a folder's entries (new, renamed or removed names) to disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
