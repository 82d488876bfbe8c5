"""Sealing and opening envelopes, and the private key file (SECURITY.md sections 2 and 5).

Besides round trips through `intake.crypto`, envelopes and key files are also built and
opened here by hand from the text of SECURITY.md with the raw primitives, so that the code
and the spec are checked against each other rather than against themselves. The JSON files
in tests/vectors/ were made once and pin the formats: never regenerate them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import struct
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from intake import crypto
from intake.crypto import EnvelopeOpenError, KeyFileError

VECTORS = Path(__file__).parent / "vectors"
SUITE = hpke.Suite(hpke.KEM.P256, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
LABEL = b"intake-envelope-v1/content-key"
PREFIX = ">4sBBBB16sB"  # magic, version, suite, flags, schema, report id, n
KEY_PASSPHRASE = "a long enough passphrase ☂"
PROPERTY = settings(max_examples=200, deadline=None, database=None)


@functools.cache
def _ec_keys(count: int) -> tuple[ec.EllipticCurvePrivateKey, ...]:
    return tuple(ec.generate_private_key(ec.SECP256R1()) for _ in range(count))


def _keys(count: int) -> tuple[crypto.PrivateKey, ...]:
    return tuple(crypto.PrivateKey(k) for k in _ec_keys(count))


def _raw(public: ec.EllipticCurvePublicKey) -> bytes:
    return public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _pkcs8(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    return data[:offset] + bytes([data[offset] ^ mask]) + data[offset + 1:]


# --- The spec by hand --------------------------------------------------------------------


def _seal_by_hand(
    plaintext: bytes,
    publics: list[ec.EllipticCurvePublicKey],
    *,
    flags: int = 0,
    report_id: bytes = b"\x42" * 16,
) -> bytes:
    """SECURITY.md, Formats 2 "Sealing", step by step, without intake code."""
    content_key, nonce = os.urandom(32), os.urandom(12)
    prefix = struct.pack(PREFIX, b"INTK", 1, 1, flags, 1, report_id, len(publics))
    header = prefix
    for public in publics:
        kid = hashlib.sha256(_raw(public)).digest()
        sealed = SUITE.encrypt(content_key, public, info=LABEL + prefix + kid)
        assert len(sealed) == 65 + 48
        header += kid + sealed
    padded = plaintext + b" " * (-len(plaintext) % 512)
    return header + nonce + AESGCM(content_key).encrypt(nonce, padded, header)


def _open_by_hand(data: bytes, key: ec.EllipticCurvePrivateKey) -> tuple[dict[str, Any], bytes, int]:
    """SECURITY.md, Formats 2 "Opening", step by step, without intake code."""
    magic, version, suite, flags, schema, report_id, n = struct.unpack_from(PREFIX, data)
    assert (magic, version, suite, schema) == (b"INTK", 1, 1, 1)
    own = hashlib.sha256(_raw(key.public_key())).digest()
    header_len = 25 + 145 * n
    entries = [data[25 + 145 * i : 25 + 145 * (i + 1)] for i in range(n)]
    (entry,) = [e for e in entries if e[:32] == own]
    assert entry[32] == 0x04
    content_key = SUITE.decrypt(entry[32:], key, info=LABEL + data[:25] + own)
    assert len(content_key) == 32
    nonce = data[header_len : header_len + 12]
    padded = AESGCM(content_key).decrypt(nonce, data[header_len + 12 :], data[:header_len])
    assert len(padded) % 512 == 0
    text = padded.decode("utf-8")
    assert set(text[len(text.rstrip(" ")):]) <= {" "}
    return json.loads(text), report_id, flags


def test_an_envelope_built_by_hand_from_the_spec_opens_with_intake() -> None:
    ec_keys = _ec_keys(3)
    payload = {"schema": 1, "what": "écrit à la main — مكتوب باليد"}
    plaintext = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    data = _seal_by_hand(plaintext, [k.public_key() for k in ec_keys[:2]], flags=1,
                         report_id=bytes(range(16)))
    for key in _keys(3)[:2]:
        opened = crypto.unseal(data, key)
        assert opened.payload == payload
        assert opened.report_id == bytes(range(16)).hex()
        assert (opened.flags, opened.schema) == (1, 1)
    with pytest.raises(EnvelopeOpenError):
        crypto.unseal(data, _keys(3)[2])


def test_an_envelope_sealed_by_intake_opens_by_hand() -> None:
    ec_keys = _ec_keys(3)
    payload = {"schema": 1, "what": "sealed by intake", "help": ["medical"]}
    data = crypto.seal(payload, [k.public_key for k in _keys(3)], flags=1,
                       report_id=b"\x07" * 16)
    for key in ec_keys:
        assert _open_by_hand(data, key) == (payload, b"\x07" * 16, 1)


# --- Known answers -----------------------------------------------------------------------


def test_envelope_known_answers() -> None:
    doc = json.loads((VECTORS / "envelope-v1.json").read_text(encoding="utf-8"))
    ec_key = serialization.load_der_private_key(bytes.fromhex(doc["private_key_pkcs8"]), None)
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey)
    key = crypto.PrivateKey(ec_key)
    assert key.public_key.key_id.hex() == doc["key_id"]
    assert len(doc["vectors"]) == 2
    for vector in doc["vectors"]:
        data = bytes.fromhex(vector["envelope"])
        opened = crypto.unseal(data, key)
        assert opened.payload == vector["payload"]
        assert opened.report_id == vector["report_id"]
        assert (opened.flags, opened.schema) == (vector["flags"], vector["schema"])
        assert data[24] == vector["recipients"]
        assert _open_by_hand(data, ec_key) == (
            vector["payload"], bytes.fromhex(vector["report_id"]), vector["flags"]
        )


# --- Round trips -------------------------------------------------------------------------


def test_round_trip_with_one_recipient() -> None:
    (key,) = _keys(1)
    payload = {"schema": 1, "what": "it happened near the camp", "consent_contact": False}
    opened = crypto.unseal(crypto.seal(payload, [key.public_key]), key)
    assert opened.payload == payload
    assert (opened.flags, opened.schema) == (0, 1)
    assert len(bytes.fromhex(opened.report_id)) == 16


def test_round_trip_with_three_recipients_and_a_stranger() -> None:
    keys = _keys(4)
    payload = {"schema": 1, "what": "three organisations"}
    data = crypto.seal(payload, [k.public_key for k in keys[:3]])
    report_ids = {crypto.unseal(data, key).report_id for key in keys[:3]}
    assert len(report_ids) == 1
    for key in keys[:3]:
        assert crypto.unseal(data, key).payload == payload
    with pytest.raises(EnvelopeOpenError):
        crypto.unseal(data, keys[3])


def test_seal_needs_a_recipient() -> None:
    with pytest.raises(ValueError):
        crypto.seal({"schema": 1, "what": "x"}, [])


@pytest.mark.parametrize(
    "text",
    [
        "تعرضت للاعتداء من قبل جندي قرب نقطة التفتيش",
        "🙏🏽 help 👩‍👧 — الرجاء 💔",
        "ش" * 20_000,
        "a" * 20_000,
    ],
    ids=["arabic", "emoji", "arabic-20000", "ascii-20000"],
)
def test_payload_text_survives_unchanged(text: str) -> None:
    (key,) = _keys(1)
    payload = {"schema": 1, "language": "ar", "what": text, "help": ["medical", "safety"]}
    data = crypto.seal(payload, [key.public_key])
    assert crypto.unseal(data, key).payload == payload
    # The body is the padded JSON (UTF-8, not \u escapes) plus the tag.
    json_len = len(json.dumps(payload, ensure_ascii=False).encode("utf-8"))
    assert len(data) - (25 + 145 + 12 + 16) == -(-json_len // 512) * 512


def test_flags_and_report_id_options() -> None:
    (key,) = _keys(1)
    data = crypto.seal({"schema": 1, "what": "x"}, [key.public_key], flags=1,
                       report_id=bytes.fromhex("00112233445566778899aabbccddeeff"))
    opened = crypto.unseal(data, key)
    assert opened.report_id == "00112233445566778899aabbccddeeff"
    assert opened.flags == 1
    assert data[6] == 1
    with pytest.raises(ValueError):
        crypto.seal({"schema": 1, "what": "x"}, [key.public_key], report_id=b"short")


def test_report_ids_are_random_unless_given() -> None:
    (key,) = _keys(1)
    ids = {crypto.seal({"schema": 1, "what": "x"}, [key.public_key])[8:24] for _ in range(5)}
    assert len(ids) == 5


def test_rng_supplies_content_key_report_id_and_nonce() -> None:
    (key,) = _keys(1)
    # A seeded, non-cryptographic generator on purpose: the test needs repeatable draws.
    draws = random.Random(7).randbytes  # noqa: S311
    expected_id, expected_nonce = draws(32 + 16)[32:], draws(12)
    data = crypto.seal({"schema": 1, "what": "x"}, [key.public_key],
                       rng=random.Random(7).randbytes)  # noqa: S311
    assert data[8:24] == expected_id
    assert data[170:182] == expected_nonce
    assert crypto.unseal(data, key).report_id == expected_id.hex()


# --- Tampering -------------------------------------------------------------------------

# Regions of a two-recipient envelope: (name, first offset, end offset).
REGIONS = [
    ("prefix", 0, 25),
    ("key id", 25, 57),
    ("enc", 57, 122),
    ("sealed key", 122, 170),
    ("other recipient", 170, 315),
    ("nonce", 315, 327),
    ("ciphertext", 327, 327 + 512),
    ("tag", 327 + 512, 327 + 512 + 16),
]


@pytest.mark.parametrize(("region", "start", "end"), REGIONS, ids=[r[0] for r in REGIONS])
def test_flipping_any_byte_of_a_region_fails(region: str, start: int, end: int) -> None:
    keys = _keys(2)
    data = crypto.seal({"schema": 1, "what": "x"}, [k.public_key for k in keys])
    assert len(data) == REGIONS[-1][2]
    for offset in range(start, end):
        # One bit per byte, a different one from byte to byte, keeps this fast.
        with pytest.raises(EnvelopeOpenError):
            crypto.unseal(_flip(data, offset, 1 << offset % 8), keys[0])


def test_recipient_entry_transplanted_from_another_envelope_fails() -> None:
    (key,) = _keys(1)
    same_id = b"\x55" * 16
    a = crypto.seal({"schema": 1, "what": "A"}, [key.public_key], report_id=same_id)
    b = crypto.seal({"schema": 1, "what": "B"}, [key.public_key], report_id=same_id)
    c = crypto.seal({"schema": 1, "what": "C"}, [key.public_key])
    for donor in (a, c):
        with pytest.raises(EnvelopeOpenError):
            crypto.unseal(b[:25] + donor[25:170] + b[170:], key)
    # The header of one with the body of another fails too.
    with pytest.raises(EnvelopeOpenError):
        crypto.unseal(a[:170] + b[170:], key)


def test_swapping_recipient_entries_fails() -> None:
    keys = _keys(2)
    data = crypto.seal({"schema": 1, "what": "x"}, [k.public_key for k in keys])
    swapped = data[:25] + data[170:315] + data[25:170] + data[315:]
    for key in keys:
        with pytest.raises(EnvelopeOpenError):
            crypto.unseal(swapped, key)


def test_a_payload_that_is_not_a_json_object_fails() -> None:
    (ec_key,), (key,) = _ec_keys(1), _keys(1)
    for plaintext in (b"[1]", b'"text"', b"{", b"\xff\xfe{}", b"{}\x00"):
        with pytest.raises(EnvelopeOpenError):
            crypto.unseal(_seal_by_hand(plaintext, [ec_key.public_key()]), key)


def test_a_deeply_nested_payload_fails_as_an_open_error() -> None:
    # Anyone with the public key can seal this; `intake decrypt` must not crash on it.
    (ec_key,), (key,) = _ec_keys(1), _keys(1)
    data = _seal_by_hand(b"[" * 100_000, [ec_key.public_key()])
    with pytest.raises(EnvelopeOpenError):
        crypto.unseal(data, key)


@pytest.mark.parametrize("plaintext", [b'{"what": NaN}', b'{"what": Infinity}', b'{"a": 1, "a": 2}'])
def test_payload_json_is_strict(plaintext: bytes) -> None:
    (ec_key,), (key,) = _ec_keys(1), _keys(1)
    with pytest.raises(EnvelopeOpenError):
        crypto.unseal(_seal_by_hand(plaintext, [ec_key.public_key()]), key)


# --- Public keys and base64url ------------------------------------------------------------


def test_public_keys_and_key_ids() -> None:
    (key,) = _keys(1)
    raw = key.public_key.raw
    assert len(raw) == 65
    assert raw[0] == 0x04
    assert key.public_key.key_id == hashlib.sha256(raw).digest()
    assert crypto.PublicKey.from_text(key.public_key.text) == key.public_key
    text = crypto.fingerprint(key.public_key.key_id)
    assert text.replace(" ", "") == key.public_key.key_id.hex()
    assert [len(group) for group in text.split(" ")] == [4] * 16
    for bad in (raw[:-1], b"\x02" + raw[1:33], _flip(raw, 64), b"\x04" + b"\x00" * 64):
        assert not crypto.is_valid_point(bad)
        with pytest.raises(crypto.InvalidPublicKey):
            crypto.PublicKey.from_raw(bad)
    with pytest.raises(crypto.InvalidPublicKey):
        crypto.PublicKey.from_text(key.public_key.text + "=")


@pytest.mark.parametrize(
    "text",
    ["AA==", "AAA=", "AA=", "+/8", "-_+/", "AA A", " AAA", "AAA\n", "AA\tA", "A", "AAAAA",
     "AB", "AAB", "AAAAAB", "ÀAAA", "AA.A"],
)
def test_b64decode_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        crypto.b64decode(text)


def test_b64decode_known_values() -> None:
    assert crypto.b64decode("") == b""
    assert crypto.b64decode("AA") == b"\x00"
    assert crypto.b64decode("-_8") == b"\xfb\xff"
    assert crypto.b64encode(b"\xfb\xff\xbf") == "-_-_"
    with pytest.raises(ValueError):
        crypto.b64decode(b"AAAA")  # type: ignore[arg-type]


@PROPERTY
@given(st.binary(max_size=300))
def test_b64_round_trip(data: bytes) -> None:
    assert crypto.b64decode(crypto.b64encode(data)) == data


@PROPERTY
@given(st.text(alphabet=st.sampled_from("AB-_+/= \nQw8é"), max_size=12) | st.text(max_size=12))
def test_b64decode_has_one_text_per_value(text: str) -> None:
    try:
        raw = crypto.b64decode(text)
    except ValueError:
        return
    assert crypto.b64encode(raw) == text


# --- Key files ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key_file() -> bytes:
    return crypto.write_key_file(_keys(1)[0], KEY_PASSPHRASE)


def _edited(key_file: bytes, **changes: Any) -> bytes:
    doc = json.loads(key_file)
    for name, value in changes.items():
        if name.startswith("kdf_"):
            doc["kdf"][name[4:]] = value
        else:
            doc[name] = value
    return json.dumps(doc).encode("utf-8")


def test_key_file_round_trip_and_layout(key_file: bytes) -> None:
    ec_key, key = _ec_keys(1)[0], _keys(1)[0]
    opened = crypto.read_key_file(key_file, KEY_PASSPHRASE)
    assert opened.public_key == key.public_key
    assert _pkcs8(opened._key) == _pkcs8(ec_key)

    doc = json.loads(key_file.decode("utf-8"))
    assert set(doc) == {"format", "version", "kem", "key_id", "public_key", "kdf", "nonce",
                        "ciphertext"}
    assert (doc["format"], doc["version"]) == ("intake-private-key", 1)
    assert doc["kem"] == "DHKEM(P-256, HKDF-SHA256)"
    assert doc["kdf"]["name"] == "PBKDF2-HMAC-SHA256"
    assert doc["kdf"]["iterations"] == 600_000
    assert doc["key_id"] == hashlib.sha256(crypto.b64decode(doc["public_key"])).hexdigest()
    assert len(crypto.b64decode(doc["kdf"]["salt"])) == 16
    assert len(crypto.b64decode(doc["nonce"])) == 12


def test_key_file_opens_by_hand_from_the_spec(key_file: bytes) -> None:
    doc = json.loads(key_file.decode("utf-8"))
    public = crypto.b64decode(doc["public_key"])
    wrapping = hashlib.pbkdf2_hmac(
        "sha256", unicodedata.normalize("NFC", KEY_PASSPHRASE).encode("utf-8"),
        crypto.b64decode(doc["kdf"]["salt"]), doc["kdf"]["iterations"], dklen=32,
    )
    aad = b"intake-private-key/v1" + b"\x00" + public
    assert len(aad) == 21 + 1 + 65
    der = AESGCM(wrapping).decrypt(
        crypto.b64decode(doc["nonce"]), crypto.b64decode(doc["ciphertext"]), aad
    )
    assert der == _pkcs8(_ec_keys(1)[0])


def test_key_file_known_answer() -> None:
    doc = json.loads((VECTORS / "keyfile-v1.json").read_text(encoding="utf-8"))
    key = crypto.read_key_file(doc["key_file"].encode("utf-8"), doc["passphrase"])
    assert key.public_key.key_id.hex() == doc["key_id"]
    assert _pkcs8(key._key).hex() == doc["private_key_pkcs8"]


def test_wrong_passphrase(key_file: bytes) -> None:
    with pytest.raises(KeyFileError):
        crypto.read_key_file(key_file, KEY_PASSPHRASE + " ")


def test_passphrase_is_compared_in_nfc() -> None:
    nfc = "café crème brûlée"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    data = crypto.write_key_file(_keys(1)[0], nfd)
    assert crypto.read_key_file(data, nfc).public_key == _keys(1)[0].public_key


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d[:-10],
        lambda d: b"\xff" + d,
        lambda d: b"[]",
        lambda d: b"null",
        lambda d: _edited(d, format="intake-public-key"),
        lambda d: _edited(d, version=2),
        lambda d: _edited(d, kdf_name="scrypt"),
        lambda d: _edited(d, kdf="PBKDF2"),
        lambda d: _edited(d, kdf_salt="AAAAAAAAAAAAAAAAAAAAAA=="),
        lambda d: _edited(d, kdf_salt="not base64!"),
        lambda d: _edited(d, public_key=42),
        lambda d: json.dumps({k: v for k, v in json.loads(d).items() if k != "nonce"}).encode(),
    ],
)
def test_damaged_key_file(key_file: bytes, damage: Any) -> None:
    with pytest.raises(KeyFileError):
        crypto.read_key_file(damage(key_file), KEY_PASSPHRASE)


def test_damaged_ciphertext(key_file: bytes) -> None:
    ciphertext = crypto.b64decode(json.loads(key_file)["ciphertext"])
    damaged = _edited(key_file, ciphertext=crypto.b64encode(_flip(ciphertext, 5)))
    with pytest.raises(KeyFileError):
        crypto.read_key_file(damaged, KEY_PASSPHRASE)


def test_altered_key_id(key_file: bytes) -> None:
    key_id = json.loads(key_file)["key_id"]
    altered = ("0" if key_id[0] != "0" else "1") + key_id[1:]
    for value in (altered, key_id.upper(), crypto.fingerprint(bytes.fromhex(key_id))):
        with pytest.raises(KeyFileError, match="key id"):
            crypto.read_key_file(_edited(key_file, key_id=value), KEY_PASSPHRASE)


def test_altered_public_key(key_file: bytes) -> None:
    other = _keys(2)[1].public_key
    # Another valid key under the original key id: the key id check refuses it.
    with pytest.raises(KeyFileError):
        crypto.read_key_file(_edited(key_file, public_key=other.text), KEY_PASSPHRASE)
    # Another key with a matching key id: the additional data no longer matches.
    with pytest.raises(KeyFileError):
        crypto.read_key_file(
            _edited(key_file, public_key=other.text, key_id=other.key_id.hex()), KEY_PASSPHRASE
        )


@pytest.mark.parametrize("iterations", [0, 1000, 599_999, 10_000_001, 2**63, -600_000,
                                        "600000", 600000.0, None])
def test_iterations_out_of_range(key_file: bytes, iterations: object) -> None:
    # Refused before any key derivation, so a hostile file cannot make us spin.
    with pytest.raises(KeyFileError, match="iteration count is out of range"):
        crypto.read_key_file(_edited(key_file, kdf_iterations=iterations), KEY_PASSPHRASE)


def test_short_passphrase_is_refused() -> None:
    with pytest.raises(crypto.WeakPassphrase):
        crypto.write_key_file(_keys(1)[0], "elevenchars")
    with pytest.raises(crypto.WeakPassphrase):
        crypto.write_key_file(_keys(1)[0], "")
    # Twelve is enough, counted after NFC normalisation (an NFD "é" is one character).
    assert crypto.write_key_file(_keys(1)[0], "twelve chars")
    with pytest.raises(crypto.WeakPassphrase):
        crypto.write_key_file(_keys(1)[0], "e\u0301" * 6 + "abcde")
    assert crypto.write_key_file(_keys(1)[0], "e\u0301" * 12)


def test_writing_refuses_an_iteration_count_readers_would_refuse() -> None:
    for iterations in (1, crypto.PBKDF2_ITERATIONS - 1, crypto.PBKDF2_MAX_ITERATIONS + 1):
        with pytest.raises(ValueError):
            crypto.write_key_file(_keys(1)[0], "twelve chars", iterations=iterations)


def test_nesting_limit_is_the_same_as_the_browsers() -> None:
    (ec_key,), (key,) = _ec_keys(1), _keys(1)

    def nested(levels: int) -> bytes:
        # The top object is level 1; each list adds one.
        return b'{"schema": 1, "what": ' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"

    assert crypto.unseal(_seal_by_hand(nested(64), [ec_key.public_key()]), key).payload
    with pytest.raises(EnvelopeOpenError):
        crypto.unseal(_seal_by_hand(nested(65), [ec_key.public_key()]), key)
