"""Focal points: shared tablets in villages that enrol once and sign what they send.

An administrator registers a focal point and gets a one-time enrolment code; the tablet
sends it with the public half of a non-extractable ECDSA key it made in WebCrypto. From
then on every report from the tablet carries a signature the server checks before it
sets the report's channel to `focal:<id>` (SECURITY.md, Formats 8).
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from intake import crypto, store

ENROLMENT_VALID_FOR = timedelta(days=7)
_TYPO_FIXES = str.maketrans({"0": "O", "1": "I", "8": "B"})


class EnrolmentInvalid(Exception):
    """Unknown, used, expired or revoked enrolment code, or a malformed public key."""


class FocalPointInvalid(Exception):
    """A report names a focal point that is unknown, revoked, or whose signature fails."""


@dataclass(frozen=True)
class FocalPoint:
    id: str
    name: str
    enrolled: bool
    revoked: bool

    @property
    def channel(self) -> str:
        return f"focal:{self.id}"


def code_hash(text: str) -> bytes:
    normal = "".join(ch for ch in text.upper() if ch not in " -").translate(_TYPO_FIXES)
    return hashlib.sha256(normal.encode("ascii", "replace")).digest()


def display_code(raw: bytes) -> str:
    text = base64.b32encode(raw).decode("ascii").rstrip("=")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def add(
    conn: store.Connection, name: str, *, now: datetime, rng: crypto.Rng = os.urandom
) -> tuple[FocalPoint, str]:
    """Register a focal point; returns it and its one-time enrolment code (128 random bits)."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise ValueError("a focal point's name has 1 to 100 characters")
    code = display_code(rng(16))
    point = FocalPoint(id=rng(4).hex(), name=name, enrolled=False, revoked=False)
    with store.transaction(conn):
        conn.execute(
            "INSERT INTO focal_points (id, name, created_at, enrolment_hash,"
            " enrolment_expires_at) VALUES (?, ?, ?, ?, ?)",
            (point.id, name, now.isoformat(), code_hash(code),
             (now + ENROLMENT_VALID_FOR).isoformat()),
        )
    return point, code


def enrol(conn: store.Connection, code: str, public_key: bytes, *, now: datetime) -> FocalPoint:
    """Bind a tablet's public key to the focal point whose unused code this is."""
    if not crypto.is_valid_point(public_key):
        raise EnrolmentInvalid("the public key is not a P-256 point")
    with store.transaction(conn):
        row = conn.execute(
            "SELECT id, name, enrolment_expires_at FROM focal_points"
            " WHERE enrolment_hash = ? AND revoked_at IS NULL",
            (code_hash(code[:64]),),
        ).fetchone()
        if row is None or datetime.fromisoformat(row[2]) < now:
            raise EnrolmentInvalid("unknown, used or expired enrolment code")
        # The code works once: it is erased as the key is recorded.
        conn.execute(
            "UPDATE focal_points SET public_key = ?, enrolled_at = ?, enrolment_hash = NULL,"
            " enrolment_expires_at = NULL WHERE id = ?",
            (public_key, now.isoformat(), row[0]),
        )
    return FocalPoint(id=row[0], name=row[1], enrolled=True, revoked=False)


def verify(conn: store.Connection, focal_id: str, signature: bytes, message: bytes) -> FocalPoint:
    row = conn.execute(
        "SELECT name, public_key FROM focal_points WHERE id = ? AND revoked_at IS NULL"
        " AND public_key IS NOT NULL",
        (focal_id,),
    ).fetchone()
    if row is None:
        raise FocalPointInvalid("unknown or revoked focal point")
    try:
        crypto.verify_focal_signature(bytes(row[1]), signature, message)
    except crypto.SignatureInvalid:
        raise FocalPointInvalid("the signature does not verify") from None
    return FocalPoint(id=focal_id, name=row[0], enrolled=True, revoked=False)


def revoke(conn: store.Connection, focal_id: str, *, now: datetime) -> bool:
    with store.transaction(conn):
        cursor = conn.execute(
            "UPDATE focal_points SET revoked_at = ?, enrolment_hash = NULL"
            " WHERE id = ? AND revoked_at IS NULL",
            (now.isoformat(), focal_id),
        )
    return cursor.rowcount == 1


def all_points(conn: store.Connection) -> list[FocalPoint]:
    rows = conn.execute(
        "SELECT id, name, public_key IS NOT NULL, revoked_at IS NOT NULL FROM focal_points"
        " ORDER BY created_at, id"
    ).fetchall()
    return [FocalPoint(r[0], r[1], bool(r[2]), bool(r[3])) for r in rows]
