"""`intake user ...` and `intake audit verify`, through click's runner on a real instance."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from click.testing import CliRunner, Result

from intake import accounts, audit, crypto, reports, store
from intake.cli import main
from intake.instance import Created


class Cli:
    """The `intake` command on one instance."""

    def __init__(self, runner: CliRunner, instance: Created) -> None:
        self.runner, self.instance = runner, instance

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(
            main, ["--instance", str(self.instance.config.instance_dir), *args])


@pytest.fixture
def cli(runner: CliRunner, instance: Created) -> Cli:
    return Cli(runner, instance)


@contextmanager
def _db(instance: Created) -> Iterator[store.Connection]:
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    try:
        yield conn
    finally:
        conn.close()


def _code(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def _set_up(instance: Created, username: str, code: str, password: str = "a long password") -> bytes:  # noqa: S107
    """What the officer does with the code on /console/setup; returns the app's secret."""
    now = reports.utcnow()
    with _db(instance) as conn:
        secret = accounts.begin_setup(conn, username=username, code=code, password=password,
                                      params=instance.config.password_hash, now=now)
        accounts.finish_setup(conn, instance.config.audit_key, username=username, code=code,
                              totp_code=crypto.totp_code(secret, at=now.timestamp()), now=now)
    return secret


def _states(cli: Cli) -> list[list[str]]:
    listed = cli("user", "list")
    assert listed.exit_code == 0, listed.output
    return [line.split() for line in listed.output.splitlines()]


def test_user_add_prints_a_set_up_code_that_works(cli: Cli, instance: Created) -> None:
    added = cli("user", "add", "Alice", "--role", "officer")
    assert "Give alice this set-up code" in added.output and "72 hours" in added.output
    code = _code(added)
    assert len(code.replace("-", "")) == 26
    assert _states(cli) == [["alice", "officer", "waiting"]]
    secret = _set_up(instance, "alice", code)
    assert _states(cli) == [["alice", "officer", "active"]]
    later = reports.utcnow() + timedelta(minutes=1)
    with _db(instance) as conn:
        user = accounts.authenticate(
            conn, instance.config.audit_key, username="alice", password="a long password",
            totp_code=crypto.totp_code(secret, at=later.timestamp()),
            params=instance.config.password_hash, now=later)
    assert user.role == "officer"


def test_user_add_refuses_a_taken_or_invalid_name_or_role(cli: Cli) -> None:
    assert cli("user", "add", "alice", "--role", "admin").exit_code == 0
    taken = cli("user", "add", "ALICE", "--role", "officer")
    assert taken.exit_code == 1 and "already an account called alice" in taken.output
    invalid = cli("user", "add", "a b", "--role", "officer")
    assert invalid.exit_code == 1 and "2 to 32 characters" in invalid.output
    role = cli("user", "add", "bob", "--role", "root")
    assert role.exit_code == 2 and "'root' is not one of" in role.output
    assert _states(cli) == [["alice", "admin", "waiting"]]


def test_user_list_orders_by_name_with_each_state(cli: Cli, instance: Created) -> None:
    for name, role in (("carol", "analyst"), ("alice", "admin"), ("bob", "officer")):
        code = _code(cli("user", "add", name, "--role", role))
        if name != "carol":
            _set_up(instance, name, code)
    assert cli("user", "disable", "bob").exit_code == 0
    assert _states(cli) == [["alice", "admin", "active"], ["bob", "officer", "disabled"],
                            ["carol", "analyst", "waiting"]]


def test_user_reset_replaces_password_and_app_with_a_new_code(cli: Cli, instance: Created) -> None:
    first = _code(cli("user", "add", "alice", "--role", "officer"))
    old_secret = _set_up(instance, "alice", first)
    reset = cli("user", "reset", "ALICE")
    code = _code(reset)
    assert code != first and "set-up code" in reset.output
    assert _states(cli) == [["alice", "officer", "waiting"]]
    later = reports.utcnow() + timedelta(minutes=1)
    with _db(instance) as conn, pytest.raises(accounts.LoginRefused):
        accounts.authenticate(
            conn, instance.config.audit_key, username="alice", password="a long password",
            totp_code=crypto.totp_code(old_secret, at=later.timestamp()),
            params=instance.config.password_hash, now=later)
    assert _set_up(instance, "alice", code, "another long password") != old_secret
    missing = cli("user", "reset", "nobody")
    assert missing.exit_code == 1 and "There is no account called nobody." in missing.output


def test_user_disable(cli: Cli) -> None:
    _code(cli("user", "add", "alice", "--role", "officer"))
    done = cli("user", "disable", "alice")
    assert done.exit_code == 0 and "alice is disabled." in done.output
    again = cli("user", "disable", "alice")
    assert again.exit_code == 1 and "no such active account" in again.output
    missing = cli("user", "disable", "nobody")
    assert missing.exit_code == 1 and "There is no account called nobody." in missing.output


def test_audit_verify_passes_then_names_the_entry_edited(cli: Cli, instance: Created) -> None:
    empty = cli("audit", "verify")
    assert empty.exit_code == 0 and "intact: 0 entries" in empty.output
    for name in ("alice", "bob"):
        _code(cli("user", "add", name, "--role", "officer"))
    assert cli("user", "disable", "bob").exit_code == 0
    intact = cli("audit", "verify")
    with _db(instance) as conn:
        _, head = audit.verify(conn, instance.config.audit_key)
    assert intact.exit_code == 0, intact.output
    assert "intact: 3 entries" in intact.output and head in intact.output
    with _db(instance) as conn, store.transaction(conn):
        conn.execute("""UPDATE audit_log SET detail = '{"role":"admin","user":2}' WHERE seq = 2""")
    broken = cli("audit", "verify")
    assert broken.exit_code == 1
    assert "The audit log was tampered with: entry 2 was changed, moved or forged." in broken.output
    assert head not in broken.output


def test_audit_verify_sees_entries_cut_from_the_end(cli: Cli, instance: Created) -> None:
    for name in ("alice", "bob"):
        _code(cli("user", "add", name, "--role", "officer"))
    with _db(instance) as conn, store.transaction(conn):
        conn.execute("DELETE FROM audit_log WHERE seq = 2")
    broken = cli("audit", "verify")
    assert broken.exit_code == 1 and "entries were deleted from the end" in broken.output


def test_audit_verify_with_another_audit_key_fails(cli: Cli, instance: Created) -> None:
    _code(cli("user", "add", "alice", "--role", "officer"))
    (instance.config.instance_dir / "audit.key").write_text("22" * 32 + "\n")
    broken = cli("audit", "verify")
    assert broken.exit_code == 1 and "The audit log was tampered with" in broken.output


@pytest.mark.parametrize("command", [["user"], ["user", "add"], ["user", "list"], ["user", "reset"],
                                     ["user", "disable"], ["audit"], ["audit", "verify"]])
def test_every_console_command_has_help(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(main, [*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
