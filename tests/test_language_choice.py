"""Which language the bare address opens in: the one picked, if still enabled, else the
browser's; the cookie that remembers it holds nothing but a language code."""

from __future__ import annotations

from flask.testing import FlaskClient

from intake import security


def test_a_picked_language_is_remembered_only_when_it_changes_something(client: FlaskClient) -> None:
    headers = {"Accept-Language": "fr"}
    client.get("/ar/about?picked=1", headers=headers)
    assert client.get_cookie(security.LANGUAGE_COOKIE).value == "ar"
    assert client.get("/", headers=headers).location == "/ar/"
    # Visiting a page by its address is not picking.
    client.get("/en/", headers=headers)
    assert client.get("/", headers=headers).location == "/ar/"
    # The language the browser asks for anyway needs no cookie.
    client.get("/fr/status?picked=1", headers=headers)
    assert client.get_cookie(security.LANGUAGE_COOKIE) is None
    assert client.get("/", headers=headers).location == "/fr/"


def test_a_remembered_language_that_is_not_enabled_is_ignored(client: FlaskClient) -> None:
    client.set_cookie(security.LANGUAGE_COOKIE, "sw")  # enabled on another instance, not here
    assert client.get("/", headers={"Accept-Language": "ar"}).location == "/ar/"
    client.set_cookie(security.LANGUAGE_COOKIE, "<script>")
    assert client.get("/", headers={"Accept-Language": "ar"}).location == "/ar/"


def test_the_neutral_page_forgets_it(client: FlaskClient) -> None:
    assert "Set-Cookie" not in client.get("/n").headers  # nothing to forget, nothing sent
    client.get("/ar/?picked=1", headers={"Accept-Language": "en"})
    client.get("/n")
    assert client.get_cookie(security.LANGUAGE_COOKIE) is None
