"""Overload: reports offered at a multiple of the measured capacity, for a fixed time.

Starts `intake serve` on a throwaway instance with production argon2id (t=3, m=64 MiB),
measures its capacity (reports acknowledged per second with a few clients sending back to
back), then offers FACTOR times that many per second, on a fixed schedule whatever the
answers, for SECONDS. Prints the answers by status, latencies, the server's memory (idle,
and its peak over its whole life, VmHWM) against the bound the hash slots give, and checks
that the reports stored are exactly the ones acknowledged.
Run: .venv/bin/python bench/overload.py [--seconds 30] [--factor 10]
tests/test_overload.py runs it for 20 seconds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIB = 1024


def memory_kib(pid: int, name: str = "VmRSS") -> int:
    """VmRSS (now) or VmHWM (the peak of the process's life) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise KeyError(name)


@dataclass
class Run:
    """What the clients saw."""

    seconds: float = 0.0
    offered: int = 0
    answers: Counter[int] = field(default_factory=Counter)  # HTTP status, 0: no answer
    sent: set[str] = field(default_factory=set)  # every report id posted
    acknowledged: set[str] = field(default_factory=set)  # report ids answered 201
    latency: dict[int, list[float]] = field(default_factory=dict)
    busy_without_retry_after: int = 0
    peak_rss_kib: int = 0  # the largest VmRSS sampled while it ran


class Sender:
    """Posts report bodies to one server, one keep-alive connection per thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()
        self.lock = threading.Lock()
        self.opened: list[http.client.HTTPConnection] = []

    def close(self) -> None:
        for conn in self.opened:
            conn.close()

    def post(self, body: tuple[str, str], run: Run) -> None:
        report_id, text = body
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            with self.lock:
                self.opened.append(conn)
        start = time.perf_counter()
        try:
            conn.request("POST", "/api/reports", body=text,
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            answer = response.read()
            status, retry_after = response.status, response.getheader("Retry-After")
        except (OSError, http.client.HTTPException):
            conn.close()
            self.local.conn = None
            status, answer, retry_after = 0, b"", None
        took = time.perf_counter() - start
        with self.lock:
            run.sent.add(report_id)
            run.answers[status] += 1
            run.latency.setdefault(status, []).append(took)
            if status == 201 and json.loads(answer)["report_id"] == report_id:
                run.acknowledged.add(report_id)
            if status == 503 and not retry_after:
                run.busy_without_retry_after += 1


def capacity(port: int, bodies: Callable[[], tuple[str, str]], seconds: float,
             clients: int) -> float:
    """Reports acknowledged per second by `clients` sending back to back."""
    sender, run = Sender(port), Run()
    deadline = time.perf_counter() + seconds

    def client() -> None:
        while time.perf_counter() < deadline:
            sender.post(bodies(), run)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sender.close()
    return run.answers[201] / (time.perf_counter() - start)


def offer(port: int, pid: int, bodies: Callable[[], tuple[str, str]], rate: float,
          seconds: float, workers: int = 64) -> Run:
    """Send `rate` reports a second for `seconds`, on schedule, and wait for every answer."""
    sender, run = Sender(port), Run()
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            run.peak_rss_kib = max(run.peak_rss_kib, memory_kib(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        while (now := time.perf_counter() - start) < seconds:
            due = int(now * rate) + 1 - run.offered
            for _ in range(due):
                pool.submit(sender.post, bodies(), run)
                run.offered += 1
            time.sleep(max(0.0, (run.offered / rate) - (time.perf_counter() - start)))
        run.seconds = time.perf_counter() - start  # the time load was offered, not the drain
    done.set()
    sampler.join()
    sender.close()
    return run


def summary(run: Run, ideal: float) -> dict[str, object]:
    def ms(status: int, q: int) -> float:
        values = run.latency.get(status, [])
        if len(values) < 2:
            return values[0] * 1000 if values else 0.0
        return statistics.quantiles(values, n=100)[q - 1] * 1000

    return {
        "offered": run.offered, "offered_per_s": run.offered / run.seconds,
        "ideal_per_s": ideal, "answers": {str(k): v for k, v in sorted(run.answers.items())},
        "acknowledged": len(run.acknowledged),
        "acknowledged_per_s": len(run.acknowledged) / run.seconds,
        "p50_ms_201": ms(201, 50), "p99_ms_201": ms(201, 99),
        "p50_ms_503": ms(503, 50), "p99_ms_503": ms(503, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--factor", type=float, default=10)
    args = parser.parse_args()
    row = measure(args.seconds, args.factor)
    print(f"capacity {row['capacity_per_s']:.2f} reports/s with {row['slots']} hash slots; "
          f"offered {row['offered_per_s']:.1f}/s ({args.factor:g}x) for {row['seconds']:.0f} s")
    print(f"answers {row['answers']}; acknowledged {row['acknowledged']} "
          f"({row['acknowledged_per_s']:.2f}/s); 201 p50 {row['p50_ms_201']:.0f} ms p99 "
          f"{row['p99_ms_201']:.0f} ms; 503 p50 {row['p50_ms_503']:.0f} ms p99 "
          f"{row['p99_ms_503']:.0f} ms")
    print(f"server memory: idle {row['idle_rss_mib']:.0f} MiB, peak {row['peak_rss_mib']:.0f} "
          f"MiB, idle + {row['slots']} x 64 MiB = {row['bound_mib']:.0f} MiB; stored exactly "
          f"the acknowledged: {row['stored_exactly_the_acknowledged']}")
    print(json.dumps(row))


def measure(seconds: float = 30, factor: float = 10) -> dict[str, Any]:
    """Capacity, then `factor` times it offered for `seconds`; answers, memory, what stored."""
    # Imported here: tests/test_overload.py loads this file without bench/ on the path.
    from server import discard, new_instance, serving_process

    from intake import crypto, receipts, store
    from intake import envelope as fmt

    created = new_instance()
    config = created.config
    lock = threading.Lock()

    def body() -> tuple[str, str]:
        with lock:  # sealing is cheap (a millisecond); one at a time keeps it simple
            data = crypto.seal({"schema": 1, "what": "overload"}, config.recipients)
        report_id = fmt.parse(data, max_size=len(data)).report_id_hex
        return report_id, json.dumps({"envelope": crypto.b64encode(data),
                                      "receipt_code": receipts.new_code(), "language": "en"})

    with serving_process(created) as (port, pid):
        idle = memory_kib(pid)
        capacity(port, body, 2, clients=2 * config.capacity.slots)  # warm up
        per_s = capacity(port, body, 10, clients=2 * config.capacity.slots)
        run = offer(port, pid, body, per_s * factor, seconds)
        peak = memory_kib(pid, "VmHWM")
    conn = store.connect(config.db_path, config.db_key)
    try:
        stored = {item.report_id for item in store.envelopes(conn)}
    finally:
        conn.close()
        discard(created)
    slots = config.capacity.slots
    return summary(run, per_s * factor) | {
        "seconds": run.seconds, "factor": factor,
        "capacity_per_s": per_s, "slots": slots, "idle_rss_mib": idle / MIB,
        "peak_rss_mib": peak / MIB, "bound_mib": (idle + slots * 64 * MIB) / MIB,
        "stored_after_capacity_and_overload": len(stored),
        "stored_exactly_the_acknowledged": stored & run.sent == run.acknowledged,
    }


if __name__ == "__main__":
    main()
