"""The deployment's real tools on loopback: Caddy with deploy/Caddyfile.lan, gunicorn with
deploy/gunicorn.conf.py. Used by tests/test_deploy.py and tests/browser/test_deploy_e2e.py.

The shipped files are used as they are, except for what only a test must change: ports
(unprivileged, free), the upstream's port, the folder of the downloadable root certificate,
and Caddy's admin endpoint (off, so that a Caddy already running on the machine does not
clash). Each replaced string must occur exactly once, so that an edit to a shipped file that
moves it breaks the test loudly instead of testing something else.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
LAN_NAME = "intake.lan"


def require_tool(name: str) -> str:
    """The tool's path. Missing: a failure in CI (.ci/run installs it), a skip elsewhere."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install -y caddy tor libnss3-tools systemd)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{message}; CI must run the deployment checks, not skip them")
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, what: str,
                  timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start:\n{log.read_text()}") from None
            time.sleep(0.05)


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected {old!r} exactly once in the shipped file"
    return text.replace(old, new)


def lan_caddyfile(*, http_port: int, https_port: int, upstream: int, ca_dir: Path) -> str:
    text = (DEPLOY / "Caddyfile.lan").read_text(encoding="utf-8")
    text = replace_once(text, "\tskip_install_trust\n", "\tskip_install_trust\n\tadmin off\n"
                        f"\thttp_port {http_port}\n\thttps_port {https_port}\n")
    text = replace_once(text, "https://intake.lan {", f"https://{LAN_NAME}:{https_port} {{")
    text = replace_once(text, "http://intake.lan {", f"http://{LAN_NAME}:{http_port} {{")
    text = replace_once(text, "reverse_proxy 127.0.0.1:8000", f"reverse_proxy 127.0.0.1:{upstream}")
    return replace_once(text, "root * /srv/intake-ca", f"root * {ca_dir}")


@dataclass(frozen=True)
class Caddy:
    https_port: int
    http_port: int
    root_cert: Path  # the internal CA's root, as tablets install it
    ca_dir: Path  # the public folder tablets download the root from
    log: Path
    data: Path  # Caddy's storage: certificates, the CA's keys

    @property
    def url(self) -> str:
        return f"https://{LAN_NAME}:{self.https_port}"


@contextmanager
def caddy_lan(root: Path, upstream: int) -> Iterator[Caddy]:
    """deploy/Caddyfile.lan in front of 127.0.0.1:`upstream`, with Caddy's data under root."""
    caddy = require_tool("caddy")
    root.mkdir(parents=True, exist_ok=True)
    ca_dir = root / "intake-ca"
    ca_dir.mkdir()
    https_port, http_port = free_port(), free_port()
    config = root / "Caddyfile"
    config.write_text(lan_caddyfile(http_port=http_port, https_port=https_port,
                                    upstream=upstream, ca_dir=ca_dir), encoding="utf-8")
    env = {**os.environ, "HOME": str(root / "home"), "XDG_DATA_HOME": str(root / "data"),
           "XDG_CONFIG_HOME": str(root / "config")}
    log = root / "caddy.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([caddy, "run", "--adapter", "caddyfile", "--config", str(config)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_port(https_port, proc, log, "caddy")
        root_cert = root / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        deadline = time.monotonic() + 30
        while not root_cert.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("caddy made no root certificate:\n" + log.read_text())
            time.sleep(0.05)
        # What README.md has the administrator do: publish the root for the tablets.
        shutil.copy(root_cert, ca_dir / "intake-root.crt")
        yield Caddy(https_port, http_port, root_cert, ca_dir, log, root / "data")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def gunicorn(instance_dir: Path, root: Path) -> Iterator[tuple[int, Path]]:
    """deploy/gunicorn.conf.py serving the instance on a free port: (port, log)."""
    port = free_port()
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    log = root / "gunicorn.log"
    # TMPDIR inside `root`, so that a test can search every file the server wrote.
    env = {**os.environ, "INTAKE_INSTANCE": str(instance_dir), "TMPDIR": str(root / "tmp")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(DEPLOY / "gunicorn.conf.py"),
             "--bind", f"127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    try:
        wait_for_port(port, proc, log, "gunicorn")
        yield port, log
    finally:
        proc.terminate()
        proc.wait(timeout=40)


def https_request(caddy: Caddy, method: str, path: str, body: bytes = b"",
                  headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request to Caddy under the LAN name, trusting only its internal CA's root."""
    tls = ssl.create_default_context(cafile=str(caddy.root_cert))
    conn = http.client.HTTPSConnection(LAN_NAME, caddy.https_port, context=tls, timeout=30)
    conn.sock = tls.wrap_socket(socket.create_connection(("127.0.0.1", caddy.https_port), 30),
                                server_hostname=LAN_NAME)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
