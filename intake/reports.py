"""Accepting reports and answering status checks: plain functions over a connection.

Routes parse a request and call these; tests call them directly. Every function takes
what it needs (connection, config, clock) as arguments.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from intake import capacity, cases, crypto, focal, receipts, store, throttle
from intake import envelope as fmt
from intake.config import Config

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Rejected(Exception):
    """A submission refused before anything was stored; `code` is the API's error code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Accepted:
    report_id: str
    created: bool = True  # False for a retry of a submission stored before


@dataclass(frozen=True)
class ServerReceipt:
    report_id: str
    receipt_code: str


def check_envelope(data: bytes, config: Config, *, now: datetime) -> fmt.Envelope:
    """Shape checks a server can make without any key (SECURITY.md, Formats 2)."""
    try:
        env = fmt.parse(data, max_size=config.limits.max_envelope_bytes)
    except fmt.EnvelopeUnsupported:
        raise Rejected("unsupported_version") from None
    except fmt.EnvelopeMalformed:
        raise Rejected("too_large" if len(data) > config.limits.max_envelope_bytes
                       else "malformed_envelope") from None
    if env.schema != fmt.SCHEMA_V1:
        # Officers' notes share the envelope format but are never reports.
        raise Rejected("unsupported_version")
    if not config.accepts_recipients((entry.key_id for entry in env.recipients), now):
        raise Rejected("unknown_key")
    if not all(crypto.is_valid_point(entry.enc) for entry in env.recipients):
        raise Rejected("malformed_envelope")
    return env


@dataclass(frozen=True)
class Submission:
    """One submission body (SECURITY.md, Formats 6), decoded but not yet checked."""

    envelope: bytes
    receipt_code: str | None = None  # as typed on the device, sent over TLS
    sealed_receipt: bytes | None = None  # from an offline queue (Formats 7)
    language: str | None = None
    focal_point: str | None = None
    signature: bytes | None = None

    @property
    def receipt_field(self) -> bytes:
        """The bytes a focal point's signature covers for the receipt (Formats 8)."""
        if self.sealed_receipt is not None:
            return self.sealed_receipt
        return (self.receipt_code or "").encode("utf-8")


def parse_submission(body: object) -> Submission:
    """Decode a JSON body's members; any wrong type or encoding is Rejected("bad_request")."""
    if not isinstance(body, dict):
        raise Rejected("bad_request")
    text = {k: v for k, v in body.items() if isinstance(v, str) and _is_unicode(v)}
    if set(text) != set(body) or "envelope" not in text:
        raise Rejected("bad_request")
    if ("receipt_code" in text) == ("sealed_receipt" in text):
        raise Rejected("bad_request")
    if ("focal_point" in text) != ("signature" in text):
        raise Rejected("bad_request")
    try:
        envelope = crypto.b64decode(text["envelope"])
    except ValueError:
        raise Rejected("malformed_envelope") from None
    try:
        sealed = crypto.b64decode(text["sealed_receipt"]) if "sealed_receipt" in text else None
        signature = crypto.b64decode(text["signature"]) if "signature" in text else None
    except ValueError:
        raise Rejected("bad_request") from None
    return Submission(
        envelope=envelope, receipt_code=text.get("receipt_code"), sealed_receipt=sealed,
        language=text.get("language"), focal_point=text.get("focal_point"), signature=signature,
    )


def _is_unicode(text: str) -> bool:
    """False for a string with a lone surrogate, which JSON can carry (`"\\ud800"`) but no
    UTF-8 can: SQLite and every encoder refuse it with an error the caller did not expect."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class Admitted:
    """A submission that passed every check but the storing: what `_store` needs."""

    env: fmt.Envelope
    code: str
    language: str
    channel: str


def admit(
    conn: store.Connection, config: Config, submission: Submission, *, attachments: bool,
    now: datetime,
) -> Admitted:
    """Every check of a submission sealed on a device, short of storing it. Raises Rejected.

    `attachments` says which door it came through: an envelope flagged as having
    attachments (Formats 13) is accepted only with its chunks (`intake.uploads`), and one
    without the flag only without them. Cheap checks come first, the signature after.
    """
    env = check_envelope(submission.envelope, config, now=now)
    if env.server_sealed:
        # Only the server may say it sealed a report; a device claiming so is lying.
        raise Rejected("malformed_envelope")
    if env.has_attachments != attachments:
        raise Rejected("attachments_missing" if env.has_attachments else "bad_request")
    typed, language = submission.receipt_code, submission.language
    if submission.sealed_receipt is not None:
        try:
            if config.receipt_key is None:
                raise crypto.ReceiptOpenError("this instance has no receipt key")
            typed, language = crypto.open_receipt(
                submission.sealed_receipt, report_id=env.report_id, key=config.receipt_key
            )
        except crypto.ReceiptOpenError:
            raise Rejected("invalid_receipt_code") from None
    try:
        code = receipts.normalise(typed or "")
    except receipts.ReceiptCodeInvalid:
        raise Rejected("invalid_receipt_code") from None
    if language not in config.languages:
        language = config.default_language
    channel = "web"
    if submission.focal_point is not None and submission.signature is not None:
        message = crypto.focal_message(submission.envelope, submission.receipt_field)
        try:
            point = focal.verify(conn, submission.focal_point, submission.signature, message)
        except focal.FocalPointInvalid:
            raise Rejected("focal_point_invalid") from None
        channel = point.channel
    return Admitted(env, code, language, channel)


def accept(
    conn: store.Connection, config: Config, submission: Submission, *, now: Clock = utcnow,
    gate: capacity.Gate | None = None,
) -> Accepted:
    """Store an envelope sealed on a device. Raises Rejected, or capacity.Busy when no
    slot for the hash is free; stores nothing then.

    Cheap checks come first (shape, receipt, signature), the argon2id hash last.
    """
    admitted = admit(conn, config, submission, attachments=False, now=now())
    with capacity.slot(gate):
        digest = _digest(admitted.code, config)
    created = _store(conn, config, admitted.env, submission.envelope, digest,
                     admitted.language, admitted.channel, "device", now)
    return Accepted(admitted.env.report_id_hex, created)


def accept_envelope(
    conn: store.Connection,
    config: Config,
    *,
    data: bytes,
    receipt_code: str,
    language: str,
    now: Clock = utcnow,
) -> Accepted:
    """Shorthand for an online submission with a plain receipt code."""
    return accept(
        conn, config, Submission(data, receipt_code=receipt_code, language=language), now=now
    )


def seal_on_server(
    conn: store.Connection,
    config: Config,
    *,
    payload: Mapping[str, object],
    language: str,
    report_id: bytes | None = None,
    now: Clock = utcnow,
    rng: crypto.Rng = os.urandom,
    gate: capacity.Gate | None = None,
) -> ServerReceipt:
    """The no-JavaScript path: seal in memory at once, store only the envelope.

    `report_id` comes from the form the server rendered, so that a browser resubmitting the
    same form (reload, double tap) is recognised instead of filing the report twice.
    Raises capacity.Busy, having sealed and stored nothing, when no slot is free.
    """
    code = receipts.new_code(rng)
    with capacity.slot(gate):
        data = crypto.seal(
            payload, config.recipients, flags=fmt.FLAG_SERVER_SEALED, report_id=report_id,
            rng=rng,
        )
        digest = _digest(code, config)
    env = fmt.parse(data, max_size=max(len(data), config.limits.max_envelope_bytes))
    _store(conn, config, env, data, digest, language, "web", "server", now)
    return ServerReceipt(env.report_id_hex, code)


@dataclass(frozen=True)
class ImportResult:
    stored: int
    already: int
    refused: tuple[tuple[int, str], ...]  # (item index, error code)


def import_queue(
    conn: store.Connection, config: Config, data: bytes, *, now: Clock = utcnow
) -> ImportResult:
    """Submit every item of a queue file (SECURITY.md, Formats 9) as the API would."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        raise Rejected("bad_request") from None
    if not isinstance(document, dict) or (
        document.get("format"), document.get("version")) != ("intake-queue", 1
    ) or not isinstance(document.get("items"), list):
        raise Rejected("bad_request")
    stored = already = 0
    refused: list[tuple[int, str]] = []
    from intake import uploads  # uploads builds on this module

    for index, item in enumerate(document["items"]):
        try:
            if isinstance(item, dict) and "chunks" in item:
                created = uploads.import_item(conn, config, item, now=now)
            else:
                submission = parse_submission(item)
                if submission.sealed_receipt is None:
                    raise Rejected("bad_request")
                created = accept(conn, config, submission, now=now).created
            if created:
                stored += 1
            else:
                already += 1
        except Rejected as exc:
            refused.append((index, exc.code))
    return ImportResult(stored, already, tuple(refused))


def check_status(
    conn: store.Connection, config: Config, typed_code: str, *, client_address: str | None,
    now: Clock = utcnow, gate: capacity.Gate | None = None, rng: crypto.Rng = os.urandom,
) -> store.StatusView | None:
    """A status check under the guessing limits (intake/throttle.py).

    Raises throttle.Throttled, without checking the code, when this client or the whole
    instance has failed too often lately; a right code is no exception, or every guess
    would be answered. Raises capacity.Busy when no slot is free for the hash; that try
    does not count.
    """
    attempt = throttle.begin_status_check(conn, config.throttle, client_address, now(), rng)
    try:
        view = find_status(conn, config, typed_code, gate=gate)
    except BaseException:
        attempt.cancel()  # not checked: no guess was answered
        raise
    if view is not None:
        attempt.cancel()  # a found code is not a failure
    return view


def find_status(
    conn: store.Connection, config: Config, typed_code: str, *,
    gate: capacity.Gate | None = None,
) -> store.StatusView | None:
    """Look a report up by its receipt code, with no limit on tries (see check_status).

    A malformed code, a code with a wrong check digit and an unknown code all cost one
    argon2id hash and all return None, so the answer and its timing say nothing more than
    "not found".
    """
    try:
        code = receipts.normalise(typed_code)
    except receipts.ReceiptCodeInvalid:
        with capacity.slot(gate):
            _digest("0" * receipts.CODE_DIGITS, config)
        return None
    with capacity.slot(gate):
        digest = _digest(code, config)
    return store.find_by_receipt(conn, digest)


def _digest(code: str, config: Config) -> bytes:
    return receipts.lookup_hash(code, pepper=config.pepper, params=config.receipt_hash)


def _store(
    conn: store.Connection,
    config: Config,
    env: fmt.Envelope,
    data: bytes,
    digest: bytes,
    language: str,
    channel: str,
    sealed_by: str,
    now: Clock,
) -> bool:
    try:
        with store.transaction(conn):
            created = store.insert_report(
                conn,
                store.NewReport(
                    report_id=env.report_id_hex, received_at=now(), channel=channel,
                    language=language, schema=env.schema, sealed_by=sealed_by,
                    receipt_hash=digest, envelope=data,
                ),
            )
            if created:
                # Its service-level deadline, in the same transaction: a report stored
                # without one would sort after every other case until the next restart.
                cases.refresh_due(conn, config.service_levels, env.report_id_hex)
        return created
    except store.ReplayedEnvelope:
        raise Rejected("replayed_envelope") from None
    except store.ReportConflict:
        raise Rejected("report_id_conflict") from None
