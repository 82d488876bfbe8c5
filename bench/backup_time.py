"""Time to back up, verify and restore an instance holding 10,000 reports.

Each report is a real envelope sealed to the instance's key, with a 400-word report (about
2,600 characters of JSON, padded to 3,072 bytes) and its first event, as the server stores
it. The backup is the one `intake backup` writes; the key is held in memory, as a restore
would have it after the key file is opened. Run: .venv/bin/python bench/backup_time.py
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from server import new_instance

from intake import backup, crypto, store
from intake.config import Config, load

RUNS = 3
T = TypeVar("T")


def _fill(config: Config, conn: store.Connection, count: int) -> None:
    """Bulk-insert `count` sealed reports and their first events, in one transaction."""
    now = datetime.now(UTC).replace(second=0, microsecond=0).isoformat()
    what = ("word " * 400).strip()
    rows = []
    for _ in range(count):
        envelope = crypto.seal({"schema": 1, "what": what}, config.recipients)
        rows.append((secrets.token_hex(16), now, os.urandom(32), os.urandom(32), envelope))
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO reports (id, received_at, channel, language, schema_version, sealed_by,"
        " receipt_hash, envelope_sha256, envelope)"
        " VALUES (?, ?, 'web', 'en', 1, 'device', ?, ?, ?)", rows,
    )
    conn.executemany(
        "INSERT INTO report_events (report_id, at, status) VALUES (?, ?, 'received')",
        ((row[0], now) for row in rows),
    )
    conn.execute("COMMIT")


def _timed(action: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=10_000)
    args = parser.parse_args()
    row = measure(args.reports)
    print(f"reports: {row['reports']:,}; database: {row['db_bytes'] / 1e6:.1f} MB; "
          f"backup file: {row['file_bytes'] / 1e6:.1f} MB")
    print(f"backup  (median of {RUNS}): {row['backup_s']:.2f} s")
    print(f"verify with the key: {row['verify_s']:.2f} s")
    print(f"restore: {row['restore_s']:.2f} s")


def measure(count: int = 10_000) -> dict[str, Any]:
    """Medians of RUNS for writing, verifying (with the key) and restoring a backup."""
    created = new_instance()
    folder = created.config.instance_dir
    key = crypto.generate_private_key()
    text = (folder / "config.toml").read_text(encoding="utf-8")
    (folder / "config.toml").write_text(
        backup.with_backup_key(text, key.public_key, replace=False), encoding="utf-8")
    config = load(folder, environ={})
    conn = store.connect(config.db_path, config.db_key)
    _fill(config, conn, count)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()

    out = Path(tempfile.mkdtemp(prefix="intake-bench-backup-"))
    try:
        return _measure(config, key, out)
    finally:
        # Four copies of the instance's secrets and data: gone once measured.
        shutil.rmtree(out)
        shutil.rmtree(folder.parent)


def _measure(config: Config, key: crypto.PrivateKey, out: Path) -> dict[str, Any]:
    backups: list[float] = []
    verifies: list[float] = []
    restores: list[float] = []
    made: backup.Made | None = None
    for run in range(RUNS):
        path = out / f"backup-{run}.bin"
        seconds, made = _timed(partial(backup.create, config, path, now=datetime.now(UTC)))
        backups.append(seconds)
        verifies.append(_timed(partial(backup.verify, path, key))[0])
        restores.append(_timed(partial(backup.restore, path, key, out / f"restored-{run}",
                                       overwrite=False, now=datetime.now(UTC)))[0])
    assert isinstance(made, backup.Made)
    return {
        "runs": RUNS, "reports": made.reports, "db_bytes": config.db_path.stat().st_size,
        "file_bytes": made.size, "backup_s": statistics.median(backups),
        "verify_s": statistics.median(verifies), "restore_s": statistics.median(restores),
    }


if __name__ == "__main__":
    main()
