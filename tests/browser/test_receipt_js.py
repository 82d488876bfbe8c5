"""receipt.js in a real Chromium: Damm check digit, normalisation, formatting."""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest

from intake import receipts

from harness import static_page

pytestmark = pytest.mark.browser

# The standard Damm table, written out again here so that a mistyped cell in receipt.js
# cannot hide behind a test that reads the same table.
DAMM = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
]


def _damm(digits: str) -> int:
    interim = 0
    for ch in digits:
        interim = DAMM[interim][int(ch)]
    return interim


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:
    with static_page(browser) as page:
        page.evaluate("async () => { window.receipt = await import('/static/js/receipt.js'); }")
        yield page


def call(page: Any, name: str, *args: Any) -> Any:
    return page.evaluate("([name, args]) => window.receipt[name](...args)", [name, list(args)])


def test_damm_known_values(page: Any) -> None:
    assert call(page, "damm", "572") == 4  # the worked example of Damm's algorithm
    assert call(page, "damm", "5724") == 0
    assert call(page, "damm", "") == 0


def test_damm_table_matches_every_cell(page: Any) -> None:
    # Row 0 is a permutation, so the 100 two-digit strings reach every cell of the table.
    pairs = [f"{a}{b}" for a in range(10) for b in range(10)]
    got = page.evaluate("(xs) => xs.map((x) => window.receipt.damm(x))", pairs)
    assert got == [_damm(p) for p in pairs]


def test_new_codes_are_valid_distinct_and_uniform(page: Any) -> None:
    codes = page.evaluate("() => Array.from({length: 2000}, () => window.receipt.newCode())")
    assert all(len(c) == 16 and c.isascii() and c.isdigit() and _damm(c) == 0 for c in codes)
    assert len(set(codes)) == len(codes)
    # A loose chi-square on the 30,000 random digits (9 degrees of freedom; 40 is far past
    # p = 0.00001), to catch a stuck or badly skewed generator, not subtle bias.
    counts = [0] * 10
    for c in codes:
        for ch in c[:15]:
            counts[int(ch)] += 1
    expected = len(codes) * 15 / 10
    assert sum((n - expected) ** 2 / expected for n in counts) < 40


def test_normalise_scripts_and_separators(page: Any) -> None:
    code = "4821093755621184"
    assert _damm(code) == 0
    arabic = "٤٨٢١ ٠٩٣٧ ٥٥٦٢ ١١٨٤"
    persian = "۴۸۲۱-۰۹۳۷-۵۵۶۲-۱۱۸۴"
    devanagari = "४८२१.०९३७.५५६२.११८४"
    bengali = "৪৮২১০৯৩৭৫৫৬২১১৮৪"
    fullwidth = "４８２１\u00a0０９３７\u202f５５６２\t１１８４"
    mixed = "48٢١ 0937 ५५62 １１8٤"
    for text in (code, "4821 0937 5562 1184", arabic, persian, devanagari, bengali, fullwidth, mixed):
        assert call(page, "normalise", text) == code, text
        assert call(page, "isValid", text) is True, text
        assert call(page, "format", text) == "4821 0937 5562 1184", text


def test_exactly_python_decimal_digits_are_accepted(page: Any) -> None:
    # Python's unicodedata is the server's reference: over every code point, the browser
    # must accept the same characters as digits, with the same values, and nothing else.
    expected = [
        [cp, unicodedata.digit(chr(cp))]
        for cp in range(sys.maxunicode + 1)
        if unicodedata.category(chr(cp)) == "Nd"
    ]
    assert len(expected) > 600
    got = page.evaluate("""() => {
      const accepted = [];
      for (let cp = 0; cp <= 0x10ffff; cp++) {
        const code = window.receipt.normalise(String.fromCodePoint(cp).repeat(16));
        if (code !== null) accepted.push([cp, Number(code[0])]);
      }
      return accepted;
    }""")
    assert got == expected


@pytest.mark.parametrize(
    "text",
    [
        "4821 0937 5562 118A",  # a letter
        "4821 0937 5562 118",  # 15 digits
        "4821 0937 5562 11840",  # 17 digits
        "4821_0937_5562_1184",  # not a separator
        "4821/0937/5562/1184",
        "+4821093755621184",
        "4821093755621184\u00b2",  # superscript two is a number, not a decimal digit
        "4821093755621184\u2460",  # circled one, likewise
        "",
        "   ",
        "4" * 100,
    ],
)
def test_normalise_rejects(page: Any, text: str) -> None:
    assert call(page, "normalise", text) is None
    assert call(page, "isValid", text) is False
    assert call(page, "format", text) is None


def test_normalise_rejects_non_strings(page: Any) -> None:
    got = page.evaluate(
        "() => [null, undefined, 4821093755621184, ['4821093755621184']]"
        ".map((x) => [window.receipt.normalise(x), window.receipt.isValid(x)])"
    )
    assert got == [[None, False]] * 4


def test_single_digit_errors_and_adjacent_swaps_are_caught(page: Any) -> None:
    # Damm's guarantee, checked in the browser on real codes: every one of the 16 * 9
    # single-digit changes and every swap of two different neighbours fails the check.
    escaped = page.evaluate(
        """() => {
      const r = window.receipt, escaped = [];
      for (let n = 0; n < 200; n++) {
        const code = r.newCode();
        if (!r.isValid(code)) escaped.push('invalid ' + code);
        for (let i = 0; i < 16; i++) {
          for (let d = 0; d < 10; d++) {
            const typo = code.slice(0, i) + d + code.slice(i + 1);
            if (typo !== code && r.isValid(typo)) escaped.push(typo);
          }
          const swap = code.slice(0, i) + code[i + 1] + code[i] + code.slice(i + 2);
          if (i < 15 && swap !== code && r.isValid(swap)) escaped.push(swap);
        }
      }
      return escaped;
    }"""
    )
    assert escaped == []


def test_format(page: Any) -> None:
    assert call(page, "format", "1234567890123456") == "1234 5678 9012 3456"
    assert call(page, "format", "1234-5678-9012-3456") == "1234 5678 9012 3456"


def test_receipt_codes_agree_with_python(page: Any) -> None:
    # The device checks a code before sending it; the server must agree on every verdict.
    code = receipts.new_code()
    spaced = receipts.display(code)
    inputs = [
        code, spaced, spaced.replace(" ", "-"), spaced.replace(" ", "\u00a0"),
        spaced.replace(" ", "\u202f"), spaced.replace(" ", "\u2009"), spaced.replace(" ", "\u2013"),
        spaced.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")), code[:-1] + "x",
        code[::-1], code + "0", f" {code}. ",
    ]
    inputs += [code[:3] + str((int(code[3]) + 1) % 10) + code[4:], code.replace("", "\t")[1:-1]]
    inputs.append(" ".join(chr(0x1D7CE + int(d)) for d in code) + " " * 33)  # 64 code points
    js = page.evaluate(
        "(xs) => xs.map((x) => window.receipt.isValid(x) ? window.receipt.normalise(x) : null)",
        inputs,
    )
    for text, got in zip(inputs, js, strict=True):
        try:
            expected: str | None = receipts.normalise(text)
        except receipts.ReceiptCodeInvalid:
            expected = None
        assert got == expected, repr(text)
