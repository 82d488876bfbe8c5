"""`intake doctor` on a real installed instance: clean, then with each fault of a list
planted in turn. Each fault gives problems, every one a single sentence with its fix."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from intake import backup, create_app, crypto, doctor, reach, reports, store
from intake import instance as instance_mod
from intake.cli import main
from intake.config import Config, load

from support import PASSPHRASE

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@dataclass
class Installed:
    """An instance as deploy/README.md lays it out: the organisation key file elsewhere,
    backups in their own folder."""

    created: instance_mod.Created
    backups: Path
    options: doctor.Options
    now: datetime

    @property
    def folder(self) -> Path:
        return self.created.config.instance_dir

    def examine(self, **environ: str) -> list[doctor.Finding]:
        return doctor.examine(self.folder, self.options, environ=environ, now=self.now,
                              euid=os.geteuid())

    def problems(self, **environ: str) -> list[str]:
        return [f.text for f in self.examine(**environ) if f.problem]


@pytest.fixture(scope="module")
def backup_public_key() -> crypto.PublicKey:
    # Its private half is not needed: doctor checks a backup without opening it.
    return crypto.generate_private_key().public_key


@pytest.fixture
def installed(tmp_path: Path, backup_public_key: crypto.PublicKey) -> Installed:
    # Production hash settings (no report is hashed here, so they cost nothing) and secure
    # cookies, as on a real instance; a backup key, and two real backups.
    (tmp_path / "officer").mkdir()
    created = instance_mod.create(
        tmp_path / "srv" / "instance", key_out=tmp_path / "officer" / "organisation.key",
        passphrase=PASSPHRASE, secure_cookies=True,
    )
    config_file = created.config.instance_dir / "config.toml"
    config_file.write_text(backup.with_backup_key(config_file.read_text(encoding="utf-8"),
                                                  backup_public_key, replace=False),
                           encoding="utf-8")
    backups = tmp_path / "backups"
    backups.mkdir(mode=0o700)
    now = reports.utcnow()
    config = load(created.config.instance_dir)
    # The name `intake backup` gives by default, and one chosen with --output.
    _backup(config, backups / "backup-20260101T000000Z.bin", now - timedelta(hours=30))
    _backup(config, backups / "nightly.bin", now - timedelta(hours=3))
    options = doctor.Options(key_file=created.key_file, backups_dir=backups, min_free=1)
    return Installed(created, backups, options, now)


def _backup(config: Config, path: Path, made: datetime) -> Path:
    backup.create(config, path, now=made)
    os.utime(path, (made.timestamp(), made.timestamp()))
    return path


def _one_sentence_with_its_fix(text: str) -> bool:
    # One sentence: it ends with a full stop and no other sentence starts inside it; the fix
    # follows the colon.
    return (text.endswith(".") and ": " in text
            and re.search(r"[.!?] [A-Z]", text.replace("e.g. ", "")) is None)


def test_a_sound_instance_has_no_problem(installed: Installed) -> None:
    findings = installed.examine()
    assert [f.text for f in findings if f.problem] == []
    checks = {f.check for f in findings if not f.skipped}
    assert checks == {"keys", "permissions", "config", "database", "clock", "disk", "backups"}


def _wrong_key(inst: Installed) -> None:
    other = inst.folder.parent.parent / "other.key"
    other.write_bytes(crypto.write_key_file(crypto.generate_private_key(), PASSPHRASE))
    inst.options = replace(inst.options, key_file=other)


def _world_readable_key(inst: Installed) -> None:
    (inst.folder / "pepper.key").chmod(0o644)


def _missing_backup(inst: Installed) -> None:
    for path in inst.backups.iterdir():
        path.unlink()


def _low_disk(inst: Installed) -> None:
    inst.options = replace(inst.options, min_free=1 << 60)  # an exbibyte: no disk has it


def _damaged_backup(inst: Installed) -> None:
    newest = inst.backups / "nightly.bin"
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 1
    made = newest.stat().st_mtime
    newest.write_bytes(bytes(data))
    os.utime(newest, (made, made))


def _no_backup_key(inst: Installed) -> None:
    path = inst.folder / "config.toml"
    path.write_text(re.sub(r"(?m)^backup_key *=.*$", "", path.read_text()))


def _old_backup(inst: Installed) -> None:
    for path in inst.backups.iterdir():
        made = inst.now - timedelta(days=5)
        os.utime(path, (made.timestamp(), made.timestamp()))


def _missing_secret(inst: Installed) -> None:
    (inst.folder / "audit.key").unlink()


def _damaged_receipt_key(inst: Installed) -> None:
    (inst.folder / "receipt.key").write_text("00ff\n")


def _wrong_database_key(inst: Installed) -> None:
    (inst.folder / "db.key").write_text(os.urandom(32).hex() + "\n")


def _open_folder(inst: Installed) -> None:
    inst.folder.chmod(0o755)


def _writable_config(inst: Installed) -> None:
    (inst.folder / "config.toml").chmod(0o666)


def _stray_private_key(inst: Installed) -> None:
    # `intake init` run in /var/lib/intake writes organisation.key there by default.
    (inst.folder.parent / "organisation.key").write_bytes(inst.created.key_file.read_bytes())


def _insecure_cookies(inst: Installed) -> None:
    path = inst.folder / "config.toml"
    path.write_text(path.read_text().replace("secure_cookies = true", "secure_cookies = false"))


def _broken_config(inst: Installed) -> None:
    path = inst.folder / "config.toml"
    path.write_text(path.read_text().replace("organisation = ", "organisation == "))


def _clock_set_back(inst: Installed) -> None:
    # A report arrived "later" than the machine's clock says it is now.
    config = inst.created.config
    conn = store.connect(config.db_path, config.db_key)
    try:
        store.insert_report(conn, store.NewReport(
            report_id=os.urandom(16).hex(), received_at=inst.now + timedelta(days=2),
            channel="web", language="en", schema=1, sealed_by="device",
            receipt_hash=os.urandom(32), envelope=b"sealed"))
    finally:
        conn.close()


def _dead_clock_battery(inst: Installed) -> None:
    inst.now = datetime(2000, 1, 1, tzinfo=UTC)


def _plain_http_address(inst: Installed) -> None:
    inst.options = replace(inst.options, url="http://intake.example.org")


FAULTS: dict[str, tuple[Callable[[Installed], None], list[str]]] = {
    # The four of the issue.
    "wrong key": (_wrong_key, ["does not list the key", "other.key", "[[keys]]"]),
    "world-readable key file": (_world_readable_key, ["pepper.key", "every user",
                                                      "chmod 600"]),
    "missing backup": (_missing_backup, ["There is no backup", "intake-backup.timer"]),
    "low disk": (_low_disk, ["MiB are free", "--min-free-mib", "no report can be stored"]),
    # And more that an administrator meets.
    "old backup": (_old_backup, ["hours old", "journalctl -u intake-backup"]),
    "damaged backup": (_damaged_backup, ["nightly.bin, is damaged", "intake verify-backup"]),
    "no backup key": (_no_backup_key, ["no backup key", "intake backup-key --key-out"]),
    "missing secret": (_missing_secret, ["audit.key is missing", "restore it"]),
    "damaged receipt key": (_damaged_receipt_key, ["receipt.key is damaged"]),
    "wrong database key": (_wrong_database_key, ["does not open with its key", "backup"]),
    "folder open to others": (_open_folder, ["chmod 700"]),
    "config writable by others": (_writable_config, ["config.toml", "chmod 644"]),
    "private key on the server": (_stray_private_key, ["organisation.key is a private key "
                                                       "file on the server", "shred -u"]),
    "insecure cookies": (_insecure_cookies, ["secure_cookies = false", "set it to true"]),
    "broken config": (_broken_config, ["not valid TOML", "docs/configuration.md"]),
    "clock set back": (_clock_set_back, ["later than this machine's clock", "timedatectl"]),
    "dead clock battery": (_dead_clock_battery, ["2000-01-01", "cannot be right",
                                                 "timedatectl set-time"]),
    "plain http address": (_plain_http_address, ["plain HTTP", "Caddyfile"]),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_doctor_finds_a_planted_fault(installed: Installed, fault: str) -> None:
    plant, expected = FAULTS[fault]
    plant(installed)
    problems = installed.problems()
    assert problems, f"no problem found for {fault}"
    text = " ".join(problems)
    for words in expected:
        assert words in text
    for sentence in problems:
        assert _one_sentence_with_its_fix(sentence), sentence


def test_a_database_key_from_the_environment(installed: Installed) -> None:
    key = (installed.folder / "db.key").read_text().strip()
    (installed.folder / "db.key").unlink()
    assert installed.problems(INTAKE_DB_KEY=key) == []
    assert any("INTAKE_DB_KEY is not 64" in p for p in installed.problems(INTAKE_DB_KEY="12"))


def test_a_file_of_another_owner(installed: Installed) -> None:
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    os.chown(installed.folder / "session.key", 65534, 65534)
    (problem,) = installed.problems()
    assert "session.key belongs to" in problem and "chown" in problem


def test_doctor_as_another_user_says_how_to_run_it(installed: Installed) -> None:
    findings = doctor.examine(installed.folder, installed.options, environ={},
                              now=installed.now, euid=os.geteuid() + 1)
    (problem,) = [f.text for f in findings if f.problem]
    assert "sudo -u" in problem
    assert "database" not in {f.check for f in findings}  # not opened as someone else


def test_cli_exit_status_and_output(installed: Installed, runner: CliRunner) -> None:
    args = ["--instance", str(installed.folder), "doctor", "--key",
            str(installed.created.key_file), "--backups", str(installed.backups),
            "--min-free-mib", "0"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "No problems found."
    assert re.search(r"^skipped +https +HTTPS was not checked", result.output, re.M)
    _world_readable_key(installed)
    result = runner.invoke(main, args)
    assert result.exit_code == 1
    assert re.search(r"^problem +permissions +.*pepper\.key", result.output, re.M)
    assert "1 problem(s); each line above says how to fix it." in result.output


@pytest.fixture
def served(installed: Installed) -> Iterator[str]:
    """The instance's app on http://127.0.0.1, as on an officer's own laptop."""
    server = make_server("127.0.0.1", 0, create_app(installed.created.config), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def test_a_loopback_address_is_a_secure_context_here_only(installed: Installed,
                                                          served: str) -> None:
    findings, server_date = reach.check_url(served, language="en", ca_file=None,
                                            now=reports.utcnow())
    (finding,) = findings
    assert not finding.problem and "on this machine only" in finding.text
    assert server_date is not None and abs(server_date - reports.utcnow()) < timedelta(minutes=1)


def test_an_unreachable_address(tmp_path: Path) -> None:
    from deploy_stack import free_port

    findings, _ = reach.check_url(f"http://127.0.0.1:{free_port()}", language="en",
                                  ca_file=None, now=NOW)
    (finding,) = findings
    assert finding.problem and "Cannot reach" in finding.text and "systemctl status" in finding.text


def test_an_untrusted_certificate(tmp_path: Path) -> None:
    """A field office's Caddy, without its root: what a tablet that skipped the install sees."""
    from deploy_stack import LAN_NAME, caddy_lan, free_port

    with caddy_lan(tmp_path / "caddy", free_port()) as caddy:
        findings, _ = reach.check_url(caddy.url, language="en", ca_file=None, now=NOW,
                                      connect_to="127.0.0.1")
    (finding,) = findings
    assert finding.problem and f"certificate of {LAN_NAME} is not signed" in finding.text
    assert "--ca" in finding.text


def _response(headers: dict[str, str], cert: dict[str, Any] | None = None,
              status: int = 200) -> reach.Fetched:
    message = Message()
    for name, value in headers.items():
        message[name] = value
    return reach.Fetched(status, message, b"", cert)


def test_what_https_must_carry() -> None:
    good = {"Content-Security-Policy": "default-src 'none'",
            "Strict-Transport-Security": "max-age=31536000"}
    worker = _response({"Content-Type": "text/javascript"})
    assert reach.check_responses("https://x", "en", worker, _response(good)) == []
    (bad_type,) = reach.check_responses("https://x", "en", _response({"Content-Type": "text/html"}),
                                        _response(good))
    assert "not served as JavaScript" in bad_type.text
    (no_csp,) = reach.check_responses("https://x", "en", worker, _response({}))
    assert "Content-Security-Policy" in no_csp.text
    (down,) = reach.check_responses("https://x", "en", worker, _response(good, status=502))
    assert "answered 502" in down.text

    valid = {"notBefore": "May 20 00:00:00 2026 GMT", "notAfter": "Aug 18 00:00:00 2026 GMT"}
    assert reach.check_https("https://x", "x", _response(good, valid), NOW) == []
    (no_hsts,) = reach.check_https("https://x", "x", _response({}, valid), NOW)
    assert "Strict-Transport-Security" in no_hsts.text
    ending = {"notBefore": "Mar 5 00:00:00 2026 GMT", "notAfter": "Jun 3 00:00:00 2026 GMT"}
    (renewal,) = reach.check_https("https://x", "x", _response(good, ending), NOW)
    assert "has not renewed it" in renewal.text
    for finding in (bad_type, no_csp, down, no_hsts, renewal):
        assert _one_sentence_with_its_fix(finding.text), finding.text
