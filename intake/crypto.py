"""Every use of cryptographic primitives in the intake, behind a few functions.

`seal` and `unseal` implement the envelope of SECURITY.md, Formats 2 with HPKE
(RFC 9180, pyca/cryptography) and AES-256-GCM; `write_key_file` and `read_key_file` the
passphrase-protected private key file of section 5; the `Backup*` pieces the encrypted
stream of a backup file (section 12). Failures raise the named exceptions below; nothing
here returns False for "did not work".
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from hmac import compare_digest
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, hmac, hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from intake import attachments as att
from intake import envelope as fmt

Rng = Callable[[int], bytes]

_SUITE = hpke.Suite(hpke.KEM.P256, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
CONTENT_KEY_LEN = 32

KEY_FILE_FORMAT = "intake-private-key"
KEY_FILE_VERSION = 1
KEY_FILE_AAD_LABEL = b"intake-private-key/v1\x00"
# OWASP's 2023 figure for PBKDF2-HMAC-SHA256. PBKDF2 rather than argon2 because the key
# file must also open in a browser, and WebCrypto has PBKDF2 only (see SECURITY.md).
PBKDF2_ITERATIONS = 600_000
PBKDF2_MAX_ITERATIONS = 10_000_000
MIN_PASSPHRASE_CHARS = 12
# The browser's reader refuses deeper payloads too; both sides must agree on what opens.
MAX_PAYLOAD_DEPTH = 64


class CryptoError(Exception):
    """Base class of the failures this module reports."""


class InvalidPublicKey(CryptoError):
    """Bytes that are not a P-256 public key in uncompressed SEC1 form."""


class EnvelopeOpenError(CryptoError):
    """The envelope could not be opened: wrong key, damaged or tampered with."""


class KeyFileError(CryptoError):
    """The key file is damaged, of an unknown format, or the passphrase is wrong."""


class WeakPassphrase(CryptoError):
    """The passphrase is too short to protect a private key."""


class AttachmentOpenError(CryptoError):
    """An attachment could not be opened: a chunk is missing, damaged, moved or extra."""


class ReceiptOpenError(CryptoError):
    """A sealed receipt could not be opened: wrong report, wrong key, damaged or malformed."""


class SignatureInvalid(CryptoError):
    """A focal-point signature does not verify, or the key or signature is malformed."""


class TotpInvalid(CryptoError):
    """A one-time code is wrong, out of its time window, or was used before."""


class BackupKeyRefused(CryptoError):
    """A backup's header does not open with this key: sealed to another key, or altered."""


class BackupSegmentInvalid(CryptoError):
    """A segment of a backup does not authenticate: altered, reordered, cut short or extended."""


@dataclass(frozen=True)
class PublicKey:
    """An organisation public key as its 65-byte uncompressed SEC1 point."""

    raw: bytes

    @classmethod
    def from_raw(cls, raw: bytes) -> PublicKey:
        _load_point(raw)
        return cls(bytes(raw))

    @classmethod
    def from_text(cls, text: str) -> PublicKey:
        try:
            raw = b64decode(text)
        except ValueError as exc:
            raise InvalidPublicKey("public key is not base64url") from exc
        return cls.from_raw(raw)

    @property
    def key_id(self) -> bytes:
        return hashlib.sha256(self.raw).digest()

    @property
    def text(self) -> str:
        return b64encode(self.raw)


class PrivateKey:
    """An organisation private key. Held in memory only by the CLI and tests."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(key.curve, ec.SECP256R1):
            raise InvalidPublicKey("organisation keys are P-256")
        self._key = key
        self.public_key = PublicKey(
            key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )


@dataclass(frozen=True)
class Unsealed:
    report_id: str
    flags: int
    schema: int
    payload: dict[str, Any]
    # The content key, kept only when the envelope says it has attachments (flag 0x02):
    # `open_attachment` derives each attachment's key from it.
    content_key: bytes = field(default=b"", repr=False, compare=False)


@dataclass(frozen=True)
class NewAttachment:
    """A file to seal with a report: its bytes and what the device says about it."""

    name: str
    type: str
    data: bytes
    kind: str = "file"


@dataclass(frozen=True)
class SealedReport:
    """An envelope with attachments, and each attachment's encrypted chunks in order."""

    envelope: bytes
    attachment_ids: tuple[bytes, ...]
    chunks: tuple[tuple[bytes, ...], ...]


def generate_private_key() -> PrivateKey:
    return PrivateKey(ec.generate_private_key(ec.SECP256R1()))


def is_valid_point(raw: bytes) -> bool:
    """True when `raw` is a point on P-256; used to check `enc` fields of hostile envelopes."""
    try:
        _load_point(raw)
    except InvalidPublicKey:
        return False
    return True


def seal(
    payload: Mapping[str, object],
    recipients: Sequence[PublicKey],
    *,
    flags: int = 0,
    report_id: bytes | None = None,
    rng: Rng = os.urandom,
) -> bytes:
    """Seal a payload (schema 1) to every recipient; returns the envelope bytes.

    `report_id` is random unless given (the server's no-JavaScript form fixes it in advance
    so that a resubmitted form is recognised).
    """
    content_key = rng(CONTENT_KEY_LEN)
    return _seal(payload, recipients, content_key=content_key, flags=flags,
                 report_id=rng(fmt.REPORT_ID_LEN) if report_id is None else report_id, rng=rng)


def seal_report(
    payload: Mapping[str, object],
    recipients: Sequence[PublicKey],
    files: Sequence[NewAttachment],
    *,
    rng: Rng = os.urandom,
) -> SealedReport:
    """Seal a report with attachments, as a device does (SECURITY.md, Formats 13): each
    file in chunks under a key derived from the report's content key, listed in the
    payload, and the envelope flagged 0x02."""
    if not files:
        raise ValueError("a report with attachments needs at least one")
    content_key, report_id = rng(CONTENT_KEY_LEN), rng(fmt.REPORT_ID_LEN)
    ids, sealed, listed = [], [], []
    for item in files:
        attachment_id = rng(att.ID_LEN)
        ids.append(attachment_id)
        sealed.append(tuple(seal_chunks(content_key, report_id, attachment_id, item.data)))
        listed.append({
            "id": attachment_id.hex(), "name": item.name, "type": item.type,
            "kind": item.kind, "size": len(item.data),
            "sha256": hashlib.sha256(item.data).hexdigest(),
            "chunks": att.chunk_count(len(item.data)),
        })
    envelope = _seal({**payload, "attachments": listed}, recipients, content_key=content_key,
                     flags=fmt.FLAG_ATTACHMENTS, report_id=report_id, rng=rng)
    return SealedReport(envelope, tuple(ids), tuple(sealed))


def _seal(
    payload: Mapping[str, object],
    recipients: Sequence[PublicKey],
    *,
    content_key: bytes,
    flags: int,
    report_id: bytes,
    rng: Rng,
) -> bytes:
    if not recipients:
        raise ValueError("an envelope needs at least one recipient")
    prefix = fmt.build_prefix(
        flags=flags, schema=fmt.SCHEMA_V1, report_id=report_id,
        recipient_count=len(recipients),
    )
    header = bytearray(prefix)
    for recipient in recipients:
        sealed = _SUITE.encrypt(
            content_key,
            _load_point(recipient.raw),
            info=fmt.content_key_info(prefix, recipient.key_id),
        )
        header += recipient.key_id + sealed
    plaintext = fmt.pad(json.dumps(payload, ensure_ascii=False).encode("utf-8"))
    nonce = rng(fmt.NONCE_LEN)
    return bytes(header) + nonce + AESGCM(content_key).encrypt(nonce, plaintext, bytes(header))


def attachment_key(content_key: bytes, report_id: bytes, attachment_id: bytes) -> bytes:
    """HKDF-SHA256 of the content key, with no salt, bound to report and attachment."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None,
        info=att.key_info(report_id, attachment_id),
    ).derive(content_key)


def seal_chunks(
    content_key: bytes, report_id: bytes, attachment_id: bytes, data: bytes
) -> list[bytes]:
    """An attachment's encrypted chunks, in order (Formats 13)."""
    aead = AESGCM(attachment_key(content_key, report_id, attachment_id))
    pieces = att.split(data)
    last = len(pieces) - 1
    return [
        aead.encrypt(att.nonce(i, i == last), piece,
                     att.chunk_aad(report_id, attachment_id, i, i == last))
        for i, piece in enumerate(pieces)
    ]


def open_attachment(opened: Unsealed, entry: att.Entry, chunks: Sequence[bytes]) -> bytes:
    """The plaintext of one attachment of an opened report, checked against its entry.

    Every chunk must be there, in place, the last one marked last, and the whole must have
    the listed size and SHA-256; otherwise AttachmentOpenError, and nothing is returned.
    """
    if not opened.content_key:
        raise AttachmentOpenError("this report has no attachments")
    if len(chunks) != entry.chunks:
        raise AttachmentOpenError("chunks are missing or extra")
    report_id = bytes.fromhex(opened.report_id)
    aead = AESGCM(attachment_key(opened.content_key, report_id, entry.raw_id))
    out = bytearray()
    last = entry.chunks - 1
    try:
        for i, chunk in enumerate(chunks):
            out += aead.decrypt(att.nonce(i, i == last), chunk,
                                att.chunk_aad(report_id, entry.raw_id, i, i == last))
    except InvalidTag as exc:
        raise AttachmentOpenError("a chunk could not be opened") from exc
    if len(out) != entry.size or hashlib.sha256(out).hexdigest() != entry.sha256:
        raise AttachmentOpenError("the attachment does not match its size or SHA-256")
    return bytes(out)


def unseal(data: bytes, key: PrivateKey, *, max_size: int = 1 << 30) -> Unsealed:
    """Open an envelope with one recipient's private key."""
    try:
        env = fmt.parse(data, max_size=max_size)
    except (fmt.EnvelopeMalformed, fmt.EnvelopeUnsupported) as exc:
        raise EnvelopeOpenError(str(exc)) from exc
    own_id = key.public_key.key_id
    entry = next((e for e in env.recipients if e.key_id == own_id), None)
    if entry is None:
        raise EnvelopeOpenError("this envelope is not sealed to this key")
    try:
        content_key = _SUITE.decrypt(
            entry.enc + entry.sealed_key, key._key, info=fmt.content_key_info(env.prefix, own_id)
        )
        plaintext = AESGCM(content_key).decrypt(env.nonce, env.ciphertext, env.header)
    except (InvalidTag, ValueError) as exc:
        # pyca raises InvalidTag for a failed AEAD and ValueError for a bad point; both
        # mean the same thing to the caller, and the detail must not become an oracle.
        raise EnvelopeOpenError("the envelope could not be opened") from exc
    payload = _strict_json(plaintext)
    return Unsealed(env.report_id_hex, env.flags, env.schema, payload,
                    content_key=content_key if env.has_attachments else b"")


def _strict_json(plaintext: bytes) -> dict[str, Any]:
    """Parse a payload as RFC 8259 JSON: anyone with the public key can write one, so a
    hostile payload (deep nesting, NaN, repeated members) must fail as one named error."""

    def no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            raise ValueError("a member is repeated")
        return result

    def no_constants(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    try:
        payload = json.loads(
            plaintext.decode("utf-8"), object_pairs_hook=no_repeats, parse_constant=no_constants
        )
    except (ValueError, RecursionError) as exc:
        raise EnvelopeOpenError("the payload is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise EnvelopeOpenError("the payload is not a JSON object")
    if _depth(payload) > MAX_PAYLOAD_DEPTH:
        raise EnvelopeOpenError("the payload is nested too deeply")
    return payload


def _depth(value: object) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in
                         (item.values() if isinstance(item, dict) else item))
    return deepest


def write_key_file(
    key: PrivateKey,
    passphrase: str,
    *,
    iterations: int = PBKDF2_ITERATIONS,
    rng: Rng = os.urandom,
) -> bytes:
    """Serialise a private key as a passphrase-protected key file (SECURITY.md, Formats 5)."""
    if len(unicodedata.normalize("NFC", passphrase)) < MIN_PASSPHRASE_CHARS:
        raise WeakPassphrase(f"the passphrase must have at least {MIN_PASSPHRASE_CHARS} characters")
    if not PBKDF2_ITERATIONS <= iterations <= PBKDF2_MAX_ITERATIONS:
        raise ValueError("the PBKDF2 iteration count is outside what readers accept")
    salt, nonce = rng(16), rng(12)
    wrapping = _wrapping_key(passphrase, salt, iterations)
    der = key._key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key
    document = {
        "format": KEY_FILE_FORMAT,
        "version": KEY_FILE_VERSION,
        "kem": "DHKEM(P-256, HKDF-SHA256)",
        "key_id": public.key_id.hex(),
        "public_key": public.text,
        "kdf": {"name": "PBKDF2-HMAC-SHA256", "iterations": iterations, "salt": b64encode(salt)},
        "nonce": b64encode(nonce),
        "ciphertext": b64encode(
            AESGCM(wrapping).encrypt(nonce, der, KEY_FILE_AAD_LABEL + public.raw)
        ),
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def read_key_file(data: bytes, passphrase: str) -> PrivateKey:
    """Open a key file; raises KeyFileError for any damage or a wrong passphrase."""
    try:
        doc = json.loads(data.decode("utf-8"))
        kdf = doc["kdf"]
        if (doc["format"], doc["version"], kdf["name"]) != (
            KEY_FILE_FORMAT, KEY_FILE_VERSION, "PBKDF2-HMAC-SHA256"
        ):
            raise KeyFileError("this is not an intake key file of a version we know")
        iterations = kdf["iterations"]
        if not isinstance(iterations, int) or not (
            PBKDF2_ITERATIONS <= iterations <= PBKDF2_MAX_ITERATIONS
        ):
            raise KeyFileError("the key file's PBKDF2 iteration count is out of range")
        public = PublicKey.from_text(doc["public_key"])
        if public.key_id.hex() != doc["key_id"]:
            raise KeyFileError("the key file's key id does not match its public key")
        wrapping = _wrapping_key(passphrase, b64decode(kdf["salt"]), iterations)
        der = AESGCM(wrapping).decrypt(
            b64decode(doc["nonce"]), b64decode(doc["ciphertext"]),
            KEY_FILE_AAD_LABEL + public.raw,
        )
    except InvalidTag as exc:
        raise KeyFileError("wrong passphrase, or the key file is damaged") from exc
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, CryptoError) as exc:
        if isinstance(exc, KeyFileError):
            raise
        raise KeyFileError("the key file is damaged or not a key file") from exc
    try:
        loaded = serialization.load_der_private_key(der, password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise KeyFileError("the key file does not hold an elliptic-curve key")
        key = PrivateKey(loaded)
    except (ValueError, InvalidPublicKey) as exc:
        raise KeyFileError("the key file holds no usable P-256 private key") from exc
    if key.public_key != public:
        raise KeyFileError("the key file's private key does not match its public key")
    return key


RECEIPT_INFO_LABEL = b"intake-receipt-v1"
FOCAL_SIGNATURE_LABEL = b"intake-focal-v1"


def seal_receipt(code: str, language: str, *, report_id: bytes, key: PublicKey) -> bytes:
    """Seal a receipt code and language to the instance's receipt key (Formats 7)."""
    plaintext = (code + language).encode("ascii")
    return _SUITE.encrypt(plaintext, _load_point(key.raw), info=RECEIPT_INFO_LABEL + report_id)


def open_receipt(sealed: bytes, *, report_id: bytes, key: PrivateKey) -> tuple[str, str]:
    """Open a sealed receipt: returns (code as typed digits, language). Shape checks of the
    code itself are the caller's (receipts.normalise)."""
    if not fmt.ENC_LEN + 1 + 16 <= len(sealed) <= fmt.ENC_LEN + 16 + 8 + 16:
        raise ReceiptOpenError("a sealed receipt has the wrong length")
    try:
        plaintext = _SUITE.decrypt(sealed, key._key, info=RECEIPT_INFO_LABEL + report_id)
        text = plaintext.decode("ascii")
    except (InvalidTag, ValueError) as exc:
        raise ReceiptOpenError("the sealed receipt could not be opened") from exc
    code, language = text[:16], text[16:]
    if not (code.isdigit() and language.isalpha() and 1 <= len(language) <= 8):
        raise ReceiptOpenError("the sealed receipt does not hold a code and a language")
    return code, language


def focal_message(envelope: bytes, receipt_field: bytes) -> bytes:
    """What a focal-point tablet signs for one submission (Formats 8)."""
    return (
        FOCAL_SIGNATURE_LABEL
        + hashlib.sha256(envelope).digest()
        + hashlib.sha256(receipt_field).digest()
    )


def verify_focal_signature(public_key: bytes, signature: bytes, message: bytes) -> None:
    """Check an ECDSA P-256 SHA-256 signature in IEEE P1363 form (r || s, 64 bytes)."""
    if len(signature) != 64:
        raise SignatureInvalid("a signature is 64 bytes")
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    try:
        _load_point(public_key).verify(
            encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, InvalidPublicKey, ValueError) as exc:
        raise SignatureInvalid("the focal-point signature does not verify") from exc


def sign_focal(key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    """Sign as a tablet does (tests and tools; tablets sign in WebCrypto)."""
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def private_key_to_hex(key: PrivateKey) -> str:
    """PKCS#8 DER as hex: how the instance keeps its receipt key (never an officer key)."""
    return key._key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).hex()


def private_key_from_hex(text: str) -> PrivateKey:
    try:
        loaded = serialization.load_der_private_key(bytes.fromhex(text), password=None)
    except ValueError as exc:
        raise InvalidPublicKey("not a PKCS#8 private key in hex") from exc
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise InvalidPublicKey("not an elliptic-curve key")
    return PrivateKey(loaded)


BACKUP_INFO = b"intake-backup-v1"
# enc (65) || the sealed 32-byte file key with its 16-byte tag.
BACKUP_HEADER_LEN = fmt.ENC_LEN + CONTENT_KEY_LEN + 16
# Plaintext bytes per segment: large enough that the 16-byte tags cost 0.02 %, small enough
# that a reader never holds more than one segment in memory.
BACKUP_SEGMENT_LEN = 65536
BACKUP_TAG_LEN = 16


class _BackupStream:
    """AES-256-GCM over numbered segments (Formats 12): segment i uses the nonce
    i (11 bytes) || final (1 byte), and the backup header as additional data, so segments
    cannot be reordered, dropped, repeated or cut short without failing to open."""

    def __init__(self, file_key: bytes, header: bytes) -> None:
        self._aead = AESGCM(file_key)
        self._header = header
        self._index = 0
        self._done = False

    def _nonce(self, plain_len: int, *, final: bool) -> bytes:
        if self._done:
            raise ValueError("the backup stream is already finished")
        if not (0 < plain_len <= BACKUP_SEGMENT_LEN) or (
            not final and plain_len != BACKUP_SEGMENT_LEN
        ):
            raise ValueError("a segment is 65,536 bytes, or 1 to 65,536 if it is the last")
        nonce = self._index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")
        self._index += 1
        self._done = final
        return nonce


class BackupSealer(_BackupStream):
    def seal(self, plaintext: bytes, *, final: bool) -> bytes:
        nonce = self._nonce(len(plaintext), final=final)
        return self._aead.encrypt(nonce, plaintext, self._header)


class BackupOpener(_BackupStream):
    def open(self, ciphertext: bytes, *, final: bool) -> bytes:
        nonce = self._nonce(len(ciphertext) - BACKUP_TAG_LEN, final=final)
        try:
            return self._aead.decrypt(nonce, ciphertext, self._header)
        except InvalidTag:
            raise BackupSegmentInvalid(
                f"segment {self._index - 1} of the backup does not authenticate"
            ) from None


def seal_backup_header(
    recipient: PublicKey, *, rng: Rng = os.urandom
) -> tuple[bytes, BackupSealer]:
    """A backup header sealing a fresh random file key to `recipient`, and the sealer that
    encrypts the segments under that key. The file key never leaves this module."""
    file_key = rng(CONTENT_KEY_LEN)
    header = _SUITE.encrypt(file_key, _load_point(recipient.raw), info=BACKUP_INFO)
    return header, BackupSealer(file_key, header)


def open_backup_header(header: bytes, key: PrivateKey) -> BackupOpener:
    if len(header) != BACKUP_HEADER_LEN:
        raise BackupKeyRefused("a backup header is 113 bytes")
    try:
        file_key = _SUITE.decrypt(header, key._key, info=BACKUP_INFO)
    except (InvalidTag, ValueError):
        # A wrong key and an altered header look the same here, on purpose: the header
        # names no key (see SECURITY.md, Formats 12), so there is nothing else to say.
        raise BackupKeyRefused("the backup does not open with this key") from None
    if len(file_key) != CONTENT_KEY_LEN:
        raise BackupKeyRefused("the backup's file key has the wrong length")
    return BackupOpener(file_key, header)


def fingerprint(key_id: bytes) -> str:
    """Key id as people compare it out of band: hex in groups of four."""
    text = key_id.hex()
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """Strict base64url without padding; raises ValueError on anything else."""
    if not isinstance(text, str) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError("not base64url") from exc
    if b64encode(raw) != text:
        # Reject non-canonical encodings, so one envelope has exactly one text form.
        raise ValueError("not canonical base64url")
    return raw


# --- Officer accounts and the audit chain ---------------------------------------------------

# RFC 6238 as every authenticator app implements it: SHA-1, 6 digits, 30-second steps.
TOTP_SECRET_LEN = 20
TOTP_STEP = 30


def new_totp_secret(rng: Rng = os.urandom) -> bytes:
    return rng(TOTP_SECRET_LEN)


def _totp(secret: bytes) -> TOTP:
    return TOTP(secret, 6, hashes.SHA1(), TOTP_STEP)  # noqa: S303  (RFC 6238 default)


def totp_uri(secret: bytes, *, account: str, issuer: str) -> str:
    """The otpauth:// address an authenticator app reads from the enrolment QR code."""
    return _totp(secret).get_provisioning_uri(account, issuer)


def totp_code(secret: bytes, *, at: float) -> str:
    """The code an authenticator shows at `at` (tests and tools)."""
    return _totp(secret).generate(int(at)).decode("ascii")


def totp_verify(secret: bytes, code: str, *, at: float, last_step: int) -> int:
    """The time step `code` belongs to, one step of clock drift allowed either way.

    A step at or before `last_step` is refused, so a code seen over a shoulder or in a log
    cannot be used again. Raises TotpInvalid.
    """
    digits = "".join(code.split())
    if len(digits) != 6 or not digits.isascii() or not digits.isdigit():
        raise TotpInvalid("a code has 6 digits")
    step = int(at) // TOTP_STEP
    for candidate in (step, step - 1, step + 1):
        if candidate <= last_step:
            continue
        try:
            _totp(secret).verify(digits.encode("ascii"), candidate * TOTP_STEP)
        except InvalidToken:
            continue
        return candidate
    raise TotpInvalid("wrong or used code")


def audit_mac(key: bytes, previous: bytes, entry: bytes) -> bytes:
    """One link of the audit chain: HMAC-SHA256 over the previous link and this entry."""
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(previous)
    mac.update(entry)
    return mac.finalize()


def macs_equal(a: bytes, b: bytes) -> bool:
    return compare_digest(a, b)


def token_digest(token: str) -> bytes:
    """How a session token or a one-time code is stored: a database copy cannot log in."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def _wrapping_key(passphrase: str, salt: bytes, iterations: int) -> bytes:
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    return hashlib.pbkdf2_hmac("sha256", secret, salt, iterations, dklen=32)


def _load_point(raw: bytes) -> ec.EllipticCurvePublicKey:
    if len(raw) != fmt.ENC_LEN or raw[0] != 0x04:
        raise InvalidPublicKey("a public key is a 65-byte uncompressed P-256 point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError as exc:
        raise InvalidPublicKey("the point is not on P-256") from exc
