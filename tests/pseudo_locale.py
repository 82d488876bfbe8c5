"""A pseudo-locale for tests: every catalogue string, transformed so that English stands out.

`write_catalogue` makes a catalogue from messages.pot in which each message reads, for
example, "⟦Şḗƞḓ ḿẏ řḗƥǿřŧ⟧" for "Send my report": every ASCII letter becomes an accented one,
and brackets mark where each message starts and ends (so a message cut short or glued to
another shows too). Placeholders (`%(org)s`, `%(num)d`, `{…}`) are kept as they are, so
the app fills them in as it would in any language.

A page served in this locale therefore has no ASCII letter in it, except in what the app
fills into placeholders and in text that is not ours to translate. Any other ASCII letter
is English that did not go through the catalogue.

The code must be one Babel knows, so that the app can format dates and plurals in it, and
one the sealed-receipt format accepts (ASCII letters only, at most 8: SECURITY.md). No
pseudo-locale code is both: Babel knows neither `en-XA` nor `qps-ploc`, and `en_001` has
a region. So the tests borrow `tok`, Toki Pona's code: a constructed language with
English's plural rule (one, other) for which no instance will have a catalogue. No instance
can enable it: `languages` in config.toml accepts only languages with a catalogue in
translations/, and this catalogue lives in a temporary folder handed to a test's own
Config (`extra_translations`).
"""

from __future__ import annotations

import re
import string
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from intake import catalogues

PSEUDO = "tok"
OPEN, CLOSE = "⟦", "⟧"
_LETTERS = str.maketrans(
    string.ascii_lowercase + string.ascii_uppercase,
    "ȧƀƈḓḗƒɠħīĵķŀḿƞǿƥɋřşŧŭṽẇẋẏẑ" "ȦƁƇḒḖƑƓĦĪĴĶĿḾȠǾƤɊŘŞŦŬṼẆẊẎẐ",
)
# What must reach the app unchanged: gettext placeholders, a literal %, format fields.
_KEEP = re.compile(r"%\(\w+\)[sd]|%%|\{[^{}]*\}")
ASCII_LETTER = re.compile(r"[A-Za-z]")


def pseudo(text: str) -> str:
    """`text` with every letter outside a placeholder accented, between brackets."""
    out, at = [], 0
    for keep in _KEEP.finditer(text):
        out += [text[at:keep.start()].translate(_LETTERS), keep.group()]
        at = keep.end()
    out.append(text[at:].translate(_LETTERS))
    return OPEN + "".join(out) + CLOSE


def write_catalogue(root: Path, template: Path = catalogues.TEMPLATE) -> Path:
    """Compile the pseudo-locale's catalogue into `root`; returns its .mo file."""
    with template.open("rb") as handle:
        source = read_po(handle)
    catalog = Catalog(locale=PSEUDO)
    for message in source:
        if not message.id:
            continue
        if isinstance(message.id, tuple | list):
            singular, plural = message.id
            forms = tuple(pseudo(singular if n == 0 else plural)
                          for n in range(catalog.num_plurals))
            catalog.add(message.id, forms, context=message.context)
        else:
            catalog.add(message.id, pseudo(message.id), context=message.context)
    folder = root / PSEUDO / "LC_MESSAGES"
    folder.mkdir(parents=True, exist_ok=True)
    mo = folder / "messages.mo"
    with mo.open("wb") as handle:
        write_mo(handle, catalog)
    return mo
