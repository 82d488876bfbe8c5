"""The language picked with the language links is what the bare address opens in next time,
remembered in a cookie that holds the language code alone, and forgotten by quick exit
(intake/security.py says why a cookie, and what it holds)."""

from __future__ import annotations

import time
from typing import Any

from intake import security

from pages import DeviceReportPage, LanguagePicker
from support import translate


def _open_bare_address(page: Any, base: str) -> str:
    page.goto(f"{base}/")
    return str(page.url)[len(base):]


def _language_cookies(context: Any) -> list[dict[str, Any]]:
    return [c for c in context.cookies() if c["name"] == security.LANGUAGE_COOKIE]


def test_the_language_picked_is_remembered_and_quick_exit_forgets_it(
    shared_server: Any, browser: Any
) -> None:
    base = shared_server.url
    context = browser.new_context(service_workers="block", locale="en-US")
    try:
        page = context.new_page()
        assert _open_bare_address(page, base) == "/en/"
        assert _language_cookies(context) == []  # nothing is kept until a language is picked

        LanguagePicker(page).pick("fr")
        (cookie,) = _language_cookies(context)
        assert cookie["value"] == "fr" and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
        assert cookie["httpOnly"] is False  # quick exit's script must be able to delete it
        days = (cookie["expires"] - time.time()) / 86400
        assert security.LANGUAGE_COOKIE_DAYS - 1 < days <= security.LANGUAGE_COOKIE_DAYS
        assert _open_bare_address(page, base) == "/fr/"
        # Picking from another page keeps that page, and changes what is remembered.
        page.goto(f"{base}/fr/status")
        LanguagePicker(page).pick("ar")
        assert page.url == f"{base}/ar/status?picked=1"
        assert _open_bare_address(page, base) == "/ar/"
        # The browser's own language needs no remembering: the cookie goes.
        LanguagePicker(page).pick("en")
        assert _language_cookies(context) == []
        assert _open_bare_address(page, base) == "/en/"

        # Quick exit forgets it with the page's script, which also works offline, when the
        # neutral page comes from the service worker's copy and never reaches the server.
        LanguagePicker(page).pick("sw")
        page.route("**/n", lambda route: route.fulfill(
            status=200, content_type="text/html", body="<!doctype html><title>Notes</title>"))
        DeviceReportPage(page, base, "sw").quick_exit()
        page.wait_for_url(f"{base}/n")
        assert _language_cookies(context) == []
        page.unroute("**/n")
        assert _open_bare_address(page, base) == "/en/"
    finally:
        context.close()


def test_without_javascript_quick_exit_forgets_it_too(shared_server: Any, browser: Any) -> None:
    base = shared_server.url
    context = browser.new_context(java_script_enabled=False, locale="en-US")
    try:
        page = context.new_page()
        page.goto(f"{base}/en/about")
        LanguagePicker(page).pick("ln")
        assert _open_bare_address(page, base) == "/ln/"
        page.click("#quick-exit")
        page.wait_for_url(f"{base}/n")
        assert _language_cookies(context) == []
        assert _open_bare_address(page, base) == "/en/"
    finally:
        context.close()


def test_the_information_page_says_what_is_remembered(shared_server: Any, browser: Any) -> None:
    context = browser.new_context(service_workers="block")
    try:
        page = context.new_page()
        page.goto(f"{shared_server.url}/en/about")
        text = page.inner_text("#main")
        sentence = translate("en", "If you choose a language with the links at the top of the page, the browser remembers that language for 30 days, so that this site’s address opens in it. It remembers nothing else about you. Quick exit makes it forget.")
        assert sentence in text and f"{security.LANGUAGE_COOKIE_DAYS} days" in sentence
    finally:
        context.close()
