"""envelope.js and keyfile.js against intake.crypto: each side opens what the other sealed."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from intake import crypto

from harness import static_page

pytestmark = pytest.mark.browser

PASSPHRASE = "Ñandú ضحية 🔑 ثلاثة أشجار"  # non-ASCII in three scripts, NFC
ENTRY = 145


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def payload() -> dict[str, Any]:
    # A fresh marker per envelope, so that a test can never pass by opening a stale one.
    what = f"تعرضت للاعتداء قرب المعسكر 🙏🏽 {uuid.uuid4()}"
    return {"schema": 1, "language": "ar", "what": what, "help": ["medical", "safety"],
            "consent_contact": True, "consent_share": False}


@pytest.fixture(scope="module")
def keys() -> list[crypto.PrivateKey]:
    return [crypto.generate_private_key() for _ in range(3)]


@pytest.fixture(scope="module")
def page(browser: Any, keys: list[crypto.PrivateKey]) -> Iterator[Any]:
    """A page holding each key, unlocked from a Python-written key file, in window.keys."""
    with static_page(browser) as page:
        page.evaluate("""async () => {
          window.b = await import('/static/js/bytes.js');
          window.env = await import('/static/js/envelope.js');
          window.kf = await import('/static/js/keyfile.js');
          window.keys = [];
        }""")
        for key in keys:
            file = crypto.write_key_file(key, PASSPHRASE).decode()
            key_id = page.evaluate(UNLOCK_INTO_SLOT, [file, PASSPHRASE])
            assert key_id == key.public_key.key_id.hex()
        yield page


UNLOCK_INTO_SLOT = """async ([file, pass]) => {
  const k = await window.kf.unlock(file, pass);
  window.keys.push(k);
  return k.keyId;
}"""


def js_seal(page: Any, recipients: list[crypto.PrivateKey], flags: int = 0) -> tuple[bytes, Any]:
    body = payload()
    out = page.evaluate(
        """async ([p, pubs, flags]) => b.toBase64url(await env.seal(
             p, pubs.map((k) => ({publicKey: b.fromBase64url(k)})), {flags}))""",
        [body, [b64(k.public_key.raw) for k in recipients], flags],
    )
    return unb64(out), body


JS_UNSEAL = """async ([envelopes, slot, pubSlot]) => {
  const k = window.keys[slot], pub = window.keys[pubSlot === null ? slot : pubSlot].publicKey;
  const out = [];
  for (const e of envelopes) {
    try { out.push(await env.unseal(b.fromBase64url(e), k.privateKey, pub)); }
    catch (err) { out.push(err.name); }
  }
  return out;
}"""


def js_unseal(page: Any, envelopes: list[bytes], slot: int, pub_slot: int | None = None) -> Any:
    return page.evaluate(JS_UNSEAL, [[b64(e) for e in envelopes], slot, pub_slot])


@pytest.mark.parametrize("count", [1, 3])
def test_js_seal_python_unseal(page: Any, keys: list[crypto.PrivateKey], count: int) -> None:
    env, body = js_seal(page, keys[:count])
    assert env[:8] == b"INTK\x01\x01\x00\x01" and env[24] == count
    for i, key in enumerate(keys[:count]):
        at = 25 + ENTRY * i
        assert env[at : at + 32] == key.public_key.key_id  # entries in the order given
        assert env[at + 32] == 0x04
    assert (len(env) - 25 - ENTRY * count - 12 - 16) % 512 == 0
    for key in keys[:count]:
        opened = crypto.unseal(env, key)
        assert opened.payload == body
        assert (opened.report_id, opened.flags, opened.schema) == (env[8:24].hex(), 0, 1)


def test_js_flags_reach_python(page: Any, keys: list[crypto.PrivateKey]) -> None:
    env, _ = js_seal(page, keys[:1], flags=1)
    assert crypto.unseal(env, keys[0]).flags == 1


@pytest.mark.parametrize("count", [1, 3])
def test_python_seal_js_unseal(page: Any, keys: list[crypto.PrivateKey], count: int) -> None:
    body = payload()
    env = crypto.seal(body, [k.public_key for k in keys[:count]], flags=1)
    expected = crypto.unseal(env, keys[0])
    for slot in range(count):
        [got] = js_unseal(page, [env], slot)
        assert got == {"reportId": expected.report_id, "flags": 1, "schema": 1, "payload": body}


def opens(env: bytes, key: crypto.PrivateKey) -> bool:
    """Whether Python opens `env`; any exception other than EnvelopeOpenError is a bug."""
    try:
        crypto.unseal(env, key)
    except crypto.EnvelopeOpenError:
        return False
    return True


def tampered(env: bytes, count: int) -> dict[str, bytes]:
    """One damaged copy of `env` per region of the format; every one must fail to open."""

    def flip(at: int, bit: int = 0x01) -> bytes:
        out = bytearray(env)
        out[at] ^= bit
        return bytes(out)

    header = 25 + ENTRY * count
    cases = {f"prefix byte {i}": flip(i) for i in range(25)}
    cases["reserved flag bit"] = flip(6, 0x80)  # byte 6 above sets the server-sealed bit
    for r in range(count):
        at = 25 + ENTRY * r
        cases[f"entry {r} key id"] = flip(at + 17)
        cases[f"entry {r} enc prefix"] = flip(at + 32)
        cases[f"entry {r} enc x"] = flip(at + 40)
        cases[f"entry {r} sealed key"] = flip(at + 100)
        cases[f"entry {r} sealed key tag"] = flip(at + ENTRY - 1)
    cases["nonce"] = flip(header + 5)
    cases["ciphertext first byte"] = flip(header + 12)
    cases["ciphertext middle"] = flip((header + len(env)) // 2)
    cases["ciphertext tag"] = flip(len(env) - 1)
    cases["truncated"] = env[:-1]
    cases["one more block"] = env + b" " * 512
    if count > 1:
        first, second = env[25 : 25 + ENTRY], env[25 + ENTRY : 25 + 2 * ENTRY]
        cases["entries swapped"] = env[:25] + second + first + env[25 + 2 * ENTRY :]
    return cases


def test_tampered_js_envelopes_fail_in_python(page: Any, keys: list[crypto.PrivateKey]) -> None:
    env, _ = js_seal(page, keys)
    cases = tampered(env, 3)
    opened = [f"{what} (key {i})" for what in cases for i, k in enumerate(keys) if opens(cases[what], k)]
    assert opened == []


def test_tampered_python_envelopes_fail_in_js(page: Any, keys: list[crypto.PrivateKey]) -> None:
    env = crypto.seal(payload(), [k.public_key for k in keys])
    cases = tampered(env, 3)
    for slot in range(3):
        got = js_unseal(page, list(cases.values()), slot)
        assert dict(zip(cases, got, strict=True)) == dict.fromkeys(cases, "EnvelopeOpenError")


def test_sealed_key_moved_between_envelopes_fails(page: Any, keys: list[crypto.PrivateKey]) -> None:
    # Entry 0 of one envelope transplanted into another sealed to the same key.
    js_env, _ = js_seal(page, keys[:1])
    py_env = crypto.seal(payload(), [keys[0].public_key])
    into_py = py_env[:25] + js_env[25 : 25 + ENTRY] + py_env[25 + ENTRY :]
    into_js = js_env[:25] + py_env[25 : 25 + ENTRY] + js_env[25 + ENTRY :]
    assert not opens(into_js, keys[0]) and not opens(into_py, keys[0])
    assert js_unseal(page, [into_js, into_py], 0) == ["EnvelopeOpenError"] * 2


def test_wrong_key_fails_on_both_sides(page: Any, keys: list[crypto.PrivateKey]) -> None:
    js_env, _ = js_seal(page, keys[:2])
    assert not opens(js_env, keys[2])
    py_env = crypto.seal(payload(), [k.public_key for k in keys[:2]])
    assert js_unseal(page, [py_env, js_env], 2) == ["EnvelopeOpenError"] * 2
    # The right key id with the wrong private key: decapsulation must fail, not misread.
    assert js_unseal(page, [py_env, js_env], 2, pub_slot=0) == ["EnvelopeOpenError"] * 2


def spec_seal(
    plaintext: bytes, keys: list[crypto.PrivateKey], *, flags: int = 0, schema: int = 1
) -> bytes:
    """An envelope built from the text of SECURITY.md, Formats 2 with no rule enforced, so
    that a test can make one that is properly sealed yet breaks exactly one shape rule."""
    suite = hpke.Suite(hpke.KEM.P256, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
    content_key, nonce = os.urandom(32), os.urandom(12)
    prefix = b"INTK" + bytes([1, 1, flags, schema]) + os.urandom(16) + bytes([len(keys)])
    header = prefix
    for key in keys:
        kid, point = key.public_key.key_id, key.public_key.raw
        pk = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        info = b"intake-envelope-v1/content-key" + prefix + kid
        header += kid + suite.encrypt(content_key, pk, info=info)
    return header + nonce + AESGCM(content_key).encrypt(nonce, plaintext, header)


def test_well_sealed_envelopes_out_of_shape_fail(page: Any, keys: list[crypto.PrivateKey]) -> None:
    # Each of these would open if a reader skipped the rule it breaks; the control opens.
    k, body = keys[0], payload()
    json_text = json.dumps(body).encode()
    padded = json_text.ljust(1024, b" ")
    control = spec_seal(padded, [k])
    assert crypto.unseal(control, k).payload == body
    assert js_unseal(page, [control], 0)[0]["payload"] == body
    cases = {
        "not padded to 512": spec_seal(json_text.ljust(1000, b" "), [k]),
        "reserved flag bit": spec_seal(padded, [k], flags=0x04),
        "unknown schema": spec_seal(padded, [k], schema=3),
        "key listed twice": spec_seal(padded, [k, k]),
        "nine recipients": spec_seal(padded, [k, *(crypto.generate_private_key() for _ in "12345678")]),
        "payload is an array": spec_seal(b"[1]".ljust(512, b" "), [k]),
        "payload padded with zeros": spec_seal(json_text.ljust(1024, b"\0"), [k]),
        "payload with a BOM": spec_seal(b"\xef\xbb\xbf" + json_text.ljust(1021, b" "), [k]),
        "payload not UTF-8": spec_seal(
            json_text.replace(b'"ar"', b'"a\xffr"').ljust(1024, b" "), [k]  # inside a string
        ),
    }
    assert [what for what, env in cases.items() if opens(env, k)] == []
    got = js_unseal(page, list(cases.values()), 0)
    assert dict(zip(cases, got, strict=True)) == dict.fromkeys(cases, "EnvelopeOpenError")


def _sealed(text: bytes, key: crypto.PrivateKey) -> bytes:
    return spec_seal(text.ljust(-(-len(text) // 512) * 512, b" "), [key])


# Payloads anyone holding the public key can seal. RFC 8259 has no NaN; repeated member
# names are read differently by different parsers, so both readers refuse them.
HOSTILE_JSON = {
    "NaN": b'{"schema": 1, "what": "x", "n": NaN}',
    "Infinity": b'{"schema": 1, "what": "x", "n": -Infinity}',
    "repeated member": b'{"schema": 1, "what": "x", "consent_share": false, "consent_share": true}',
    "repeated in a nested object": b'{"schema": 1, "what": "x", "o": [{"a": 1, "b": {}, "a": 2}]}',
    "repeated under another spelling": b'{"schema": 1, "what": "x", "\\u0077hat": "y"}',
}


def test_hostile_json_fails_on_both_sides(page: Any, keys: list[crypto.PrivateKey]) -> None:
    envs = {what: _sealed(text, keys[0]) for what, text in HOSTILE_JSON.items()}
    assert [what for what, env in envs.items() if opens(env, keys[0])] == []
    got = js_unseal(page, list(envs.values()), 0)
    assert dict(zip(envs, got, strict=True)) == dict.fromkeys(envs, "EnvelopeOpenError")


def test_same_names_in_different_objects_open(page: Any, keys: list[crypto.PrivateKey]) -> None:
    # The control for the test above: only a repeat within one object is refused.
    body = {"schema": 1, "what": 'a "}{, [\\" b', "o": {"what": 1, "p": [{"what": 2}, {"what": 3}]}}
    env = _sealed(json.dumps(body).encode(), keys[0])
    assert crypto.unseal(env, keys[0]).payload == body
    assert js_unseal(page, [env], 0)[0]["payload"] == body


def test_deep_nesting_is_one_error(page: Any, keys: list[crypto.PrivateKey]) -> None:
    def nested(depth: int) -> bytes:  # an object and `depth - 1` arrays inside it
        return b'{"schema": 1, "what": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"

    deep = _sealed(nested(100_000), keys[0])
    assert not opens(deep, keys[0])  # any other exception, such as RecursionError, fails
    # envelope.js refuses past 64 levels; schema 1 payloads have 2.
    limit, over = _sealed(nested(64), keys[0]), _sealed(nested(65), keys[0])
    got = js_unseal(page, [deep, over, limit], 0)
    assert got[:2] == ["EnvelopeOpenError"] * 2 and got[2]["payload"]["schema"] == 1


SEAL_ERRORS = """async ([pubs, cases]) => {
  const keys = pubs.map((k) => ({publicKey: b.fromBase64url(k)}));
  const out = {};
  for (const [name, p, idx, opts] of cases) {
    const recipients = Array.isArray(idx) ? idx.map((i) => keys[i]) : idx;
    try { await env.seal(p, recipients, opts); out[name] = 'sealed'; }
    catch (e) { out[name] = e.name; }
  }
  return out;
}"""


def test_js_seal_refuses_bad_input(page: Any, keys: list[crypto.PrivateKey]) -> None:
    off_curve = bytearray(keys[0].public_key.raw)
    off_curve[-1] ^= 1
    pubs = [b64(k.public_key.raw) for k in keys] + [b64(bytes(off_curve))]
    ok = {"schema": 1, "what": "x"}
    cases = [
        ["no recipients", ok, [], {}], ["nine recipients", ok, [0, 1, 2] * 3, {}],
        ["twice the same key", ok, [0, 1, 0], {}], ["reserved flag", ok, [0], {"flags": 4}],
        ["flag not a number", ok, [0], {"flags": "1"}], ["no schema", {"what": "x"}, [0], {}],
        ["array payload", [1], [0], {}], ["point off the curve", ok, [3], {}],
        ["recipients not an array", ok, {"length": 1}, {}],
    ]
    assert page.evaluate(SEAL_ERRORS, [pubs, cases]) == {
        "no recipients": "RangeError", "nine recipients": "RangeError",
        "twice the same key": "RangeError", "reserved flag": "RangeError",
        "flag not a number": "RangeError", "no schema": "TypeError", "array payload": "TypeError",
        "point off the curve": "HpkeInvalidKey", "recipients not an array": "TypeError",
    }


def _edit(doc: dict[str, Any], **changes: Any) -> str:
    return json.dumps({**doc, **changes})


UNLOCK = """async ([file, pass]) => {
  try {
    const k = await kf.unlock(file, pass);
    let exported = 'refused';
    try { await crypto.subtle.exportKey('pkcs8', k.privateKey); exported = 'exported'; }
    catch (e) { /* non-extractable, as it must be */ }
    return [k.keyId, k.privateKey.extractable, exported];
  } catch (e) { return [e.name, e.reason]; }
}"""


def test_key_file_unlock_in_js(page: Any, keys: list[crypto.PrivateKey]) -> None:
    key, nfc, nfd = keys[0], "café Ωmega passphrase", "cafe\u0301 Ωmega passphrase"
    opened = [key.public_key.key_id.hex(), False, "refused"]  # and never exportable
    # Either Unicode spelling of a passphrase opens the file, whichever one wrote it.
    for written, typed in ((nfc, nfd), (nfd, nfc)):
        file = crypto.write_key_file(key, written).decode()
        assert page.evaluate(UNLOCK, [file, typed]) == opened
    wrong = page.evaluate(UNLOCK, [file, "cafe Ωmega passphrase"])
    assert wrong == ["KeyFileError", "passphrase"]


def test_damaged_key_files_are_refused_in_js(page: Any, keys: list[crypto.PrivateKey]) -> None:
    key, other = keys[0], keys[1]
    doc = json.loads(crypto.write_key_file(key, PASSPHRASE))
    kdf, other_id = doc["kdf"], other.public_key.key_id.hex()
    bad_format = {
        "too few iterations": _edit(doc, kdf={**kdf, "iterations": 599_999}),
        "too many iterations": _edit(doc, kdf={**kdf, "iterations": 10_000_001}),
        "iterations as text": _edit(doc, kdf={**kdf, "iterations": "600000"}),
        "key id of another key": _edit(doc, key_id=other_id),
        "key id in capitals": _edit(doc, key_id=doc["key_id"].upper()),
        "padded base64": _edit(doc, nonce=doc["nonce"] + "="),
        "unknown version": _edit(doc, version=2),
        "not JSON": "{",
    }
    for what, text in bad_format.items():
        assert page.evaluate(UNLOCK, [text, PASSPHRASE]) == ["KeyFileError", "format"], what
    # Another key's public key and id: the additional data no longer matches.
    swapped = _edit(doc, public_key=b64(other.public_key.raw), key_id=other_id)
    assert page.evaluate(UNLOCK, [swapped, PASSPHRASE]) == ["KeyFileError", "passphrase"]
    mismatched = _mismatched_key_file(doc)
    assert page.evaluate(UNLOCK, [mismatched, PASSPHRASE]) == ["KeyFileError", "mismatch"]


def _mismatched_key_file(doc: dict[str, Any]) -> str:
    """A well-encrypted file whose private key is not the one it names (SECURITY.md 5)."""
    salt, nonce, kdf = os.urandom(16), os.urandom(12), {**doc["kdf"], "iterations": 600_000}
    kdf["salt"] = b64(salt)
    wrapping = hashlib.pbkdf2_hmac("sha256", PASSPHRASE.encode(), salt, 600_000, dklen=32)
    stranger = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    aad = b"intake-private-key/v1\x00" + unb64(doc["public_key"])
    sealed = AESGCM(wrapping).encrypt(nonce, stranger, aad)
    return _edit(doc, kdf=kdf, nonce=b64(nonce), ciphertext=b64(sealed))
