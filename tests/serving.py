"""A real `intake serve` process on 127.0.0.1 that a test can kill, restart and measure.

For the tests that need the server as it runs in production: its own process, its own
threads and gate, and a real SIGKILL.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from intake import crypto, receipts
from intake import envelope as fmt
from intake.config import Config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """`intake serve` for one instance folder; `start` again after `kill` to restart it."""

    def __init__(self, instance_dir: Path, log: Path, *, threads: int | None = None) -> None:
        self.instance_dir, self.log, self.threads = instance_dir, log, threads
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        command = [sys.executable, "-m", "intake", "serve", "--port", str(self.port)]
        if self.threads is not None:
            command += ["--threads", str(self.threads)]
        env = {**os.environ, "INTAKE_INSTANCE": str(self.instance_dir)}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start:\n" + self.log.read_text()) from None
                time.sleep(0.05)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed, as in a power cut of the process."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def memory_kib(self, field: str = "VmRSS") -> int:
        """VmRSS (now) or VmHWM (the peak so far) of the server process, in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def post(self, path: str, body: str, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
        """One request on its own connection: (status, headers, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()


def submission(config: Config, what: str) -> tuple[str, str, str]:
    """A report as a device sends it: (report id, receipt code, JSON body)."""
    data = crypto.seal({"schema": 1, "what": what}, config.recipients)
    code = receipts.new_code()
    report_id = fmt.parse(data, max_size=len(data)).report_id_hex
    body = json.dumps({"envelope": crypto.b64encode(data), "receipt_code": code,
                       "language": "en"})
    return report_id, code, body
