"""Submission throughput and latency under concurrency, against the argon2id ceiling.

Every accepted report costs one argon2id hash (t=3, m=64 MiB, p=1), so the machine's
ceiling is how many such hashes its cores can do per second. This starts `intake serve`,
sends pre-sealed envelopes from concurrent clients for a fixed time (a client told 503
waits its Retry-After, as a device's queue does), and prints
throughput, p50 and p99 latency, and the ratio to that ceiling (measured before and after
the submissions; the higher of the two).
Run: .venv/bin/python bench/throughput.py [--seconds 20] [--clients 8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from server import discard, new_instance, serving

from intake import crypto, receipts
from intake.receipts import HashParams


def _hash_once(_: int) -> None:
    receipts.lookup_hash(receipts.new_code(), pepper=b"p" * 32, params=HashParams())


def argon2_ceiling(seconds: float) -> float:
    """argon2id hashes per second with one process per core."""
    cores = os.cpu_count() or 1
    with ProcessPoolExecutor(cores) as pool:
        list(pool.map(_hash_once, range(cores)))  # warm up
        start, done = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            list(pool.map(_hash_once, range(cores * 4)))
            done += cores * 4
        return done / (time.perf_counter() - start)


def measure(seconds: float = 20, clients: int = 8,
            threads: int | None = None) -> dict[str, Any]:
    """Submissions for `seconds` from `clients`, between two argon2id ceilings.

    `threads`: the server's worker threads; None leaves intake's own default (from its hash
    slots)."""
    created = new_instance()
    recipients = created.config.recipients
    bodies = [json.dumps({"envelope": crypto.b64encode(crypto.seal(
        {"schema": 1, "what": "w" * 12000}, recipients)), "receipt_code": receipts.new_code(),
        "language": "en"}) for _ in range(4000)]
    latencies: list[float] = []
    errors = busy = 0
    lock = threading.Lock()
    # The ceiling is taken before and after, and the higher one counts: other work on the
    # machine during one of them would otherwise flatter the ratio.
    ceilings = [argon2_ceiling(min(seconds, 10))]
    with serving(created, threads=threads) as port:
        queue = iter(bodies)
        deadline = time.perf_counter() + seconds

        def client() -> None:
            nonlocal errors, busy
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            while time.perf_counter() < deadline:
                with lock:
                    body = next(queue)
                start = time.perf_counter()
                conn.request("POST", "/api/reports", body=body,
                             headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                with lock:
                    if response.status == 201:
                        latencies.append(time.perf_counter() - start)
                    elif response.status == 503:
                        busy += 1
                    else:
                        errors += 1
                if response.status == 503:
                    # What a device's queue does (queue.js): wait as told, then send again.
                    # Sending again at once would only spin the server's CPU on refusals.
                    wait = float(response.headers.get("Retry-After", "1"))
                    time.sleep(max(0.0, min(wait, deadline - time.perf_counter())))

        started = time.perf_counter()
        workers = [threading.Thread(target=client) for _ in range(clients)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        elapsed = time.perf_counter() - started
    discard(created)
    ceilings.append(argon2_ceiling(min(seconds, 10)))
    ceiling = max(ceilings)
    throughput = len(latencies) / elapsed
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "clients": clients, "server_threads": threads, "cores": os.cpu_count(),
        "seconds": elapsed, "reports": len(latencies), "errors": errors,
        "busy_answers": busy,
        "throughput_per_s": throughput, "p50_ms": cuts[49] * 1000, "p99_ms": cuts[98] * 1000,
        "argon2_ceiling_per_s": ceiling, "argon2_ceilings_per_s": ceilings,
        "ratio": throughput / ceiling,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    row = measure(args.seconds, args.clients, args.threads)
    print(f"{row['reports']} reports in {row['seconds']:.1f} s from {row['clients']} clients "
          f"({row['errors']} errors)")
    print(f"throughput {row['throughput_per_s']:.2f}/s   p50 {row['p50_ms']:.0f} ms   "
          f"p99 {row['p99_ms']:.0f} ms")
    print(f"argon2id ceiling on {row['cores']} cores: {row['argon2_ceiling_per_s']:.2f}/s   "
          f"ratio {row['ratio']:.2f} (goal >= 0.8)")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
