"""Submission throughput and latency under concurrency, against the argon2id ceiling.

Every accepted report costs one argon2id hash (t=3, m=64 MiB, p=1), so the machine's
ceiling is how many such hashes its cores can do per second. This starts `intake serve`,
sends pre-sealed envelopes from concurrent clients for a fixed time, and prints
throughput, p50 and p99 latency, and the ratio to that ceiling.
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

from server import new_instance, serving

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    created = new_instance()
    recipients = created.config.recipients
    bodies = [json.dumps({"envelope": crypto.b64encode(crypto.seal(
        {"schema": 1, "what": "w" * 12000}, recipients)), "receipt_code": receipts.new_code(),
        "language": "en"}) for _ in range(4000)]
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    with serving(created, threads=args.threads) as port:
        queue = iter(bodies)
        deadline = time.perf_counter() + args.seconds

        def client() -> None:
            nonlocal errors
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
                    else:
                        errors += 1

        started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
    ceiling = argon2_ceiling(min(args.seconds, 10))
    throughput = len(latencies) / elapsed
    cuts = statistics.quantiles(latencies, n=100)
    row = {
        "clients": args.clients, "server_threads": args.threads, "reports": len(latencies),
        "errors": errors, "throughput_per_s": throughput, "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000, "argon2_ceiling_per_s": ceiling,
        "ratio": throughput / ceiling,
    }
    print(f"{len(latencies)} reports in {elapsed:.1f} s from {args.clients} clients "
          f"({errors} errors)")
    print(f"throughput {throughput:.2f}/s   p50 {row['p50_ms']:.0f} ms   "
          f"p99 {row['p99_ms']:.0f} ms")
    print(f"argon2id ceiling on {os.cpu_count()} cores: {ceiling:.2f}/s   "
          f"ratio {row['ratio']:.2f} (goal >= 0.8)")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
