"""The audit log: every officer action, append-only, as a keyed hash chain.

Each entry's MAC is HMAC-SHA256(audit key, previous MAC || entry), and the entry includes
its own sequence number, so editing, reordering or deleting any row breaks every MAC after
it. The chain's head (last sequence number and MAC) is kept in `meta` under a MAC of its
own, so cutting entries off the end is caught too. The audit key lives in `audit.key`,
outside the database: someone who copies or edits the database cannot re-forge the chain.
Someone who holds the running server holds the key too; `intake audit verify` prints the
head so an administrator can note it elsewhere (SECURITY.md, "Audit log").

No IP address, user agent, receipt code or report content is ever recorded: `detail` holds
field names and values officers chose from fixed lists, never free text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from intake import crypto, store

GENESIS = b"\x00" * 32
HEAD = "audit_head"

# What officers do, as recorded. A new action needs no migration, only a name here.
ACTIONS = frozenset({
    "login", "login_failed", "logout", "logout_everywhere", "reauth",
    "user_added", "user_reset", "user_disabled", "user_enrolled",
    "focal_added", "focal_revoked",
    "case_opened", "content_decrypted", "attachment_decrypted", "consent_recorded",
    "field_changed",
    "status_changed", "message_sent", "note_added", "referral_added", "export",
    "figures_exported", "case_purged",
})

Detail = Mapping[str, str | int | bool | None]


class AuditChainBroken(Exception):
    """The log was edited, reordered or cut; the message names the first bad entry."""


@dataclass(frozen=True)
class Entry:
    seq: int
    at: datetime
    actor: int | None
    action: str
    report_id: str | None
    detail: dict[str, object]


def record(
    conn: store.Connection,
    key: bytes,
    *,
    actor: int | None,
    action: str,
    now: datetime,
    report_id: str | None = None,
    detail: Detail | None = None,
) -> int:
    """Append one entry; call it inside the transaction of the action it records."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if not conn.in_transaction:
        raise RuntimeError("audit.record must run inside the action's transaction")
    seq, previous = _head(conn, key)
    seq += 1
    at = now.astimezone(UTC).replace(microsecond=0).isoformat()
    text = _canonical(dict(detail or {}))
    mac = crypto.audit_mac(key, previous, _entry_bytes(seq, at, actor, action, report_id, text))
    conn.execute(
        "INSERT INTO audit_log (seq, at, actor, action, report_id, detail, mac)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seq, at, actor, action, report_id, text, mac),
    )
    head = f"{seq}:{mac.hex()}:{_head_mac(key, seq, mac).hex()}"
    conn.execute(
        "INSERT INTO meta (name, value) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (HEAD, head),
    )
    return seq


def verify(conn: store.Connection, key: bytes) -> tuple[int, str]:
    """Check the whole chain; returns (entries, head MAC in hex) or raises AuditChainBroken."""
    previous, expected_seq = GENESIS, 1
    for seq, at, actor, action, report_id, text, mac in conn.execute(
        "SELECT seq, at, actor, action, report_id, detail, mac FROM audit_log ORDER BY seq"
    ):
        if seq != expected_seq:
            raise AuditChainBroken(f"entry {expected_seq} is missing (next is {seq})")
        want = crypto.audit_mac(key, previous, _entry_bytes(seq, at, actor, action, report_id,
                                                             text))
        if not crypto.macs_equal(want, bytes(mac)):
            raise AuditChainBroken(f"entry {seq} was changed, moved or forged")
        previous, expected_seq = bytes(mac), seq + 1
    count = expected_seq - 1
    head_seq, head_mac = _head(conn, key)
    if count == head_seq == 0 and conn.execute("SELECT 1 FROM users LIMIT 1").fetchone():
        # No head and no entries would pass the check below, as on a new instance. But every
        # account is added with an entry, so with accounts present the log was emptied.
        raise AuditChainBroken(
            "the log and the record of its last entry are missing, yet accounts exist: "
            "the log was emptied"
        )
    if head_seq != count or head_mac != previous:
        raise AuditChainBroken(
            f"the log ends at entry {count} but was last written at entry {head_seq}: "
            "entries were deleted from the end"
        )
    return count, previous.hex()


def entries(
    conn: store.Connection, *, report_id: str | None = None, limit: int = 200
) -> Iterator[Entry]:
    """The latest entries first, for one case or for all."""
    query = "SELECT seq, at, actor, action, report_id, detail FROM audit_log"
    params: tuple[object, ...] = ()
    if report_id is not None:
        query += " WHERE report_id = ?"
        params = (report_id,)
    for seq, at, actor, action, rid, text in conn.execute(
        query + " ORDER BY seq DESC LIMIT ?", (*params, limit)
    ):
        yield Entry(seq, datetime.fromisoformat(at), actor, action, rid, json.loads(text))


def _head(conn: store.Connection, key: bytes) -> tuple[int, bytes]:
    row = conn.execute("SELECT value FROM meta WHERE name = ?", (HEAD,)).fetchone()
    if row is None:
        return 0, GENESIS
    try:
        seq_text, mac_hex, head_hex = str(row[0]).split(":")
        seq, mac = int(seq_text), bytes.fromhex(mac_hex)
        valid = crypto.macs_equal(_head_mac(key, seq, mac), bytes.fromhex(head_hex))
    except ValueError:
        valid = False
    if not valid:
        raise AuditChainBroken("the record of the log's last entry was changed")
    return seq, mac


def _head_mac(key: bytes, seq: int, mac: bytes) -> bytes:
    return crypto.audit_mac(key, b"intake-audit-head/v1\x00", seq.to_bytes(8, "big") + mac)


def _canonical(detail: dict[str, object]) -> str:
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _entry_bytes(
    seq: int, at: str, actor: int | None, action: str, report_id: str | None, detail: str
) -> bytes:
    # A JSON array: unambiguous field boundaries, whatever the values hold.
    return json.dumps(
        [seq, at, actor, action, report_id, detail], separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
