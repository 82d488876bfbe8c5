"""`intake backup-key`, `backup`, `verify-backup`, `restore` and `rekey`, through click's runner."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from intake import crypto, receipts, reports, store
from intake import instance as instance_mod
from intake.cli import main

from support import PASSPHRASE

NEW_COMMANDS = ("backup-key", "backup", "verify-backup", "restore", "rekey")


@pytest.fixture
def passfile(tmp_path: Path) -> Path:
    path = tmp_path / "pass.txt"
    path.write_text(PASSPHRASE + "\n", encoding="utf-8")
    return path


def _run(runner: CliRunner, folder: Path, *args: str, **env: str) -> Result:
    return runner.invoke(main, ["--instance", str(folder), *args], env=env or None)


def _with_reports(instance: instance_mod.Created, *texts: str) -> None:
    config = instance.config
    conn = store.connect(config.db_path, config.db_key)
    for text in texts:
        data = crypto.seal({"schema": 1, "what": text}, config.recipients)
        reports.accept_envelope(conn, config, data=data, receipt_code=receipts.new_code(),
                                language="en")
    conn.close()


def test_back_up_verify_restore_decrypt_and_rekey(
    runner: CliRunner, instance: instance_mod.Created, passfile: Path, tmp_path: Path
) -> None:
    folder = instance.config.instance_dir
    _with_reports(instance, "first-report-text", "second-report-text")
    made_key = _run(runner, folder, "backup-key", "--key-out", str(tmp_path / "backup.key"),
                    "--passphrase-file", str(passfile))
    assert made_key.exit_code == 0, made_key.output
    assert "Move the backup key file off this server" in made_key.output

    made = _run(runner, folder, "backup", "--output", str(tmp_path / "backup.bin"))
    assert made.exit_code == 0, made.output
    assert "2 report(s)" in made.output

    intact = runner.invoke(main, ["verify-backup", str(tmp_path / "backup.bin")])
    assert intact.exit_code == 0 and "Intact" in intact.output
    assert "Contents not checked" in intact.output
    full = runner.invoke(main, ["verify-backup", str(tmp_path / "backup.bin"), "--key",
                                str(tmp_path / "backup.key"), "--passphrase-file", str(passfile)])
    assert full.exit_code == 0, full.output
    assert "2 report(s)" in full.output and "passes integrity_check" in full.output

    fresh = tmp_path / "fresh"
    restored = runner.invoke(main, ["restore", str(tmp_path / "backup.bin"), "--instance",
                                    str(fresh), "--key", str(tmp_path / "backup.key"),
                                    "--passphrase-file", str(passfile)])
    assert restored.exit_code == 0, restored.output
    assert crypto.fingerprint(instance.key_id) in restored.output

    decrypt = ["decrypt", "--key", str(instance.key_file), "--passphrase-file", str(passfile)]
    opened = _run(runner, fresh, *decrypt)
    assert opened.exit_code == 0, opened.output
    assert [d["report"]["what"] for d in json.loads(opened.stdout)] == [
        "first-report-text", "second-report-text"]

    before = (fresh / "db.key").read_text()
    rekeyed = _run(runner, fresh, "rekey")
    assert rekeyed.exit_code == 0, rekeyed.output
    assert (fresh / "db.key").read_text() != before
    assert len(json.loads(_run(runner, fresh, *decrypt).stdout)) == 2
    nothing = _run(runner, fresh, "rekey", "--recover")
    assert nothing.exit_code == 0 and "No interrupted rekey" in nothing.output


def test_a_wrong_key_or_a_damaged_file_is_one_clear_sentence(
    runner: CliRunner, instance: instance_mod.Created, passfile: Path, tmp_path: Path
) -> None:
    folder = instance.config.instance_dir
    assert _run(runner, folder, "backup-key", "--key-out", str(tmp_path / "backup.key"),
                "--passphrase-file", str(passfile)).exit_code == 0
    assert _run(runner, folder, "backup", "--output", str(tmp_path / "b.bin")).exit_code == 0

    wrong = runner.invoke(main, ["verify-backup", str(tmp_path / "b.bin"), "--key",
                                 str(instance.key_file), "--passphrase-file", str(passfile)])
    assert wrong.exit_code == 1
    assert "is intact, but this backup key does not open it" in wrong.output

    restore = runner.invoke(main, ["restore", str(tmp_path / "b.bin"), "--instance",
                                   str(tmp_path / "fresh"), "--key", str(instance.key_file),
                                   "--passphrase-file", str(passfile)])
    assert restore.exit_code == 1 and "does not open it" in restore.output
    assert not (tmp_path / "fresh" / "config.toml").exists()

    (tmp_path / "bad.txt").write_text("not the passphrase at all")
    bad = runner.invoke(main, ["verify-backup", str(tmp_path / "b.bin"), "--key",
                               str(tmp_path / "backup.key"), "--passphrase-file",
                               str(tmp_path / "bad.txt")])
    assert bad.exit_code == 1 and "wrong passphrase" in bad.output

    data = bytearray((tmp_path / "b.bin").read_bytes())
    data[len(data) // 2] ^= 0x04
    (tmp_path / "b.bin").write_bytes(bytes(data))
    damaged = runner.invoke(main, ["verify-backup", str(tmp_path / "b.bin")])
    assert damaged.exit_code == 1 and "SHA-256 does not match" in damaged.output


def test_backup_without_a_backup_key_says_what_to_do(
    runner: CliRunner, instance: instance_mod.Created, tmp_path: Path
) -> None:
    result = _run(runner, instance.config.instance_dir, "backup", "--output",
                  str(tmp_path / "b.bin"))
    assert result.exit_code == 1 and "intake backup-key --key-out" in result.output
    assert not (tmp_path / "b.bin").exists()


def test_restore_refuses_to_overwrite_an_instance(
    runner: CliRunner, instance: instance_mod.Created, passfile: Path, tmp_path: Path
) -> None:
    folder = instance.config.instance_dir
    _run(runner, folder, "backup-key", "--key-out", str(tmp_path / "backup.key"),
         "--passphrase-file", str(passfile))
    _run(runner, folder, "backup", "--output", str(tmp_path / "b.bin"))
    base = ["restore", str(tmp_path / "b.bin"), "--key", str(tmp_path / "backup.key"),
            "--passphrase-file", str(passfile)]
    refused = _run(runner, folder, *base)
    assert refused.exit_code == 1 and "already holds an instance" in refused.output
    moved = _run(runner, folder, *base, "--overwrite")
    assert moved.exit_code == 0 and "replaced-" in moved.output


def test_rekey_refuses_intake_db_key_and_an_interrupted_rekey_is_named(
    runner: CliRunner, instance: instance_mod.Created
) -> None:
    folder = instance.config.instance_dir
    key = (folder / "db.key").read_text().strip()
    refused = _run(runner, folder, "rekey", INTAKE_DB_KEY=key)
    assert refused.exit_code == 1 and "unset INTAKE_DB_KEY" in refused.output

    (folder / "db.key.old").write_text(key)
    (folder / "db.key").write_text(os.urandom(32).hex())  # as if killed after step 3
    for command in (["serve"], ["rekey"], ["focal", "list"]):
        stopped = _run(runner, folder, *command)
        assert stopped.exit_code == 1 and "intake rekey --recover" in stopped.output
    recovered = _run(runner, folder, "rekey", "--recover")
    assert recovered.exit_code == 0 and "old key, which opens the database" in recovered.output
    assert (folder / "db.key").read_text() == key


def test_every_new_command_has_help(runner: CliRunner) -> None:
    for command in NEW_COMMANDS:
        result = runner.invoke(main, [command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, command
    missing = runner.invoke(main, ["restore", "x"])
    assert missing.exit_code == 2
