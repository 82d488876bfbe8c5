"""The attachment format (SECURITY.md, Formats 13): known answers, round trips, every way
of moving, dropping or cutting chunks, and property tests of the hostile-input readers."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from intake import attachments as att
from intake import crypto
from intake import envelope as fmt

VECTORS = Path(__file__).resolve().parent / "vectors" / "attachment-v1.json"
PROPERTY = settings(max_examples=200, deadline=None, database=None)
CHUNK = att.CHUNK_SIZE


def _pattern(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


def vector_plaintext(text: str) -> bytes:
    kind, _, value = text.partition(":")
    return bytes.fromhex(value) if kind == "hex" else _pattern(int(value))


@functools.cache
def _key() -> crypto.PrivateKey:
    return crypto.generate_private_key()


def _hkdf_by_hand(ikm: bytes, info: bytes) -> bytes:
    """RFC 5869 with SHA-256, an empty salt and 32 bytes of output, from its text."""
    prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


# --- Known answers -----------------------------------------------------------------------


def test_attachment_known_answers() -> None:
    doc = json.loads(VECTORS.read_text(encoding="utf-8"))
    assert doc["chunk_size"] == CHUNK
    loaded = serialization.load_der_private_key(bytes.fromhex(doc["private_key_pkcs8"]), None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    key = crypto.PrivateKey(loaded)
    assert key.public_key.key_id.hex() == doc["key_id"]
    envelope = bytes.fromhex(doc["envelope"])
    opened = crypto.unseal(envelope, key)
    assert opened.payload == doc["payload"] and opened.flags == doc["flags"] == 2
    assert opened.report_id == doc["report_id"]
    content_key, report_id = bytes.fromhex(doc["content_key"]), bytes.fromhex(doc["report_id"])
    assert opened.content_key == content_key
    entries = att.entries(opened.payload)
    assert len(entries) == len(doc["attachments"]) == 4
    for entry, vector in zip(entries, doc["attachments"], strict=True):
        assert entry is not None and entry.id == vector["id"]
        aid = bytes.fromhex(vector["id"])
        info = b"intake-attachment-v1/key" + report_id + aid
        assert crypto.attachment_key(content_key, report_id, aid).hex() == vector["key"]
        assert _hkdf_by_hand(content_key, info).hex() == vector["key"]
        plaintext = vector_plaintext(vector["plaintext"])
        chunks = []
        pieces = att.split(plaintext)
        assert len(pieces) == len(vector["chunks"]) == entry.chunks
        for piece, chunk in zip(pieces, vector["chunks"], strict=True):
            i, final = chunk["index"], chunk["final"]
            nonce = b"\0" * 7 + i.to_bytes(4, "big") + bytes([final])
            aad = b"intake-attachment-v1/chunk" + report_id + aid + i.to_bytes(4, "big") + bytes([final])
            assert (nonce.hex(), aad.hex()) == (chunk["nonce"], chunk["aad"])
            assert (att.nonce(i, final), att.chunk_aad(report_id, aid, i, final)) == (nonce, aad)
            sealed = AESGCM(bytes.fromhex(vector["key"])).encrypt(nonce, piece, aad)
            assert len(sealed) == chunk["length"]
            assert hashlib.sha256(sealed).hexdigest() == chunk["ciphertext_sha256"]
            if "ciphertext" in chunk:
                assert sealed.hex() == chunk["ciphertext"]
            else:
                assert (sealed[:16].hex(), sealed[-16:].hex()) == (chunk["ciphertext_head"], chunk["tag"])
            chunks.append(sealed)
        assert crypto.open_attachment(opened, entry, chunks) == plaintext
        assert entry.sha256 == hashlib.sha256(plaintext).hexdigest()


# --- Round trips and tampering ---------------------------------------------------------


FILES = (
    crypto.NewAttachment("photo.jpg", "image/jpeg", _pattern(3 * CHUNK + 5), "photo"),
    crypto.NewAttachment("note.webm", "audio/webm", b"\x1aE\xdf\xa3 voice", "voice"),
    crypto.NewAttachment("empty.txt", "text/plain", b""),
)


@functools.cache
def _sealed() -> tuple[crypto.SealedReport, crypto.Unsealed]:
    sealed = crypto.seal_report({"schema": 1, "language": "en"}, [_key().public_key], FILES)
    return sealed, crypto.unseal(sealed.envelope, _key())


def _entries() -> list[att.Entry]:
    found = att.entries(_sealed()[1].payload)
    assert all(e is not None for e in found)
    return [e for e in found if e is not None]


def test_round_trip() -> None:
    sealed, opened = _sealed()
    assert opened.flags == fmt.FLAG_ATTACHMENTS and "what" not in opened.payload
    listed = opened.payload["attachments"]
    assert [a["name"] for a in listed] == ["photo.jpg", "note.webm", "empty.txt"]
    assert [a["chunks"] for a in listed] == [4, 1, 1]
    assert [a["kind"] for a in listed] == ["photo", "voice", "file"]
    for entry, chunks, original in zip(_entries(), sealed.chunks, FILES, strict=True):
        assert crypto.open_attachment(opened, entry, chunks) == original.data
        assert [len(c) for c in chunks] == [
            att.chunk_sealed_size(att.sealed_size(entry.size), entry.chunks, i)
            for i in range(entry.chunks)
        ]


def _fails(chunks: list[bytes], entry_index: int = 0, opened: crypto.Unsealed | None = None) -> bool:
    try:
        crypto.open_attachment(opened or _sealed()[1], _entries()[entry_index], chunks)
    except crypto.AttachmentOpenError:
        return True
    return False


def test_every_tampering_fails() -> None:
    sealed, _ = _sealed()
    photo = list(sealed.chunks[0])
    other_report = crypto.seal_report({"schema": 1}, [_key().public_key], FILES)
    flipped = bytearray(photo[1])
    flipped[7] ^= 1
    cases = {
        "reordered": [photo[1], photo[0], *photo[2:]],
        "middle dropped": [photo[0], *photo[2:]],
        "last dropped": photo[:-1],
        "last dropped, one repeated": [*photo[:-1], photo[-2]],
        "one repeated in place of another": [photo[0], photo[0], *photo[2:]],
        "extra chunk": [*photo, photo[-1]],
        "chunk of another attachment": [sealed.chunks[1][0], *photo[1:]],
        "chunk of another report": [other_report.chunks[0][0], *photo[1:]],
        "bit flipped": [photo[0], bytes(flipped), *photo[2:]],
        "last chunk cut": [*photo[:-1], photo[-1][:-1]],
        "nothing": [],
    }
    assert [what for what, chunks in cases.items() if not _fails(chunks)] == []
    # The whole attachment of another report, under the same entry, fails too.
    assert _fails(list(other_report.chunks[0]))


def test_an_entry_that_lies_about_size_or_digest_fails() -> None:
    sealed, opened = _sealed()
    entry = _entries()[1]
    for lie in ({"size": entry.size + 1}, {"sha256": "0" * 64}):
        fields = {**entry.__dict__, **lie}
        with pytest.raises(crypto.AttachmentOpenError):
            crypto.open_attachment(opened, att.Entry(**fields), list(sealed.chunks[1]))


def test_a_report_without_the_flag_has_no_attachment_key() -> None:
    data = crypto.seal({"schema": 1, "what": "x"}, [_key().public_key])
    opened = crypto.unseal(data, _key())
    assert opened.content_key == b""
    with pytest.raises(crypto.AttachmentOpenError):
        crypto.open_attachment(opened, _entries()[1], list(_sealed()[0].chunks[1]))


# --- Sizes: what the server checks ------------------------------------------------------


@pytest.mark.parametrize(("size", "chunks"), [
    (0, 1), (1, 1), (CHUNK - 1, 1), (CHUNK, 1), (CHUNK + 1, 2), (3 * CHUNK, 3), (3 * CHUNK + 1, 4),
])
def test_chunk_counts(size: int, chunks: int) -> None:
    assert att.chunk_count(size) == chunks
    assert att.sealed_size(size) == size + 16 * chunks
    assert att.plain_size(att.sealed_size(size), chunks) == size


@pytest.mark.parametrize(("sealed", "chunks"), [
    (15, 1), (16 + CHUNK + 1, 1), (2 * 16 + CHUNK, 2), (0, 0), (100, -1), (-16, 1),
])
def test_sizes_that_no_attachment_has_are_refused(sealed: int, chunks: int) -> None:
    with pytest.raises(att.AttachmentInvalid):
        att.plain_size(sealed, chunks)


@PROPERTY
@given(st.integers(0, 50 * CHUNK))
def test_size_rules_agree(size: int) -> None:
    n, total = att.chunk_count(size), att.sealed_size(size)
    assert att.plain_size(total, n) == size
    assert sum(att.chunk_sealed_size(total, n, i) for i in range(n)) == total
    assert all(att.chunk_sealed_size(total, n, i) == CHUNK + 16 for i in range(n - 1))
    assert 16 <= att.chunk_sealed_size(total, n, n - 1) <= CHUNK + 16
    for wrong in (n - 1, n + 1):
        with pytest.raises(att.AttachmentInvalid):
            att.plain_size(total, wrong)


# --- The payload's list: hostile input ---------------------------------------------------


GOOD = {"id": "ab" * 16, "name": "a.jpg", "type": "image/jpeg", "kind": "photo", "size": 5,
        "sha256": "cd" * 32, "chunks": 1}


@pytest.mark.parametrize(("change", "why"), [
    ({"id": "AB" * 16}, "id in capitals"), ({"id": "ab" * 15}, "short id"),
    ({"name": ""}, "no name"), ({"name": "x" * 256}, "long name"), ({"name": 5}, "name a number"),
    ({"type": "x" * 128}, "long type"), ({"kind": "script"}, "unknown kind"),
    ({"size": -1}, "negative size"), ({"size": True}, "size true"), ({"size": 5.5}, "size a fraction"),
    ({"size": 2**53}, "size past exact"), ({"size": "5"}, "size a string"),
    ({"chunks": 2}, "wrong chunk count"), ({"sha256": "cd" * 31}, "short digest"),
])
def test_broken_entries_are_none_and_the_rest_still_read(change: dict[str, Any], why: str) -> None:
    other = {**GOOD, "id": "ef" * 16}
    found = att.entries({"attachments": [{**GOOD, **change}, other]})
    assert found[0] is None, why
    assert found[1] is not None and found[1].id == "ef" * 16


def test_a_repeated_id_is_damaged_and_no_list_is_empty() -> None:
    assert att.entries({"attachments": [GOOD, GOOD]})[1] is None
    assert att.entries({"what": "x"}) == [] and att.entries({"attachments": {"a": 1}}) == []


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_ENTRYISH = st.fixed_dictionaries({}, optional={
    "id": st.one_of(st.just("ab" * 16), _JSON), "name": st.one_of(st.just("f"), _JSON),
    "type": _JSON, "kind": st.one_of(st.sampled_from(sorted(att.KINDS)), _JSON),
    "size": st.one_of(st.integers(-2, 3 * CHUNK), _JSON), "chunks": st.one_of(st.integers(0, 4), _JSON),
    "sha256": st.one_of(st.just("00" * 32), _JSON),
})


@PROPERTY
@given(st.one_of(_JSON, st.lists(st.one_of(_ENTRYISH, _JSON), max_size=6)))
def test_any_attachment_list_reads_without_an_exception(raw: Any) -> None:
    found = att.entries({"attachments": raw})
    assert len(found) == (len(raw) if isinstance(raw, list) else 0)
    for entry in found:
        if entry is not None:
            assert entry.chunks == att.chunk_count(entry.size) and len(entry.raw_id) == 16
