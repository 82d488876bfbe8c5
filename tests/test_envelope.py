"""The envelope byte layout (SECURITY.md, Formats 2) and its shape rules.

`intake.envelope.parse` reads hostile bytes before any key is touched, so besides one test
per shape rule it gets property tests: whatever the input, it either raises one of its two
named exceptions or returns fields that put back together give exactly the input.
"""

from __future__ import annotations

import functools
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intake import crypto
from intake import envelope as fmt
from intake.envelope import EnvelopeMalformed, EnvelopeUnsupported

LIMIT = 256 * 1024  # the default max_envelope_bytes of an instance
SHAPE_ERRORS = (EnvelopeMalformed, EnvelopeUnsupported)
# Modest on purpose: the file must run in a few seconds. No example database is written,
# so running the tests leaves nothing behind in the working tree.
PROPERTY = settings(max_examples=200, deadline=None, database=None)

REPORT_ID = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")


@functools.cache
def _keys(count: int) -> tuple[crypto.PrivateKey, ...]:
    return tuple(crypto.generate_private_key() for _ in range(count))


@functools.cache
def _sealed(recipients: int = 1, text_len: int = 10, flags: int = 0) -> bytes:
    """A real envelope, made once per shape and shared by the tests of this file."""
    keys = _keys(3)[:recipients]
    return crypto.seal(
        {"schema": 1, "what": "x" * text_len}, [k.public_key for k in keys],
        flags=flags, report_id=REPORT_ID,
    )


def _set(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value):]


def _entry_at(index: int) -> int:
    return fmt.PREFIX_LEN + index * fmt.ENTRY_LEN


def _raises_exactly(kind: type[Exception], data: bytes, max_size: int = LIMIT) -> str:
    with pytest.raises(SHAPE_ERRORS) as info:
        fmt.parse(data, max_size=max_size)
    assert type(info.value) is kind, f"expected {kind.__name__}, got {info.value!r}"
    return str(info.value)


def _check_parse(data: bytes, max_size: int = LIMIT) -> fmt.Envelope | None:
    """The property every input must satisfy: a named refusal, or an exact split."""
    try:
        env = fmt.parse(data, max_size=max_size)
    except SHAPE_ERRORS:
        return None
    assert env.header + env.nonce + env.ciphertext == data
    assert env.header == env.prefix + b"".join(
        e.key_id + e.enc + e.sealed_key for e in env.recipients
    )
    assert len(data) <= max_size
    magic, version, suite, flags, schema, report_id, count = struct.unpack_from(
        ">4sBBBB16sB", data
    )
    assert (magic, version, suite) == (b"INTK", 1, 1)
    assert (flags, schema, report_id) == (env.flags, env.schema, env.report_id)
    assert flags & ~fmt.KNOWN_FLAGS == 0
    assert schema in fmt.KNOWN_SCHEMAS
    assert 1 <= count <= 8 == fmt.MAX_RECIPIENTS
    assert len(env.recipients) == count
    assert len(env.header) == 25 + 145 * count
    for entry in env.recipients:
        assert (len(entry.key_id), len(entry.enc), len(entry.sealed_key)) == (32, 65, 48)
        assert entry.enc[0] == 0x04
    assert len({e.key_id for e in env.recipients}) == count
    assert len(env.nonce) == 12
    padded = len(env.ciphertext) - 16
    assert padded > 0
    assert padded % 512 == 0
    return env


# --- Splitting a real envelope ---------------------------------------------------------


def test_parse_splits_a_sealed_envelope_into_its_fields() -> None:
    keys = _keys(3)
    data = _sealed(recipients=3, text_len=600, flags=fmt.FLAG_SERVER_SEALED)
    env = fmt.parse(data, max_size=LIMIT)

    assert data[:4] == b"INTK"
    assert env.flags == 1
    assert env.server_sealed
    assert env.schema == 1
    assert env.report_id == REPORT_ID
    assert env.report_id_hex == "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    assert env.prefix == b"INTK\x01\x01\x01\x01" + REPORT_ID + b"\x03"
    assert [e.key_id for e in env.recipients] == [k.public_key.key_id for k in keys]
    for i, entry in enumerate(env.recipients):
        at = 25 + 145 * i
        assert entry.key_id == data[at : at + 32]
        assert entry.enc == data[at + 32 : at + 97]
        assert entry.sealed_key == data[at + 97 : at + 145]
        assert crypto.is_valid_point(entry.enc)
    assert env.header == data[: 25 + 3 * 145]
    assert env.nonce == data[460:472]
    assert env.ciphertext == data[472:]
    # A 600-character text plus the JSON around it needs two 512-byte blocks, plus the tag.
    assert len(env.ciphertext) == 2 * 512 + 16


def test_smallest_envelope_is_exactly_the_minimum_length() -> None:
    data = _sealed()
    assert len(data) == fmt.MIN_LEN == 25 + 145 + 12 + 16 + 512
    assert fmt.parse(data, max_size=len(data)).server_sealed is False


def test_build_prefix_and_content_key_info_follow_the_spec() -> None:
    prefix = fmt.build_prefix(flags=1, schema=1, report_id=REPORT_ID, recipient_count=8)
    assert prefix == b"\x49\x4e\x54\x4b" + bytes([1, 1, 1, 1]) + REPORT_ID + b"\x08"
    label = b"intake-envelope-v1/content-key"
    assert len(label) == 30
    kid = bytes(range(32))
    assert fmt.content_key_info(prefix, kid) == label + prefix + kid
    for bad in ({"report_id": REPORT_ID[:15], "recipient_count": 1},
                {"report_id": REPORT_ID, "recipient_count": 0},
                {"report_id": REPORT_ID, "recipient_count": 9}):
        with pytest.raises(ValueError):
            fmt.build_prefix(flags=0, schema=1, **bad)  # type: ignore[arg-type]


# --- One test per shape rule -------------------------------------------------------------


def test_too_short_is_malformed() -> None:
    data = _sealed()
    _raises_exactly(EnvelopeMalformed, data[:-1])
    _raises_exactly(EnvelopeMalformed, b"")
    _raises_exactly(EnvelopeMalformed, b"INTK")


def test_longer_than_the_limit_is_malformed() -> None:
    data = _sealed()
    assert fmt.parse(data, max_size=len(data))
    _raises_exactly(EnvelopeMalformed, data, max_size=len(data) - 1)
    # The limit is checked first: even a broken envelope over the limit is "too large".
    _raises_exactly(EnvelopeMalformed, b"\x00" * 2000, max_size=1999)


def test_bad_magic_is_malformed() -> None:
    data = _sealed()
    for magic in (b"INTL", b"intk", b"\x00INT", b"KTNI"):
        _raises_exactly(EnvelopeMalformed, _set(data, 0, magic))


@pytest.mark.parametrize("version", [0, 2, 255])
def test_unknown_version_is_unsupported(version: int) -> None:
    _raises_exactly(EnvelopeUnsupported, _set(_sealed(), 4, bytes([version])))


@pytest.mark.parametrize("suite", [0, 2, 255])
def test_unknown_suite_is_unsupported(suite: int) -> None:
    _raises_exactly(EnvelopeUnsupported, _set(_sealed(), 5, bytes([suite])))


@pytest.mark.parametrize("bit", range(2, 8))
def test_reserved_flag_bit_is_malformed(bit: int) -> None:
    for flags in (1 << bit, (1 << bit) | 1, (1 << bit) | 2):
        _raises_exactly(EnvelopeMalformed, _set(_sealed(), 6, bytes([flags])))


def test_server_sealed_flag_alone_is_accepted() -> None:
    env = fmt.parse(_set(_sealed(), 6, b"\x01"), max_size=LIMIT)
    assert env.server_sealed and not env.has_attachments


def test_attachments_flag_is_known() -> None:
    env = fmt.parse(_set(_sealed(), 6, b"\x02"), max_size=LIMIT)
    assert env.has_attachments and not env.server_sealed


@pytest.mark.parametrize("schema", [0, 3, 255])
def test_unknown_schema_is_unsupported(schema: int) -> None:
    _raises_exactly(EnvelopeUnsupported, _set(_sealed(), 7, bytes([schema])))


@pytest.mark.parametrize("count", [0, 9, 255])
def test_recipient_count_out_of_range_is_malformed(count: int) -> None:
    # Pad the envelope so that n = 9 would fit; the count itself must be refused.
    data = _sealed() + b"\x00" * (9 * 145)
    _raises_exactly(EnvelopeMalformed, _set(data, 24, bytes([count])))


def test_header_longer_than_the_data_is_malformed() -> None:
    data = _sealed()  # 710 bytes: a header of 8 entries (1185 bytes) does not fit
    for count in range(2, 9):
        _raises_exactly(EnvelopeMalformed, _set(data, 24, bytes([count])))


def test_repeated_key_id_is_malformed() -> None:
    data = _sealed(recipients=2)
    first = data[_entry_at(0) : _entry_at(0) + 32]
    _raises_exactly(EnvelopeMalformed, _set(data, _entry_at(1), first))
    third = _sealed(recipients=3)
    last = third[_entry_at(2) : _entry_at(2) + 32]
    _raises_exactly(EnvelopeMalformed, _set(third, _entry_at(0), last))


@pytest.mark.parametrize("first_byte", [0x00, 0x02, 0x03, 0x05, 0xFF])
@pytest.mark.parametrize("entry", [0, 2])
def test_enc_not_starting_0x04_is_malformed(first_byte: int, entry: int) -> None:
    data = _sealed(recipients=3)
    _raises_exactly(EnvelopeMalformed, _set(data, _entry_at(entry) + 32, bytes([first_byte])))


@pytest.mark.parametrize("extra", [1, 15, 16, 17, 511, 513])
def test_padding_not_a_multiple_of_512_is_malformed(extra: int) -> None:
    data = _sealed()
    _raises_exactly(EnvelopeMalformed, data + b" " * extra)
    _raises_exactly(EnvelopeMalformed, _sealed(text_len=600)[:-extra])


def test_a_whole_extra_block_passes_the_shape_check() -> None:
    # Shape only: the server cannot tell a padded block from a forged one without the key.
    env = fmt.parse(_sealed() + b"\x00" * 512, max_size=LIMIT)
    assert len(env.ciphertext) == 2 * 512 + 16


# --- Truncation and mutation of real envelopes -----------------------------------------


def test_every_truncation_is_refused_or_fails_to_open() -> None:
    keys = _keys(3)
    data = _sealed(recipients=3, text_len=600)
    header_len = 25 + 3 * 145
    assert len(data) == header_len + 12 + 2 * 512 + 16
    parsed = []
    for length in range(len(data)):
        if _check_parse(data[:length]) is not None:
            parsed.append(length)
    # Only the cut that drops exactly one padding block still has a valid shape, and the
    # cryptography then refuses it.
    assert parsed == [header_len + 12 + 512 + 16]
    for key in keys:
        with pytest.raises(crypto.EnvelopeOpenError):
            crypto.unseal(data[: parsed[0]], key)


@PROPERTY
@given(st.binary(max_size=3000), st.integers(min_value=0, max_value=4000))
def test_parse_of_arbitrary_bytes(data: bytes, max_size: int) -> None:
    _check_parse(data, max_size)


@st.composite
def _nearly_envelopes(draw: st.DrawFn) -> bytes:
    """Bytes that get past the early checks often, so the later ones are exercised too."""
    broken = draw(st.sampled_from(
        [None, None, None, "magic", "version", "suite", "flags", "schema", "enc", "twice"]
    ))
    fields = {"magic": b"INTK", "version": 1, "suite": 1, "flags": draw(st.integers(0, 3)),
              "schema": 1}
    if broken == "magic":
        fields["magic"] = draw(st.binary(min_size=4, max_size=4))
    elif broken in ("version", "suite", "flags", "schema"):
        fields[broken] = draw(st.integers(0, 255))
    count = draw(st.sampled_from([1, 1, 2, 3, 8, 0, 9]))
    prefix = struct.pack(">4sBBBB16sB", fields["magic"], fields["version"], fields["suite"],
                         fields["flags"], fields["schema"],
                         draw(st.binary(min_size=16, max_size=16)), count)
    key_ids = [draw(st.binary(min_size=32, max_size=32)) for _ in range(count)]
    if broken == "twice" and count > 1:
        key_ids[-1] = key_ids[0]
    first = [4] * count
    if broken == "enc" and count:
        first[draw(st.integers(0, count - 1))] = draw(st.integers(0, 255))
    entries = b"".join(
        kid + bytes([f]) + draw(st.binary(min_size=112, max_size=112))
        for kid, f in zip(key_ids, first, strict=True)
    )
    blocks = draw(st.integers(1, 3))
    slack = draw(st.sampled_from([0, 0, 0, -1, 1, -512, draw(st.integers(-600, 600))]))
    body_len = max(0, 12 + 16 + 512 * blocks + slack)
    body = draw(st.binary(min_size=body_len, max_size=body_len))
    return prefix + entries + body


@PROPERTY
@given(_nearly_envelopes())
def test_parse_of_nearly_valid_envelopes(data: bytes) -> None:
    _check_parse(data)


@PROPERTY
@given(
    st.sampled_from([(1, 10), (3, 600), (2, 1200)]),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4),
    st.one_of(st.none(), st.integers(0, 10_000)),
    st.binary(max_size=1100),
)
def test_parse_of_damaged_real_envelopes(
    shape: tuple[int, int], flips: list[tuple[int, int]], cut: int | None, tail: bytes
) -> None:
    data = bytearray(_sealed(recipients=shape[0], text_len=shape[1]))
    for position, mask in flips:
        data[position % len(data)] ^= mask
    damaged = bytes(data[:cut] if cut is not None else data) + tail
    _check_parse(damaged)


# --- Padding ---------------------------------------------------------------------------


def test_pad_known_lengths() -> None:
    assert fmt.pad(b"") == b" " * 512
    assert fmt.pad(b"{}") == b"{}" + b" " * 510
    assert fmt.pad(b"a" * 512) == b"a" * 512
    assert fmt.pad(b"a" * 513) == b"a" * 513 + b" " * 511


@PROPERTY
@given(st.binary(max_size=3000))
def test_pad_is_a_positive_multiple_of_512_of_trailing_spaces(data: bytes) -> None:
    padded = fmt.pad(data)
    assert len(padded) > 0
    assert len(padded) % 512 == 0
    assert len(padded) - len(data) < 512 or (data == b"" and len(padded) == 512)
    assert padded.startswith(data)
    assert set(padded[len(data):]) <= {0x20}
