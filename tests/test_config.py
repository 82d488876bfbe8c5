"""Loading an instance's configuration: typed values, clear sentences for every mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from intake.config import ConfigError, LocalText, load
from intake.instance import Created


def _edit(created: Created, old: str, new: str) -> Path:
    path = created.config.instance_dir / "config.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    return created.config.instance_dir


def test_local_text_falls_back_to_the_default_language() -> None:
    text = LocalText.parse({"en": "Hello", "fr": "Bonjour"})
    assert text.get("fr", "en") == "Bonjour"
    assert text.get("ar", "en") == "Hello"
    assert LocalText.parse("Same for all").get("ar", "en") == "Same for all"
    assert LocalText.parse("").get("fr", "en") == ""
    with pytest.raises(ValueError):
        LocalText.parse(["not", "text"])


def test_information_page_shows_the_contact_text_in_the_page_language(client: FlaskClient) -> None:
    assert "centre de santé le plus proche" in client.get("/fr/about").get_data(as_text=True)
    assert "أقرب مركز صحي" in client.get("/ar/about").get_data(as_text=True)


def test_referrals_are_listed_in_the_page_language(instance: Created) -> None:
    folder = _edit(instance, "# [[referrals]]", '[[referrals]]\narea = "Bria"\nname = "Clinique"\ncontact = "+236 000"\nservices = { en = "medical care", fr = "soins" }\n# [[x]]')
    from intake import create_app

    client = create_app(load(folder, environ={})).test_client()
    page = client.get("/fr/about").get_data(as_text=True)
    assert "Clinique" in page and "soins" in page and "medical care" not in page


def test_unknown_time_zone_is_one_clear_sentence(instance: Created) -> None:
    folder = _edit(instance, 'timezone = "UTC"', 'timezone = "Mars/Olympus"')
    with pytest.raises(ConfigError, match="not an IANA time zone"):
        load(folder, environ={})


def test_unknown_language_is_refused(instance: Created) -> None:
    folder = _edit(instance, 'languages = ["en", "fr", "ar"]', 'languages = ["en", "xx"]')
    with pytest.raises(ConfigError, match="languages must be some of"):
        load(folder, environ={})


def test_missing_secret_file_says_what_to_do(instance: Created) -> None:
    (instance.config.instance_dir / "pepper.key").unlink()
    with pytest.raises(ConfigError, match="restore it from your backup"):
        load(instance.config.instance_dir, environ={})


def test_database_key_from_the_environment(instance: Created) -> None:
    folder = instance.config.instance_dir
    key = (folder / "db.key").read_text().strip()
    (folder / "db.key").unlink()
    assert load(folder, environ={"INTAKE_DB_KEY": key}).db_key == bytes.fromhex(key)
    with pytest.raises(ConfigError, match="64 hexadecimal digits"):
        load(folder, environ={"INTAKE_DB_KEY": "abc"})


def test_secrets_stay_out_of_the_repr(instance: Created) -> None:
    shown = repr(instance.config)
    for secret in (instance.config.db_key, instance.config.pepper, instance.config.session_key):
        assert secret.hex() not in shown and repr(secret) not in shown


def test_throttle_capacity_and_proxy_settings_are_read(instance: Created) -> None:
    _edit(instance, "secure_cookies = false", 'secure_cookies = false\ntrusted_proxy = "10.0.0.2"')
    folder = _edit(instance, "[service_levels]", '[throttle]\nper_client = false\nstatus_free_failures = 3\nstatus_max_wait_seconds = 60\n\n[capacity]\nhash_slots = 3\nwait_seconds = 0.5\n\n[service_levels]')
    config = load(folder)
    assert config.trusted_proxy == "10.0.0.2"
    assert (config.throttle.per_client, config.throttle.status_free_failures) == (False, 3)
    assert config.throttle.status_max_wait_seconds == 60
    assert config.throttle.status_first_wait_seconds == 30  # the default
    assert (config.capacity.slots, config.capacity.wait_seconds) == (3, 0.5)
    assert load(_edit(instance, '"10.0.0.2"', '"none"')).trusted_proxy == "none"


def test_by_default_a_proxy_on_this_machine_is_trusted(instance: Created) -> None:
    assert load(instance.config.instance_dir).trusted_proxy == "loopback"
    _edit(instance, "secure_cookies = false", 'secure_cookies = false\ntrusted_proxy = "caddy"')
    with pytest.raises(ConfigError, match="trusted_proxy"):
        load(instance.config.instance_dir)


@pytest.mark.parametrize("table", [
    "[throttle]\nstatus_free_failures = 0", "[throttle]\nstatus_guesses = 3",
    "[throttle]\nstatus_first_wait_seconds = 900", "[capacity]\nhash_slots = -1",
    "[capacity]\nwait_seconds = 600", "[capacity]\nslots = 2", "[throttle]\nper_client = 2",
])
def test_wrong_throttle_or_capacity_settings_are_one_clear_sentence(instance: Created, table: str) -> None:
    folder = _edit(instance, "[service_levels]", f"{table}\n\n[service_levels]")
    with pytest.raises(ConfigError, match=r"(throttle|capacity)"):
        load(folder)
