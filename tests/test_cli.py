"""The `intake` command, through click's runner: init, decrypt, and their errors."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from click.testing import CliRunner

from intake import crypto, receipts, reports, store
from intake.cli import main
from intake.config import load

from support import PASSPHRASE


def _init(runner: CliRunner, tmp_path: Path, *extra: str):  # type: ignore[no-untyped-def]
    passfile = tmp_path / "pass.txt"
    passfile.write_text(PASSPHRASE + "\n", encoding="utf-8")
    return runner.invoke(main, ["--instance", str(tmp_path / "inst"), "init",
                                "--passphrase-file", str(passfile),
                                "--key-out", str(tmp_path / "org.key"), *extra])


def test_init_creates_an_instance_with_private_secrets(runner: CliRunner, tmp_path: Path) -> None:
    result = _init(runner, tmp_path)
    assert result.exit_code == 0, result.output
    key = crypto.read_key_file((tmp_path / "org.key").read_bytes(), PASSPHRASE)
    assert crypto.fingerprint(key.public_key.key_id) in result.output
    assert "Move the private key file off this server" in result.output
    inst = tmp_path / "inst"
    for name in ("db.key", "pepper.key", "session.key"):
        assert stat.S_IMODE((inst / name).stat().st_mode) == 0o600
        assert len(bytes.fromhex((inst / name).read_text().strip())) == 32
    assert stat.S_IMODE((tmp_path / "org.key").stat().st_mode) == 0o600
    config = load(inst, environ={})
    assert config.recipients == (key.public_key,)
    assert config.receipt_hash.memory_kib >= 65536  # production default, never weaker
    assert not list(inst.glob("*.key.json")) and "PRIVATE" not in (inst / "config.toml").read_text()


def test_init_refuses_to_overwrite(runner: CliRunner, tmp_path: Path) -> None:
    assert _init(runner, tmp_path).exit_code == 0
    before = (tmp_path / "inst" / "db.key").read_text()
    (tmp_path / "org.key").rename(tmp_path / "moved.key")
    again = _init(runner, tmp_path)
    assert again.exit_code != 0 and "already holds an instance" in again.output
    assert (tmp_path / "inst" / "db.key").read_text() == before


def test_init_refuses_a_key_inside_the_instance(runner: CliRunner, tmp_path: Path) -> None:
    passfile = tmp_path / "pass.txt"
    passfile.write_text(PASSPHRASE, encoding="utf-8")
    result = runner.invoke(main, ["--instance", str(tmp_path / "inst"), "init", "--passphrase-file",
                                  str(passfile), "--key-out", str(tmp_path / "inst" / "org.key")])
    assert result.exit_code != 0 and "inside the instance folder" in result.output


def test_init_refuses_a_short_passphrase(runner: CliRunner, tmp_path: Path) -> None:
    passfile = tmp_path / "pass.txt"
    passfile.write_text("short", encoding="utf-8")
    result = runner.invoke(main, ["--instance", str(tmp_path / "inst"), "init",
                                  "--passphrase-file", str(passfile), "--key-out", str(tmp_path / "k")])
    assert result.exit_code != 0 and "at least 12 characters" in result.output


def test_decrypt_all_or_named_reports(runner: CliRunner, instance, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    ids = []
    for text in ("first-report-text", "second-report-text"):
        data = crypto.seal({"schema": 1, "what": text}, instance.config.recipients)
        ids.append(reports.accept_envelope(conn, instance.config, data=data,
                                           receipt_code=receipts.new_code(), language="en").report_id)
    conn.close()
    passfile = tmp_path / "pass.txt"
    passfile.write_text(PASSPHRASE, encoding="utf-8")
    base = ["--instance", str(instance.config.instance_dir), "decrypt", "--key",
            str(instance.key_file), "--passphrase-file", str(passfile)]
    everything = runner.invoke(main, base)
    assert everything.exit_code == 0, everything.output
    assert [d["report"]["what"] for d in json.loads(everything.stdout)] == [
        "first-report-text", "second-report-text"]
    named = runner.invoke(main, [*base, ids[1]])
    assert [d["report_id"] for d in json.loads(named.stdout)] == [ids[1]]
    out = tmp_path / "out"
    to_dir = runner.invoke(main, [*base, "--out", str(out)])
    assert to_dir.exit_code == 0
    assert json.loads((out / f"{ids[0]}.json").read_text())["report"]["what"] == "first-report-text"
    assert stat.S_IMODE((out / f"{ids[0]}.json").stat().st_mode) == 0o600
    unknown = runner.invoke(main, [*base, "0" * 32])
    assert unknown.exit_code != 0 and "No report with id" in unknown.output


def test_decrypt_with_a_wrong_passphrase_says_so(runner: CliRunner, instance, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    passfile = tmp_path / "pass.txt"
    passfile.write_text("not the passphrase at all", encoding="utf-8")
    result = runner.invoke(main, ["--instance", str(instance.config.instance_dir), "decrypt",
                                  "--key", str(instance.key_file), "--passphrase-file", str(passfile)])
    assert result.exit_code == 1 and "wrong passphrase" in result.output


def test_missing_instance_is_one_clear_sentence(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["--instance", str(tmp_path / "nowhere"), "serve"])
    assert result.exit_code == 1 and "run `intake init` first" in result.output


def test_wrong_database_key_stops_start_up(runner: CliRunner, instance, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wrong = "11" * 32
    result = runner.invoke(main, ["--instance", str(instance.config.instance_dir), "serve"],
                           env={"INTAKE_DB_KEY": wrong})
    assert result.exit_code == 1 and "database key does not match" in result.output


def test_every_command_has_help(runner: CliRunner) -> None:
    for command in ("init", "serve", "decrypt", "demo", "focal", "import"):
        result = runner.invoke(main, [command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output


def test_missing_argument_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(main, ["decrypt"])
    assert result.exit_code == 2 and "Missing option '--key'" in result.output
