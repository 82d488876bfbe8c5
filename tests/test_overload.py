"""Overload: ten times the measured capacity for 20 seconds against a real `intake serve`
with production argon2id (64 MiB a hash). Every answer is a 201 or a 503 with Retry-After;
the server's memory stays within one hash per slot of its idle size; the reports stored
are exactly the ones acknowledged. bench/overload.py runs the full 30 seconds.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from pathlib import Path
from types import ModuleType

from intake import crypto, receipts, store
from intake import envelope as fmt
from intake import instance as instance_mod
from intake.receipts import HashParams

from serving import Server
from support import PASSPHRASE

SECONDS = 20
FACTOR = 10
SLOTS = 2
# Python's heap, request buffers and SQLite's cache grow a little under load: allowed on
# top of one hash per slot. Without the gate, 8 threads would hash at once: 512 MiB.
SLACK_MIB = 64


def _bench(name: str) -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


overload = _bench("overload")


def test_ten_times_capacity_gets_201_or_503_in_bounded_memory_and_loses_nothing(tmp_path: Path) -> None:
    created = instance_mod.create(
        tmp_path / "instance", key_out=tmp_path / "organisation.key", passphrase=PASSPHRASE,
        hash_params=HashParams(), secure_cookies=False,  # the real cost: 64 MiB, t = 3
    )
    config = created.config
    path = config.instance_dir / "config.toml"
    path.write_text(path.read_text(encoding="utf-8") +
                    f"\n[capacity]\nhash_slots = {SLOTS}\n", encoding="utf-8")
    lock = threading.Lock()

    def body() -> tuple[str, str]:
        with lock:
            data = crypto.seal({"schema": 1, "what": "overload"}, config.recipients)
        return fmt.parse(data, max_size=len(data)).report_id_hex, json.dumps({
            "envelope": crypto.b64encode(data), "receipt_code": receipts.new_code(),
            "language": "en"})

    server = Server(config.instance_dir, tmp_path / "server.log").start()
    try:
        idle = server.memory_kib()
        overload.capacity(server.port, body, 1, clients=2 * SLOTS)  # warm up
        per_s = overload.capacity(server.port, body, 4, clients=2 * SLOTS)
        assert per_s > 0
        run = overload.offer(server.port, server.pid, body, per_s * FACTOR, SECONDS)
        peak = server.memory_kib("VmHWM")  # the peak of the server's whole life
    finally:
        server.stop()
    figures = overload.summary(run, per_s * FACTOR)
    print(json.dumps(figures | {"capacity_per_s": per_s, "idle_mib": idle / 1024,
                                "peak_mib": peak / 1024}))
    assert run.offered / run.seconds >= 0.9 * per_s * FACTOR  # the load was really offered
    assert set(run.answers) <= {201, 503}, run.answers  # no error, no timeout, no other
    assert run.answers[503] > run.answers[201]  # most were beyond capacity...
    assert run.busy_without_retry_after == 0  # ...and were told when to come back
    # The server kept doing useful work rather than collapsing under the load.
    assert len(run.acknowledged) >= 0.2 * per_s * run.seconds
    assert peak <= idle + (SLOTS * 64 + SLACK_MIB) * 1024, (idle, peak)
    conn = store.connect(config.db_path, config.db_key)
    try:
        stored = {item.report_id for item in store.envelopes(conn)}
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    # Of the reports sent in the overload, stored are exactly the ones answered 201: none
    # acknowledged and lost, none stored behind a 503.
    assert stored & run.sent == run.acknowledged
