"""`intake rekey`: a new database key, and an instance that survives a crash at any point.

Crashes are simulated two ways: by stopping after each step (the step functions are called
directly and the connection dropped, as a dying process would), and by killing a real
process with SIGKILL in the middle of SQLCipher's PRAGMA rekey.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from intake import instance as instance_mod
from intake import rekey, store
from intake.config import ConfigError, load

NOW = datetime(2025, 3, 4, 5, 6, tzinfo=UTC)


def _fill(folder: Path, count: int, size: int = 700) -> None:
    config = load(folder, environ={})
    conn = store.connect(config.db_path, config.db_key)
    try:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO reports (id, received_at, channel, language, schema_version,"
            " sealed_by, receipt_hash, envelope_sha256, envelope)"
            " VALUES (?, ?, 'web', 'en', 1, 'device', ?, ?, ?)",
            ((secrets.token_hex(16), NOW.isoformat(), os.urandom(32), os.urandom(32),
              os.urandom(size)) for _ in range(count)),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def _count(folder: Path) -> int:
    """Open the instance as the server does and count its reports."""
    config = load(folder, environ={})
    conn = store.open_ready(config.db_path, config.db_key, config.receipt_hash)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        return int(conn.execute("SELECT count(*) FROM reports").fetchone()[0])
    finally:
        conn.close()


def _key(folder: Path, name: str = "db.key") -> bytes:
    return bytes.fromhex((folder / name).read_text())


def test_rekey_gives_a_new_key_and_keeps_every_report(instance: instance_mod.Created) -> None:
    folder = instance.config.instance_dir
    _fill(folder, 25)
    old = _key(folder)
    rekey.run(load(folder, environ={}), {})
    assert _key(folder) != old
    assert stat.S_IMODE((folder / "db.key").stat().st_mode) == 0o600
    assert not (folder / "db.key.old").exists()
    assert not list(folder.glob(".db.key*"))
    assert _count(folder) == 25
    with pytest.raises(store.StoreError, match="key does not match"):
        store.connect(folder / "intake.db", old)


def test_rekey_refuses_a_key_from_the_environment(instance: instance_mod.Created) -> None:
    folder = instance.config.instance_dir
    env = {"INTAKE_DB_KEY": (folder / "db.key").read_text().strip()}
    before = (folder / "db.key").read_bytes()
    with pytest.raises(rekey.KeyInEnvironment, match="unset INTAKE_DB_KEY"):
        rekey.run(load(folder, environ=env), env)
    assert (folder / "db.key").read_bytes() == before
    assert _count(folder) == 0


def test_rekey_refuses_while_the_server_has_the_database_open(
    instance: instance_mod.Created,
) -> None:
    folder = instance.config.instance_dir
    _fill(folder, 3)
    before = (folder / "db.key").read_bytes()
    server = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        server.execute("SELECT count(*) FROM reports").fetchone()
        with pytest.raises(rekey.DatabaseInUse, match="stop the server"):
            rekey.run(load(folder, environ={}), {})
        # Nothing changed, and the server still reads and writes.
        assert (folder / "db.key").read_bytes() == before
        assert not (folder / "db.key.old").exists()
        assert server.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        server.execute("INSERT INTO meta (name, value) VALUES ('x', 'y')")
    finally:
        server.close()
    assert _count(folder) == 3


# Each step, as `rekey.run` calls them, over (folder, state) so a test can stop after any.
State = dict[str, object]
STEPS: list[tuple[str, Callable[[Path, State], None]]] = [
    ("lock", lambda f, s: s.update(conn=rekey.lock(f / "intake.db", _key(f)))),
    ("keep_old_key", lambda f, s: rekey.keep_old_key(f, _key(f))),
    ("write_new_key", lambda f, s: rekey.write_new_key(f, s["new"])),  # type: ignore[arg-type]
    ("rekey_database",
     lambda f, s: rekey.rekey_database(s["conn"], s["new"])),  # type: ignore[arg-type]
    ("finish", lambda f, s: (s["conn"].close(),  # type: ignore[attr-defined]
                             rekey.finish(f / "intake.db", s["new"]))),  # type: ignore[arg-type]
    ("forget_old_key", lambda f, s: rekey.forget_old_key(f)),
]
EXPECTED = {  # what --recover finds after a crash following each step
    0: rekey.Recovery.NOTHING, 1: rekey.Recovery.NOTHING, 2: rekey.Recovery.ROLLED_BACK,
    3: rekey.Recovery.ROLLED_BACK, 4: rekey.Recovery.FINISHED, 5: rekey.Recovery.FINISHED,
    6: rekey.Recovery.NOTHING,
}


@pytest.mark.parametrize("done", range(len(STEPS) + 1),
                         ids=["none", *(name for name, _ in STEPS)])
def test_a_crash_after_any_step_leaves_a_recoverable_instance(
    instance: instance_mod.Created, done: int
) -> None:
    folder = instance.config.instance_dir
    _fill(folder, 10)
    old, new = _key(folder), os.urandom(32)
    state: State = {"new": new}
    for _, step in STEPS[:done]:
        step(folder, state)
    conn = state.get("conn")
    if conn is not None:
        conn.close()  # type: ignore[attr-defined]  # what the process's death does

    if (folder / "db.key.old").exists():
        # Start-up says so, and serves nothing, until the rekey is sorted out.
        with pytest.raises(ConfigError, match="intake rekey --recover"):
            load(folder, environ={})
    assert rekey.recover(folder) is EXPECTED[done]
    assert _count(folder) == 10
    assert not (folder / "db.key.old").exists()
    committed = done >= 4
    assert _key(folder) == (new if committed else old)


def test_recover_refuses_when_neither_key_opens(instance: instance_mod.Created) -> None:
    folder = instance.config.instance_dir
    (folder / "db.key.old").write_text(os.urandom(32).hex())
    (folder / "db.key").write_text(os.urandom(32).hex())
    with pytest.raises(rekey.RekeyError, match=r"Neither db\.key nor db\.key\.old opens"):
        rekey.recover(folder)
    assert (folder / "db.key.old").exists()


_CHILD = """
import sys
from pathlib import Path
from intake import rekey
folder, new = Path(sys.argv[1]), bytes.fromhex(sys.argv[2])
old = bytes.fromhex((folder / "db.key").read_text())
conn = rekey.lock(folder / "intake.db", old)
rekey.keep_old_key(folder, old)
rekey.write_new_key(folder, new)
print("rekeying", flush=True)
rekey.rekey_database(conn, new)
print("committed", flush=True)
"""


def test_killing_the_process_inside_pragma_rekey_leaves_a_recoverable_instance(
    instance: instance_mod.Created, tmp_path: Path
) -> None:
    # A database large enough that PRAGMA rekey takes a while, killed at several moments.
    template = instance.config.instance_dir
    _fill(template, 2500, size=2000)
    outcomes = set()
    # Seconds after PRAGMA rekey starts; None: just after it commits.
    for delay in (0.0, 0.01, 0.03, 0.08, None):
        folder = tmp_path / f"killed-{delay}"
        shutil.copytree(template, folder)
        with subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(folder), os.urandom(32).hex()],
            stdout=subprocess.PIPE, text=True,
        ) as child:
            assert child.stdout is not None
            assert child.stdout.readline() == "rekeying\n"
            if delay is None:
                assert child.stdout.readline() == "committed\n"
            else:
                time.sleep(delay)
            child.send_signal(signal.SIGKILL)
        outcomes.add(rekey.recover(folder))
        assert _count(folder) == 2500
    # Killed before the commit at least once (rolled back), and after it (kept) once.
    assert outcomes == {rekey.Recovery.ROLLED_BACK, rekey.Recovery.FINISHED}
