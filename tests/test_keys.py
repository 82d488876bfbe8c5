"""Rotating the organisation key (intake/keys.py): a new key beside the old, then the old one
retired. New reports go to the new key; envelopes already sealed to the old one (an offline
tablet's queue) are accepted for a grace period; old reports stay readable with the old key
file, through `intake decrypt`, a backup and its restore."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask.testing import FlaskClient

from intake import backup, cases, create_app, crypto, keys, receipts, reports, store
from intake import envelope as fmt
from intake import instance as instance_mod
from intake.cli import main
from intake.config import Config, ConfigError, Retention, RetiredKey, load

from support import PASSPHRASE, T0, add_backup_key, enrol, file_report, seal_note
from test_console import Person

TODAY = date(2026, 3, 1)


@pytest.fixture
def passfile(tmp_path: Path) -> Path:
    path = tmp_path / "pass.txt"
    path.write_text(PASSPHRASE + "\n", encoding="utf-8")
    return path


def _run(runner: CliRunner, folder: Path, *args: str) -> Result:
    return runner.invoke(main, ["--instance", str(folder), *args])


def _submit(client: FlaskClient, data: bytes) -> tuple[int, str]:
    answer = client.post("/api/reports", json={"envelope": crypto.b64encode(data),
                                               "receipt_code": receipts.new_code(),
                                               "language": "en"})
    return answer.status_code, answer.get_json().get("error", "")


def _page_keys(client: FlaskClient) -> list[str]:
    page = client.get("/en/").text
    start = page.index('id="page-data"')
    data = json.loads(page[page.index(">", start) + 1: page.index("</script>", start)])
    return list(data["keys"])


def test_rotation_end_to_end(runner: CliRunner, instance: instance_mod.Created,
                             passfile: Path, tmp_path: Path) -> None:
    folder = instance.config.instance_dir
    old = instance.config.recipients[0]
    conn = store.connect(instance.config.db_path, instance.config.db_key)
    before = reports.seal_on_server(conn, instance.config, payload={"schema": 1,
                                    "what": "before rotation"}, language="en")
    # A tablet sealed this one to the old key and is still offline with it.
    queued = crypto.seal({"schema": 1, "what": "queued on a tablet"}, [old])
    conn.close()

    # 1. A new key beside the old one: new reports are sealed to both.
    added = _run(runner, folder, "key", "add", "--key-out", str(tmp_path / "new.key"),
                 "--passphrase-file", str(passfile))
    assert added.exit_code == 0, added.output
    new_file = tmp_path / "new.key"
    new = crypto.read_key_file(new_file.read_bytes(), PASSPHRASE)
    assert crypto.fingerprint(new.public_key.key_id) in added.output
    both = load(folder, environ={})
    assert both.recipients == (old, new.public_key) and both.retired_keys == ()
    assert _page_keys(create_app(both).test_client()) == [old.text, new.public_key.text]

    # 2. The old key retired: new reports go to the new key alone.
    retired = _run(runner, folder, "key", "retire", old.key_id.hex()[:12], "--grace-days", "30")
    assert retired.exit_code == 0, retired.output
    config = load(folder, environ={})
    until = datetime.now(UTC).date() + timedelta(days=30)
    assert config.recipients == (new.public_key,)
    assert config.retired_keys == (RetiredKey(old, until),)
    listed = _run(runner, folder, "key", "list").output
    assert f"{crypto.fingerprint(new.public_key.key_id)}  in use" in listed
    assert f"{crypto.fingerprint(old.key_id)}  retired, accepted until {until}" in listed
    client = create_app(config).test_client()
    assert _page_keys(client) == [new.public_key.text]
    conn = store.connect(config.db_path, config.db_key)
    after = reports.seal_on_server(conn, config, payload={"schema": 1, "what": "after"},
                                   language="en")
    stored = {e.report_id: e.envelope for e in store.envelopes(conn)}
    conn.close()
    assert [e.key_id for e in fmt.parse(stored[after.report_id], max_size=1 << 20).recipients
            ] == [new.public_key.key_id]

    # 3. The tablet comes back online within the grace period: its report is accepted.
    assert _submit(client, queued)[0] == 201

    # 4. Old reports stay readable with the old key file; `decrypt` takes both files.
    both_keys = _run(runner, folder, "decrypt", "--key", str(instance.key_file), "--key",
                     str(new_file), "--passphrase-file", str(passfile))
    assert both_keys.exit_code == 0, both_keys.output
    texts = sorted(d["report"]["what"] for d in json.loads(both_keys.output))
    assert texts == ["after", "before rotation", "queued on a tablet"]
    old_only = _run(runner, folder, "decrypt", "--key", str(instance.key_file),
                    "--passphrase-file", str(passfile), before.report_id)
    assert old_only.exit_code == 0
    assert json.loads(old_only.output)[0]["report"]["what"] == "before rotation"
    new_only = _run(runner, folder, "decrypt", "--key", str(new_file), "--passphrase-file",
                    str(passfile))
    assert new_only.exit_code == 1
    assert "2 report(s) or attachment(s) could not be opened" in new_only.output

    # 5. A backup carries the rotation; restored on a fresh folder, old reports still open.
    backup_key = add_backup_key(folder)
    backup.create(load(folder, environ={}), tmp_path / "b.bin", now=datetime.now(UTC))
    restored = backup.restore(tmp_path / "b.bin", backup_key, tmp_path / "fresh",
                              overwrite=False, now=datetime.now(UTC))
    assert restored.config.recipients == (new.public_key,)
    assert restored.config.retired_keys == config.retired_keys
    again = _run(runner, tmp_path / "fresh", "decrypt", "--key", str(instance.key_file),
                 "--passphrase-file", str(passfile), before.report_id)
    assert json.loads(again.output)[0]["report"]["what"] == "before rotation"


# --- What is accepted, during and after the grace period -------------------------------------


@pytest.fixture
def rotated(config: Config) -> tuple[Config, crypto.PrivateKey, crypto.PublicKey]:
    """The shared instance's key retired until TODAY, a new key in use."""
    new = crypto.generate_private_key()
    old = config.recipients[0]
    return (replace(config, recipients=(new.public_key,),
                    retired_keys=(RetiredKey(old, TODAY),)), new, old)


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 23, 59, tzinfo=UTC)


def test_envelopes_to_a_retired_key_are_accepted_until_its_date(
    rotated: tuple[Config, crypto.PrivateKey, crypto.PublicKey],
) -> None:
    config, new, old = rotated
    stranger = crypto.generate_private_key().public_key

    def ok(recipients: list[crypto.PublicKey], day: date) -> bool:
        ids = [k.key_id for k in recipients]
        return config.accepts_recipients(ids, _at(day))

    assert ok([old], TODAY) and ok([new.public_key], TODAY)
    assert not ok([old], TODAY + timedelta(days=1))  # sealed only to a key given up
    # A device with an older key list, that sealed to both: still readable, so accepted.
    assert ok([old, new.public_key], TODAY + timedelta(days=400))
    assert not ok([stranger], TODAY) and not ok([old, stranger], TODAY)
    assert not ok([new.public_key, stranger], TODAY) and not ok([], TODAY)


def test_the_api_and_notes_follow_the_same_rule(
    rotated: tuple[Config, crypto.PrivateKey, crypto.PublicKey], db: store.Connection
) -> None:
    config, _, old = rotated
    data = crypto.seal({"schema": 1, "what": "x"}, [old])

    def accept(day: date) -> str:
        try:
            reports.accept(db, config, reports.Submission(data, receipt_code=receipts.new_code(),
                                                          language="en"), now=lambda: _at(day))
        except reports.Rejected as exc:
            return exc.code
        return "accepted"

    assert accept(TODAY + timedelta(days=1)) == "unknown_key"
    assert accept(TODAY) == "accepted"
    officer = enrol(db, config, "olga")
    case = file_report(db, config, at=T0)
    note = seal_note("n", [old], case)
    with pytest.raises(cases.CaseInvalid):
        cases.add_note(db, config, report_id=case, envelope=note, actor=officer.user.id,
                       now=_at(TODAY + timedelta(days=1)))
    cases.add_note(db, config, report_id=case, envelope=note, actor=officer.user.id,
                   now=_at(TODAY))


# --- Editing config.toml, and what it refuses ------------------------------------------------


def test_add_and_retire_change_only_their_lines(instance: instance_mod.Created) -> None:
    path = instance.config.instance_dir / "config.toml"
    text = path.read_text(encoding="utf-8")
    old = instance.config.recipients[0]
    new = crypto.generate_private_key().public_key
    added = keys.with_new_key(text, new, today=TODAY)
    block = (f"\n# Added on 2026-03-01 by `intake key add`. Key id (SHA-256):\n"
             f"# {crypto.fingerprint(new.key_id)}\n[[keys]]\npublic_key = \"{new.text}\"\n")
    assert added.replace(block, "", 1) == text
    # The new block comes right after the old one, before the comments of what follows.
    assert text.index(old.text) < added.index(new.text) < added.index("# Support services")
    retired = keys.with_accept_until(added, old, TODAY)
    assert retired.replace("accept_until = 2026-03-01\n", "", 1) == added
    assert retired.index(old.text) < retired.index("accept_until") < retired.index(new.text)
    # Retiring it again changes the date in place.
    later = keys.with_accept_until(retired, old, date(2026, 6, 1))
    assert later == retired.replace("accept_until = 2026-03-01", "accept_until = 2026-06-01")


def test_what_rotation_refuses(runner: CliRunner, instance: instance_mod.Created,
                               passfile: Path, tmp_path: Path) -> None:
    folder = instance.config.instance_dir
    old = instance.config.recipients[0].key_id.hex()
    only = _run(runner, folder, "key", "retire", old)
    assert only.exit_code == 1 and "only key in use" in only.output
    unknown = _run(runner, folder, "key", "retire", "abcdef0123")
    assert unknown.exit_code == 1 and "no key with the id" in unknown.output
    short = _run(runner, folder, "key", "retire", "abc")
    assert short.exit_code == 1 and "first 8" in short.output
    inside = _run(runner, folder, "key", "add", "--key-out", str(folder / "x.key"),
                  "--passphrase-file", str(passfile))
    assert inside.exit_code == 1 and "inside the instance folder" in inside.output
    assert not (folder / "x.key").exists()
    assert load(folder, environ={}).recipients == instance.config.recipients


@pytest.mark.parametrize("block, message", [
    ('accept_until = "2026-03-01"', "accept_until is a date"),
    ("accept_until = 2026-03-01T00:00:00Z", "accept_until is a date"),
    ("accept_until = 2026-03-01", "1 to 8 organisation public keys in use"),
])
def test_config_refuses_bad_retirements(instance: instance_mod.Created, block: str,
                                        message: str) -> None:
    path = instance.config.instance_dir / "config.toml"
    text = path.read_text(encoding="utf-8")
    key = instance.config.recipients[0].text
    path.write_text(text.replace(f'public_key = "{key}"', f'public_key = "{key}"\n{block}'),
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load(instance.config.instance_dir, environ={})


def test_config_refuses_a_key_listed_twice(instance: instance_mod.Created) -> None:
    path = instance.config.instance_dir / "config.toml"
    key = instance.config.recipients[0].text
    path.write_text(path.read_text(encoding="utf-8")
                    + f'\n[[keys]]\npublic_key = "{key}"\naccept_until = 2026-03-01\n',
                    encoding="utf-8")
    with pytest.raises(ConfigError, match="twice"):
        load(instance.config.instance_dir, environ={})


def test_the_console_settings_show_retired_keys_and_retention(
    instance: instance_mod.Created,
) -> None:
    old, new = instance.config.recipients[0], crypto.generate_private_key().public_key
    config = replace(instance.config, recipients=(new,), retired_keys=(RetiredKey(old, TODAY),),
                     retention=Retention(closed_days=30))
    app = create_app(config)
    conn = store.connect(config.db_path, config.db_key)
    try:
        admin = Person(app, conn, "ada", "admin")
    finally:
        conn.close()
    page = admin.client.get("/en/console/settings").text
    assert crypto.fingerprint(new.key_id) in page and crypto.fingerprint(old.key_id) in page
    assert "no longer accepted since 2026-03-01" in page
    assert "A closed case is deleted 30 days after it was closed" in page
