"""The backup file format, version 1 (SECURITY.md, Formats 12), against its text.

Backups are opened and built here by hand from SECURITY.md with the raw primitives, so that
code and spec are checked against each other. tests/vectors/backup-v1.json was made once
from a real instance and pins the format: never regenerate it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import struct
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from intake import backup, backupfile, crypto

VECTOR = json.loads((Path(__file__).parent / "vectors" / "backup-v1.json").read_text("utf-8"))
SUITE = hpke.Suite(hpke.KEM.P256, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
INFO = b"intake-backup-v1"
SEGMENT, TAG = 65536, 16
PROPERTY = settings(max_examples=200, deadline=None, database=None)


def _padme_by_hand(length: int) -> int:
    """SECURITY.md's rule, written out the long way."""
    if length < 2:
        return length
    e = 0
    while 2 ** (e + 1) <= length:
        e += 1
    s = 1
    while 2 ** s <= e:
        s += 1
    step = 2 ** (e - s)
    return -(-length // step) * step


def _open_by_hand(data: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """SECURITY.md, Formats 12 "Reading", step by step, without intake code."""
    body, trailer = data[:-32], data[-32:]
    assert hashlib.sha256(body).digest() == trailer
    header, stream = body[:113], body[113:]
    file_key = SUITE.decrypt(header, key, info=INFO)
    pieces = [stream[i : i + SEGMENT + TAG] for i in range(0, len(stream), SEGMENT + TAG)]
    plaintext = b""
    for index, piece in enumerate(pieces):
        final = index == len(pieces) - 1
        nonce = index.to_bytes(11, "big") + bytes([final])
        plaintext += AESGCM(file_key).decrypt(nonce, piece, header)
    return plaintext


def _members_by_hand(plaintext: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    (length,) = struct.unpack(">I", plaintext[:4])
    manifest = json.loads(plaintext[4 : 4 + length])
    at, members = 4 + length, {}
    for entry in manifest["members"]:
        content = plaintext[at : at + entry["size"]]
        assert hashlib.sha256(content).hexdigest() == entry["sha256"]
        members[entry["name"]] = content
        at += entry["size"]
    assert len(plaintext) == _padme_by_hand(at)
    assert plaintext[at:] == bytes(len(plaintext) - at)
    return manifest, members


def _seal_by_hand(plaintext: bytes, public: crypto.PublicKey) -> bytes:
    """SECURITY.md, Formats 12 "Writing", step by step, without intake code."""
    file_key = os.urandom(32)
    point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public.raw)
    header = SUITE.encrypt(file_key, point, info=INFO)
    pieces = [plaintext[i : i + SEGMENT] for i in range(0, len(plaintext), SEGMENT)]
    body = header
    for index, piece in enumerate(pieces):
        nonce = index.to_bytes(11, "big") + bytes([index == len(pieces) - 1])
        body += AESGCM(file_key).encrypt(nonce, piece, header)
    return body + hashlib.sha256(body).digest()


def _vector_key() -> crypto.PrivateKey:
    return crypto.private_key_from_hex(VECTOR["backup_key_pkcs8"])


# --- The known-answer vector -------------------------------------------------------------


def test_the_vector_opens_by_hand_as_the_spec_says() -> None:
    data = crypto.b64decode(VECTOR["file"])
    plaintext = _open_by_hand(data, _vector_key()._key)
    manifest, members = _members_by_hand(plaintext)
    assert len(plaintext) == VECTOR["plaintext_length"]
    assert -(-(len(data) - 145) // (SEGMENT + TAG)) == VECTOR["segments"] == 2
    assert manifest == json.loads(VECTOR["manifest"])
    assert members["config.toml"].decode() == VECTOR["config_toml"]
    assert data[-32:].hex() == VECTOR["sha256"]


def test_the_vector_opens_and_verifies_with_intake(tmp_path: Path) -> None:
    path = tmp_path / "vector.bin"
    path.write_bytes(crypto.b64decode(VECTOR["file"]))
    checked = backup.verify(path, _vector_key())
    assert checked.manifest.to_json().decode() == VECTOR["manifest"]
    assert checked.reports == VECTOR["reports"]
    assert backupfile.check_digest(path).hex() == VECTOR["sha256"]


def test_a_backup_from_intake_opens_by_hand(tmp_path: Path) -> None:
    key = crypto.generate_private_key()
    members = [("config.toml", b"a = 1\n"), ("db.key", b"00" * 32 + b"\n"),
               ("intake.db", os.urandom(150_000))]
    manifest = _manifest(members)
    path = tmp_path / "b.bin"
    backupfile.write(path, manifest, [c for _, c in members], key.public_key)
    found_manifest, found = _members_by_hand(_open_by_hand(path.read_bytes(), key._key))
    assert found == dict(members)
    assert found_manifest["format"] == "intake-backup" and found_manifest["version"] == 1


def test_a_backup_made_by_hand_opens_with_intake(tmp_path: Path) -> None:
    key = crypto.generate_private_key()
    members = [("config.toml", b"a = 1\n"), ("intake.db", os.urandom(70_000))]
    body = _manifest(members).to_json()
    total = 4 + len(body) + sum(len(c) for _, c in members)
    plaintext = struct.pack(">I", len(body)) + body + b"".join(c for _, c in members)
    plaintext += bytes(_padme_by_hand(total) - total)
    path = tmp_path / "by-hand.bin"
    path.write_bytes(_seal_by_hand(plaintext, key.public_key))
    held: dict[str, io.BytesIO] = {}
    backupfile.unpack(path, key, lambda m: held.setdefault(m.name, io.BytesIO()))
    assert {name: b.getvalue() for name, b in held.items()} == dict(members)


def _manifest(members: list[tuple[str, bytes]]) -> backupfile.Manifest:
    return backupfile.Manifest(
        datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC), 2,
        tuple(backupfile.Member(n, *backupfile.sha256_of(c)) for n, c in members),
    )


@pytest.mark.parametrize("plain_len", [65536 - 2048, 65536, 65536 + 2048, 3 * 65536])
def test_segment_boundaries(tmp_path: Path, plain_len: int) -> None:
    """A plaintext that fills its last segment exactly still ends with a final segment."""
    key = crypto.generate_private_key()
    size = plain_len - 200
    while True:  # find the member size that makes the whole plaintext plain_len bytes
        manifest = _manifest([("intake.db", bytes(size))])
        total = 4 + len(manifest.to_json()) + size
        if total == plain_len:
            break
        size += plain_len - total
    path = tmp_path / "b.bin"
    backupfile.write(path, manifest, [bytes(size)], key.public_key)
    assert backupfile.padme(plain_len) == plain_len
    assert path.stat().st_size == 113 + plain_len + TAG * -(-plain_len // SEGMENT) + 32
    assert _members_by_hand(_open_by_hand(path.read_bytes(), key._key))[1] == {
        "intake.db": bytes(size)}


# --- Padding and the manifest ------------------------------------------------------------


@pytest.mark.parametrize(("length", "padded"), [
    (1, 1), (3, 3), (1000, 1024), (65537, 67584), (100_000, 100_352),
    (10_000_000, 10_223_616),
])
def test_padme_known_values(length: int, padded: int) -> None:
    assert backupfile.padme(length) == padded == _padme_by_hand(length)


@PROPERTY
@given(st.integers(min_value=1, max_value=1 << 40))
def test_padme_costs_at_most_12_percent_and_is_stable(length: int) -> None:
    padded = backupfile.padme(length)
    assert length <= padded <= length * 1.12 + 1
    assert backupfile.padme(padded) == padded == _padme_by_hand(length)


@PROPERTY
@given(st.binary(max_size=600) | st.text(max_size=300).map(str.encode))
def test_the_manifest_parser_fails_only_with_its_own_error(data: bytes) -> None:
    with contextlib.suppress(backupfile.BackupInvalid):
        backupfile.parse_manifest(data)


_GOOD = json.loads(VECTOR["manifest"])


@pytest.mark.parametrize("change", [
    {"version": 2}, {"format": "other"}, {"extra": 1}, {"schema_version": -1},
    {"schema_version": True}, {"created_at": "2025-03-04T05:06:07"}, {"members": []},
    {"members": [{"name": "../db.key", "size": 1, "sha256": "00" * 32}]},
    {"members": [{"name": ".hidden", "size": 1, "sha256": "00" * 32}]},
    {"members": [{"name": "a/b", "size": 1, "sha256": "00" * 32}]},
    {"members": [{"name": "a", "size": -1, "sha256": "00" * 32}]},
    {"members": [{"name": "a", "size": 1, "sha256": "AA" * 32}]},
    {"members": [{"name": "a", "size": 1, "sha256": "00" * 32}] * 2},
], ids=repr)
def test_manifests_that_break_the_rules_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(backupfile.BackupInvalid):
        backupfile.parse_manifest(json.dumps({**_GOOD, **change}).encode())
    assert backupfile.parse_manifest(json.dumps(_GOOD).encode())  # the control


def test_a_repeated_member_name_or_deep_nesting_is_refused() -> None:
    text = VECTOR["manifest"][:-1] + ',"version":1}'
    with pytest.raises(backupfile.BackupInvalid, match="repeated"):
        backupfile.parse_manifest(text.encode())
    with pytest.raises(backupfile.BackupInvalid):
        backupfile.parse_manifest(b"[" * 100_000 + b"]" * 100_000)


@PROPERTY
@given(st.binary(min_size=113 + 17, max_size=2000))
def test_random_files_fail_only_with_backup_errors(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "random.bin"
        path.write_bytes(data + hashlib.sha256(data).digest())
        with pytest.raises(backupfile.BackupError):
            backupfile.unpack(path, _vector_key(), lambda m: io.BytesIO())
