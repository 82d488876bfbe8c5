"""Every public page in the pseudo-locale (tests/pseudo_locale.py), with and without
JavaScript: no English may be left, in the text, in what assistive technology reads, in the
page title, or in the strings the browser code shows.

Each page's text is collected whole, hidden parts included (a notice shown later is in the
page already). In the pseudo-locale no ASCII letter comes from the catalogue, so one found
is English that bypassed it, except in the few things below, which are not ours to
translate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from intake import receipts

from pages import FocalPage, ReportPage, StatusPage
from pseudo_locale import ASCII_LETTER, CLOSE, OPEN, PSEUDO, pseudo

NOT_OURS = (
    "nav.langs a",  # each language in its own name: the picker must be readable by all
    "#preferred_language option",  # the same names, in the question about language
    ".when",  # dates: Babel writes them from CLDR data (test_report_flow checks them)
    ".fingerprint",  # key fingerprints, in hexadecimal
)

_COLLECT = """(skip) => {
  const texts = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    // With scripting on, a <noscript> holds its markup as raw text (the pages without
    // JavaScript check what it says); a <textarea> holds what the person wrote.
    if (node.parentElement.matches('noscript, textarea')) continue;
    if (node.parentElement.closest('script, style, ' + skip)) continue;
    if (node.data.trim()) texts.push(node.data.trim());
  }
  const read = ['placeholder', 'aria-label', 'title', 'alt'];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest(skip)) continue;
    for (const name of read) if (el.getAttribute(name)) texts.push(el.getAttribute(name));
    if (el.matches('input[type=submit], input[type=button], input[type=reset]')) texts.push(el.value);
  }
  return texts;
}"""


class EnglishLeft:
    """Collects, page by page, every text with English in it."""

    def __init__(self, server: Any) -> None:
        cfg = server.config
        # Text an administrator writes in config.toml, in the languages they choose.
        self.config_texts = (cfg.organisation, cfg.contact.get(PSEUDO, cfg.default_language))
        self.found: dict[str, list[str]] = {}

    def check(self, page: Any, where: str) -> None:
        english = []
        for text in page.evaluate(_COLLECT, ", ".join(NOT_OURS)):
            rest = text
            for allowed in self.config_texts:
                rest = rest.replace(allowed, "")
            if ASCII_LETTER.search(rest):
                english.append(text)
        self.found[where] = english

    def assert_none(self) -> None:
        assert self.found, "no page was checked"
        assert {where: texts for where, texts in self.found.items() if texts} == {}


def _wait_for_text(page: Any, selector: str, source: str) -> None:
    """Wait until `selector` shows the pseudo-locale's form of `source` (English, all or
    the start of a message)."""
    page.locator(selector, has_text=pseudo(source).strip(OPEN + CLOSE)).wait_for(timeout=30_000)


def _damage_envelope(route: Any) -> None:
    body = json.loads(route.request.post_data)
    body["envelope"] = body["envelope"][:40]
    route.continue_(post_data=json.dumps(body))


@pytest.fixture
def js_page(browser: Any) -> Iterator[Any]:
    # No service worker: it would keep every page of every language in the background,
    # and none of these checks needs it.
    context = browser.new_context(service_workers="block")
    yield context.new_page()
    context.close()


@pytest.fixture
def nojs_page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(java_script_enabled=False)
    yield context.new_page()
    context.close()


def test_strings_for_the_browser_code_are_all_translated(shared_server: Any, js_page: Any) -> None:
    js_page.goto(f"{shared_server.url}/{PSEUDO}/")
    data = json.loads(js_page.locator("#page-data").text_content())
    assert data["language"] == PSEUDO and data["strings"]
    for key, text in data["strings"].items():
        assert text.startswith(OPEN) and text.endswith(CLOSE), key
        assert not ASCII_LETTER.search(text.replace("%(num)d", "").replace("%(name)s", "")), key


def test_report_and_status_pages_with_javascript(shared_server: Any, js_page: Any) -> None:
    page, base, english = js_page, shared_server.url, EnglishLeft(shared_server)
    report = ReportPage(page, base, PSEUDO).open()
    english.check(page, "report form")
    report.send()
    _wait_for_text(page, "#form-status", "Please tell us what happened: write it, or record a voice note.")
    english.check(page, "report form: the one required answer is missing")

    # Refused by the server: its explanation is in the page's language too.
    report.fill("pseudo-locale report")
    page.route("**/api/reports", _damage_envelope)
    report.send()
    _wait_for_text(page, "#delivery", "Your report could not be accepted")
    _wait_for_text(page, "#delivery", "The locked report was damaged on the way.")
    english.check(page, "receipt: refused by the server")
    page.unroute("**/api/reports")
    page.click("#back-to-report")
    _wait_for_text(page, "#form-status", "Here is your report again.")
    english.check(page, "report form: back after a refusal")

    # Sent with no connection: kept on the device, then delivered when it returns.
    page.context.set_offline(True)
    report.send()
    code = report.receipt_code()
    _wait_for_text(page, "#delivery", "Your report is locked and kept on this device.")
    _wait_for_text(page, "#queue-waiting", "Reports waiting on this device to be sent:")
    english.check(page, "receipt: waiting, offline")
    page.context.set_offline(False)
    _wait_for_text(page, "#delivery", "Your report was received.")
    english.check(page, "receipt: delivered")

    status = StatusPage(page, base, PSEUDO)
    status.check(code)
    assert status.result_title() == pseudo("Status: %(status)s") % {"status": pseudo("Received")}
    assert page.locator(".timeline li").count() == 1
    english.check(page, "status: found, with its timeline")
    status.check(receipts.display(receipts.new_code()))
    page.locator("#code-error").wait_for(state="visible")
    english.check(page, "status: not found")
    status.check(code[:-1] + str((int(code[-1]) + 1) % 10))
    _wait_for_text(page, "#code-error", "This code has a mistake")
    english.check(page, "status: mistyped code")
    status.check(code[:9])
    _wait_for_text(page, "#code-error", "A receipt code has 16 digits.")
    english.check(page, "status: code too short")
    page.goto(f"{base}/{PSEUDO}/status")
    page.context.set_offline(True)
    page.fill("#code", code)
    page.click("#status-form button")
    _wait_for_text(page, "#offline-note", "There is no connection")
    english.check(page, "status: no connection")
    page.context.set_offline(False)
    english.assert_none()


def test_other_pages_with_javascript(shared_server: Any, js_page: Any) -> None:
    page, base, english = js_page, shared_server.url, EnglishLeft(shared_server)
    for path, where in (("about", "information page"), ("offline", "offline page")):
        page.goto(f"{base}/{PSEUDO}/{path}")
        english.check(page, where)
    focal = FocalPage(page, base, PSEUDO).open()
    focal.state(pseudo("This tablet is not enrolled."))
    english.check(page, "focal point tablet")
    focal.enrol("")
    _wait_for_text(page, "#enrol-status", "Enter the enrolment code.")
    english.check(page, "focal point tablet: no code entered")
    focal.enrol("NOT-A-CODE")
    _wait_for_text(page, "#enrol-status", "This enrolment code is not valid")
    english.check(page, "focal point tablet: the server refuses the code")
    english.assert_none()


def test_pages_without_javascript(shared_server: Any, nojs_page: Any) -> None:
    page, base, english = nojs_page, shared_server.url, EnglishLeft(shared_server)
    report = ReportPage(page, base, PSEUDO).open()
    english.check(page, "report form")
    report.send()
    english.check(page, "report form: the one required answer is missing")
    report.fill("x" * (shared_server.config.limits.max_text_chars + 1))
    report.send()
    page.locator("#what-error").wait_for()
    english.check(page, "report form: an answer too long")
    report.fill("pseudo-locale report, no JavaScript")
    report.send()
    report.receipt_code()
    english.check(page, "receipt, sealed by the server")
    page.reload()  # the browser posts the same form again
    assert page.inner_text("h1") == pseudo("This report was already received")
    english.check(page, "the same report sent twice")
    page.goto(f"{base}/{PSEUDO}/focal")
    english.check(page, "focal point tablet, which needs JavaScript")
    page.goto(f"{base}/{PSEUDO}/no-such-page")
    english.check(page, "an address with no page")
    english.assert_none()
