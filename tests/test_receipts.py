"""Receipt codes (SECURITY.md, Formats 4): Damm check digit, normalising typed input, and
the peppered argon2id lookup hash pinned by tests/vectors/receipt-v1.json."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from argon2.low_level import Type, hash_secret_raw
from hypothesis import given, settings
from hypothesis import strategies as st

from intake import receipts
from intake.receipts import HashParams, ReceiptCodeInvalid

from support import CHEAP_HASH

VECTORS = Path(__file__).parent / "vectors"
PROPERTY = settings(max_examples=200, deadline=None, database=None)
DIGIT_SETS = {
    "arabic-indic": 0x0660,
    "extended-arabic-indic": 0x06F0,
    "fullwidth": 0xFF10,
    "devanagari": 0x0966,
}


def _seeded(seed: int) -> random.Random:
    # Seeded and non-cryptographic on purpose: these tests need repeatable codes.
    return random.Random(seed)  # noqa: S311


def _codes(count: int, seed: int) -> list[str]:
    rng = _seeded(seed)
    return [receipts.new_code(rng.randbytes) for _ in range(count)]


def _in_script(code: str, zero: int) -> str:
    return "".join(chr(zero + int(d)) for d in code)


# --- Damm ------------------------------------------------------------------------------


def test_damm_known_values() -> None:
    # The worked example of the Damm algorithm: the check digit of 572 is 4.
    assert receipts.damm("572") == 4
    assert receipts.damm("5724") == 0
    assert receipts.damm("") == 0
    assert receipts.damm("0") == 0
    assert receipts.damm("5727") != 0


def test_damm_table_is_a_quasigroup_with_zero_diagonal() -> None:
    table = [[receipts.damm(str(a) + str(b)) for b in range(10)] for a in range(10)]
    for a in range(10):
        assert sorted(table[a]) == list(range(10))
        assert sorted(row[a] for row in table) == list(range(10))
        assert receipts.damm(str(a) + str(receipts.damm(str(a)))) == 0


# --- New codes -------------------------------------------------------------------------


def test_new_code_shape() -> None:
    for code in [*_codes(50, seed=1), receipts.new_code()]:
        assert len(code) == 16
        assert code.isascii()
        assert code.isdigit()
        assert receipts.damm(code) == 0
        assert code[15] == str(receipts.damm(code[:15]))


def test_new_code_is_reproducible_with_a_seeded_rng() -> None:
    assert _codes(5, seed=42) == _codes(5, seed=42)
    assert _codes(5, seed=42) != _codes(5, seed=43)


def test_new_code_skips_bytes_250_and_above() -> None:
    calls = iter([bytes(range(250, 256)) + bytes(range(241, 250)), bytes(range(15))])
    code = receipts.new_code(lambda n: next(calls))
    # 250..255 are dropped, 241..249 give 1..9, then 0..5 from the second draw.
    assert code[:15] == "123456789012345"
    assert receipts.damm(code) == 0


def test_every_digit_appears_in_every_position() -> None:
    # A fixed seed, so this is a regression check that cannot flake, not a statistical test.
    codes = _codes(2000, seed=2024)
    for position in range(16):
        assert {code[position] for code in codes} == set("0123456789"), position
    assert len(set(codes)) == 2000


# --- Normalising typed codes -------------------------------------------------------------


def test_every_single_digit_substitution_is_rejected() -> None:
    for code in _codes(200, seed=7):
        assert receipts.normalise(code) == code
        for i in range(16):
            for d in "0123456789":
                if d != code[i]:
                    with pytest.raises(ReceiptCodeInvalid):
                        receipts.normalise(code[:i] + d + code[i + 1 :])


def test_every_adjacent_transposition_is_rejected() -> None:
    swapped = 0
    for code in _codes(200, seed=8):
        for i in range(15):
            if code[i] != code[i + 1]:
                swapped += 1
                with pytest.raises(ReceiptCodeInvalid):
                    receipts.normalise(code[:i] + code[i + 1] + code[i] + code[i + 2 :])
    assert swapped > 2500


@pytest.mark.parametrize("zero", DIGIT_SETS.values(), ids=DIGIT_SETS.keys())
def test_other_scripts_digits_are_accepted(zero: int) -> None:
    for code in _codes(20, seed=9):
        typed = _in_script(code, zero)
        assert receipts.normalise(typed) == code
        assert receipts.normalise(receipts.display(typed)) == code


def test_known_arabic_indic_code() -> None:
    assert receipts.normalise("٥٧٢٤ ۰۰۰۰ ٠٠٠٠ ٠٠٠٠") == "5724000000000000"


@pytest.mark.parametrize(
    "separators",
    [" ", "-", ".", "\u00a0", "\u202f", " - ", ". ", "  "],
    ids=["space", "hyphen", "dot", "nbsp", "narrow-nbsp", "space-hyphen", "dot-space", "2sp"],
)
def test_separators_are_ignored(separators: str) -> None:
    code = _codes(1, seed=10)[0]
    typed = separators.join(code[i : i + 4] for i in range(0, 16, 4))
    assert receipts.normalise(typed) == code
    assert receipts.normalise(separators + code + separators) == code


@pytest.mark.parametrize(
    "text",
    [
        "",
        "5724 0000 0000 000a",
        "5724 0000 0000 00O0",
        "57240000000000",
        "572400000000000",  # 15 digits
        "57240000000000000",  # 17 digits
        "5724000000000000" + "0" * 16,
        "5724/0000/0000/0000",
        "5724_0000_0000_0000",
        "5724,0000,0000,0000",
        "5724\n0000\n0000\n0000",
        "5724000000000000\u200b",
        "+5724000000000000",
        "²724000000000000",
        "5724 0000 0000 ０００",
    ],
)
def test_invalid_codes_are_rejected(text: str) -> None:
    with pytest.raises(ReceiptCodeInvalid):
        receipts.normalise(text)


def test_over_long_input_is_rejected_before_reading_it() -> None:
    code = "5724000000000000"
    assert receipts.normalise(code + " " * 48) == code  # 64 characters
    with pytest.raises(ReceiptCodeInvalid):
        receipts.normalise(code + " " * 49)
    with pytest.raises(ReceiptCodeInvalid):
        receipts.normalise(" " * 1_000_000)
    with pytest.raises(ReceiptCodeInvalid):
        receipts.normalise(None)  # type: ignore[arg-type]


def test_display_groups_in_fours() -> None:
    assert receipts.display("4821093755621180") == "4821 0937 5562 1180"
    for code in _codes(20, seed=11):
        assert receipts.display(code).replace(" ", "") == code
        assert receipts.normalise(receipts.display(code)) == code


@PROPERTY
@given(st.text(max_size=80))
def test_normalise_only_ever_raises_receipt_code_invalid(text: str) -> None:
    try:
        code = receipts.normalise(text)
    except ReceiptCodeInvalid:
        return
    assert len(code) == 16
    assert code.isascii()
    assert code.isdigit()
    assert receipts.damm(code) == 0


@PROPERTY
@given(
    st.integers(min_value=0),
    st.lists(st.sampled_from([" ", "-", ".", "\u00a0"]), min_size=17, max_size=17),
    st.sampled_from([0x30, *DIGIT_SETS.values()]),
)
def test_normalise_inverts_any_way_of_writing_a_code(
    seed: int, separators: list[str], zero: int
) -> None:
    code = receipts.new_code(_seeded(seed).randbytes)
    digits = _in_script(code, zero)
    typed = "".join(s + d for s, d in zip(separators, digits, strict=False)) + separators[-1]
    assert receipts.normalise(typed) == code


# --- The lookup hash ---------------------------------------------------------------------


def test_lookup_hash_is_argon2id_with_the_pepper_as_salt() -> None:
    pepper = bytes(range(32))
    code = "5724000000000000"
    expected = hash_secret_raw(
        secret=b"5724000000000000", salt=pepper, time_cost=CHEAP_HASH.time_cost,
        memory_cost=CHEAP_HASH.memory_kib, parallelism=CHEAP_HASH.parallelism,
        hash_len=32, type=Type.ID,
    )
    digest = receipts.lookup_hash(code, pepper=pepper, params=CHEAP_HASH)
    assert digest == expected
    assert len(digest) == 32
    other_pepper = receipts.lookup_hash(code, pepper=bytes(32), params=CHEAP_HASH)
    other_code = receipts.lookup_hash("5724000000000001", pepper=pepper, params=CHEAP_HASH)
    other_cost = receipts.lookup_hash(code, pepper=pepper, params=HashParams(2, 64, 1))
    assert len({digest, other_pepper, other_code, other_cost}) == 4


def test_production_defaults() -> None:
    assert HashParams() == HashParams(time_cost=3, memory_kib=65536, parallelism=1)


def test_lookup_hash_known_answers() -> None:
    doc = json.loads((VECTORS / "receipt-v1.json").read_text(encoding="utf-8"))
    assert [v["params"] for v in doc["vectors"]] == [
        {"time_cost": 1, "memory_kib": 64, "parallelism": 1},
        {"time_cost": 3, "memory_kib": 65536, "parallelism": 1},  # production
    ]
    for vector in doc["vectors"]:
        code = receipts.normalise(vector["display"])
        assert code == vector["code"]
        digest = receipts.lookup_hash(
            code, pepper=bytes.fromhex(vector["pepper"]), params=HashParams(**vector["params"])
        )
        assert digest.hex() == vector["hash"]
