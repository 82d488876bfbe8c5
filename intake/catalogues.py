"""Translation catalogues: check them, bring them up to date, add a language.

Each catalogue's header says, in two lines that pybabel would drop and this module keeps:

    X-Review-Status: machine-drafted, not reviewed by a native speaker
                     (or: reviewed by NAME, DATE)
    X-Completeness: complete       (or: partial)

`check` is what CI runs: a catalogue marked complete must have every message translated
and none fuzzy; every catalogue must compile (`msgfmt --check` when gettext is installed,
Babel's compiler always) and keep the source's placeholders.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "translations"
TEMPLATE = TRANSLATIONS / "messages.pot"
HEADERS = ("X-Review-Status", "X-Completeness")
UNREVIEWED = "machine-drafted, not reviewed by a native speaker"
_PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


@dataclass(frozen=True)
class Catalogue:
    language: str
    path: Path
    review: str
    complete: bool
    total: int
    translated: int
    fuzzy: int

    @property
    def reviewed(self) -> bool:
        return self.review.startswith("reviewed by ")


def languages(root: Path = TRANSLATIONS) -> tuple[str, ...]:
    """English (the source) and every language with a catalogue."""
    found = sorted(p.parent.parent.name for p in root.glob("*/LC_MESSAGES/messages.po"))
    return ("en", *found)


def _headers(text: str) -> dict[str, str]:
    return {name: m.group(1) for name in HEADERS
            if (m := re.search(rf'^"{name}: (.*?)\\n"$', text, re.M))}


def read(language: str, root: Path = TRANSLATIONS) -> Catalogue:
    path = root / language / "LC_MESSAGES" / "messages.po"
    text = path.read_text(encoding="utf-8")
    catalog = read_po(BytesIO(text.encode("utf-8")), locale=language)
    messages = [m for m in catalog if m.id]
    translated = sum(1 for m in messages if all(_forms(m)) and not m.fuzzy)
    headers = _headers(text)
    return Catalogue(
        language=language, path=path, review=headers.get("X-Review-Status", ""),
        complete=headers.get("X-Completeness") == "complete", total=len(messages),
        translated=translated, fuzzy=sum(1 for m in messages if m.fuzzy),
    )


def _forms(message: object) -> tuple[str, ...]:
    string = message.string  # type: ignore[attr-defined]
    return tuple(string) if isinstance(string, tuple | list) else (string,)


def check(root: Path = TRANSLATIONS) -> list[str]:
    """Every problem found, one sentence each; empty when all is well."""
    problems: list[str] = []
    template_ids = _ids(root / "messages.pot")
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "messages.pot"
        _extract(fresh)
        if _ids(fresh) != template_ids:
            problems.append("messages.pot is out of date with the code; run `intake i18n update`")
    msgfmt = shutil.which("msgfmt")
    for language in languages(root)[1:]:
        cat = read(language, root)
        if not cat.review:
            problems.append(f"{language}: the header has no X-Review-Status line")
        catalog = read_po(BytesIO(cat.path.read_bytes()), locale=language)
        ids = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
        if ids != template_ids:
            problems.append(f"{language}: out of date with messages.pot; run `intake i18n update`")
        for message in catalog:
            if not message.id:
                continue
            source = str(message.id[-1] if isinstance(message.id, tuple | list) else message.id)
            expected = set(_PLACEHOLDER.findall(source))
            for form in _forms(message):
                if form and set(_PLACEHOLDER.findall(form)) != expected:
                    problems.append(f"{language}: placeholders differ in {source!r}")
            if cat.complete and (message.fuzzy or not all(_forms(message))):
                state = "fuzzy" if message.fuzzy else "untranslated"
                problems.append(f"{language}: {state} {source!r} in a catalogue marked complete")
        try:
            write_mo(BytesIO(), catalog)
        except Exception as exc:
            problems.append(f"{language}: does not compile: {exc}")
        if msgfmt:
            result = subprocess.run(  # noqa: S603  (gettext's own tool on our own file)
                [msgfmt, "--check", "-o", "/dev/null", str(cat.path)],
                capture_output=True, text=True, check=False,
            )
            if result.returncode:
                problems.append(f"{language}: msgfmt --check: {result.stderr.strip()}")
    return problems


def _ids(path: Path) -> set[str]:
    with path.open("rb") as handle:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}


def _extract(output: Path) -> None:
    _pybabel("extract", "-F", str(ROOT / "babel.cfg"), "-k", "_l", "-k", "lazy_gettext",
             "--no-location", "--project=intake", "--copyright-holder=intake contributors",
             "-o", str(output), str(ROOT))  # babel.cfg's patterns are relative to ROOT


def _pybabel(*args: str) -> None:
    CommandLineInterface().run(["pybabel", "-q", *args])  # type: ignore[no-untyped-call]


def update(root: Path = TRANSLATIONS) -> None:
    """Extract every string into messages.pot, update each catalogue, keep our headers."""
    kept = {lang: _headers(read(lang, root).path.read_text(encoding="utf-8"))
            for lang in languages(root)[1:]}
    _extract(root / "messages.pot")
    _pybabel("update", "--previous", "-i", str(root / "messages.pot"), "-d", str(root))
    for lang, headers in kept.items():
        _restore_headers(root / lang / "LC_MESSAGES" / "messages.po", headers)


def add(language: str, root: Path = TRANSLATIONS) -> Path:
    """Start a catalogue for a new language, marked partial and unreviewed."""
    if (root / language).exists():
        raise FileExistsError(f"translations/{language} exists already")
    _pybabel("init", "-i", str(root / "messages.pot"), "-d", str(root), "-l", language)
    path = root / language / "LC_MESSAGES" / "messages.po"
    _restore_headers(path, {"X-Review-Status": UNREVIEWED, "X-Completeness": "partial"})
    return path


def compile_all(root: Path = TRANSLATIONS) -> None:
    _pybabel("compile", "-d", str(root))


def _restore_headers(path: Path, headers: dict[str, str]) -> None:
    """Put our header lines back into the header entry (pybabel drops unknown ones)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    for name, value in headers.items():
        line = f'"{name}: {value}\\n"'
        at = next((i for i, text in enumerate(lines) if text.startswith(f'"{name}: ')), None)
        if at is None:
            at = next(i for i, text in enumerate(lines) if text.startswith('"Generated-By: '))
            lines.insert(at, line)
        else:
            lines[at] = line
    path.write_text("\n".join(lines), encoding="utf-8")
