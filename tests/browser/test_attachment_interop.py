"""attachment.js against intake.crypto (SECURITY.md, Formats 13), in a real Chromium:
the known answers, each side opening what the other sealed, and every way of moving,
dropping or cutting chunks failing in the browser as it does in Python."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from intake import attachments as att
from intake import crypto

from harness import static_page

pytestmark = pytest.mark.browser
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "attachment-v1.json"
PASSPHRASE = "a passphrase for the interop key"
CHUNK = att.CHUNK_SIZE


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _pattern(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


@pytest.fixture(scope="module")
def key() -> crypto.PrivateKey:
    return crypto.generate_private_key()


@pytest.fixture(scope="module")
def page(browser: Any, key: crypto.PrivateKey) -> Iterator[Any]:
    with static_page(browser) as page:
        page.evaluate("""async ([file, pass]) => {
          window.b = await import('/static/js/bytes.js');
          window.env = await import('/static/js/envelope.js');
          window.att = await import('/static/js/attachment.js');
          window.kf = await import('/static/js/keyfile.js');
          window.key = await window.kf.unlock(file, pass);
        }""", [crypto.write_key_file(key, PASSPHRASE).decode(), PASSPHRASE])
        yield page


# Opens an envelope with the page's key, then each listed attachment from the sealed
# chunks given (concatenated, as the server hands them out): the plaintext as base64url,
# or the error's name.
JS_OPEN = """async ([envelope, sealed]) => {
  const opened = await env.unseal(b.fromBase64url(envelope), key.privateKey, key.publicKey);
  const out = [];
  const list = att.entries(opened.payload);
  for (let i = 0; i < sealed.length; i++) {
    try {
      out.push(b.toBase64url(await att.openAttachment(opened, list[i] || null, b.fromBase64url(sealed[i]))));
    } catch (e) { out.push(e.name); }
  }
  return {payload: opened.payload, flags: opened.flags, attachments: out};
}"""

JS_SEAL = """async ([pub, payload, files]) => {
  const sealed = await att.sealReport(payload, [{publicKey: b.fromBase64url(pub)}],
    files.map((f) => ({name: f.name, type: f.type, kind: f.kind, bytes: b.fromBase64url(f.data)})));
  return {envelope: b.toBase64url(sealed.envelope),
          attachments: sealed.attachments.map((a) => ({id: a.id, size: a.size,
            chunks: a.chunks.map((c) => b.toBase64url(c))}))};
}"""

FILES = [
    {"name": "صورة.jpg", "type": "image/jpeg", "kind": "photo", "data": _pattern(2 * CHUNK + 3)},
    {"name": "voice-note.webm", "type": "audio/webm;codecs=opus", "kind": "voice", "data": b"\x1aE\xdf\xa3 x"},
    {"name": "empty.txt", "type": "text/plain", "kind": "file", "data": b""},
    {"name": "exact.bin", "type": "", "kind": "file", "data": _pattern(CHUNK)},
]


def test_known_answers_open_in_the_browser(browser: Any) -> None:
    doc = json.loads(VECTORS.read_text(encoding="utf-8"))
    loaded = serialization.load_der_private_key(bytes.fromhex(doc["private_key_pkcs8"]), None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    vector_key = crypto.PrivateKey(loaded)
    sealed = []
    for vector in doc["attachments"]:
        kind, _, value = vector["plaintext"].partition(":")
        plain = bytes.fromhex(value) if kind == "hex" else _pattern(int(value))
        chunks = crypto.seal_chunks(bytes.fromhex(doc["content_key"]), bytes.fromhex(doc["report_id"]),
                                    bytes.fromhex(vector["id"]), plain)
        sealed.append((plain, b"".join(chunks)))
    with static_page(browser) as page:
        got = page.evaluate("""async ([file, pass, envelope, sealed, vectors]) => {
          const b = await import('/static/js/bytes.js');
          const env = await import('/static/js/envelope.js');
          const att = await import('/static/js/attachment.js');
          const key = await (await import('/static/js/keyfile.js')).unlock(file, pass);
          const opened = await env.unseal(b.fromHex(envelope), key.privateKey, key.publicKey);
          const list = att.entries(opened.payload);
          const out = [];
          for (let i = 0; i < vectors.length; i++) {
            const v = vectors[i];
            const steps = v.chunks.map((c) => [b.toHex(att.nonce(c.index, c.final)),
              b.toHex(att.chunkAad(b.fromHex(opened.reportId), b.fromHex(v.id), c.index, c.final))]);
            const plain = await att.openAttachment(opened, list[i], b.fromBase64url(sealed[i]));
            const digest = b.toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', plain)));
            out.push({steps, digest, length: plain.length});
          }
          return {payload: opened.payload, flags: opened.flags, out};
        }""", [crypto.write_key_file(vector_key, PASSPHRASE).decode(), PASSPHRASE, doc["envelope"],
               [b64(s) for _, s in sealed], doc["attachments"]])
    assert got["payload"] == doc["payload"] and got["flags"] == 2
    for vector, result, (plain, _) in zip(doc["attachments"], got["out"], sealed, strict=True):
        assert result["steps"] == [[c["nonce"], c["aad"]] for c in vector["chunks"]]
        assert (result["length"], result["digest"]) == (len(plain), vector["entry"]["sha256"])


def test_the_browser_derives_the_keys_of_the_vectors(browser: Any) -> None:
    doc = json.loads(VECTORS.read_text(encoding="utf-8"))
    with static_page(browser) as page:
        # The attachment key itself cannot leave WebCrypto; its first chunk's ciphertext
        # under the vector's nonce and aad shows it is the same key.
        got = page.evaluate("""async ([contentKey, reportId, vectors]) => {
          const b = await import('/static/js/bytes.js');
          const att = await import('/static/js/attachment.js');
          const secret = await crypto.subtle.importKey('raw', b.fromHex(contentKey), 'HKDF', false, ['deriveKey']);
          const out = [];
          for (const v of vectors) {
            const key = await att.attachmentKey(secret, b.fromHex(reportId), b.fromHex(v.id), 'encrypt');
            const c = v.chunks[v.chunks.length - 1];
            const plain = v.plaintext.startsWith('hex:') ? b.fromHex(v.plaintext.slice(4))
              : Uint8Array.from({length: Number(v.plaintext.slice(8)) % 131072 || 131072},
                                (_, i) => (i + 131072 * (v.chunks.length - 1)) % 251);
            const sealed = new Uint8Array(await crypto.subtle.encrypt(
              {name: 'AES-GCM', iv: b.fromHex(c.nonce), additionalData: b.fromHex(c.aad)}, key, plain));
            out.push(b.toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', sealed))));
          }
          return out;
        }""", [doc["content_key"], doc["report_id"], doc["attachments"]])
    assert got == [v["chunks"][-1]["ciphertext_sha256"] for v in doc["attachments"]]


def test_js_seals_python_opens(page: Any, key: crypto.PrivateKey) -> None:
    payload = {"schema": 1, "language": "ar", "what": f"marker {os.urandom(4).hex()}"}
    files = [{**f, "data": b64(f["data"])} for f in FILES]
    sealed = page.evaluate(JS_SEAL, [b64(key.public_key.raw), payload, files])
    envelope = unb64(sealed["envelope"])
    assert envelope[6] == 2  # flags: has attachments
    opened = crypto.unseal(envelope, key)
    assert {k: v for k, v in opened.payload.items() if k != "attachments"} == payload
    entries = att.entries(opened.payload)
    for entry, original, made in zip(entries, FILES, sealed["attachments"], strict=True):
        assert entry is not None and entry.id == made["id"]
        assert (entry.name, entry.type, entry.kind) == (original["name"], original["type"], original["kind"])
        chunks = [unb64(c) for c in made["chunks"]]
        assert made["size"] == sum(map(len, chunks)) == att.sealed_size(len(original["data"]))
        assert crypto.open_attachment(opened, entry, chunks) == original["data"]


def test_python_seals_js_opens(page: Any, key: crypto.PrivateKey) -> None:
    files = [crypto.NewAttachment(f["name"], f["type"], f["data"], f["kind"]) for f in FILES]
    sealed = crypto.seal_report({"schema": 1, "language": "fr"}, [key.public_key], files)
    got = page.evaluate(JS_OPEN, [b64(sealed.envelope), [b64(b"".join(c)) for c in sealed.chunks]])
    assert got["flags"] == 2 and got["payload"]["language"] == "fr"
    assert [unb64(a) for a in got["attachments"]] == [f["data"] for f in FILES]


def test_every_tampering_fails_in_the_browser(page: Any, key: crypto.PrivateKey) -> None:
    files = [crypto.NewAttachment("a.jpg", "image/jpeg", _pattern(3 * CHUNK + 5), "photo"),
             crypto.NewAttachment("b.txt", "text/plain", b"second")]
    sealed = crypto.seal_report({"schema": 1}, [key.public_key], files)
    other = crypto.seal_report({"schema": 1}, [key.public_key], files)
    photo = list(sealed.chunks[0])
    flipped = bytearray(photo[2])
    flipped[40] ^= 0x80
    cases = {
        "intact": photo,
        "reordered": [photo[1], photo[0], *photo[2:]],
        "last dropped": photo[:-1],
        "middle dropped": [photo[0], *photo[2:]],
        "last dropped and the one before sent twice": [*photo[:-2], photo[-2], photo[-2]],
        "chunk of the other attachment": [*photo[:-1], sealed.chunks[1][0]],
        "chunk of another report": [other.chunks[0][0], *photo[1:]],
        "bit flipped": [*photo[:2], bytes(flipped), *photo[3:]],
        "cut short": [*photo[:-1], photo[-1][:-3]],
        "one byte more": [*photo, b"\0"],
    }
    got = page.evaluate(JS_OPEN, [b64(sealed.envelope), [b64(b"".join(c)) for c in cases.values()]])
    results = dict(zip(cases, got["attachments"], strict=True))
    assert unb64(results.pop("intact")) == files[0].data
    assert results == dict.fromkeys(results, "AttachmentOpenError")


def test_entries_are_read_alike_on_both_sides(page: Any) -> None:
    good = {"id": "ab" * 16, "name": "a.jpg", "type": "image/jpeg", "kind": "photo", "size": 5,
            "sha256": "cd" * 32, "chunks": 1}
    variants = [good, {**good, "id": "AB" * 16}, {**good, "name": ""}, {**good, "name": "😀" * 255},
                {**good, "name": "😀" * 256}, {**good, "kind": "x"}, {**good, "size": True},
                {**good, "size": 5.0}, {**good, "size": 5.5}, {**good, "size": -1}, {**good, "chunks": 2},
                {**good, "type": 5}, {**good, "sha256": "cd" * 31}, "not an object", None, [good]]
    for variant in variants:
        payload = {"attachments": [variant]}
        python = [e is not None for e in att.entries(payload)]
        browser = page.evaluate("p => att.entries(p).map((e) => e !== null)", payload)
        assert browser == python, variant


# A JPEG drawn in the browser, with an EXIF segment (APP1) carrying a made-up place
# written in after its first two bytes, as a phone's camera writes one.
PHOTO_WITH_EXIF = """async (marker) => {
  const canvas = document.createElement('canvas');
  canvas.width = 3000; canvas.height = 2000;
  const g = canvas.getContext('2d');
  g.fillStyle = '#2a6'; g.fillRect(0, 0, 3000, 2000); g.fillStyle = '#fff'; g.fillRect(100, 100, 800, 300);
  const jpeg = new Uint8Array(await (await new Promise((ok) => canvas.toBlob(ok, 'image/jpeg', 0.9))).arrayBuffer());
  const text = new TextEncoder().encode('Exif\\0\\0GPS ' + marker);
  const app1 = new Uint8Array(4 + text.length);
  app1.set([0xff, 0xe1, (text.length + 2) >> 8, (text.length + 2) & 0xff]); app1.set(text, 4);
  const bytes = new Uint8Array(jpeg.length + app1.length);
  bytes.set(jpeg.subarray(0, 2)); bytes.set(app1, 2); bytes.set(jpeg.subarray(2), 2 + app1.length);
  const media = await import('/static/js/media.js');
  const has = (b) => new TextDecoder('latin1').decode(b).includes(marker);
  const original = new File([bytes], 'IMG_0001.JPG', {type: 'image/jpeg'});
  const smaller = await media.shrink(original);
  const out = new Uint8Array(await smaller.arrayBuffer());
  const bitmap = await createImageBitmap(smaller);
  return {original: [original.size, has(bytes)], smaller: [out.length, has(out), smaller.type],
          size: [bitmap.width, bitmap.height], jpeg: out[0] === 0xff && out[1] === 0xd8};
}"""


def test_the_smaller_copy_of_a_photo_leaves_its_exif_behind(page: Any) -> None:
    marker = f"Bria 6.54N 21.99E {os.urandom(4).hex()}"
    got = page.evaluate(PHOTO_WITH_EXIF, marker)
    assert got["original"][1] is True  # the control: the place is in the original
    assert got["smaller"][1] is False and got["smaller"][2] == "image/jpeg" and got["jpeg"]
    assert got["size"] == [1600, 1067]  # the longer side 1600 pixels, proportions kept
    assert got["smaller"][0] < got["original"][0]
