"""The backup file format, version 1 (SECURITY.md, Formats 12): framing, manifest, padding.

    file      = header (113) || segments || SHA-256 of everything before it (32)
    plaintext = manifest length (4) || manifest (JSON) || members || zero padding

The cryptography (HPKE for the header, AES-256-GCM for the segments) is in intake.crypto;
this module only cuts, counts and checks. Both directions stream: neither side holds more
than one segment and one read buffer in memory, whatever the size of the database.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from intake import crypto, files

FORMAT = "intake-backup"
VERSION = 1
HEADER_LEN = crypto.BACKUP_HEADER_LEN
SEGMENT_LEN = crypto.BACKUP_SEGMENT_LEN
SEGMENT_CT_LEN = SEGMENT_LEN + crypto.BACKUP_TAG_LEN
DIGEST_LEN = 32
LENGTH_LEN = 4
MANIFEST_MAX = 1 << 20
MEMBERS_MAX = 64
# A member is written into the instance folder under its name, so a name is one plain file
# name: no folder, no leading dot, nothing a shell or a file system reads specially.
MEMBER_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}\Z")
_CHUNK = 1 << 20


class BackupError(Exception):
    """A backup cannot be made, checked or restored; the message says what to do."""


class BackupDamaged(BackupError):
    """The file changed after it was made: its digest or one of its segments does not match."""


class WrongBackupKey(BackupError):
    """The file is intact, but this key does not open it."""


class BackupInvalid(BackupError):
    """The file opens, but what it holds breaks the format or is not a usable instance."""


@dataclass(frozen=True)
class Member:
    name: str
    size: int
    sha256: bytes


@dataclass(frozen=True)
class Manifest:
    created_at: datetime
    schema_version: int
    members: tuple[Member, ...]

    def to_json(self) -> bytes:
        return json.dumps({
            "format": FORMAT,
            "version": VERSION,
            "created_at": self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "schema_version": self.schema_version,
            "members": [{"name": m.name, "size": m.size, "sha256": m.sha256.hex()}
                        for m in self.members],
        }, separators=(",", ":")).encode("utf-8")


Source = bytes | Path


def padme(length: int) -> int:
    """Padmé (Nikitin et al., PETS 2019): round up so that the length leaks O(log log L)
    bits, at most 12 % more bytes."""
    if length < 2:
        return length
    exponent = length.bit_length() - 1
    last_bits = exponent - exponent.bit_length()
    mask = (1 << last_bits) - 1
    return (length + mask) & ~mask


def sha256_of(source: Source) -> tuple[int, bytes]:
    """Size and SHA-256 of bytes or of a file, read in chunks."""
    if isinstance(source, bytes):
        return len(source), hashlib.sha256(source).digest()
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.digest()


# --- Writing -----------------------------------------------------------------------------


class _Segments:
    """Cuts a plaintext stream into sealed segments and writes them, hashing what it writes."""

    def __init__(self, out: IO[bytes], recipient: crypto.PublicKey, rng: crypto.Rng) -> None:
        self._out = out
        self.digest = hashlib.sha256()
        header, self._sealer = crypto.seal_backup_header(recipient, rng=rng)
        self._emit(header)
        self._buffer = bytearray()

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self.digest.update(data)

    def write(self, data: bytes) -> None:
        self._buffer += data
        # Strictly more than a segment: what is left at the end is never empty, so the last
        # segment always carries the final flag and at least one byte.
        while len(self._buffer) > SEGMENT_LEN:
            self._emit(self._sealer.seal(bytes(self._buffer[:SEGMENT_LEN]), final=False))
            del self._buffer[:SEGMENT_LEN]

    def close(self) -> bytes:
        self._emit(self._sealer.seal(bytes(self._buffer), final=True))
        trailer = self.digest.digest()
        self._out.write(trailer)
        return trailer


def write(
    output: Path,
    manifest: Manifest,
    sources: Sequence[Source],
    recipient: crypto.PublicKey,
    *,
    rng: crypto.Rng = os.urandom,
) -> bytes:
    """Write a backup file; `sources` hold the members' contents, in the manifest's order.
    Returns the file's trailing SHA-256. Never replaces an existing file."""
    body = manifest.to_json()
    total = LENGTH_LEN + len(body) + sum(m.size for m in manifest.members)
    temp = files.temp_name(output)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            segments = _Segments(out, recipient, rng)
            segments.write(len(body).to_bytes(LENGTH_LEN, "big") + body)
            for member, source in zip(manifest.members, sources, strict=True):
                _copy(member, source, segments.write)
            padding = padme(total) - total
            while padding:
                step = min(padding, _CHUNK)
                segments.write(bytes(step))
                padding -= step
            trailer = segments.close()
            out.flush()
            os.fsync(out.fileno())
        files.commit(temp, output, replace=False)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return trailer


def _copy(member: Member, source: Source, sink: Callable[[bytes], None]) -> None:
    """Stream one member, checking it is still what the manifest says."""
    digest, size = hashlib.sha256(), 0
    chunks: Iterator[bytes] = iter((source,)) if isinstance(source, bytes) else _chunks(source)
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        sink(chunk)
    if (size, digest.digest()) != (member.size, member.sha256):
        raise BackupError(f"{member.name} changed while the backup was being written; "
                          "run `intake backup` again.")


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


# --- Reading -----------------------------------------------------------------------------


def check_digest(path: Path) -> bytes:
    """Check the trailing SHA-256, which needs no key; returns it."""
    size = path.stat().st_size
    if size < HEADER_LEN + crypto.BACKUP_TAG_LEN + 1 + DIGEST_LEN:
        raise BackupDamaged(f"{path} is too short to be a backup.")
    digest, left = hashlib.sha256(), size - DIGEST_LEN
    with path.open("rb") as handle:
        while left:
            chunk = handle.read(min(left, _CHUNK))
            digest.update(chunk)
            left -= len(chunk)
        trailer = handle.read()
    if digest.digest() != trailer:
        raise BackupDamaged(
            f"{path} is damaged or was changed after it was made: its SHA-256 does not match. "
            "Use another copy of this backup."
        )
    return trailer


def _segments(path: Path, key: crypto.PrivateKey) -> Iterator[bytes]:
    """Decrypted segments, in order; the last one is opened as the last."""
    stream_len = path.stat().st_size - HEADER_LEN - DIGEST_LEN
    count = -(-stream_len // SEGMENT_CT_LEN)
    last_len = stream_len - (count - 1) * SEGMENT_CT_LEN
    if count < 1 or last_len <= crypto.BACKUP_TAG_LEN:
        raise BackupDamaged(f"{path} is cut short or has bytes added: its length is not "
                            "that of a backup.")
    with path.open("rb") as handle:
        try:
            opener = crypto.open_backup_header(handle.read(HEADER_LEN), key)
        except crypto.BackupKeyRefused:
            raise WrongBackupKey(
                f"{path} is intact, but this backup key does not open it: it was made for "
                "another backup key (or forged by someone who knows the public key and "
                "recomputed its digest). Try the key file of the instance it came from."
            ) from None
        for index in range(count):
            final = index == count - 1
            ciphertext = handle.read(last_len if final else SEGMENT_CT_LEN)
            try:
                yield opener.open(ciphertext, final=final)
            except crypto.BackupSegmentInvalid as exc:
                raise BackupDamaged(
                    f"{path} was changed after it was made ({exc}). Use another copy."
                ) from None


class _Plaintext:
    """Reads exact byte counts across the decrypted segments."""

    def __init__(self, segments: Iterator[bytes]) -> None:
        self._segments = segments
        self._buffer = b""
        self._at = 0

    def read(self, count: int) -> Iterator[bytes]:
        """`count` bytes, in pieces; a missing byte is a broken format."""
        while count:
            if self._at == len(self._buffer):
                self._buffer, self._at = next(self._segments, b""), 0
                if not self._buffer:
                    raise BackupInvalid("the backup's contents end too early.")
            piece = self._buffer[self._at : self._at + count]
            self._at += len(piece)
            count -= len(piece)
            yield piece

    def read_exact(self, count: int) -> bytes:
        return b"".join(self.read(count))

    def at_end(self) -> bool:
        if self._at < len(self._buffer):
            return False
        return next(self._segments, None) is None


def unpack(path: Path, key: crypto.PrivateKey, sink: Callable[[Member], IO[bytes]]) -> Manifest:
    """Check and open a backup, handing each member to a writable file from `sink` (which
    the caller closes). Raises a BackupError subclass unless every byte checks out."""
    check_digest(path)
    plain = _Plaintext(_segments(path, key))
    length = int.from_bytes(plain.read_exact(LENGTH_LEN), "big")
    if not 2 <= length <= MANIFEST_MAX:
        raise BackupInvalid("the backup's manifest has an impossible length.")
    manifest = parse_manifest(plain.read_exact(length))
    for member in manifest.members:
        out, digest = sink(member), hashlib.sha256()
        for piece in plain.read(member.size):
            digest.update(piece)
            out.write(piece)
        if digest.digest() != member.sha256:
            raise BackupInvalid(f"{member.name} in the backup does not match its SHA-256.")
    total = LENGTH_LEN + length + sum(m.size for m in manifest.members)
    if any(plain.read_exact(padme(total) - total)) or not plain.at_end():
        raise BackupInvalid("the backup's padding is not what the format says.")
    return manifest


def parse_manifest(data: bytes) -> Manifest:
    def no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({name for name, _ in pairs}) != len(pairs):
            raise ValueError("a member is repeated")
        return dict(pairs)

    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=no_repeats)
        if (doc["format"], doc["version"]) != (FORMAT, VERSION):
            raise BackupInvalid("this backup is of a format or version this program does not "
                                "know; use the intake version that made it.")
        if set(doc) != {"format", "version", "created_at", "schema_version", "members"}:
            raise ValueError("unexpected manifest fields")
        created = datetime.fromisoformat(doc["created_at"])
        schema = doc["schema_version"]
        entries = doc["members"]
        if created.tzinfo is None or type(schema) is not int or schema < 0:
            raise ValueError("bad created_at or schema_version")
        if not isinstance(entries, list) or not 1 <= len(entries) <= MEMBERS_MAX:
            raise ValueError("bad members")
        members = tuple(_member(entry) for entry in entries)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise BackupInvalid(f"the backup's manifest is malformed ({exc}).") from None
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise BackupInvalid("the backup's manifest names a member twice.")
    return Manifest(created, schema, members)


def _member(entry: object) -> Member:
    if not isinstance(entry, dict) or set(entry) != {"name", "size", "sha256"}:
        raise ValueError("a member has the wrong fields")
    name, size, sha = entry["name"], entry["size"], entry["sha256"]
    if not (isinstance(name, str) and MEMBER_NAME.match(name)):
        raise ValueError("a member name is not a plain file name")
    if type(size) is not int or size < 0:
        raise ValueError("a member size is not a count of bytes")
    if not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
        raise ValueError("a member digest is not 64 lowercase hex digits")
    return Member(name, size, bytes.fromhex(sha))
