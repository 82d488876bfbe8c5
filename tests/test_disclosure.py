"""/.well-known/security.txt (RFC 9116) from `[security]`, its checks, and doctor's warning."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from intake import create_app, upkeep
from intake.config import ConfigError, SecurityContact, load
from intake.instance import Created

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _with_security(created: Created, table: str) -> Path:
    path = created.config.instance_dir / "config.toml"
    path.write_text(path.read_text(encoding="utf-8") + "\n[security]\n" + table,
                    encoding="utf-8")
    return created.config.instance_dir


def test_the_contact_is_published_as_rfc_9116_asks(instance: Created) -> None:
    folder = _with_security(instance, 'contact = ["mailto:security@example.org", '
                                      '"https://example.org/report"]\nexpires = 2027-06-30\n'
                                      'policy = "https://example.org/disclosure"\n')
    answer = create_app(load(folder, environ={})).test_client().get(
        "/.well-known/security.txt")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.get_data(as_text=True).splitlines() == [
        "Contact: mailto:security@example.org",
        "Contact: https://example.org/report",
        "Expires: 2027-06-30T23:59:59Z",
        "Policy: https://example.org/disclosure",
        "Preferred-Languages: en, fr, ar",
    ]


def test_without_a_contact_the_address_is_not_found(client: FlaskClient) -> None:
    answer = client.get("/.well-known/security.txt")
    assert answer.status_code == 404


@pytest.mark.parametrize("table, message", [
    ('contact = "javascript:alert(1)"\nexpires = 2027-06-30\n', "not a mailto:"),
    ('contact = "mailto:a@example.org\\nContact: mailto:b@evil.example"\n'
     'expires = 2027-06-30\n', "not a mailto:"),
    ('contact = "mailto:a b@example.org"\nexpires = 2027-06-30\n', "not a mailto:"),
    ('contact = []\nexpires = 2027-06-30\n', "at least one address"),
    ('contact = "mailto:a@example.org"\nexpires = "2027-06-30"\n', "expires is a date"),
    ('contact = "mailto:a@example.org"\n', "expires"),
    ('contact = "mailto:a@example.org"\nexpires = 2027-06-30\n'
     'policy = "http://example.org"\n', "not a mailto:"),
    ('contact = "mailto:a@example.org"\nexpires = 2027-06-30\n'
     'policy = "mailto:a@example.org"\n', "policy is an https"),
])
def test_a_wrong_security_table_is_one_clear_sentence(instance: Created, table: str,
                                                      message: str) -> None:
    folder = _with_security(instance, table)
    with pytest.raises(ConfigError, match=message):
        load(folder, environ={})


@pytest.mark.parametrize("expires, kind, words", [
    (date(2027, 6, 30), "ok", "published until 2027-06-30"),
    (date(2026, 12, 20), "problem", "expires in 22 days"),
    (date(2026, 11, 28), "problem", "expires in 0 days"),
    (date(2026, 11, 27), "problem", "expired on 2026-11-27"),
])
def test_doctor_warns_before_the_contact_expires(expires: date, kind: str, words: str) -> None:
    (finding,) = upkeep.check_security_contact(
        SecurityContact(contacts=("mailto:a@example.org",), expires=expires), now=NOW)
    assert finding.problem == (kind == "problem")
    assert words in finding.text
    if finding.problem:
        assert "set [security] expires" in finding.text  # the sentence says the fix


def test_doctor_says_how_to_publish_a_missing_contact() -> None:
    (finding,) = upkeep.check_security_contact(None, now=NOW)
    assert not finding.problem
    assert "add [security] contact and expires" in finding.text
