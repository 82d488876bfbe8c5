"""Accepting reports and answering status checks: plain functions over a connection.

Routes parse a request and call these; tests call them directly. Every function takes
what it needs (connection, config, clock) as arguments.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from intake import crypto, receipts, store
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


@dataclass(frozen=True)
class ServerReceipt:
    report_id: str
    receipt_code: str


def check_envelope(data: bytes, config: Config) -> fmt.Envelope:
    """Shape checks a server can make without any key (SECURITY.md, Formats 2)."""
    try:
        env = fmt.parse(data, max_size=config.limits.max_envelope_bytes)
    except fmt.EnvelopeUnsupported:
        raise Rejected("unsupported_version") from None
    except fmt.EnvelopeMalformed:
        raise Rejected("too_large" if len(data) > config.limits.max_envelope_bytes
                       else "malformed_envelope") from None
    active = {key.key_id for key in config.recipients}
    if any(entry.key_id not in active for entry in env.recipients):
        raise Rejected("unknown_key")
    if not all(crypto.is_valid_point(entry.enc) for entry in env.recipients):
        raise Rejected("malformed_envelope")
    return env


def accept_envelope(
    conn: store.Connection,
    config: Config,
    *,
    data: bytes,
    receipt_code: str,
    language: str,
    channel: str = "web",
    now: Clock = utcnow,
) -> Accepted:
    """Store an envelope sealed on the device. Raises Rejected; stores nothing then."""
    env = check_envelope(data, config)
    if env.server_sealed:
        # Only the server may say it sealed a report; a device claiming so is lying.
        raise Rejected("malformed_envelope")
    try:
        code = receipts.normalise(receipt_code)
    except receipts.ReceiptCodeInvalid:
        raise Rejected("invalid_receipt_code") from None
    if language not in config.languages:
        language = config.default_language
    _store(conn, config, env, data, code, language, channel, "device", now)
    return Accepted(env.report_id_hex)


def seal_on_server(
    conn: store.Connection,
    config: Config,
    *,
    payload: Mapping[str, object],
    language: str,
    report_id: bytes | None = None,
    now: Clock = utcnow,
    rng: crypto.Rng = os.urandom,
) -> ServerReceipt:
    """The no-JavaScript path: seal in memory at once, store only the envelope.

    `report_id` comes from the form the server rendered, so that a browser resubmitting the
    same form (reload, double tap) is recognised instead of filing the report twice.
    """
    code = receipts.new_code(rng)
    data = crypto.seal(
        payload, config.recipients, flags=fmt.FLAG_SERVER_SEALED, report_id=report_id, rng=rng
    )
    env = fmt.parse(data, max_size=max(len(data), config.limits.max_envelope_bytes))
    _store(conn, config, env, data, code, language, "web", "server", now)
    return ServerReceipt(env.report_id_hex, code)


def find_status(conn: store.Connection, config: Config, typed_code: str) -> store.StatusView | None:
    """Look a report up by its receipt code.

    A malformed code, a code with a wrong check digit and an unknown code all cost one
    argon2id hash and all return None, so the answer and its timing say nothing more than
    "not found".
    """
    try:
        code = receipts.normalise(typed_code)
    except receipts.ReceiptCodeInvalid:
        code = "0" * receipts.CODE_DIGITS
        receipts.lookup_hash(code, pepper=config.pepper, params=config.receipt_hash)
        return None
    digest = receipts.lookup_hash(code, pepper=config.pepper, params=config.receipt_hash)
    return store.find_by_receipt(conn, digest)


def _store(
    conn: store.Connection,
    config: Config,
    env: fmt.Envelope,
    data: bytes,
    code: str,
    language: str,
    channel: str,
    sealed_by: str,
    now: Clock,
) -> None:
    digest = receipts.lookup_hash(code, pepper=config.pepper, params=config.receipt_hash)
    try:
        store.insert_report(
            conn,
            store.NewReport(
                report_id=env.report_id_hex, received_at=now(), channel=channel,
                language=language, schema=env.schema, sealed_by=sealed_by,
                receipt_hash=digest, envelope=data,
            ),
        )
    except store.ReplayedEnvelope:
        raise Rejected("replayed_envelope") from None
    except store.ReportConflict:
        raise Rejected("report_id_conflict") from None
