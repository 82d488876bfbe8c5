"""Reports with attachments: an upload opened with the envelope, chunks stored in order,
the report acknowledged only when every chunk is there, and incomplete uploads purged
(SECURITY.md, Formats 13 and 14).

The server never sees content: it checks what sizes and counts say (each chunk is exactly
as long as the declared sizes require, none is skipped, none is stored twice) and keeps
the ciphertext as the device sent it. Plain functions over a connection, like `reports`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hmac import compare_digest

from intake import attachments as att
from intake import audit, capacity, cases, crypto, receipts, reports, store
from intake.config import Config, Limits
from intake.reports import Clock, Rejected, utcnow

TOKEN_LEN = 32
_HEX32 = re.compile(r"[0-9a-f]{32}")
_INDEX = re.compile(r"[0-9]{1,9}")
_UPLOAD_MEMBERS = ("upload_token", "attachments")


class UploadUnknown(Rejected):
    """No open upload has this id and token: never started, finished, or purged."""

    def __init__(self) -> None:
        super().__init__("upload_unknown")


class ChunkOutOfOrder(Rejected):
    """A chunk came before the ones it follows; `received` says where to go on from."""

    def __init__(self, received: tuple[int, ...]) -> None:
        super().__init__("chunk_out_of_order")
        self.received = received


@dataclass(frozen=True)
class Declared:
    """One attachment as the device declares it: its id, ciphertext size and chunks."""

    id: str
    sealed_size: int
    chunks: int


@dataclass(frozen=True)
class UploadRequest:
    submission: reports.Submission
    token: bytes
    attachments: tuple[Declared, ...]


@dataclass(frozen=True)
class ChunkAddress:
    report_id: str
    attachment_id: str
    index: int
    token: bytes


@dataclass(frozen=True)
class Progress:
    """Chunks stored per attachment, in the declared order; complete means acknowledged."""

    report_id: str
    received: tuple[int, ...] = ()
    complete: bool = False


# --- Parsing what the device sends (hostile input) ------------------------------------------


def parse_upload(body: object, limits: Limits) -> UploadRequest:
    """Decode an upload's opening body (Formats 14). Raises Rejected, never anything else."""
    if not isinstance(body, dict):
        raise Rejected("bad_request")
    token_text, declared = body.get("upload_token"), body.get("attachments")
    submission = reports.parse_submission(
        {k: v for k, v in body.items() if k not in _UPLOAD_MEMBERS}
    )
    token = _token(token_text if isinstance(token_text, str) else None, "bad_request")
    if not isinstance(declared, list) or not declared:
        raise Rejected("bad_upload")
    if len(declared) > limits.max_attachments:
        raise Rejected("too_large")
    items = tuple(_declared(item) for item in declared)
    if len({item.id for item in items}) != len(items):
        raise Rejected("bad_upload")
    total = sum(att.plain_size(item.sealed_size, item.chunks) for item in items)
    if total > limits.max_attachment_bytes:
        raise Rejected("too_large")
    return UploadRequest(submission, token, items)


def _declared(item: object) -> Declared:
    if not isinstance(item, dict) or set(item) != {"id", "size", "chunks"}:
        raise Rejected("bad_upload")
    ident, size, chunks = item["id"], item["size"], item["chunks"]
    # type() rather than isinstance: JSON true is not a size.
    if not (isinstance(ident, str) and _HEX32.fullmatch(ident)
            and type(size) is int and type(chunks) is int):
        raise Rejected("bad_upload")
    try:
        att.plain_size(size, chunks)
    except att.AttachmentInvalid:
        raise Rejected("bad_upload") from None
    return Declared(ident, size, chunks)


def parse_chunk(report_id: str, attachment_id: str, index: str,
                token: str | None) -> ChunkAddress:
    """Decode a chunk's address (the path) and token (a header). Raises Rejected."""
    if not (_HEX32.fullmatch(report_id) and _HEX32.fullmatch(attachment_id)
            and _INDEX.fullmatch(index)):
        raise Rejected("bad_upload")
    # A missing or malformed token is answered like a wrong one: no such upload.
    return ChunkAddress(report_id, attachment_id, int(index), _token(token, "upload_unknown"))


def _token(text: str | None, error: str) -> bytes:
    try:
        token = crypto.b64decode(text or "")
    except ValueError:
        raise Rejected(error) from None
    if len(token) != TOKEN_LEN:
        raise Rejected(error)
    return token


# --- Opening, filling and finishing an upload -------------------------------------------


def start(conn: store.Connection, config: Config, request: UploadRequest, *,
          now: Clock = utcnow, gate: capacity.Gate | None = None,
          capped: bool = True) -> Progress:
    """Open an upload, or answer where an earlier one stands. Raises Rejected, or
    capacity.Busy (nothing stored) when no slot is free for the receipt code's hash, or when
    a new upload would take incomplete uploads past `limits.open_upload_bytes` (`capped`;
    `intake import` fills each upload at once, so it is not).

    Sending the same opening again (same envelope, receipt and token) is how a device
    resumes: it learns which chunks are stored. A report already complete answers as
    complete, which is how a lost last answer is recovered.
    """
    moment = now()
    admitted = reports.admit(conn, config, request.submission, attachments=True, now=moment)
    declared = sum(item.sealed_size for item in request.attachments)
    if capped:
        # Before the hash, so that a full server spends nothing on a new upload; checked
        # again below, in the transaction that would add it.
        _check_room(conn, config, admitted.env.report_id_hex, declared)
    data = request.submission.envelope
    digest = hashlib.sha256(data).digest()
    with capacity.slot(gate):
        receipt_hash = receipts.lookup_hash(admitted.code, pepper=config.pepper,
                                            params=config.receipt_hash)
    token_hash = hashlib.sha256(request.token).digest()
    report_id = admitted.env.report_id_hex
    purge(conn, config, now=moment)
    with store.transaction(conn):
        done = conn.execute("SELECT envelope_sha256, receipt_hash FROM reports WHERE id = ?",
                            (report_id,)).fetchone()
        if done is not None:
            _same_submission(done, digest, receipt_hash, report_id)
            return Progress(report_id, complete=True)
        open_ = conn.execute(
            "SELECT envelope_sha256, receipt_hash, token_hash FROM uploads WHERE report_id = ?",
            (report_id,),
        ).fetchone()
        if open_ is not None:
            _same_submission(open_, digest, receipt_hash, report_id)
            if not compare_digest(open_[2], token_hash) or _declared_of(conn, report_id) != \
                    request.attachments:
                raise Rejected("report_id_conflict")
            return Progress(report_id, _received(conn, report_id))
        taken = conn.execute(
            "SELECT 1 FROM reports WHERE receipt_hash = ? UNION ALL "
            "SELECT 1 FROM uploads WHERE receipt_hash = ?", (receipt_hash, receipt_hash),
        ).fetchone()
        if taken is not None:
            # Another report has this receipt code. As in store.insert_report: refusing
            # would tell the sender that the code exists, so the report goes on under a
            # lookup key no code matches.
            receipt_hash = store.taken_receipt(receipt_hash, report_id)
        if capped:
            _check_room(conn, config, report_id, declared)
        conn.execute(
            "INSERT INTO uploads (report_id, updated_at, token_hash, channel, language,"
            " schema_version, receipt_hash, envelope_sha256, envelope)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (report_id, _minute(moment), token_hash, admitted.channel, admitted.language,
             admitted.env.schema, receipt_hash, digest, data),
        )
        conn.executemany(
            "INSERT INTO attachments (report_id, attachment_id, position, sealed_size, chunks)"
            " VALUES (?, ?, ?, ?, ?)",
            [(report_id, item.id, position, item.sealed_size, item.chunks)
             for position, item in enumerate(request.attachments)],
        )
    return Progress(report_id, (0,) * len(request.attachments))


# A device told to wait by a full server tries again after this long: room comes back as
# uploads complete, which on 2G takes minutes, or expire.
ROOM_RETRY_SECONDS = 300


def _check_room(conn: store.Connection, config: Config, report_id: str, declared: int) -> None:
    """Raise capacity.Busy if a new upload of `declared` ciphertext bytes would take every
    incomplete upload together past the cap. A resumed upload is always let in: its bytes
    are counted already. The declared sizes bound what the chunks may add (put_chunk
    refuses any other size), so the cap bounds the disk that uploads can take."""
    if conn.execute("SELECT 1 FROM uploads WHERE report_id = ?", (report_id,)).fetchone():
        return
    (open_bytes,) = conn.execute(
        "SELECT coalesce(sum(a.sealed_size), 0) FROM attachments a"
        " JOIN uploads u ON u.report_id = a.report_id").fetchone()
    if open_bytes + declared > config.limits.open_upload_bytes:
        raise capacity.Busy(ROOM_RETRY_SECONDS)


def put_chunk(conn: store.Connection, config: Config, address: ChunkAddress, data: bytes, *,
              now: Clock = utcnow) -> Progress:
    """Store one chunk, in order; the last one makes the upload a report. Raises Rejected.

    A chunk sent again with the same bytes (its answer was lost) changes nothing. A chunk
    whose predecessors are not all stored is refused with where to go on from, so that no
    gap can form; a different chunk where one is stored is refused, so none is replaced.
    """
    report_id, attachment_id = address.report_id, address.attachment_id
    with store.transaction(conn):
        row = conn.execute(
            "SELECT token_hash, channel, language, schema_version, receipt_hash, envelope"
            " FROM uploads WHERE report_id = ?", (report_id,),
        ).fetchone()
        if row is None or not compare_digest(row[0], hashlib.sha256(address.token).digest()):
            raise UploadUnknown()
        upload = _Upload(*row[1:])
        declared = conn.execute(
            "SELECT sealed_size, chunks FROM attachments"
            " WHERE report_id = ? AND attachment_id = ?", (report_id, attachment_id),
        ).fetchone()
        if declared is None:
            raise Rejected("bad_upload")
        try:
            expected = att.chunk_sealed_size(declared[0], declared[1], address.index)
        except att.AttachmentInvalid:
            raise Rejected("bad_upload") from None
        if len(data) != expected:
            raise Rejected("bad_upload")
        stored = _count(conn, report_id, attachment_id)
        if address.index < stored:
            (kept,) = conn.execute(
                "SELECT data FROM attachment_chunks"
                " WHERE report_id = ? AND attachment_id = ? AND idx = ?",
                (report_id, attachment_id, address.index),
            ).fetchone()
            if not compare_digest(kept, data):
                raise Rejected("chunk_conflict")
        elif address.index > stored:
            raise ChunkOutOfOrder(_received(conn, report_id))
        else:
            conn.execute(
                "INSERT INTO attachment_chunks (report_id, attachment_id, idx, data)"
                " VALUES (?, ?, ?, ?)", (report_id, attachment_id, address.index, data),
            )
            conn.execute("UPDATE uploads SET updated_at = ? WHERE report_id = ?",
                         (_minute(now()), report_id))
        received = _received(conn, report_id)
        if received != tuple(d.chunks for d in _declared_of(conn, report_id)):
            return Progress(report_id, received)
        _finish(conn, report_id, upload, now)
    return Progress(report_id, received, complete=True)


@dataclass(frozen=True)
class _Upload:
    channel: str
    language: str
    schema: int
    receipt_hash: bytes
    envelope: bytes


def _finish(conn: store.Connection, report_id: str, upload: _Upload, now: Clock) -> None:
    """Every chunk is stored: the upload becomes a report, in the same transaction."""
    try:
        store.insert_report(conn, store.NewReport(
            report_id=report_id, received_at=now(), channel=upload.channel,
            language=upload.language, schema=upload.schema, sealed_by="device",
            receipt_hash=upload.receipt_hash, envelope=upload.envelope,
        ))
    except (store.ReplayedEnvelope, store.ReportConflict):
        raise Rejected("report_id_conflict") from None
    conn.execute("DELETE FROM uploads WHERE report_id = ?", (report_id,))


def purge(conn: store.Connection, config: Config, *, now: datetime) -> int:
    """Delete uploads with no chunk stored for `limits.upload_expiry_hours`, and their
    chunks; returns how many. Called at start-up, when an upload opens, and by
    `intake purge-uploads`. A device still holding the report starts it again."""
    cutoff = _minute(now - timedelta(hours=config.limits.upload_expiry_hours))
    with store.transaction(conn):
        stale = [row[0] for row in conn.execute(
            "SELECT report_id FROM uploads WHERE updated_at < ?", (cutoff,)
        )]
        for report_id in stale:
            # Chunks go with their attachments (ON DELETE CASCADE); secure_delete
            # overwrites the freed pages.
            conn.execute("DELETE FROM attachments WHERE report_id = ?", (report_id,))
            conn.execute("DELETE FROM uploads WHERE report_id = ?", (report_id,))
    return len(stale)


def import_item(conn: store.Connection, config: Config, item: dict[str, object], *,
                now: Clock = utcnow) -> bool:
    """A queue-file item with its chunks (Formats 9): the upload, at once. True when stored
    now, False when the report was there already. Raises Rejected."""
    lists = item.get("chunks")
    request = parse_upload({k: v for k, v in item.items() if k != "chunks"}, config.limits)
    if request.submission.sealed_receipt is None:
        raise Rejected("bad_request")
    if not (isinstance(lists, list) and len(lists) == len(request.attachments) and all(
        isinstance(chunks, list) and len(chunks) == declared.chunks
        for chunks, declared in zip(lists, request.attachments, strict=False)
    )):
        raise Rejected("bad_upload")
    progress = start(conn, config, request, now=now, capped=False)
    if progress.complete:
        return False
    for number, declared in enumerate(request.attachments):
        for index in range(progress.received[number], declared.chunks):
            text = lists[number][index]
            try:
                data = crypto.b64decode(text if isinstance(text, str) else "")
            except ValueError:
                raise Rejected("bad_upload") from None
            address = ChunkAddress(progress.report_id, declared.id, index, request.token)
            progress = put_chunk(conn, config, address, data, now=now)
    if not progress.complete:
        raise Rejected("bad_upload")
    return True


# --- Reading what a complete report holds -----------------------------------------------


def sealed_attachments(conn: store.Connection, report_id: str) -> dict[str, list[bytes]]:
    """Each attachment's chunks of a complete report, by attachment id; {} for none."""
    if not store.report_exists(conn, report_id):
        return {}
    out: dict[str, list[bytes]] = {}
    for attachment_id, data in conn.execute(
        "SELECT attachment_id, data FROM attachment_chunks WHERE report_id = ?"
        " ORDER BY attachment_id, idx", (report_id,),
    ):
        out.setdefault(attachment_id, []).append(bytes(data))
    return out


def sealed_attachment(conn: store.Connection, report_id: str, attachment_id: str) -> bytes:
    """One attachment's chunks of a complete report, concatenated in order; b"" if none.

    Every chunk but the last is CHUNK_SIZE + 16 bytes, so the reader can cut them apart."""
    if not store.report_exists(conn, report_id):
        return b""
    return b"".join(bytes(row[0]) for row in conn.execute(
        "SELECT data FROM attachment_chunks WHERE report_id = ? AND attachment_id = ?"
        " ORDER BY idx", (report_id, attachment_id),
    ))


def fetch_for_officer(conn: store.Connection, config: Config, *, report_id: str,
                      attachment_id: str, actor: int, now: datetime) -> bytes:
    """An attachment's ciphertext for an officer's browser to decrypt; recorded in the
    audit log like the report's own envelope. Raises cases.CaseNotFound."""
    with store.transaction(conn):
        data = sealed_attachment(conn, report_id, attachment_id)
        if not data:
            raise cases.CaseNotFound(report_id)
        audit.record(conn, config.audit_key, actor=actor, action="attachment_decrypted",
                     now=now, report_id=report_id)
    return data


def _same_submission(row: tuple[bytes, ...], digest: bytes, receipt_hash: bytes,
                     report_id: str) -> None:
    if row[0] != digest:
        raise Rejected("report_id_conflict")
    if row[1] not in (receipt_hash, store.taken_receipt(receipt_hash, report_id)):
        raise Rejected("replayed_envelope")


def _declared_of(conn: store.Connection, report_id: str) -> tuple[Declared, ...]:
    return tuple(Declared(*row) for row in conn.execute(
        "SELECT attachment_id, sealed_size, chunks FROM attachments WHERE report_id = ?"
        " ORDER BY position", (report_id,),
    ))


def _count(conn: store.Connection, report_id: str, attachment_id: str) -> int:
    return int(conn.execute(
        "SELECT count(*) FROM attachment_chunks WHERE report_id = ? AND attachment_id = ?",
        (report_id, attachment_id),
    ).fetchone()[0])


def _received(conn: store.Connection, report_id: str) -> tuple[int, ...]:
    return tuple(int(row[0]) for row in conn.execute(
        "SELECT (SELECT count(*) FROM attachment_chunks c WHERE c.report_id = a.report_id"
        " AND c.attachment_id = a.attachment_id) FROM attachments a WHERE a.report_id = ?"
        " ORDER BY a.position", (report_id,),
    ))


def _minute(moment: datetime) -> str:
    # To the minute, as every stored time: enough to purge, coarse against network logs.
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(UTC).replace(second=0, microsecond=0).isoformat()
