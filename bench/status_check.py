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
from typing import Any

from server import discard, new_instance

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


def _time_ms(conn: store.Connection, config: object, code: str) -> tuple[float, float]:
    """Wall-clock and CPU milliseconds of one check (CPU: steadier on a shared machine)."""
    start, start_cpu = time.perf_counter(), time.thread_time()
    reports.find_status(conn, config, code)  # type: ignore[arg-type]
    return (time.perf_counter() - start) * 1000, (time.thread_time() - start_cpu) * 1000


def measure(counts: tuple[int, ...] = (10, 100_000)) -> dict[str, Any]:
    """Median times per stored-report count, and the found-code ratio largest/smallest.

    Every store is filled first, then the checks take turns (each count, each kind of code,
    then again, RUNS times), so that a burst of other work on the machine slows all of
    them alike instead of one series; the ratio is the point, and would suffer most.
    """
    stores = []
    for count in counts:
        created = new_instance()
        config = created.config
        conn = store.connect(config.db_path, config.db_key)
        code = receipts.new_code()
        data = crypto.seal({"schema": 1, "what": "bench"}, config.recipients)
        reports.accept_envelope(conn, config, data=data, receipt_code=code, language="en")
        _fill(conn, count - 1)
        typo = code[:3] + str((int(code[3]) + 1) % 10) + code[4:]
        codes = {"found": code, "unknown": receipts.new_code(), "mistyped": typo}
        stores.append((count, created, conn, codes))
    times: dict[tuple[int, str], list[tuple[float, float]]] = {}
    try:
        for _ in range(RUNS):
            for count, created, conn, codes in stores:
                for kind, typed in codes.items():
                    times.setdefault((count, kind), []).append(
                        _time_ms(conn, created.config, typed))
    finally:
        for _, created, conn, _ in stores:
            conn.close()
            discard(created)
    rows: list[dict[str, Any]] = []
    for count in counts:
        row: dict[str, Any] = {"reports": count}
        for kind in ("found", "unknown", "mistyped"):
            row[f"{kind}_ms"] = statistics.median(t[0] for t in times[count, kind])
            row[f"{kind}_cpu_ms"] = statistics.median(t[1] for t in times[count, kind])
        rows.append(row)
    several = len(rows) >= 2
    return {
        "runs": RUNS, "rows": rows,
        "ratio_found": rows[-1]["found_ms"] / rows[0]["found_ms"] if several else None,
        "ratio_found_cpu": rows[-1]["found_cpu_ms"] / rows[0]["found_cpu_ms"] if several else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, nargs="+", default=[10, 100_000])
    args = parser.parse_args()
    result = measure(tuple(args.reports))
    rows = result["rows"]
    print(f"{'reports':>8} {'found':>9} {'unknown':>9} {'mistyped':>9}   (median ms of {RUNS})")
    for row in rows:
        print(f"{row['reports']:>8} {row['found_ms']:>9.1f} {row['unknown_ms']:>9.1f}"
              f" {row['mistyped_ms']:>9.1f}")
    if result["ratio_found"] is not None:
        print(f"ratio found {rows[-1]['reports']}/{rows[0]['reports']}: "
              f"{result['ratio_found']:.2f} (goal <= 1.2)")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
