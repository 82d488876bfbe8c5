"""The catalogues: complete, compilable, placeholders intact, review state declared."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from intake import catalogues
from intake.config import AVAILABLE_LANGUAGES

ROOT = Path(__file__).resolve().parents[1] / "translations"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")
TRANSLATED = [lang for lang in AVAILABLE_LANGUAGES if lang != "en"]
# A partial catalogue may lack translations; one marked complete may not.
COMPLETE = [lang for lang in TRANSLATED if catalogues.read(lang).complete]


def _catalogue(lang: str):  # type: ignore[no-untyped-def]
    with (ROOT / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=lang)


def _template_ids() -> set[str]:
    with (ROOT / "messages.pot").open("rb") as handle:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}


@pytest.mark.parametrize("lang", COMPLETE)
def test_catalogue_marked_complete_is_complete_and_not_fuzzy(lang: str) -> None:
    catalogue = _catalogue(lang)
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in catalogue if m.id}
    assert ids == _template_ids(), "run pybabel update: the catalogue and the template differ"
    for message in catalogue:
        if not message.id:
            continue
        assert not message.fuzzy, f"{lang}: fuzzy {message.id!r}"
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(forms), f"{lang}: untranslated {message.id!r}"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_placeholders_are_kept(lang: str) -> None:
    for message in _catalogue(lang):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        expected = set(PLACEHOLDER.findall(ids[-1]))
        for form in forms:
            if form:  # an untranslated form (allowed in a partial catalogue) has none
                assert set(PLACEHOLDER.findall(form)) == expected, f"{lang}: {message.id!r}"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_catalogue_compiles_and_declares_its_review_state(lang: str, tmp_path: Path) -> None:
    catalogue = _catalogue(lang)
    with (tmp_path / "messages.mo").open("wb") as handle:
        write_mo(handle, catalogue)
    header = (ROOT / lang / "LC_MESSAGES" / "messages.po").read_text(encoding="utf-8")
    assert re.search(r'"X-Review-Status: (machine-drafted, not reviewed|reviewed by) ', header)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    reviewed = "X-Review-Status: reviewed by" in header
    row = next(line for line in readme.splitlines() if re.match(rf"\| \w[^|]*\({lang}\)", line))
    assert ("machine-drafted" in row) != reviewed, "README's language table disagrees with the catalogue"


def test_i18n_check_passes_on_the_shipped_catalogues() -> None:
    from intake import catalogues

    assert catalogues.check() == []


def test_i18n_check_finds_what_ci_must_refuse(tmp_path: Path) -> None:
    import shutil

    from intake import catalogues

    root = tmp_path / "translations"
    shutil.copytree(ROOT, root)
    po = root / "fr" / "LC_MESSAGES" / "messages.po"
    text = po.read_text(encoding="utf-8")
    # One untranslated message, one changed placeholder, one fuzzy flag.
    first = text.index('msgid "Locking your report')
    text = text[:first] + "#, fuzzy\n" + text[first:]
    in_translation = text.index("msgstr", text.index("%(org)s"))
    at = text.index("%(org)s", in_translation)
    text = text[:at] + "%(organisation)s" + text[at + len("%(org)s"):]
    text = text.replace('msgid "Received"\nmsgstr "Reçu"', 'msgid "Received"\nmsgstr ""')
    po.write_text(text, encoding="utf-8")
    problems = "\n".join(catalogues.check(root))
    assert "fuzzy" in problems and "placeholders differ" in problems
    assert "untranslated 'Received'" in problems
    catalogues.add("pt", root)
    assert "pt" in catalogues.languages(root)
    assert catalogues.read("pt", root).review == catalogues.UNREVIEWED
    assert not catalogues.read("pt", root).complete
