"""Storage: database bytes per report against the envelope (ciphertext) bytes it holds.

Fills a fresh instance with reports through the same function the API uses
(`reports.accept_envelope`: envelope check, receipt hash, report row and its first event),
each sealed with `crypto.seal` from a payload like the form's: a 300-word account and the
usual short answers. Then checkpoints the write-ahead log and measures intake.db plus
intake.db-wal. The overhead ratio is those bytes over the sum of the envelopes' bytes:
what the rows, indexes, SQLCipher's per-page IV and HMAC, and unused page space add.

Cheap receipt-hash parameters: a hash is 32 bytes whatever its cost, so the file is the
same, and 10,000 production hashes would take half an hour. For the same reason the
filling connection does not wait for the disk after each report (synchronous = OFF); that
changes when pages reach the disk, not what they hold.
Run: .venv/bin/python bench/storage.py [--reports 10000] [--words 300]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from sample import report_payload
from server import discard, new_instance

from intake import crypto, instance, receipts, reports, store
from intake.receipts import HashParams

REPORTS, WORDS = 10_000, 300
CHEAP_HASH = HashParams(time_cost=1, memory_kib=64, parallelism=1)


def fill(count: int = REPORTS, words: int = WORDS) -> tuple[instance.Created, dict[str, Any]]:
    """A new instance holding `count` reports; also returns what went in."""
    created = new_instance(hash_params=CHEAP_HASH)
    config = created.config
    payload = report_payload(words)
    conn = store.connect(config.db_path, config.db_key)
    envelope_bytes = 0
    started = time.perf_counter()
    try:
        conn.execute("PRAGMA synchronous = OFF")
        for _ in range(count):
            data = crypto.seal(payload, config.recipients)
            envelope_bytes += len(data)
            reports.accept_envelope(
                conn, config, data=data, receipt_code=receipts.new_code(), language="en"
            )
    finally:
        conn.close()
    return created, {
        "reports": count, "words": words, "envelope_bytes": envelope_bytes,
        "fill_seconds": time.perf_counter() - started,
    }


def sizes(created: instance.Created, filled: dict[str, Any]) -> dict[str, Any]:
    """File sizes after a checkpoint, per report and against the envelopes."""
    config = created.config
    conn = store.connect(config.db_path, config.db_key)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        page_count = int(conn.execute("PRAGMA page_count").fetchone()[0])
        free_pages = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    finally:
        conn.close()
    db = config.db_path.stat().st_size
    wal_path = config.db_path.with_name(config.db_path.name + "-wal")
    wal = wal_path.stat().st_size if wal_path.exists() else 0
    count, envelopes = filled["reports"], filled["envelope_bytes"]
    return {
        **filled, "envelope_bytes_per_report": envelopes / count,
        "db_bytes": db, "wal_bytes": wal, "bytes_per_report": (db + wal) / count,
        "overhead_ratio": (db + wal) / envelopes,
        "page_size": page_size, "page_count": page_count, "free_pages": free_pages,
    }


def measure(count: int = REPORTS, words: int = WORDS) -> dict[str, Any]:
    created, filled = fill(count, words)
    try:
        return sizes(created, filled)
    finally:
        discard(created)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=REPORTS)
    parser.add_argument("--words", type=int, default=WORDS)
    args = parser.parse_args()
    row = measure(args.reports, args.words)
    print(f"{row['reports']} reports of {row['words']} words, filled in "
          f"{row['fill_seconds']:.0f} s")
    print(f"envelope {row['envelope_bytes_per_report']:.0f} B/report   "
          f"database {row['bytes_per_report']:.0f} B/report "
          f"(intake.db {row['db_bytes']} B, -wal {row['wal_bytes']} B after a checkpoint)")
    print(f"overhead ratio {row['overhead_ratio']:.2f}   "
          f"({row['page_count']} pages of {row['page_size']} B, {row['free_pages']} free)")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
