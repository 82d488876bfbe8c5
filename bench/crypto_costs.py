"""The two deliberate slowdowns: one receipt-code hash, and opening a key file.

A receipt-code hash (argon2id, production parameters) is what every submission and status
check pays; opening the officer's key file (PBKDF2-HMAC-SHA256) is what a passphrase
guess costs an attacker who has the file, in Python here (the browser's WebCrypto is
similar). Medians of RUNS on one core.
Run: .venv/bin/python bench/crypto_costs.py
"""

from __future__ import annotations

import json
import secrets
import statistics
import time
from typing import Any

from intake import crypto, receipts
from intake.receipts import HashParams

RUNS = 10


def _median_s(work: Any) -> tuple[float, float]:
    """Median wall-clock and CPU seconds. On a shared machine the wall clock also counts
    waiting for a core; the CPU time does not, and is the steadier figure there."""
    wall, cpu = [], []
    for _ in range(RUNS):
        start, start_cpu = time.perf_counter(), time.thread_time()
        work()
        wall.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def measure() -> dict[str, Any]:
    params = HashParams()
    pepper = secrets.token_bytes(32)
    passphrase = secrets.token_hex(16)
    key_file = crypto.write_key_file(crypto.generate_private_key(), passphrase)
    hash_s, hash_cpu_s = _median_s(
        lambda: receipts.lookup_hash(receipts.new_code(), pepper=pepper, params=params))
    open_s, open_cpu_s = _median_s(lambda: crypto.read_key_file(key_file, passphrase))
    return {
        "runs": RUNS,
        "argon2id": {"time_cost": params.time_cost, "memory_kib": params.memory_kib,
                     "parallelism": params.parallelism},
        "receipt_hash_s": hash_s, "receipt_hash_cpu_s": hash_cpu_s,
        "pbkdf2_iterations": crypto.PBKDF2_ITERATIONS,
        "key_file_open_s": open_s, "key_file_open_cpu_s": open_cpu_s,
    }


def main() -> None:
    row = measure()
    a = row["argon2id"]
    print(f"receipt-code hash, argon2id t={a['time_cost']}, m={a['memory_kib'] // 1024} MiB, "
          f"p={a['parallelism']}: {row['receipt_hash_s']:.3f} s, CPU "
          f"{row['receipt_hash_cpu_s']:.3f} s (median of {RUNS})")
    print(f"opening a key file, PBKDF2-HMAC-SHA256 {row['pbkdf2_iterations']:,} iterations: "
          f"{row['key_file_open_s']:.3f} s, CPU {row['key_file_open_cpu_s']:.3f} s "
          f"(median of {RUNS})")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
