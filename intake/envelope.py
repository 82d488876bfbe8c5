"""The envelope byte format (SECURITY.md, Formats 2), without any cryptography.

This module only lays out and checks bytes, so that the server can refuse a malformed
envelope before it touches a key, and so that the parser, which reads hostile input, is
small enough to test exhaustively. Sealing and opening live in `intake.crypto`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"INTK"
VERSION = 1
SUITE_P256_SHA256_AES256GCM = 1
FLAG_SERVER_SEALED = 0x01
# The payload lists attachments whose encrypted chunks travel beside the envelope
# (SECURITY.md, Formats 13): the server must hold every chunk before it acknowledges.
FLAG_ATTACHMENTS = 0x02
KNOWN_FLAGS = FLAG_SERVER_SEALED | FLAG_ATTACHMENTS
SCHEMA_V1 = 1  # a report (SECURITY.md, Formats 3)
SCHEMA_NOTE = 2  # an officer's note on a case, bound to the case's report id (Formats 10)
KNOWN_SCHEMAS = frozenset({SCHEMA_V1, SCHEMA_NOTE})

PREFIX_LEN = 25
KEY_ID_LEN = 32
ENC_LEN = 65
SEALED_KEY_LEN = 48  # a 32-byte content key plus a 16-byte GCM tag
ENTRY_LEN = KEY_ID_LEN + ENC_LEN + SEALED_KEY_LEN
NONCE_LEN = 12
TAG_LEN = 16
REPORT_ID_LEN = 16
MAX_RECIPIENTS = 8
PAD_BLOCK = 512
MIN_LEN = PREFIX_LEN + ENTRY_LEN + NONCE_LEN + TAG_LEN + PAD_BLOCK

CONTENT_KEY_LABEL = b"intake-envelope-v1/content-key"

_PREFIX = struct.Struct(">4sBBBB16sB")
assert _PREFIX.size == PREFIX_LEN


class EnvelopeMalformed(ValueError):
    """The bytes are not a well-formed envelope: wrong lengths, magic or structure."""


class EnvelopeUnsupported(ValueError):
    """The envelope is well-formed but uses a version, suite or schema we do not know."""


@dataclass(frozen=True)
class RecipientEntry:
    key_id: bytes
    enc: bytes
    sealed_key: bytes


@dataclass(frozen=True)
class Envelope:
    flags: int
    schema: int
    report_id: bytes
    recipients: tuple[RecipientEntry, ...]
    nonce: bytes
    ciphertext: bytes
    header: bytes

    @property
    def prefix(self) -> bytes:
        return self.header[:PREFIX_LEN]

    @property
    def report_id_hex(self) -> str:
        return self.report_id.hex()

    @property
    def server_sealed(self) -> bool:
        return bool(self.flags & FLAG_SERVER_SEALED)

    @property
    def has_attachments(self) -> bool:
        return bool(self.flags & FLAG_ATTACHMENTS)


def build_prefix(*, flags: int, schema: int, report_id: bytes, recipient_count: int) -> bytes:
    if len(report_id) != REPORT_ID_LEN or not 1 <= recipient_count <= MAX_RECIPIENTS:
        raise ValueError("report id must be 16 bytes and there must be 1 to 8 recipients")
    return _PREFIX.pack(
        MAGIC, VERSION, SUITE_P256_SHA256_AES256GCM, flags, schema, report_id, recipient_count
    )


def content_key_info(prefix: bytes, key_id: bytes) -> bytes:
    """HPKE info for one recipient: binds the sealed content key to this report and key."""
    return CONTENT_KEY_LABEL + prefix + key_id


def pad(plaintext: bytes) -> bytes:
    """Right-pad with ASCII spaces (JSON whitespace) to a positive multiple of PAD_BLOCK."""
    blocks = max(1, -(-len(plaintext) // PAD_BLOCK))
    return plaintext.ljust(blocks * PAD_BLOCK, b" ")


def parse(data: bytes, *, max_size: int) -> Envelope:
    """Check the shape of `data` and split it into its fields.

    Raises EnvelopeMalformed or EnvelopeUnsupported; never anything else, whatever the bytes.
    """
    if len(data) > max_size:
        raise EnvelopeMalformed("envelope is larger than the limit")
    if len(data) >= 5 and data[:4] == MAGIC and data[4] != VERSION:
        # Checked before the length, which depends on the version.
        raise EnvelopeUnsupported(f"unknown envelope version {data[4]}")
    if len(data) < MIN_LEN:
        raise EnvelopeMalformed("envelope is too short")
    magic, version, suite, flags, schema, report_id, count = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise EnvelopeMalformed("not an envelope")
    if version != VERSION:
        raise EnvelopeUnsupported(f"unknown envelope version {version}")
    if suite != SUITE_P256_SHA256_AES256GCM:
        raise EnvelopeUnsupported(f"unknown suite {suite}")
    if flags & ~KNOWN_FLAGS:
        raise EnvelopeMalformed("reserved flag bits are set")
    if schema not in KNOWN_SCHEMAS:
        raise EnvelopeUnsupported(f"unknown payload schema {schema}")
    if not 1 <= count <= MAX_RECIPIENTS:
        raise EnvelopeMalformed("recipient count out of range")
    header_len = PREFIX_LEN + count * ENTRY_LEN
    body_len = len(data) - header_len - NONCE_LEN - TAG_LEN
    if body_len < PAD_BLOCK or body_len % PAD_BLOCK:
        raise EnvelopeMalformed("payload length is not padded as the format requires")
    entries = []
    for i in range(count):
        at = PREFIX_LEN + i * ENTRY_LEN
        key_id = data[at : at + KEY_ID_LEN]
        enc = data[at + KEY_ID_LEN : at + KEY_ID_LEN + ENC_LEN]
        if enc[0] != 0x04:
            raise EnvelopeMalformed("encapsulated key is not an uncompressed point")
        sealed_key = data[at + KEY_ID_LEN + ENC_LEN : at + ENTRY_LEN]
        entries.append(RecipientEntry(key_id, enc, sealed_key))
    if len({e.key_id for e in entries}) != count:
        raise EnvelopeMalformed("a recipient key appears twice")
    return Envelope(
        flags=flags,
        schema=schema,
        report_id=report_id,
        recipients=tuple(entries),
        nonce=data[header_len : header_len + NONCE_LEN],
        ciphertext=data[header_len + NONCE_LEN :],
        header=data[:header_len],
    )
