"""Receipt codes: 16 digits with a Damm check digit, stored only as a peppered argon2id hash.

Digits only, so a code can be typed on any keypad and read aloud in any language; the check
digit catches every single mistyped digit and every swap of neighbours on the device, before
any request. See SECURITY.md, Formats 4, and "Guessing a receipt code" there.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from argon2.low_level import Type, hash_secret_raw

CODE_DIGITS = 16
RANDOM_DIGITS = CODE_DIGITS - 1
SEPARATORS = frozenset(" \t-.\u00a0\u202f")

# Damm's quasigroup of order 10 (H. M. Damm, 2004): catches all single-digit errors and all
# adjacent transpositions.
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


class ReceiptCodeInvalid(ValueError):
    """The text is not a well-formed receipt code (wrong characters, length or check digit)."""


@dataclass(frozen=True)
class HashParams:
    """argon2id cost. Production must be no weaker than m = 64 MiB (RFC 9106 option 2)."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 1


def damm(digits: str) -> int:
    interim = 0
    for ch in digits:
        interim = _DAMM[interim][ord(ch) - 48]
    return interim


def new_code(rng: Callable[[int], bytes] = os.urandom) -> str:
    """A fresh code: 15 uniformly random digits and the check digit."""
    digits: list[str] = []
    while len(digits) < RANDOM_DIGITS:
        for byte in rng(RANDOM_DIGITS):
            # Reject 250..255 so that each digit is exactly uniform.
            if byte < 250 and len(digits) < RANDOM_DIGITS:
                digits.append(chr(48 + byte % 10))
    body = "".join(digits)
    return body + str(damm(body))


def normalise(text: str) -> str:
    """Return the 16 ASCII digits of a typed code, or raise ReceiptCodeInvalid.

    Accepts any script's decimal digits (Arabic-Indic, Devanagari, fullwidth...) and
    ignores spaces, hyphens and dots, because people copy codes the way they wrote them.
    """
    if not isinstance(text, str) or len(text) > 64:
        raise ReceiptCodeInvalid("not a receipt code")
    out = []
    for ch in text:
        if ch in SEPARATORS:
            continue
        if unicodedata.category(ch) != "Nd":
            raise ReceiptCodeInvalid("a receipt code has digits only")
        out.append(str(unicodedata.digit(ch)))
    code = "".join(out)
    if len(code) != CODE_DIGITS:
        raise ReceiptCodeInvalid("a receipt code has 16 digits")
    if damm(code) != 0:
        raise ReceiptCodeInvalid("the check digit does not match: a digit is mistyped")
    return code


def display(code: str) -> str:
    """Four groups of four digits, as shown to people."""
    return " ".join(code[i : i + 4] for i in range(0, CODE_DIGITS, 4))


def lookup_hash(code: str, *, pepper: bytes, params: HashParams) -> bytes:
    """The stored, indexed form of a normalised code: argon2id with the instance pepper.

    The pepper is the salt on purpose: one fixed salt per instance makes the hash a lookup
    key (a status check costs one hash whatever the number of reports), and because the
    pepper lives outside the database, a copied database alone cannot be brute-forced.
    """
    return hash_secret_raw(
        secret=code.encode("ascii"),
        salt=pepper,
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=32,
        type=Type.ID,
    )
