"""The attachment format (SECURITY.md, Formats 13), without any cryptography.

An attachment (a photo, a voice note, a video, a document) is cut into chunks of
`CHUNK_SIZE` bytes, each encrypted on the device under a key derived from the report's
content key. This module lays out the bytes every side must agree on (labels, nonces,
additional data, sizes) and reads the payload's list of attachments, which is hostile
input: anyone holding the organisation's public key can write one. `intake.crypto` does
the encryption with these pieces; the server uses the size rules alone.
"""

from __future__ import annotations

import re
import struct
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

CHUNK_SIZE = 128 * 1024  # plaintext bytes in every chunk but the last
TAG_LEN = 16
ID_LEN = 16
KEY_LABEL = b"intake-attachment-v1/key"
CHUNK_LABEL = b"intake-attachment-v1/chunk"
FINAL = 1
NOT_FINAL = 0
MAX_NAME_CHARS = 255
MAX_TYPE_CHARS = 127
KINDS = frozenset({"voice", "photo", "file"})

_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_INDEX = struct.Struct(">I")


class AttachmentInvalid(ValueError):
    """An attachment entry, or the sizes of its chunks, break the format's rules."""


@dataclass(frozen=True)
class Entry:
    """One member of the payload's `attachments` list, checked."""

    id: str  # 32 hex digits
    name: str
    type: str
    size: int  # bytes of plaintext
    sha256: str  # 64 hex digits, of the plaintext
    chunks: int
    kind: str

    @property
    def raw_id(self) -> bytes:
        return bytes.fromhex(self.id)


def chunk_count(size: int) -> int:
    """How many chunks an attachment of `size` plaintext bytes has: at least one."""
    return max(1, -(-size // CHUNK_SIZE))


def sealed_size(size: int) -> int:
    """Bytes of ciphertext, all chunks together, for `size` bytes of plaintext."""
    return size + TAG_LEN * chunk_count(size)


def plain_size(sealed: int, chunks: int) -> int:
    """The plaintext size that `chunks` chunks totalling `sealed` bytes must hold.

    What the server checks, seeing only sizes and counts: raises AttachmentInvalid unless
    exactly these chunks can carry exactly that many bytes under the format's rules.
    """
    size = sealed - TAG_LEN * chunks
    if chunks < 1 or size < 0 or chunk_count(size) != chunks:
        raise AttachmentInvalid("the size does not fit the number of chunks")
    return size


def chunk_sealed_size(sealed: int, chunks: int, index: int) -> int:
    """The exact ciphertext length of chunk `index` of an attachment of these sizes."""
    if not 0 <= index < chunks:
        raise AttachmentInvalid("no such chunk")
    if index < chunks - 1:
        return CHUNK_SIZE + TAG_LEN
    return sealed - (chunks - 1) * (CHUNK_SIZE + TAG_LEN)


def key_info(report_id: bytes, attachment_id: bytes) -> bytes:
    """HKDF info of an attachment key: binds it to its report and its attachment id."""
    _check_ids(report_id, attachment_id)
    return KEY_LABEL + report_id + attachment_id


def nonce(index: int, final: bool) -> bytes:
    """7 zero bytes, the chunk index (4 bytes), and 1 for the last chunk or 0 (STREAM)."""
    return bytes(7) + _INDEX.pack(index) + bytes([FINAL if final else NOT_FINAL])


def chunk_aad(report_id: bytes, attachment_id: bytes, index: int, final: bool) -> bytes:
    """Additional data of a chunk: its report, its attachment, its place, and whether it
    is the last, so that no chunk can be moved, dropped, reordered or cut off unseen."""
    _check_ids(report_id, attachment_id)
    return (CHUNK_LABEL + report_id + attachment_id + _INDEX.pack(index)
            + bytes([FINAL if final else NOT_FINAL]))


def split(data: bytes) -> list[bytes]:
    """The plaintext chunks of an attachment, in order."""
    return [data[i * CHUNK_SIZE:(i + 1) * CHUNK_SIZE] for i in range(chunk_count(len(data)))]


def entries(payload: Mapping[str, object]) -> list[Entry | None]:
    """The payload's attachments in order, each checked; None for an entry that breaks a
    rule (it is shown as damaged; the rest of the report still opens). [] when none."""
    raw = payload.get("attachments")
    if not isinstance(raw, list):
        return []
    seen: set[str] = set()
    out: list[Entry | None] = []
    for item in raw:
        try:
            entry = _entry(item)
        except AttachmentInvalid:
            out.append(None)
            continue
        if entry.id in seen:
            out.append(None)
            continue
        seen.add(entry.id)
        out.append(entry)
    return out


def _entry(item: object) -> Entry:
    if not isinstance(item, dict):
        raise AttachmentInvalid("an attachment entry is an object")
    ident, name, kind = item.get("id"), item.get("name"), item.get("kind", "file")
    mime, size, digest, chunks = (item.get("type", ""), item.get("size"), item.get("sha256"),
                                  item.get("chunks"))
    if not (isinstance(ident, str) and _HEX32.fullmatch(ident)):
        raise AttachmentInvalid("id")
    if not (isinstance(name, str) and 1 <= len(name) <= MAX_NAME_CHARS):
        raise AttachmentInvalid("name")
    if not (isinstance(mime, str) and len(mime) <= MAX_TYPE_CHARS):
        raise AttachmentInvalid("type")
    if not (isinstance(kind, str) and kind in KINDS):
        raise AttachmentInvalid("kind")
    size, chunks = _whole(size), _whole(chunks)
    if size is None or chunks is None or size < 0:
        raise AttachmentInvalid("size")
    if chunks != chunk_count(size):
        raise AttachmentInvalid("chunks")
    if not (isinstance(digest, str) and _HEX64.fullmatch(digest)):
        raise AttachmentInvalid("sha256")
    return Entry(ident, name, mime, size, digest, chunks, kind)


def safe_file_name(name: str) -> str:
    """A name from a payload (hostile) made safe to write in a folder: no path, no control
    characters, no leading dot, at most 100 characters with the extension kept."""
    text = unicodedata.normalize("NFC", name)
    text = "".join("_" if ch in '/\\:*?"<>|' or unicodedata.category(ch)[0] == "C" else ch
                   for ch in text).strip().lstrip(".")
    stem, dot, ext = text.rpartition(".")
    if not stem or len(ext) > 10:
        stem, dot, ext = text, "", ""
    text = stem[:100 - len(dot) - len(ext)] + dot + ext
    return text or "attachment"


def _whole(value: object) -> int | None:
    """A JSON number as JavaScript reads it: 5 and 5.0 are the same whole number, true is
    not a number, and nothing past 2**53 is exact, so it is refused on both sides."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    number = int(value)
    return number if abs(number) <= 2**53 - 1 else None


def _check_ids(report_id: bytes, attachment_id: bytes) -> None:
    if len(report_id) != 16 or len(attachment_id) != ID_LEN:
        raise ValueError("report ids and attachment ids are 16 bytes")
