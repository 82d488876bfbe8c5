"""Status-check time: found, unknown and mistyped codes, with 10 and 100,000 reports stored.

Shows that a status check costs one argon2id hash whatever the store holds, and that a
wrong code, a mistyped code and a found code take the same time. Production argon2id
parameters (t=3, m=64 MiB, p=1). Run: .venv/bin/python bench/status_check.py [--reports N]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import time
from datetime import UTC, datetime

from server import new_instance

from intake import crypto, receipts, reports, store

RUNS = 15


def _fill(conn: store.Connection, count: int) -> None:
    """Bulk-insert `count` reports with random receipt hashes (one transaction: fast)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0).isoformat()
    envelope = os.urandom(1200)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO reports (id, received_at, channel, language, schema_version, sealed_by,"
        " receipt_hash, envelope_sha256, envelope)"
        " VALUES (?, ?, 'web', 'en', 1, 'device', ?, ?, ?)",
        ((secrets.token_hex(16), now, os.urandom(32), os.urandom(32), envelope)
         for _ in range(count)),
    )
    conn.execute("COMMIT")


def _median_ms(conn: store.Connection, config: object, code: str) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        reports.find_status(conn, config, code)  # type: ignore[arg-type]
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, nargs="+", default=[10, 100_000])
    args = parser.parse_args()
    rows = []
    for count in args.reports:
        created = new_instance()
        config = created.config
        conn = store.connect(config.db_path, config.db_key)
        code = receipts.new_code()
        data = crypto.seal({"schema": 1, "what": "bench"}, config.recipients)
        reports.accept_envelope(conn, config, data=data, receipt_code=code, language="en")
        _fill(conn, count - 1)
        typo = code[:3] + str((int(code[3]) + 1) % 10) + code[4:]
        row = {
            "reports": count,
            "found_ms": _median_ms(conn, config, code),
            "unknown_ms": _median_ms(conn, config, receipts.new_code()),
            "mistyped_ms": _median_ms(conn, config, typo),
        }
        conn.close()
        rows.append(row)
    print(f"{'reports':>8} {'found':>9} {'unknown':>9} {'mistyped':>9}   (median ms of {RUNS})")
    for row in rows:
        print(f"{row['reports']:>8} {row['found_ms']:>9.1f} {row['unknown_ms']:>9.1f}"
              f" {row['mistyped_ms']:>9.1f}")
    if len(rows) >= 2:
        print(f"ratio found {rows[-1]['reports']}/{rows[0]['reports']}: "
              f"{rows[-1]['found_ms'] / rows[0]['found_ms']:.2f} (goal <= 1.2)")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
