"""Browser fixtures: a real `intake serve` process on 127.0.0.1 and Debian's Chromium."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from intake import instance as instance_mod
from intake.config import AVAILABLE_LANGUAGES, Config

import server_logs
from harness import launch_chromium
from pseudo_locale import PSEUDO, write_catalogue
from support import CHEAP_HASH, PASSPHRASE

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class LiveServer:
    url: str
    created: instance_mod.Created
    root: Path  # everything the server process may write lives under here
    log: Path

    def written_files(self) -> list[Path]:
        """Every file the server wrote: database, -wal, -shm, journals, logs, temp files."""
        return [p for p in self.root.rglob("*") if p.is_file() and p != self.created.key_file]

    def decrypt(self) -> str:
        passfile = self.root.parent / "passphrase.txt"
        passfile.write_text(PASSPHRASE, encoding="utf-8")
        result = subprocess.run(
            [sys.executable, "-m", "intake", "--instance", str(self.created.config.instance_dir),
             "decrypt", "--key", str(self.created.key_file), "--passphrase-file", str(passfile)],
            capture_output=True, text=True, timeout=60, check=True,
        )
        return result.stdout

    def cli(self, *args: str) -> str:
        env = {**os.environ, "INTAKE_INSTANCE": str(self.created.config.instance_dir)}
        result = subprocess.run(
            [sys.executable, "-m", "intake", *args],
            capture_output=True, text=True, timeout=60, check=True, env=env,
        )
        return result.stdout

    def user_add(self, name: str, role: str) -> str:
        """Add a console account with the CLI; returns its one-time set-up code."""
        return self.cli("user", "add", name, "--role", role).strip().splitlines()[-1].strip()

    def focal_add(self, name: str) -> tuple[str, str]:
        """Register a focal point with the CLI: (its id, its one-time enrolment code)."""
        env = {**os.environ, "INTAKE_INSTANCE": str(self.created.config.instance_dir)}
        result = subprocess.run(
            [sys.executable, "-m", "intake", "focal", "add", name],
            capture_output=True, text=True, timeout=60, check=True, env=env,
        )
        lines = result.stdout.strip().splitlines()
        # "Focal point <id> (<name>) registered. ..." then the code on the last line.
        return lines[0].split()[2], lines[-1].strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def _serving(command: list[str], env: dict[str, str], log: Path, port: int) -> Iterator[str]:
    """Run a server process until the block ends; yields its URL once it accepts connections."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start:\n" + log.read_text()) from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def running_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A fresh instance served by `intake serve` until the block ends."""
    root = tmp_path / "server"
    (root / "tmp").mkdir(parents=True)
    # Searched for personal data at the end of the session (server_logs.py, test_logs.py).
    server_logs.watch(root)
    created = instance_mod.create(
        root / "instance", key_out=tmp_path / "organisation.key", passphrase=PASSPHRASE,
        hash_params=CHEAP_HASH, secure_cookies=False, languages=AVAILABLE_LANGUAGES,
    )
    port = _free_port()
    log = root / "server.log"
    # TMPDIR points inside `root`, so any temporary file the server makes is searched too.
    env = {**os.environ, "TMPDIR": str(root / "tmp"), "INTAKE_INSTANCE": str(created.config.instance_dir)}
    command = [sys.executable, "-m", "intake", "serve", "--port", str(port)]
    with _serving(command, env, log, port) as url:
        yield LiveServer(url, created, root, log)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    with running_server(tmp_path) as server:
        yield server


@pytest.fixture
def stopped_after(tmp_path: Path) -> Callable[[], AbstractContextManager[LiveServer]]:
    """For a test that must look at what a server wrote once it has stopped: `with
    stopped_after() as server:` serves a fresh instance until the block ends."""
    return lambda: running_server(tmp_path)


@dataclass(frozen=True)
class SharedServer:
    url: str
    config: Config


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedServer]:
    """One server for the whole session: every language, plus the pseudo-locale
    (tests/pseudo_locale.py), which only a Config built by a test can enable.

    For tests that read pages, or that add reports and find them again by their own receipt
    code. A test that counts or decrypts every stored report, or searches what the server
    wrote, needs its own `live_server`.
    """
    base = tmp_path_factory.mktemp("shared")
    server_logs.watch(base)
    created = instance_mod.create(
        base / "instance", key_out=base / "organisation.key", passphrase=PASSPHRASE,
        hash_params=CHEAP_HASH, secure_cookies=False, languages=AVAILABLE_LANGUAGES,
    )
    write_catalogue(base / "pseudo")
    config = dataclasses.replace(
        created.config, languages=(*AVAILABLE_LANGUAGES, PSEUDO),
        extra_translations=(base / "pseudo",),
    )
    port = _free_port()
    command = [sys.executable, str(HERE / "serve_pseudo.py"), str(config.instance_dir),
               str(base / "pseudo"), PSEUDO, str(port)]
    with _serving(command, {**os.environ}, base / "server.log", port) as url:
        yield SharedServer(url, config)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = launch_chromium(p)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context()
    yield ctx
    ctx.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `runs_last` run after every other test of the session: the search of
    every server's log (test_logs.py) must come after all the servers have written theirs."""
    last = [item for item in items if item.get_closest_marker("runs_last")]
    items[:] = [item for item in items if item not in last] + last
