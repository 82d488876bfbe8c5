"""Time of `intake backup` for an instance holding 10,000 reports, when the command exists.

The command is being written separately; until it is part of the `intake` click group this
prints "not available yet" (and `measure` returns None). Its options are not known yet
either: `command_line` reads them from the command itself, giving a path in a fresh folder
to a required argument or to an option named like an output. When the command lands and
that guess is wrong, `command_line` is the one place to fix.
Run: .venv/bin/python bench/backup.py [--reports 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click
import storage
from server import discard

from intake import instance
from intake.cli import main as intake_cli

OUTPUT_NAMES = ("out", "output", "to", "dest", "destination", "target", "path", "file")


def backup_command() -> click.Command | None:
    """The `intake backup` command (or its `create` subcommand), None while it is missing."""
    command = intake_cli.commands.get("backup")
    if isinstance(command, click.Group):
        command = command.commands.get("create")
    return command


def available() -> bool:
    return backup_command() is not None


def command_line(command: click.Command, out: Path) -> list[str]:
    """Arguments after `intake`: the command's path, then `out` where it wants an output."""
    args = ["backup"] if command.name == "backup" else ["backup", str(command.name)]
    for param in command.params:
        if isinstance(param, click.Argument) and param.required:
            args.append(str(out))
        elif isinstance(param, click.Option) and param.name in OUTPUT_NAMES:
            args += [param.opts[0], str(out)]
        elif param.required:
            raise RuntimeError(f"intake backup wants {param.name!r}: teach command_line it")
    return args


def measure(created: instance.Created) -> dict[str, Any] | None:
    """Seconds `intake backup` takes on this instance and the bytes it wrote; None without
    the command. A failed run returns its exit code and last line of error output."""
    command = backup_command()
    if command is None:
        return None
    out_dir = Path(tempfile.mkdtemp(prefix="intake-bench-backup-"))
    args = command_line(command, out_dir / "backup")
    env = {**os.environ, "INTAKE_INSTANCE": str(created.config.instance_dir)}
    started = time.perf_counter()
    # No terminal: a command that prompts fails instead of waiting for an answer.
    result = subprocess.run(
        [sys.executable, "-m", "intake", *args], env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=900, check=False,
    )
    seconds = time.perf_counter() - started
    written = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    shutil.rmtree(out_dir, ignore_errors=True)
    row: dict[str, Any] = {
        "command": " ".join(["intake", *args]).replace(str(out_dir), "TMP"),
        "exit_code": result.returncode, "seconds": seconds if result.returncode == 0 else None,
        "bytes_written": written,
    }
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        row["error"] = lines[-1] if lines else ""
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=storage.REPORTS)
    args = parser.parse_args()
    if not available():
        print("intake backup: not available yet")
        print(json.dumps(None))
        return
    created, filled = storage.fill(args.reports)
    try:
        row = measure(created)
    finally:
        discard(created)
    assert row is not None
    if row["seconds"] is None:
        print(f"intake backup failed (exit {row['exit_code']}): {row.get('error')}")
    else:
        print(f"intake backup of {filled['reports']} reports: {row['seconds']:.1f} s, "
              f"{row['bytes_written']} B written")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
