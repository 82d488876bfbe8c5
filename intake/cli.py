"""The `intake` command: thin click commands over library functions.

Key generation and decryption work without the web app running.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

import click

from intake import (
    accounts,
    attachments,
    audit,
    backup,
    backupfile,
    catalogues,
    crypto,
    focal,
    keys,
    rekey,
    reports,
    retention,
    store,
    uploads,
)
from intake import instance as instance_mod
from intake.config import Config, ConfigError, load

DEFAULT_KEY_OUT = "organisation.key"


class Ctx:
    def __init__(self, instance_dir: Path) -> None:
        self.instance_dir = instance_dir

    def config(self) -> Config:
        try:
            return load(self.instance_dir)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None

    @contextmanager
    def database(self) -> Iterator[tuple[Config, store.Connection]]:
        """The instance's database, ready for use, closed when the command is done."""
        config = self.config()
        try:
            conn = store.open_ready(config.db_path, config.db_key, config.receipt_hash)
        except store.StoreError as exc:
            raise click.ClickException(str(exc)) from None
        try:
            yield config, conn
        finally:
            conn.close()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--instance", "instance_dir", envvar="INTAKE_INSTANCE", default="instance",
    show_default=True, type=click.Path(file_okay=False, path_type=Path),
    help="Instance folder (or INTAKE_INSTANCE).",
)
@click.pass_context
def main(ctx: click.Context, instance_dir: Path) -> None:
    """Encrypted intake for reports of sexual exploitation and abuse."""
    ctx.obj = Ctx(instance_dir)


def _read_passphrase(passphrase_file: Path | None, *, confirm: bool,
                     label: str = "Passphrase") -> str:
    if passphrase_file is not None:
        try:
            text = passphrase_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(
                f"Cannot read the passphrase file: {exc.strerror}."
            ) from None
        return text.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise click.UsageError("No terminal to ask for the passphrase: use --passphrase-file.")
    value: str = click.prompt(label, hide_input=True, confirmation_prompt=confirm)
    return value


@main.command()
@click.option("--passphrase-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the key file's passphrase (else you are asked).")
@click.option("--key-out", type=click.Path(dir_okay=False, path_type=Path),
              default=DEFAULT_KEY_OUT, show_default=True,
              help="Where to write the private key file (never inside the instance folder).")
@click.option("--organisation", default="Example Organisation", show_default=True,
              help="Organisation name shown on every page.")
@click.pass_obj
def init(obj: Ctx, passphrase_file: Path | None, key_out: Path, organisation: str) -> None:
    """Create a new instance and the organisation's key pair."""
    passphrase = _read_passphrase(passphrase_file, confirm=True)
    try:
        created = instance_mod.create(
            obj.instance_dir, key_out=key_out, passphrase=passphrase, organisation=organisation
        )
    except (instance_mod.InstanceExists, ValueError, crypto.WeakPassphrase) as exc:
        raise click.ClickException(str(exc)) from None
    _print_created(created)


def _print_created(created: instance_mod.Created) -> None:
    click.echo(f"Instance created in {created.config.instance_dir}")
    click.echo(f"Organisation key id (SHA-256): {crypto.fingerprint(created.key_id)}")
    click.echo(f"Private key file: {created.key_file}")
    click.secho(
        "Move the private key file off this server now, to the case officers' own devices "
        "and an offline backup. The server never needs it; whoever holds it and its "
        "passphrase can read every report.",
        fg="yellow", err=True,
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")
@click.option("--threads", type=click.IntRange(1, 256),
              help="Worker threads (default: twice [capacity] hash_slots, plus 4).")
@click.pass_obj
def serve(obj: Ctx, host: str, port: int, threads: int | None) -> None:
    """Serve the app with waitress, a production WSGI server."""
    _serve(obj.config(), host, port, threads)


def serve_threads(config: Config) -> int:
    """Enough threads that hashing (slots) and waiting for a slot (as many again) never
    take them all: pages, and the 503 that says "busy", are still answered at once."""
    return 2 * config.capacity.slots + 4


def _serve(config: Config, host: str, port: int, threads: int | None) -> None:
    import waitress

    from intake.app import create_app

    # Our own lines only, and never a client address: waitress writes no access log, and
    # nothing in intake logs a request's address, agent or body.
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        app = create_app(config)
    except store.StoreError as exc:
        raise click.ClickException(str(exc)) from None
    limit = config.limits.max_request_bytes
    if threads is None:
        threads = serve_threads(config)
    elif threads <= 2 * config.capacity.slots:
        click.secho(f"With --threads {threads} and {config.capacity.slots} hash slots, requests "
                    "waiting to hash can hold every thread; pages will wait behind them. "
                    f"Use at least {serve_threads(config)}.", fg="yellow", err=True)
    waitress.serve(
        app, host=host, port=port, threads=threads, ident="intake",
        # Refuse bodies over the limit before buffering them, and keep every accepted body
        # in memory: waitress spills larger ones to a temporary file, and a no-JavaScript
        # report body is plaintext that must never touch the disk.
        max_request_body_size=limit, inbuf_overflow=limit + 1,
        # Headers reach the app as sent, as under gunicorn: the app alone decides whose
        # X-Forwarded-For to believe (trusted_proxy, intake/throttle.py), and nothing else
        # reads them. waitress's own proxy handling would log a malformed header's value,
        # which can hold a client's address.
        clear_untrusted_proxy_headers=False,
    )


@main.command()
@click.option("--key", "key_files", required=True, multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An organisation private key file; repeat it for older keys after a rotation.")
@click.option("--passphrase-file", "passphrase_files", multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the key file's passphrase (else you are asked): once for "
                   "every key, or once per --key, in the same order.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write one JSON file per report here (else print to standard output).")
@click.argument("report_ids", nargs=-1)
@click.pass_obj
def decrypt(obj: Ctx, key_files: tuple[Path, ...], passphrase_files: tuple[Path, ...],
            out_dir: Path | None, report_ids: tuple[str, ...]) -> None:
    """Decrypt all reports, or the ones named, to readable JSON."""
    if len(passphrase_files) not in (0, 1, len(key_files)):
        raise click.UsageError("Give --passphrase-file once for every key, or once per --key.")
    keys = []
    for i, key_file in enumerate(key_files):
        passphrase_file = (passphrase_files[min(i, len(passphrase_files) - 1)]
                           if passphrase_files else None)
        try:
            passphrase = _read_passphrase(passphrase_file, confirm=False,
                                          label=f"Passphrase of {key_file}")
            keys.append(crypto.read_key_file(key_file.read_bytes(), passphrase))
        except crypto.KeyFileError as exc:
            raise click.ClickException(f"Cannot open the key file {key_file}: {exc}.") from None
    failures = 0
    documents = []
    with obj.database() as (_, conn):
        found = list(store.envelopes(conn, report_ids))
        missing = set(report_ids) - {item.report_id for item in found}
        if missing:
            raise click.ClickException(f"No report with id {', '.join(sorted(missing))}.")
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for item in found:
            opened = _unseal_with_any(item.envelope, keys)
            if opened is None:
                click.echo(f"Report {item.report_id} cannot be opened with the key(s) given.",
                           err=True)
                failures += 1
                continue
            doc: dict[str, object] = {
                "report_id": item.report_id, "received_at": item.received_at.isoformat(),
                "channel": item.channel, "sealed_by": item.sealed_by, "report": opened.payload,
            }
            if opened.content_key:
                files, damaged = _write_attachments(conn, opened, out_dir)
                doc["attachment_files"] = files
                failures += damaged
            documents.append(doc)
    if out_dir is None:
        click.echo(json.dumps(documents, ensure_ascii=False, indent=2))
    else:
        for doc in documents:
            with _private_file(out_dir / f"{doc['report_id']}.json") as handle:
                handle.write(json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8"))
        click.echo(f"{len(documents)} report(s) written to {out_dir}", err=True)
    if failures:
        raise click.ClickException(
            f"{failures} report(s) or attachment(s) could not be opened with the key(s) given. "
            "After a key rotation, give every key file (--key once per file)."
        )


def _unseal_with_any(data: bytes, keys: list[crypto.PrivateKey]) -> crypto.Unsealed | None:
    """The envelope opened with whichever of the keys it is sealed to, or None."""
    for key in keys:
        try:
            return crypto.unseal(data, key)
        except crypto.EnvelopeOpenError:
            continue
    return None


def _write_attachments(
    conn: store.Connection, opened: crypto.Unsealed, out_dir: Path | None
) -> tuple[list[dict[str, object]], int]:
    """Open a report's attachments and write each, as it was on the device, next to the
    report's JSON. Returns what the JSON lists about them and how many are damaged."""
    chunks = uploads.sealed_attachments(conn, opened.report_id)
    listed, damaged = [], 0
    for number, entry in enumerate(attachments.entries(opened.payload), start=1):
        if entry is None:
            click.echo(f"Attachment {number} of report {opened.report_id} is listed wrongly "
                       "and cannot be opened.", err=True)
            listed.append({"number": number, "error": "listed wrongly"})
            damaged += 1
            continue
        try:
            data = crypto.open_attachment(opened, entry, chunks.get(entry.id, []))
        except crypto.AttachmentOpenError:
            click.echo(f"Attachment {number} ({entry.name}) of report {opened.report_id} is "
                       "incomplete or damaged and cannot be opened.", err=True)
            listed.append({"number": number, "name": entry.name, "error": "damaged"})
            damaged += 1
            continue
        about: dict[str, object] = {"number": number, "name": entry.name, "type": entry.type,
                                    "size": entry.size, "sha256": entry.sha256}
        if out_dir is None:
            click.echo(f"Report {opened.report_id} has attachment {number} ({entry.name}): "
                       "use --out to write it to a file.", err=True)
        else:
            name = f"{opened.report_id}-{number}-{attachments.safe_file_name(entry.name)}"
            with _private_file(out_dir / name) as handle:
                handle.write(data)
            about["file"] = name
        listed.append(about)
    return listed, damaged


def _private_file(path: Path) -> BinaryIO:
    """A new file only its owner can read: reports and attachments are what must not leak."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, "wb")


@main.group("user")
def user_group() -> None:
    """Officer accounts: administrators, case officers and analysts."""


@user_group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(accounts.ROLES), required=True,
              help="admin: accounts and settings; officer: cases; analyst: figures only.")
@click.pass_obj
def user_add(obj: Ctx, username: str, role: str) -> None:
    """Add an account and print its one-time set-up code."""
    with obj.database() as (config, conn):
        try:
            user, code = accounts.add(
                conn, config.audit_key, username=username, role=role, actor=None,
                now=reports.utcnow(), setup_hours=config.console.setup_hours,
            )
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from None
    _print_setup(user.username, code, config.console.setup_hours)


def _print_setup(username: str, code: str, hours: int) -> None:
    click.echo(f"Give {username} this set-up code, in person or by a safe channel. It works "
               f"once, for {hours} hours, at /<language>/console/setup:")
    click.echo(code)


@user_group.command("list")
@click.pass_obj
def user_list(obj: Ctx) -> None:
    """List accounts, their roles and states."""
    with obj.database() as (_, conn):
        users = accounts.all_users(conn)
    for user in users:
        state = "disabled" if user.disabled else "active" if user.set_up else "waiting"
        click.echo(f"{user.username:32}  {user.role:8}  {state}")


def _user_id(conn: store.Connection, username: str) -> int:
    row = conn.execute("SELECT id FROM users WHERE username = ?",
                       (username.strip().lower(),)).fetchone()
    if row is None:
        raise click.ClickException(f"There is no account called {username}.")
    return int(row[0])


@user_group.command("reset")
@click.argument("username")
@click.pass_obj
def user_reset(obj: Ctx, username: str) -> None:
    """Lost phone or password: clear both, end all sessions, print a new set-up code."""
    with obj.database() as (config, conn):
        code = accounts.reset(conn, config.audit_key, user_id=_user_id(conn, username),
                              actor=None, now=reports.utcnow(),
                              setup_hours=config.console.setup_hours)
    _print_setup(username, code, config.console.setup_hours)


@user_group.command("disable")
@click.argument("username")
@click.pass_obj
def user_disable(obj: Ctx, username: str) -> None:
    """Disable an account and end its sessions (the audit log keeps its history)."""
    with obj.database() as (config, conn):
        try:
            accounts.disable(conn, config.audit_key, user_id=_user_id(conn, username),
                             actor=None, now=reports.utcnow())
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{username} is disabled.")


@main.group("audit")
def audit_group() -> None:
    """The audit log of officer actions."""


@audit_group.command("verify")
@click.pass_obj
def audit_verify(obj: Ctx) -> None:
    """Check that no audit entry was edited, reordered or deleted."""
    with obj.database() as (config, conn):
        try:
            count, head = audit.verify(conn, config.audit_key)
        except audit.AuditChainBroken as exc:
            raise click.ClickException(f"The audit log was tampered with: {exc}.") from None
    click.echo(f"The audit log is intact: {count} entries. Last entry's fingerprint (note it down "
               f"elsewhere to detect a rollback later): {head}")


@main.group("focal")
def focal_group() -> None:
    """Focal points: shared tablets that collect reports in the field."""


@focal_group.command("add")
@click.argument("name")
@click.pass_obj
def focal_add(obj: Ctx, name: str) -> None:
    """Register a focal point and print its one-time enrolment code."""
    with obj.database() as (_, conn):
        try:
            point, code = focal.add(conn, name, now=reports.utcnow())
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"Focal point {point.id} ({point.name}) registered. On its tablet, open "
               "/<language>/focal and enter this code within 7 days; it works once:")
    click.echo(code)


@focal_group.command("list")
@click.pass_obj
def focal_list(obj: Ctx) -> None:
    """List focal points and their state."""
    with obj.database() as (_, conn):
        points = focal.all_points(conn)
    for point in points:
        state = "revoked" if point.revoked else "enrolled" if point.enrolled else "waiting"
        click.echo(f"{point.id}  {state:8}  {point.name}")


@focal_group.command("revoke")
@click.argument("focal_id")
@click.pass_obj
def focal_revoke(obj: Ctx, focal_id: str) -> None:
    """Refuse every later report signed by this focal point's tablet."""
    with obj.database() as (_, conn):
        done = focal.revoke(conn, focal_id, now=reports.utcnow())
    if not done:
        raise click.ClickException(f"No active focal point with id {focal_id}.")
    click.echo(f"Focal point {focal_id} revoked.")


@main.command("import")
@click.argument("queue_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def import_queue(obj: Ctx, queue_file: Path) -> None:
    """Store the reports of a queue file exported by a tablet that could not get online."""
    with obj.database() as (config, conn):
        try:
            result = reports.import_queue(conn, config, queue_file.read_bytes())
        except reports.Rejected as exc:
            raise click.ClickException(
                f"{queue_file} is not an intake queue file ({exc.code})."
            ) from None
    click.echo(f"{result.stored} stored, {result.already} already there, "
               f"{len(result.refused)} refused.")
    for index, code in result.refused:
        click.echo(f"  item {index + 1}: refused ({code})", err=True)
    if result.refused:
        raise SystemExit(1)


@main.group("key")
def key_group() -> None:
    """Organisation keys: list them, add a new one, retire an old one (rotation)."""


@key_group.command("list")
@click.pass_obj
def key_list(obj: Ctx) -> None:
    """List the organisation keys: in use, or retired and until when still accepted."""
    config = obj.config()
    now = reports.utcnow()
    for key in config.recipients:
        click.echo(f"{crypto.fingerprint(key.key_id)}  in use")
    for old in config.retired_keys:
        state = "accepted until" if old.accepting(now) else "no longer accepted since"
        click.echo(f"{crypto.fingerprint(old.public_key.key_id)}  retired, {state} "
                   f"{old.accept_until.isoformat()}")


@key_group.command("add")
@click.option("--key-out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the new private key file (never inside the instance folder).")
@click.option("--passphrase-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the key file's passphrase (else you are asked).")
@click.pass_obj
def key_add(obj: Ctx, key_out: Path, passphrase_file: Path | None) -> None:
    """Make a new organisation key pair; new reports are sealed to it too."""
    passphrase = _read_passphrase(passphrase_file, confirm=True)
    try:
        public = keys.add(obj.instance_dir, key_out, passphrase,
                          today=reports.utcnow().date())
    except (keys.KeyRotationError, crypto.WeakPassphrase) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"New organisation key id (SHA-256): {crypto.fingerprint(public.key_id)}")
    click.echo(f"Private key file: {key_out.resolve()}; its public half is now in config.toml.")
    click.secho(
        "Restart the server for new reports to be sealed to it (with the keys already in "
        "use). Move the key file off this server now, to the officers' own devices and an "
        "offline backup. Put the new key id on your posters and cards: a phone that sent a "
        "report before shows it once and asks before sealing to it. When every officer has "
        "the new key file, retire the old key (`intake key retire`).",
        fg="yellow", err=True,
    )


@key_group.command("retire")
@click.argument("key_id")
@click.option("--grace-days", default=90, show_default=True, type=click.IntRange(0, 3650),
              help="Days during which reports already sealed to it are still accepted.")
@click.pass_obj
def key_retire(obj: Ctx, key_id: str, grace_days: int) -> None:
    """Stop sealing new reports to a key; accept those already sealed to it for a while."""
    until = reports.utcnow().date() + timedelta(days=grace_days)
    try:
        public = keys.retire(obj.instance_dir, key_id, accept_until=until)
    except keys.KeyRotationError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Key {crypto.fingerprint(public.key_id)} is retired: after a restart, new "
               "reports are no longer sealed to it. Reports already sealed to it (on devices "
               f"that were offline, in queue files) are accepted until {until.isoformat()}.")
    click.echo("Keep its key file: it still opens every report sealed to it, for good "
               "(`intake decrypt --key OLD --key NEW`).")


@main.command("purge")
@click.option("--dry-run", is_flag=True, help="List the cases that are due; delete nothing.")
@click.pass_obj
def purge_command(obj: Ctx, dry_run: bool) -> None:
    """Delete closed cases older than retention.closed_days (run it daily)."""
    with obj.database() as (config, conn):
        now = reports.utcnow()
        if dry_run:
            found = retention.due(conn, config, now=now)
            for report_id, closed_at in found:
                click.echo(f"{report_id}  closed {closed_at:%Y-%m-%d %H:%M} UTC")
            click.echo(f"{len(found)} closed case(s) are due for deletion (closed more than "
                       f"{config.retention.closed_days} days ago); nothing was deleted.")
            return
        purged = retention.purge(conn, config, now=now)
    for item in purged:
        rows = ", ".join(f"{n} {table}" for table, n in item.rows.items() if n)
        click.echo(f"{item.report_id}  closed {item.closed_at:%Y-%m-%d %H:%M} UTC: deleted"
                   f"{' with ' + rows if rows else ''}")
    click.echo(f"{len(purged)} closed case(s) deleted (closed more than "
               f"{config.retention.closed_days} days ago); each deletion is in the audit log.")


@main.command("purge-uploads")
@click.pass_obj
def purge_uploads(obj: Ctx) -> None:
    """Delete uploads left incomplete for longer than limits.upload_expiry_hours."""
    with obj.database() as (config, conn):
        count = uploads.purge(conn, config, now=reports.utcnow())
    click.echo(f"{count} incomplete upload(s) deleted.")


@main.group("i18n")
def i18n_group() -> None:
    """Translation catalogues: check, update, add a language."""


@i18n_group.command("check")
def i18n_check() -> None:
    """Fail when a catalogue is out of date, incomplete where marked complete, or broken."""
    problems = catalogues.check()
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        raise click.ClickException(f"{len(problems)} problem(s) in the translation catalogues.")
    for lang in catalogues.languages()[1:]:
        cat = catalogues.read(lang)
        click.echo(f"{lang}: {cat.translated}/{cat.total} translated, "
                   f"{'complete' if cat.complete else 'partial'}, {cat.review}")


@i18n_group.command("update")
def i18n_update() -> None:
    """Extract every string from the code and update all catalogues (headers kept)."""
    catalogues.update()
    catalogues.compile_all()
    click.echo("messages.pot and every catalogue updated; translate what is new or fuzzy.")


@i18n_group.command("add")
@click.argument("language")
def i18n_add(language: str) -> None:
    """Start a catalogue for LANGUAGE (a BCP 47 tag Babel knows, e.g. sw)."""
    from babel import Locale, UnknownLocaleError

    try:
        Locale.parse(language)
    except (UnknownLocaleError, ValueError):
        raise click.ClickException(f"Babel does not know the language {language!r}.") from None
    try:
        path = catalogues.add(language)
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {path}. Translate it, then set X-Completeness: complete.")


@main.command()
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on (127.0.0.1 only).")
def demo(port: int) -> None:
    """Make a throwaway instance and serve it on 127.0.0.1, for trying the intake."""
    base = Path(tempfile.mkdtemp(prefix="intake-demo-"))
    passphrase = "-".join(secrets.token_hex(3) for _ in range(4))
    created = instance_mod.create(
        base / "instance", key_out=base / "organisation.key", passphrase=passphrase,
        organisation="Demo Organisation", secure_cookies=False,
    )
    _print_created(created)
    click.echo(f"Demo key file passphrase: {passphrase}")
    conn = store.open_ready(created.config.db_path, created.config.db_key,
                            created.config.receipt_hash)
    try:
        for name, role in (("admin", "admin"), ("officer", "officer")):
            _, code = accounts.add(conn, created.config.audit_key, username=name, role=role,
                                   actor=None, now=reports.utcnow(), setup_hours=72)
            click.echo(f"Console account {name!r} ({role}): set it up at "
                       f"http://127.0.0.1:{port}/en/console/setup with the code {code}")
    finally:
        conn.close()
    click.echo(f"Open http://127.0.0.1:{port}/ on this machine. To read the reports:")
    click.echo(
        f"  intake --instance {created.config.instance_dir} decrypt --key {created.key_file}"
    )
    _serve(created.config, "127.0.0.1", port, None)


# --- Backups, restoring, and a new database key (intake/backup.py, intake/rekey.py) ------


def _open_key_file(key_file: Path, passphrase_file: Path | None) -> crypto.PrivateKey:
    try:
        passphrase = _read_passphrase(passphrase_file, confirm=False)
        return crypto.read_key_file(key_file.read_bytes(), passphrase)
    except crypto.KeyFileError as exc:
        raise click.ClickException(f"Cannot open the key file: {exc}.") from None


@main.command("backup-key")
@click.option("--key-out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the backup key file (never inside the instance folder).")
@click.option("--passphrase-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the key file's passphrase (else you are asked).")
@click.option("--replace", is_flag=True,
              help="Replace the instance's backup key; keep the old key file for old backups.")
@click.pass_obj
def backup_key_command(obj: Ctx, key_out: Path, passphrase_file: Path | None,
                       replace: bool) -> None:
    """Make the key pair that backups are sealed to; config.toml gets its public half."""
    passphrase = _read_passphrase(passphrase_file, confirm=True)
    try:
        public = backup.make_backup_key(obj.instance_dir, key_out, passphrase, replace=replace)
    except (backup.BackupError, crypto.WeakPassphrase) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Backup key id (SHA-256): {crypto.fingerprint(public.key_id)}")
    click.echo(f"Backup key file: {key_out.resolve()}; its public half is now in config.toml.")
    click.secho(
        "Move the backup key file off this server now, to two offline places. Backups open "
        "only with it and its passphrase: without them a backup is useless, and whoever has "
        "both can read everything a backup holds.",
        fg="yellow", err=True,
    )


@main.command("backup")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="The backup file to write (default: backup-<UTC time>.bin here).")
@click.pass_obj
def backup_command(obj: Ctx, output: Path | None) -> None:
    """Write one encrypted backup file of the instance, while it keeps serving."""
    config = obj.config()
    now = reports.utcnow()
    output = output or Path(f"backup-{now:%Y%m%dT%H%M%SZ}.bin")
    try:
        made = backup.create(config, output, now=now)
    except (backup.BackupError, store.StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Backup written to {made.path}: {made.reports} report(s), "
               f"{made.size:,} bytes, schema {made.manifest.schema_version}.")
    click.echo(f"SHA-256 of the file: {made.sha256.hex()}")
    if config.backup_key is not None:  # create refuses otherwise
        click.echo("It opens only with the backup key file of key id "
                   f"{crypto.fingerprint(config.backup_key.key_id)}.")


@main.command("verify-backup")
@click.argument("backup_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The backup key file: also open the backup and check its database.")
@click.option("--passphrase-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the key file's passphrase (else you are asked).")
def verify_backup_command(backup_file: Path, key_file: Path | None,
                          passphrase_file: Path | None) -> None:
    """Check a backup file: intact without the key; opens and is sound with it."""
    try:
        digest = backupfile.check_digest(backup_file)
        click.echo(f"Intact: the file's SHA-256 {digest.hex()} matches.")
        if key_file is None:
            click.echo("Contents not checked: add --key with the backup key file to open the "
                       "backup and check its database.")
            return
        key = _open_key_file(key_file, passphrase_file)
        checked = backup.verify(backup_file, key)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    made = checked.manifest.created_at.strftime("%Y-%m-%d %H:%M UTC")
    click.echo(f"Opens with backup key {crypto.fingerprint(key.public_key.key_id)}: made "
               f"{made}, schema {checked.manifest.schema_version}, {checked.reports} "
               "report(s); every file matches its SHA-256; the database opens with its key "
               "and passes integrity_check.")


@main.command("restore")
@click.argument("backup_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "key_file", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The backup key file.")
@click.option("--passphrase-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the key file's passphrase (else you are asked).")
@click.option("--instance", "target", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to restore into (default: the instance folder given before).")
@click.option("--overwrite", is_flag=True,
              help="Move an instance already there aside, into replaced-<time>/, and restore.")
@click.pass_obj
def restore_command(obj: Ctx, backup_file: Path, key_file: Path, passphrase_file: Path | None,
                    target: Path | None, overwrite: bool) -> None:
    """Restore a backup into a new instance folder (stop any server using it first)."""
    key = _open_key_file(key_file, passphrase_file)
    try:
        restored = backup.restore(backup_file, key, target or obj.instance_dir,
                                  overwrite=overwrite, now=reports.utcnow())
    except (backup.BackupError, store.StoreError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    config = restored.config
    made = restored.manifest.created_at.strftime("%Y-%m-%d %H:%M UTC")
    click.echo(f"Restored {restored.reports} report(s) into {config.instance_dir} "
               f"(backup made {made}).")
    click.echo("Reports are sealed to these organisation keys; check that they are yours "
               "before serving:")
    for recipient in config.recipients:
        click.echo(f"  {crypto.fingerprint(recipient.key_id)}")
    if restored.moved_aside is not None:
        click.echo(f"The instance that was there is in {restored.moved_aside}; delete it "
                   "once you are sure of the restored one.")
    if os.environ.get("INTAKE_DB_KEY"):
        click.secho("INTAKE_DB_KEY is set, but the restored database opens with the key in "
                    "its new db.key: unset INTAKE_DB_KEY, or set it to that key.",
                    fg="yellow", err=True)


@main.command("rekey")
@click.option("--recover", is_flag=True,
              help="Sort out an interrupted rekey instead of starting one.")
@click.pass_obj
def rekey_command(obj: Ctx, recover: bool) -> None:
    """Give the database a new random key (stop the server first)."""
    try:
        if recover:
            outcome = rekey.recover(obj.instance_dir.resolve())
            click.echo({
                rekey.Recovery.NOTHING: "No interrupted rekey here; nothing was changed.",
                rekey.Recovery.FINISHED: "The rekey had gone through: the new key in db.key "
                                         "opens the database, and db.key.old was removed.",
                rekey.Recovery.ROLLED_BACK: "The rekey had not gone through: the old key, which "
                                            "opens the database, is in db.key again. Run "
                                            "`intake rekey` again for a new key.",
            }[outcome])
            return
        rekey.run(obj.config(), os.environ)
    except rekey.RekeyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("The database has a new key, in db.key; the old key is gone. Backups are not "
               "affected: each carries its own database key.")


@main.command()
@click.option("--url", help="The address complainants open (https://...): check HTTPS, the "
                            "certificate, the service worker and the report page.")
@click.option("--ca", "ca_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Also trust this root certificate (a field office's Caddy CA) for --url.")
@click.option("--key", "key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An organisation key file: check that config.toml lists its public key.")
@click.option("--backups", "backups_dir", type=click.Path(file_okay=False, path_type=Path),
              help="The folder backups are written to: check the newest one's age.")
@click.option("--max-backup-age", default=48, show_default=True, type=click.IntRange(1),
              help="Hours after which the newest backup is too old.")
@click.option("--min-free-mib", default=1024, show_default=True, type=click.IntRange(0),
              help="Free disk space below which doctor reports a problem.")
@click.pass_obj
def doctor(obj: Ctx, url: str | None, ca_file: Path | None, key_file: Path | None,
           backups_dir: Path | None, max_backup_age: int, min_free_mib: int) -> None:
    """Check an installed instance; each problem comes with its fix."""
    from datetime import timedelta

    from intake import doctor as doctor_mod

    options = doctor_mod.Options(
        key_file=key_file, url=url, ca_file=ca_file, backups_dir=backups_dir,
        max_backup_age=timedelta(hours=max_backup_age), min_free=min_free_mib * 1024 * 1024,
    )
    findings = doctor_mod.examine(obj.instance_dir, options, environ=os.environ,
                                  now=reports.utcnow(), euid=doctor_mod.current_euid())
    for finding in findings:
        label = "problem" if finding.problem else "skipped" if finding.skipped else "ok"
        click.echo(f"{label:8} {finding.check:12} {finding.text}")
    problems = sum(finding.problem for finding in findings)
    if problems:
        raise click.ClickException(f"{problems} problem(s); each line above says how to fix it.")
    click.echo("No problems found.")
