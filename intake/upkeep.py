"""Checks of the machine an instance runs on, for `intake doctor`: the clock, free disk
space, the newest backup (its age, and that it is intact), and the published security
contact's expiry."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from intake import backupfile, disclosure
from intake.config import SecurityContact
from intake.doctor import Finding, ok, problem, skipped

# A clock earlier than this is certainly wrong (a laptop whose clock battery died).
EARLIEST_PLAUSIBLE = datetime(2025, 1, 1, tzinfo=UTC)
# Reports are stored to the minute; allow for that and a little drift.
CLOCK_SLACK = timedelta(minutes=5)
MIB = 1024 * 1024
# `intake backup` names its files backup-<UTC time>.bin; --output may name them otherwise,
# so every .bin file in the backup folder counts.
BACKUP_PATTERN = "*.bin"
# Warn this long before /.well-known/security.txt expires: time to renew it calmly.
SECURITY_TXT_NOTICE_DAYS = 30


def check_clock(now: datetime, *, newest: datetime | None, server_date: datetime | None,
                server: str = "") -> list[Finding]:
    fix = ("set it (`timedatectl set-ntp true` with a network, or `timedatectl set-time "
           "'YYYY-MM-DD HH:MM:SS'` on an offline laptop); a wrong clock breaks certificates "
           "and the case list's due dates")
    if now < EARLIEST_PLAUSIBLE:
        return [problem("clock", f"This machine's clock says {now:%Y-%m-%d}, which cannot be "
                                 f"right: {fix}.")]
    if newest is not None and newest > now + CLOCK_SLACK:
        return [problem("clock", f"The newest report arrived at {newest:%Y-%m-%d %H:%M} UTC, "
                                 f"later than this machine's clock ({now:%Y-%m-%d %H:%M} UTC), "
                                 f"so the clock was set back: {fix}.")]
    if server_date is not None and abs(server_date - now) > CLOCK_SLACK:
        minutes = round(abs((server_date - now).total_seconds()) / 60)
        return [problem("clock", f"This machine's clock and {server}'s differ by {minutes} "
                                 f"minutes: on whichever is wrong, {fix}.")]
    return [ok("clock", f"The clock ({now:%Y-%m-%d %H:%M} UTC) is plausible"
                        + (f" and agrees with {server}." if server_date else "."))]


DiskUsage = Callable[[Path], Any]


def check_disk(paths: Iterable[Path], *, min_free: int,
               usage: DiskUsage = shutil.disk_usage) -> list[Finding]:
    found, seen = [], set()
    for path in paths:
        if not path.exists() or path.stat().st_dev in seen:
            continue
        seen.add(path.stat().st_dev)
        free = int(usage(path).free)
        if free < min_free:
            found.append(problem("disk", f"Only {free // MIB} MiB are free on the disk that "
                                         f"holds {path} (doctor asks for {min_free // MIB} MiB, "
                                         "--min-free-mib): make room (old backups already "
                                         "copied elsewhere, `journalctl --vacuum-size=200M`, "
                                         "`apt-get clean`) or move to a larger disk, because "
                                         "on a full disk no report can be stored."))
        else:
            found.append(ok("disk", f"{free // MIB} MiB free on the disk that holds {path}."))
    return found


def check_backups(backups_dir: Path | None, *, now: datetime,
                  max_age: timedelta) -> list[Finding]:
    timer = "`systemctl enable --now intake-backup.timer`"
    if backups_dir is None:
        return [skipped("backups", "Backups were not checked: give --backups with the folder "
                                   "your backups are written to (/var/backups/intake with "
                                   "deploy/intake-backup.timer).")]
    if not backups_dir.is_dir():
        return [problem("backups", f"The backup folder {backups_dir} does not exist: create it "
                                   f"(`install -d -m 700 -o intake -g intake {backups_dir}`) "
                                   f"and enable daily backups ({timer}).")]
    found = []
    if backups_dir.stat().st_mode & 0o007:
        found.append(problem("backups", f"Other users can open the backup folder {backups_dir}"
                                        f": run `chmod 700 {backups_dir}`."))
    backups = sorted(backups_dir.glob(BACKUP_PATTERN), key=lambda p: p.stat().st_mtime)
    if not backups:
        return [*found, problem("backups", f"There is no backup ({BACKUP_PATTERN}) in "
                                           f"{backups_dir}: make one now (`intake backup` in "
                                           f"that folder), enable daily backups ({timer}), "
                                           "and copy them off this machine.")]
    newest = backups[-1]
    made = datetime.fromtimestamp(newest.stat().st_mtime, UTC)
    hours = max(0, round((now - made).total_seconds() / 3600))
    try:
        # The trailing SHA-256 needs no key: a file cut short or changed since is caught here.
        backupfile.check_digest(newest)
    except (backupfile.BackupError, OSError):
        found.append(problem("backups", f"The newest backup, {newest}, is damaged or not a "
                                        "backup: see why (`journalctl -u intake-backup`), run "
                                        "`intake backup` again, and check copies with `intake "
                                        "verify-backup`."))
        return found
    if now - made > max_age:
        found.append(problem("backups", f"The newest backup, {newest}, is {hours} hours old "
                                        f"(more than {max_age.total_seconds() / 3600:.0f}): see "
                                        "why no backup ran (`systemctl list-timers "
                                        "intake-backup.timer`, `journalctl -u intake-backup`), "
                                        "and run `intake backup` now."))
    else:
        found.append(ok("backups", f"The newest backup, {newest.name}, is {hours} hour(s) old "
                                   f"and intact ({len(backups)} in {backups_dir}); keep copying "
                                   "them off this machine."))
    return found


def check_security_contact(contact: SecurityContact | None, *, now: datetime) -> list[Finding]:
    """/.well-known/security.txt: published, and not expired or about to."""
    fix = ("set [security] expires in config.toml to a date less than a year away, check "
           "that its contact still reaches someone, and restart intake")
    if contact is None:
        return [skipped("security.txt", "No security contact is published: add [security] "
                                        "contact and expires to config.toml "
                                        "(docs/configuration.md), so that someone who finds "
                                        "a leak knows whom to tell.")]
    left = disclosure.days_left(contact, now.astimezone(UTC).date())
    if left < 0:
        return [problem("security.txt", f"The security contact expired on "
                                        f"{contact.expires.isoformat()}, so finders are told "
                                        f"not to trust it: {fix}.")]
    if left < SECURITY_TXT_NOTICE_DAYS:
        return [problem("security.txt", f"The security contact expires in {left} days, on "
                                        f"{contact.expires.isoformat()}: {fix}.")]
    return [ok("security.txt", f"A security contact is published until "
                               f"{contact.expires.isoformat()}.")]
