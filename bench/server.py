"""A throwaway instance served by `intake serve` on 127.0.0.1, for the benchmarks."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from intake import instance
from intake.receipts import HashParams


def new_instance(hash_params: HashParams = HashParams()) -> instance.Created:
    """Production argon2id parameters unless told otherwise: benchmarks measure the real
    cost. Only a benchmark that does not time the hash (storage) passes cheaper ones."""
    base = Path(tempfile.mkdtemp(prefix="intake-bench-"))
    return instance.create(
        base / "instance", key_out=base / "org.key", passphrase=secrets.token_hex(16),
        hash_params=hash_params, secure_cookies=False,
    )


def discard(created: instance.Created) -> None:
    """Delete the instance's temporary folder: a 100,000-report database is not small."""
    shutil.rmtree(created.config.instance_dir.parent, ignore_errors=True)


@contextmanager
def serving(created: instance.Created, *, threads: int | None = None) -> Iterator[int]:
    """Run `intake serve` for `created` and yield its port once it accepts connections."""
    with serving_process(created, threads=threads) as (port, _pid):
        yield port


@contextmanager
def serving_process(created: instance.Created, *,
                    threads: int | None = None) -> Iterator[tuple[int, int]]:
    """As `serving`, yielding the port and the server's process id (to measure it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    env = {**os.environ, "INTAKE_INSTANCE": str(created.config.instance_dir)}
    command = [sys.executable, "-m", "intake", "serve", "--port", str(port)]
    if threads is not None:  # else intake's own default, derived from the hash slots
        command += ["--threads", str(threads)]
    server = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield port, server.pid
    finally:
        server.terminate()
        server.wait()
