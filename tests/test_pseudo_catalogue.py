"""The tests' pseudo-locale: what it makes, and that only a test's own Config can serve it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from babel.support import Translations

from intake import catalogues, create_app
from intake import config as config_mod
from intake import instance as instance_mod

from pseudo_locale import ASCII_LETTER, CLOSE, OPEN, PSEUDO, pseudo, write_catalogue

PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%%|\{[^{}]*\}")


def test_every_letter_changes_and_placeholders_stay() -> None:
    text = "Within %(num)d hours, %(org)s reads it: {count} of 100%% {}"
    out = pseudo(text)
    assert out.startswith(OPEN) and out.endswith(CLOSE)
    assert PLACEHOLDER.findall(out) == PLACEHOLDER.findall(text)
    assert not ASCII_LETTER.search(PLACEHOLDER.sub("", out))
    assert "3" in out % {"num": 3, "org": "Org"}


def test_the_catalogue_covers_every_message(tmp_path: Path) -> None:
    write_catalogue(tmp_path)
    translations = Translations.load(str(tmp_path), [PSEUDO])
    with catalogues.TEMPLATE.open("rb") as handle:
        from babel.messages.pofile import read_po

        template = [m for m in read_po(handle) if m.id]
    assert template
    for message in template:
        if isinstance(message.id, tuple):
            forms = [translations.ngettext(*message.id, n) for n in (1, 2)]
            sources = list(message.id)
        else:
            forms, sources = [translations.gettext(message.id)], [message.id]
        for form, source in zip(forms, sources, strict=True):
            assert form == pseudo(source)
            assert not ASCII_LETTER.search(PLACEHOLDER.sub("", form)), form


def test_a_test_config_serves_it(instance: instance_mod.Created, tmp_path: Path) -> None:
    write_catalogue(tmp_path / "pseudo")
    cfg = dataclasses.replace(
        instance.config, languages=(*instance.config.languages, PSEUDO),
        extra_translations=(tmp_path / "pseudo",),
    )
    client = create_app(cfg).test_client()
    html = client.get(f"/{PSEUDO}/").get_data(as_text=True)
    assert f'lang="{PSEUDO}"' in html and pseudo("Send my report") in html
    # The shipped languages are still served from the shipped catalogues.
    assert "Envoyer mon signalement" in client.get("/fr/").get_data(as_text=True)


def test_config_toml_cannot_enable_it(instance: instance_mod.Created, tmp_path: Path) -> None:
    path = instance.config.instance_dir / config_mod.CONFIG_FILE
    text = path.read_text(encoding="utf-8")
    # extra_translations is not a config.toml key: written there, it is ignored...
    text = text.replace("timezone =", f'extra_translations = ["{tmp_path}"]\ntimezone =')
    path.write_text(text, encoding="utf-8")
    assert config_mod.load(instance.config.instance_dir, environ={}).extra_translations == ()
    # ...and a language without a shipped catalogue is refused.
    path.write_text(text.replace('languages = ["en"', f'languages = ["{PSEUDO}", "en"'),
                    encoding="utf-8")
    with pytest.raises(config_mod.ConfigError, match="languages must be some of"):
        config_mod.load(instance.config.instance_dir, environ={})
