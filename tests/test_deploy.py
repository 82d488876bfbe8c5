"""deploy/ checked with the deployment's own tools: caddy validate, tor --verify-config,
systemd-analyze verify and security, gunicorn --check-config; and Caddy's behaviour in
front of an upstream that shows what it receives.

Outside CI a missing tool skips its test; with CI=true it fails (deploy_stack.require_tool).
"""

from __future__ import annotations

import json
import os
import re
import runpy
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from flask import Flask

from intake import backup, crypto, reports, upkeep, wsgi
from intake import instance as instance_mod

from deploy_stack import DEPLOY, caddy_lan, https_request, replace_once, require_tool
from support import csrf_token

CADDYFILES = ["Caddyfile.public", "Caddyfile.lan"]
UNITS = ["intake.service", "intake-backup.service", "intake-backup.timer"]
VENV = "/opt/intake/venv"


def _caddy_env(tmp_path: Path) -> dict[str, str]:
    # `caddy validate` provisions the internal CA: keep it out of the real home.
    return {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_CONFIG_HOME": str(tmp_path / "config")}


def test_a_missing_tool_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = "intake-no-such-tool"
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the deployment checks"):
        require_tool(missing)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        require_tool(missing)


@pytest.mark.parametrize("name", CADDYFILES)
def test_caddyfile_validates(name: str, tmp_path: Path) -> None:
    caddy = require_tool("caddy")
    result = subprocess.run([caddy, "validate", "--adapter", "caddyfile", "--config",
                             str(DEPLOY / name)], capture_output=True, text=True,
                            env=_caddy_env(tmp_path), timeout=60)
    assert result.returncode == 0, result.stderr
    formatted = subprocess.run([caddy, "fmt", str(DEPLOY / name)], capture_output=True,
                               text=True, check=True, timeout=60).stdout
    assert formatted == (DEPLOY / name).read_text(encoding="utf-8"), "run caddy fmt --overwrite"


def test_caddy_validate_catches_a_mistake(tmp_path: Path) -> None:
    caddy = require_tool("caddy")
    broken = tmp_path / "Caddyfile"
    broken.write_text(replace_once((DEPLOY / "Caddyfile.public").read_text(encoding="utf-8"),
                                   "buffer_requests", "buffer_everything"), encoding="utf-8")
    result = subprocess.run([caddy, "validate", "--adapter", "caddyfile", "--config",
                             str(broken)], capture_output=True, text=True,
                            env=_caddy_env(tmp_path), timeout=60)
    assert result.returncode != 0 and "buffer_everything" in result.stderr


def _verify_torrc(path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    tor = require_tool("tor")
    return subprocess.run([tor, "--verify-config", "-f", str(path), "--DataDirectory",
                           str(tmp_path / "tor")], capture_output=True, text=True, timeout=60)


def test_torrc_verifies(tmp_path: Path) -> None:
    result = _verify_torrc(DEPLOY / "torrc", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (DEPLOY / "torrc").read_text(encoding="utf-8")
    # The onion service reaches Caddy's loopback-only listener of Caddyfile.public.
    assert "HiddenServicePort 80 127.0.0.1:8081" in text
    assert "bind 127.0.0.1" in (DEPLOY / "Caddyfile.public").read_text(encoding="utf-8")


def test_tor_verify_catches_a_mistake(tmp_path: Path) -> None:
    broken = tmp_path / "torrc"
    broken.write_text((DEPLOY / "torrc").read_text(encoding="utf-8").replace(
        "HiddenServicePort 80", "HiddenServicePort eighty"), encoding="utf-8")
    assert _verify_torrc(broken, tmp_path).returncode != 0


def _units(tmp_path: Path) -> list[Path]:
    """The units, pointed at this checkout's virtual environment instead of /opt/intake/venv
    (systemd-analyze verify checks that ExecStart= exists), as README.md tells an
    administrator who installs elsewhere."""
    paths = []
    for name in UNITS:
        path = tmp_path / name
        path.write_text((DEPLOY / name).read_text(encoding="utf-8").replace(VENV, sys.prefix),
                        encoding="utf-8")
        paths.append(path)
    return paths


def test_units_verify(tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze")
    result = subprocess.run([analyze, "verify", *map(str, _units(tmp_path))],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr


@pytest.mark.parametrize(("name", "threshold"), [("intake.service", 10),
                                                 ("intake-backup.service", 5)])
def test_units_are_sandboxed(name: str, threshold: int, tmp_path: Path) -> None:
    """systemd's own exposure score stays low (0.9 and 0.2 of 10 when written; 10 is
    "UNSAFE"), and the settings the design relies on are there."""
    analyze = require_tool("systemd-analyze")
    (unit,) = [p for p in _units(tmp_path) if p.name == name]
    result = subprocess.run([analyze, "security", "--offline=yes", f"--threshold={threshold}",
                             str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout
    settings = _settings(DEPLOY / name)
    for key, value in {"User": "intake", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
                       "PrivateTmp": "yes", "LimitCORE": "0", "MemorySwapMax": "0",
                       "UMask": "0077"}.items():
        assert settings[key] == [value], key
    writable = " ".join(settings["ReadWritePaths"]).split()
    expected = {"intake.service": ["/var/lib/intake/instance"],
                "intake-backup.service": ["/var/lib/intake/instance", "/var/backups/intake"]}
    assert writable == expected[name]
    # Inside it, the app cannot change which keys reports are sealed to, nor any secret.
    read_only = " ".join(settings["ReadOnlyPaths"]).split()
    for secret in ("config.toml", "db.key", "pepper.key", "session.key", "receipt.key",
                   "audit.key"):
        assert f"-/var/lib/intake/instance/{secret}" in read_only


def _settings(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_backup_timer_runs_the_backup_command() -> None:
    service = _settings(DEPLOY / "intake-backup.service")
    assert service["ExecStart"] == [f"{VENV}/bin/intake backup"]
    # `intake backup` writes backup-<time>.bin into its working folder, where doctor looks.
    assert service["WorkingDirectory"] == ["/var/backups/intake"]
    assert _settings(DEPLOY / "intake-backup.timer")["Persistent"] == ["true"]


def test_the_backup_unit_makes_a_backup_doctor_accepts(
    instance: instance_mod.Created, tmp_path: Path
) -> None:
    """The unit's own command lines, run where the unit runs them: the backup lands where
    `intake doctor --backups` looks, intact, and pruning keeps it."""
    config_file = instance.config.instance_dir / "config.toml"
    config_file.write_text(backup.with_backup_key(
        config_file.read_text(encoding="utf-8"), crypto.generate_private_key().public_key,
        replace=False), encoding="utf-8")
    service = _settings(DEPLOY / "intake-backup.service")
    folder = tmp_path / "backups"
    folder.mkdir(mode=0o700)
    old = folder / "backup-20200101T000000Z.bin"
    old.write_bytes(b"an old backup")
    os.utime(old, (0, 0))
    env = {**os.environ, "INTAKE_INSTANCE": str(instance.config.instance_dir)}
    assert service["Environment"] == ["INTAKE_INSTANCE=/var/lib/intake/instance"]
    for line in service["ExecStart"] + service["ExecStartPost"]:
        argv = shlex.split(line.replace(VENV, sys.prefix).replace("/var/backups/intake",
                                                                  str(folder)))
        subprocess.run(argv, cwd=folder, env=env, check=True, capture_output=True, timeout=60)
    (made,) = folder.iterdir()  # the old one was pruned, the new one kept
    assert re.fullmatch(r"backup-\d{8}T\d{6}Z\.bin", made.name)
    (finding,) = upkeep.check_backups(folder, now=reports.utcnow(), max_age=timedelta(hours=1))
    assert not finding.problem and "intact" in finding.text


def test_gunicorn_config_logs_no_client(instance: instance_mod.Created, tmp_path: Path) -> None:
    settings = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert settings["accesslog"] is None
    # Should someone turn the access log on: no address, agent, referrer, URL or header.
    atoms = set(re.findall(r"%\((.*?)\)s", settings["access_log_format"]))
    assert atoms <= {"t", "m", "s", "B", "b", "M", "D", "T", "L"}, atoms
    assert all(b.startswith("127.0.0.1:") for b in settings["bind"])
    assert settings["wsgi_app"] == "intake.wsgi:create()"
    # gunicorn itself loads the file and the app from it.
    env = {**os.environ, "INTAKE_INSTANCE": str(instance.config.instance_dir)}
    result = subprocess.run([sys.executable, "-m", "gunicorn", "--check-config", "--config",
                             str(DEPLOY / "gunicorn.conf.py")], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_wsgi_app_comes_from_intake_instance(instance: instance_mod.Created,
                                             tmp_path: Path) -> None:
    app = wsgi.create({"INTAKE_INSTANCE": str(instance.config.instance_dir)})
    assert isinstance(app, Flask)
    with pytest.raises(SystemExit, match="run `intake init` first"):
        wsgi.create({"INTAKE_INSTANCE": str(tmp_path / "nothing")})


def test_forms_work_behind_a_tls_proxy(client: Any) -> None:
    """Behind Caddy, gunicorn tells the app the request came over HTTPS; our pages send no
    Referer (no-referrer), so a Referer check on HTTPS would refuse every form."""
    page = client.get("/en/status", base_url="https://intake.lan")
    answer = client.post("/en/status", base_url="https://intake.lan", data={
        "csrf_token": csrf_token(page.get_data(as_text=True)), "code": "0000 0000 0000 0000"})
    assert answer.status_code != 400
    assert client.post("/en/status", base_url="https://intake.lan",
                       data={"code": "0000"}).status_code == 400  # no token: still refused


class _Echo(BaseHTTPRequestHandler):
    """An upstream that answers with the headers and body size it received."""

    complete: ClassVar[list[int]] = []  # sizes of the bodies that arrived whole

    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length", 0))
        received = len(self.rfile.read(size))
        if received != size:
            return  # cut off: nothing to answer
        self.complete.append(size)
        body = json.dumps({"headers": dict(self.headers), "size": size}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[ThreadingHTTPServer]:
    _Echo.complete = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_caddy_passes_on_the_connections_address_alone_and_logs_none(
    echo: ThreadingHTTPServer, tmp_path: Path
) -> None:
    agent = "Agent-of-a-complainant/1.0"
    with caddy_lan(tmp_path / "caddy", echo.server_address[1]) as caddy:
        status, body = https_request(caddy, "POST", "/api/reports", b"x" * 300_000,
                                     {"User-Agent": agent, "X-Forwarded-For": "198.51.100.7"})
        assert status == 200
        seen = json.loads(body)
        assert seen["size"] == 300_000
        headers = {k.lower(): v for k, v in seen["headers"].items()}
        # The address the connection came from, for the app's per-client limits on
        # guessing; never the one the client claimed.
        assert headers["x-forwarded-for"] == "127.0.0.1"
        assert "198.51.100.7" not in body.decode()
        # A body over request_body's max_size never reaches the upstream whole. (Caddy 2.6
        # answers 502 here, because buffer_requests meets the limit while reading; the app
        # answers bodies between its own cap and max_size with its own 413.)
        status, _ = https_request(caddy, "POST", "/api/reports", b"x" * 1_100_000)
        assert status in (413, 502) and 1_100_000 not in _Echo.complete
        # With the upstream gone, Caddy answers 502 and would log the client with it.
        echo.shutdown()
        echo.server_close()
        status, _ = https_request(caddy, "POST", "/api/reports", b"{}", {"User-Agent": agent})
        assert status == 502
    log = caddy.log.read_text()
    assert "remote_ip" not in log and agent not in log and "User-Agent" not in log
