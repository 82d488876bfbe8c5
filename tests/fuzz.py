"""Fuzzing: near-valid hostile inputs, a harness over a real instance, and a time budget.

Every parser of outside input has a *target* here or in the test files: a strategy that
draws inputs (mostly real envelopes, codes and bodies with a few things wrong, because
random bytes rarely get past the first check) and a check that states the property:
never a 5xx, never an exception but the named ones, and nothing stored on a refusal.

Each target runs a few dozen examples in the normal test run. With INTAKE_FUZZ_SECONDS set
(`./dev fuzz`, which CI runs), `tests/fuzz_campaign.py` runs every target again and
again with fresh random examples until that many seconds are spent.

Why Hypothesis and not a coverage-guided fuzzer such as atheris: the parsers here are
short Python over `json`, `struct` and pyca, guarded by exact lengths, magic bytes and
MACs, so the deep paths are reached by building inputs that are valid up to one fault
(which these strategies do), not by coverage feedback on random bytes, which would stall
at every AEAD tag. Hypothesis also shrinks a failure to a small example, runs inside
pytest with the real fixtures, and needs no native wheel (atheris ships a 35 MB libFuzzer
build for x86-64 Linux only).
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake import create_app, crypto, focal, receipts, store
from intake import envelope as fmt
from intake import instance as instance_mod

from support import CHEAP_HASH, PASSPHRASE, seal_note

FUZZ_SECONDS = float(os.environ.get("INTAKE_FUZZ_SECONDS") or 0)
# Examples per target in the normal run: enough to catch a regression, small enough that
# all of them together take a few seconds.
EXAMPLES = 40
# Examples per round of the timed campaign: each round is a fresh Hypothesis run.
ROUND = 100


@dataclass(frozen=True)
class Target:
    name: str
    strategy: st.SearchStrategy[Any]
    check: Callable[[Harness, Any], None]


def run(target: Target, harness: Harness, *, examples: int = EXAMPLES) -> None:
    """Run one target for `examples` fresh examples; a failure is shrunk and reported."""

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(target.strategy)
    def prop(example: Any) -> None:
        target.check(harness, example)

    prop()


def campaign(targets: Sequence[Target], harness: Harness, seconds: float) -> dict[str, int]:
    """Round after round over every target until `seconds` are spent; examples per target."""
    done = {target.name: 0 for target in targets}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for target in targets:
            run(target, harness, examples=ROUND)
            done[target.name] += ROUND
            if time.monotonic() >= deadline:
                break
    return done


# --- Key material, made once per process ----------------------------------------------------


_SUITE = hpke.Suite(hpke.KEM.P256, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


@dataclass(frozen=True)
class Material:
    org: crypto.PrivateKey  # the instance's organisation key
    stranger: crypto.PrivateKey  # a key the instance does not list
    receipt: crypto.PrivateKey  # the instance's receipt key
    tablet: ec.EllipticCurvePrivateKey  # an enrolled focal point's signing key
    pool: tuple[bytes, ...]  # real envelopes of several shapes, sealed once


def _make_material() -> Material:
    org, stranger = crypto.generate_private_key(), crypto.generate_private_key()
    report = {"schema": 1, "what": "fuzz", "language": "en"}
    pool = (
        crypto.seal(report, [org.public_key]),
        crypto.seal(report, [org.public_key, stranger.public_key]),
        crypto.seal(report, [stranger.public_key]),
        crypto.seal(report, [org.public_key], flags=fmt.FLAG_SERVER_SEALED),
        crypto.seal({**report, "what": "x" * 700}, [org.public_key]),
        seal_note("a note", [org.public_key], "00" * 16),
    )
    return Material(org, stranger, crypto.generate_private_key(),
                    ec.generate_private_key(ec.SECP256R1()), pool)


MATERIAL = _make_material()
FOCAL_ID = "f0ca1f0c"  # the enrolled focal point of every harness


def seal_raw(plaintext: bytes, recipients: Sequence[crypto.PublicKey], report_id: bytes, *,
             schema: int = fmt.SCHEMA_V1, flags: int = 0) -> bytes:
    """An envelope around any plaintext bytes, as a hostile sealer could make one: the
    payload parser behind the AEAD is reached only through a valid envelope."""
    content_key = os.urandom(crypto.CONTENT_KEY_LEN)
    prefix = fmt.build_prefix(flags=flags, schema=schema, report_id=report_id,
                              recipient_count=len(recipients))
    header = bytearray(prefix)
    for recipient in recipients:
        point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), recipient.raw)
        header += recipient.key_id + _SUITE.encrypt(
            content_key, point, info=fmt.content_key_info(prefix, recipient.key_id))
    nonce = os.urandom(fmt.NONCE_LEN)
    return bytes(header) + nonce + AESGCM(content_key).encrypt(nonce, plaintext, bytes(header))


# --- The harness: a real instance with a logged-in officer ----------------------------------


# Tables whose rows change whatever a request asked for: a logged-in officer's last request
# (sessions), and the counts of failed logins and receipt codes that limit guessing
# (intake/throttle.py), with the meta row of the day's key that hashes clients. Left out of
# "nothing stored".
VOLATILE_TABLES = frozenset({"sessions", "login_failures", "throttle_clients",
                             "status_failures"})


@dataclass
class Harness:
    config: Any
    app: Flask
    client: FlaskClient  # anonymous
    officer: FlaskClient
    officer_token: str
    officer_id: int
    case_id: str  # a stored report the officer works on
    conn: store.Connection

    @classmethod
    def create(cls, base: Path) -> Harness:
        from test_console import Person

        created = instance_mod.create(
            base / "instance", key_out=base / "organisation.key", passphrase=PASSPHRASE,
            hash_params=CHEAP_HASH, secure_cookies=False, languages=("en", "fr", "ar"),
        )
        # No overall limit on wrong receipt codes: the fuzzing makes thousands, and every
        # lookup would wait. The per-client limit stays: targets send from many clients.
        config = replace(created.config, recipients=(MATERIAL.org.public_key,),
                         receipt_key=MATERIAL.receipt,
                         throttle=replace(created.config.throttle,
                                          status_overall_failures=10**9))
        app = create_app(config)
        conn = store.connect(config.db_path, config.db_key)
        # An enrolled tablet with a known id, as if it had sent its key with its code.
        focal.add(conn, "Fuzz village", now=_now())
        conn.execute("UPDATE focal_points SET id = ?, public_key = ?, enrolment_hash = NULL",
                     (FOCAL_ID, _tablet_public()))
        person = Person(app, conn, "fuzzer", "officer")
        (officer_id,) = conn.execute("SELECT id FROM users WHERE username = 'fuzzer'").fetchone()
        case_id = fmt.parse(MATERIAL.pool[0], max_size=1 << 20).report_id_hex
        store.insert_report(conn, store.NewReport(
            report_id=case_id, received_at=_now(), channel="web", language="en", schema=1,
            sealed_by="device", receipt_hash=os.urandom(32), envelope=MATERIAL.pool[0]))
        return cls(config, app, app.test_client(), person.client, person.token, officer_id,
                   case_id, conn)

    def fingerprint(self, leave_out: frozenset[str] = frozenset()) -> bytes:
        """A digest of every row of every table but the volatile ones (and `leave_out`)."""
        digest = hashlib.sha256()
        tables = [name for (name,) in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for table in tables:
            if table in VOLATILE_TABLES or table in leave_out:
                continue
            digest.update(table.encode() + b"\0")
            # Sorted here: some tables have no rowid (WITHOUT ROWID) to order them by.
            where = " WHERE name != 'client_key'" if table == "meta" else ""
            rows = self.conn.execute(f'SELECT * FROM "{table}"{where}').fetchall()  # noqa: S608
            for text in sorted(repr(tuple(row)) for row in rows):
                digest.update(text.encode())
        return digest.digest()

    def count(self, table: str) -> int:
        return int(self.conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])  # noqa: S608


def _now() -> Any:
    from intake.reports import utcnow

    return utcnow()


def _tablet_public() -> bytes:
    from cryptography.hazmat.primitives import serialization

    return MATERIAL.tablet.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


# --- Strategies ------------------------------------------------------------------------------


INTERESTING_BYTES = (0, 1, 2, 3, 7, 8, 9, 0x04, 0x7F, 0x80, 0xFE, 0xFF)
PREFIX_FIELDS = (4, 5, 6, 7, 24)  # version, suite, flags, schema, recipient count
# Text of every kind, but no lone surrogates: they cannot be sent as UTF-8 by any browser.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
ANY_TEXT = st.text(max_size=40)  # lone surrogates too: JSON can carry them ("\ud800")
JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12,
)


def _entry(index: int) -> int:
    return fmt.PREFIX_LEN + index * fmt.ENTRY_LEN


@st.composite
def mutated(draw: st.DrawFn, data: bytes, *, steps: int = 3) -> bytes:
    """`data` with a few faults of the kinds a parser must survive."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, steps))):
        op = draw(st.sampled_from(("byte", "field", "cut", "grow", "key_id", "enc", "splice")))
        count = out[24] if len(out) > 24 and 1 <= out[24] <= 8 else 1
        if op == "byte" and out:
            at = draw(st.integers(0, len(out) - 1))
            out[at] = draw(st.sampled_from(INTERESTING_BYTES) | st.integers(0, 255))
        elif op == "field" and len(out) > 24:
            out[draw(st.sampled_from(PREFIX_FIELDS))] = draw(st.sampled_from(INTERESTING_BYTES))
        elif op == "cut":
            keep = draw(st.sampled_from((0, 4, 5, 24, 25, fmt.MIN_LEN - 1, len(out) - 1,
                                         len(out) - 16)) | st.integers(0, len(out)))
            del out[max(0, keep):]
        elif op == "grow":
            out += draw(st.sampled_from((b" ", b" " * 512, b"\0" * 511)) | st.binary(max_size=64))
        elif op == "key_id" and len(out) >= _entry(count):
            at = _entry(draw(st.integers(0, count - 1)))
            ids = [MATERIAL.org.public_key.key_id, MATERIAL.stranger.public_key.key_id,
                   bytes(32), bytes(out[_entry(0):_entry(0) + 32])]
            out[at:at + 32] = draw(st.sampled_from(ids))
        elif op == "enc" and len(out) >= _entry(count):
            at = _entry(draw(st.integers(0, count - 1))) + fmt.KEY_ID_LEN
            encs = [b"\x04" + bytes(64), b"\x02" + bytes(64), b"\x04" + b"\xff" * 64,
                    MATERIAL.stranger.public_key.raw]
            out[at:at + 65] = draw(st.sampled_from(encs) | st.binary(min_size=65, max_size=65))
        elif op == "splice":
            other = draw(st.sampled_from(MATERIAL.pool))
            start = draw(st.integers(0, len(other)))
            end = draw(st.integers(start, len(other)))
            at = draw(st.integers(0, len(out)))
            out[at:at + end - start] = other[start:end]
    return bytes(out)


@st.composite
def envelopes(draw: st.DrawFn, *, fresh: bool = True) -> bytes:
    """A real envelope (from the pool, or sealed now with a new report id), maybe faulty."""
    if fresh and draw(st.booleans()):
        base = crypto.seal({"schema": 1, "what": draw(TEXT)}, [MATERIAL.org.public_key])
    else:
        base = draw(st.sampled_from(MATERIAL.pool))
    return draw(mutated(base)) if draw(st.booleans()) else base


@st.composite
def b64(draw: st.DrawFn, data: bytes) -> str:
    """base64url of `data` as the API wants it, or one of the ways it can be wrong."""
    text = crypto.b64encode(data)
    kind = draw(st.sampled_from(("ok", "ok", "ok", "padded", "standard", "space", "char")))
    if kind == "padded":
        return text + "=" * (-len(text) % 4 or 4)
    if kind == "standard":
        return base64.b64encode(data).decode("ascii")
    if kind == "space":
        return text[: len(text) // 2] + " " + text[len(text) // 2:]
    if kind == "char" and text:
        at = draw(st.integers(0, len(text) - 1))
        return text[:at] + draw(st.sampled_from(("!", "é", "\0", "A", "\ud800"))) + text[at + 1:]
    return text


# Fresh random codes, not drawn by Hypothesis, which favours a few simple values: two
# reports with one code are a conflict, which would hide every check behind it.
VALID_CODES = st.builds(receipts.new_code)


def faults(*names: str) -> st.SearchStrategy[frozenset[str]]:
    """Which parts of an input to get wrong: none in two draws of five (so that the checks
    behind the first ones are reached), one in two of five, two in the last."""
    one = st.sampled_from(names).map(lambda name: frozenset({name}))
    two = st.lists(st.sampled_from(names), min_size=2, max_size=2, unique=True).map(frozenset)
    return st.sampled_from((0, 0, 1, 1, 2)).flatmap(
        lambda k: (st.just(frozenset[str]()), one, two)[k])


@st.composite
def typed_codes(draw: st.DrawFn) -> str:
    """A receipt code as people type it, or typed wrong, or anything at all."""
    kind = draw(st.sampled_from(("valid", "valid", "grouped", "arabic", "wrong", "text")))
    code = draw(VALID_CODES)
    if kind == "grouped":
        return receipts.display(code).replace(" ", draw(st.sampled_from((" ", "-", ".", "\u00a0"))))
    if kind == "arabic":
        return "".join(chr(0x660 + int(c)) for c in code)
    if kind == "wrong":
        return code[:-1] + str((int(code[-1]) + 1) % 10)
    if kind == "text":
        return draw(ANY_TEXT)
    return code
